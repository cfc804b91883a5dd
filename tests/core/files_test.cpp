#include "core/files.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "testing/testing.h"

namespace qs {
namespace {

TEST(Files, Utf8Validation) {
  EXPECT_EQ(find_invalid_utf8("hello ▁ world 😀"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8(std::string("ab\xff", 3)), 2u);
  EXPECT_EQ(find_invalid_utf8(std::string("a\xc0\xaf", 3)), 1u);       // overlong
  EXPECT_EQ(find_invalid_utf8(std::string("\xed\xa0\x80", 3)), 0u);    // surrogate
  EXPECT_EQ(find_invalid_utf8(std::string("ok\xe2\x96", 4)), 2u);      // truncated
}

TEST(Files, TextFileErrorsNameTheFile) {
  std::string dir = testing::make_temp_dir("files");
  testing::write_text(dir + "/empty.txt", "");
  testing::write_text(dir + "/bad.txt", std::string("abc\xfe", 4));
  try {
    read_text_file(dir + "/empty.txt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("empty.txt: file is empty"), std::string::npos) << e.what();
  }
  try {
    read_text_file(dir + "/bad.txt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("invalid UTF-8 at byte offset 3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_file(dir + "/missing.txt"), Error);
  EXPECT_THROW(read_file(dir), Error);
}

TEST(Files, JsonErrorsNameFileAndPosition) {
  std::string dir = testing::make_temp_dir("files");
  testing::write_text(dir + "/c.json", "{\"a\": 1,,}");
  try {
    read_json_file(dir + "/c.json");
    FAIL();
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("c.json: invalid JSON at byte"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos);
  }
  write_file_atomic(dir + "/ok.json", "{\"a\": [1, 2]}");
  EXPECT_EQ(read_json_file(dir + "/ok.json")["a"][1], 2);
}

}  // namespace
}  // namespace qs
