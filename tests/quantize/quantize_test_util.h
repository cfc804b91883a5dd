// Helpers for the quantization-algorithm tests: synthetic layers and calibration activations,
// layer-output errors, and raw-file exchange with the Python references in tests/quantize/ref/.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "core/rng.h"
#include "quantize/algorithms/linalg.h"
#include "testing/testing.h"

namespace qs::quant::test {

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

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A temp dir for one reference comparison; removed afterwards unless the test failed.
struct RefDir {
  explicit RefDir(const std::string& tag) : path(qs::testing::make_temp_dir(tag)) {}
  ~RefDir() {
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(path);
  }
  RefDir(const RefDir&) = delete;
  RefDir& operator=(const RefDir&) = delete;
  std::string path;
};

// Runs `python3 tests/quantize/ref/<script> <dir>`.
inline ::testing::AssertionResult run_ref(const std::string& script, const std::string& dir) {
  const std::string cmd = qs::testing::python() + " " +
                          qs::testing::shell_quote(qs::testing::source_dir() + "/tests/quantize/ref/" + script) + " " +
                          qs::testing::shell_quote(dir);
  auto r = qs::testing::run_command(cmd);
  if (r.exit_code != 0)
    return ::testing::AssertionFailure() << cmd << " exited " << r.exit_code << "\nstdout:\n" << r.out << "\nstderr:\n"
                                         << r.err;
  return ::testing::AssertionSuccess();
}

// Weights like a trained Linear: normal, std `scale`.
inline std::vector<float> random_weight(int64_t n, int64_t k, uint64_t seed, float scale = 0.02f) {
  Rng rng(seed);
  std::vector<float> w(n * k);
  for (auto& v : w) v = static_cast<float>(rng.normal()) * scale;
  return w;
}

// Calibration activations X [rows, k] with the structure of an LLM's hidden states: channels
// correlated through a low-rank mixing (rank k / 4) plus independent noise, per-channel scales
// around 1, and `outliers` channels scaled by `outlier_gain` (every row, as LLM outlier
// channels are). Channels listed in `dead` are exactly zero.
inline std::vector<float> correlated_activations(int64_t rows, int64_t k, uint64_t seed, int outliers = 4,
                                                 float outlier_gain = 20.0f, std::vector<int64_t> dead = {}) {
  Rng rng(seed);
  const int64_t rank = std::max<int64_t>(1, k / 4);
  std::vector<float> mix(rank * k);
  for (auto& v : mix) v = static_cast<float>(rng.normal() / std::sqrt(static_cast<double>(rank)));
  std::vector<float> gain(k);
  for (auto& g : gain) g = static_cast<float>(0.5 + rng.uniform());
  for (int i = 0; i < outliers; ++i) gain[rng.below(k)] *= outlier_gain;
  for (int64_t c : dead) gain[c] = 0.0f;
  std::vector<float> x(rows * k), z(rank);
  for (int64_t r = 0; r < rows; ++r) {
    for (auto& v : z) v = static_cast<float>(rng.normal());
    for (int64_t c = 0; c < k; ++c) {
      double acc = 0.3 * rng.normal();
      for (int64_t j = 0; j < rank; ++j) acc += static_cast<double>(z[j]) * mix[j * k + c];
      x[r * k + c] = static_cast<float>(acc) * gain[c];
    }
  }
  return x;
}

// ||X W^T - X W_hat^T||_F / ||X W^T||_F: f32 GEMMs (OpenBLAS) of X with W and with W - W_hat,
// squares summed in double.
inline double relative_output_error(std::span<const float> x, int64_t rows, int64_t k, std::span<const float> w,
                                    std::span<const float> w_hat, int64_t n) {
  std::vector<float> d(w.size()), y(static_cast<size_t>(rows * n)), e(static_cast<size_t>(rows * n));
  for (size_t i = 0; i < w.size(); ++i) d[i] = w[i] - w_hat[i];
  sgemm(false, true, rows, n, k, 1.0f, x.data(), k, w.data(), k, 0.0f, y.data(), n);
  sgemm(false, true, rows, n, k, 1.0f, x.data(), k, d.data(), k, 0.0f, e.data(), n);
  double err = 0.0, ref = 0.0;
  for (size_t i = 0; i < y.size(); ++i) {
    err += static_cast<double>(e[i]) * e[i];
    ref += static_cast<double>(y[i]) * y[i];
  }
  return std::sqrt(err / ref);
}

}  // namespace qs::quant::test
