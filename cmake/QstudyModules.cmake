# qs_module(NAME [DEPS ...]): a static library from src/NAME/*.cpp.
# Sources are globbed so that adding a file needs no edit here.
function(qs_module name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS "${CMAKE_SOURCE_DIR}/src/${name}/*.cpp")
  list(FILTER srcs EXCLUDE REGEX "/src/cli/main\\.cpp$")
  add_library(qs_${name} STATIC ${srcs})
  target_include_directories(qs_${name} PUBLIC "${CMAKE_SOURCE_DIR}/src")
  target_link_libraries(qs_${name} PUBLIC ${ARG_DEPS})
endfunction()

# qs_test(MODULE [DEPS ...]): one GoogleTest binary test_MODULE from tests/MODULE/*_test.cpp.
function(qs_test name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS "${CMAKE_SOURCE_DIR}/tests/${name}/*_test.cpp")
  if(NOT srcs)
    return()
  endif()
  add_executable(test_${name} ${srcs})
  target_link_libraries(test_${name} PRIVATE qs_testing ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  gtest_discover_tests(test_${name}
    WORKING_DIRECTORY "${CMAKE_SOURCE_DIR}"
    PROPERTIES ENVIRONMENT "QSTUDY_SHARED_DIR=${QSTUDY_SHARED_DIR};QSTUDY_SOURCE_DIR=${CMAKE_SOURCE_DIR};QSTUDY_BINARY_DIR=${CMAKE_BINARY_DIR}"
    DISCOVERY_TIMEOUT 60)
endfunction()
