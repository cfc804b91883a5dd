// Test helpers for comparing the formats against the independent Python references in
// tests/formats/ref/: raw little-endian binary files in a temp dir, one script run per test.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "core/rng.h"
#include "testing/testing.h"

namespace qs::formats::test {

template <class T>
void write_raw(const std::string& path, std::span<const T> values) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size_bytes()));
}
template <class T>
void write_raw(const std::string& path, const std::vector<T>& values) {
  write_raw(path, std::span<const T>(values));
}

template <class T>
std::vector<T> read_raw(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<T> out(bytes.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
  return out;
}

// A temp dir for one reference comparison; removed afterwards unless the test failed (kept
// for inspection then).
struct RefDir {
  explicit RefDir(const std::string& tag) : path(qs::testing::make_temp_dir(tag)) {}
  ~RefDir() {
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(path);
  }
  RefDir(const RefDir&) = delete;
  RefDir& operator=(const RefDir&) = delete;
  std::string path;
};

// Runs `python3 tests/formats/ref/<script> <dir> <args>`; returns false (with the output
// added to the failure) when it does not exit 0.
inline ::testing::AssertionResult run_ref(const std::string& script, const std::string& dir,
                                          const std::string& args = "") {
  const std::string cmd = qs::testing::python() + " " +
                          qs::testing::shell_quote(qs::testing::source_dir() + "/tests/formats/ref/" + script) + " " +
                          qs::testing::shell_quote(dir) + " " + args;
  auto r = qs::testing::run_command(cmd);
  if (r.exit_code != 0)
    return ::testing::AssertionFailure() << cmd << " exited " << r.exit_code << "\nstdout:\n" << r.out << "\nstderr:\n"
                                         << r.err;
  return ::testing::AssertionSuccess();
}

// Bitwise float equality (distinguishes -0 and 0; NaN equals NaN of the same bits).
inline bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

// A weight-like matrix: normal values times `scale`, with outliers (x20 about one in 500),
// exact zeros, an all-zero row when n > 2, and some exact multiples of scale / 4 (ties).
inline std::vector<float> weight_like(int64_t n, int64_t k, uint64_t seed, float scale = 0.02f) {
  qs::Rng rng(seed);
  std::vector<float> w(n * k);
  for (auto& v : w) {
    const uint64_t pick = rng.below(1000);
    if (pick < 2) v = static_cast<float>(rng.normal()) * scale * 20.0f;
    else if (pick < 10) v = 0.0f;
    else if (pick < 30) v = static_cast<float>(static_cast<int64_t>(rng.below(33)) - 16) * scale / 4.0f;
    else v = static_cast<float>(rng.normal()) * scale;
  }
  if (n > 2)
    for (int64_t c = 0; c < k; ++c) w[1 * k + c] = 0.0f;
  return w;
}

}  // namespace qs::formats::test
