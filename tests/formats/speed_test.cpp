// Full-size run of every format on a 2048 x 8192 matrix (a 7B-class MLP projection): checks
// the error bound of each fake quantization at scale and reports the single-threaded time.
// The time bound is loose (3 s against a target of well under 1 s) so that a shared, busy
// machine does not fail it, while a per-element slow path (a libm call, a division per
// element in a hot loop) still would.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <vector>

#include "core/rng.h"
#include "core/timer.h"
#include "formats/formats.h"

namespace qs::formats {
namespace {

TEST(FormatsSpeed, Bulk2048x8192) {
  const int64_t n = 2048, k = 8192;
  std::vector<float> w(n * k);
  Rng rng(1);
  for (auto& v : w) v = static_cast<float>((rng.uniform() - 0.5) * 0.08);
  std::vector<float> out(w.size());
  // Each case quantizes and dequantizes into `out`; max_rel_error bounds |w - w_hat| relative
  // to max |w| (0.04) from the format's step size.
  struct Case {
    const char* name;
    std::function<void()> run;
    double max_rel_error;
  };
  IntQuantConfig int4;
  int4.group_size = 128;
  const std::vector<Case> cases = {
      {"fp8 e4m3 per-channel", [&] { dequantize_fp8(quantize_fp8(w, n, k, Fp8Format::E4M3, Fp8Granularity::PerChannel, "w"), out); }, 1.0 / 16},
      {"int4 g128", [&] { dequantize_int(quantize_int(w, n, k, int4, "w"), out); }, 1.0 / 14},
      {"nf4 double-quant", [&] { dequantize_bnb4(quantize_bnb4(w, n, k, Bnb4Type::NF4, true, "w"), out); }, 0.2},
      {"fp4 (bnb)", [&] { dequantize_bnb4(quantize_bnb4(w, n, k, Bnb4Type::FP4, false, "w"), out); }, 0.2},
      {"mxfp4", [&] { dequantize_mxfp4(quantize_mxfp4(w, n, k, "w"), out); }, 0.5},  // saturation below 8X
      {"nvfp4", [&] { dequantize_nvfp4(quantize_nvfp4(w, n, k, "w"), out); }, 0.2},
      {"q8_0", [&] { auto b = quantize_q8_0(w, n, k, "w"); dequantize_row_q8_0(b, out); }, 1.0 / 254 + 1.0 / 2048},  // + f16 d
      {"q4_0", [&] { auto b = quantize_q4_0(w, n, k, "w"); dequantize_row_q4_0(b, out); }, 1.0 / 8 + 1.0 / 256},  // +max side reaches 7/8
  };
  for (const Case& c : cases) {
    Stopwatch sw;
    c.run();
    const double seconds = sw.seconds();
    std::printf("  %-22s quantize + dequantize %.3f s\n", c.name, seconds);
    RecordProperty(c.name, std::to_string(seconds));
    EXPECT_LT(seconds, 3.0) << c.name;
    double worst = 0;
    for (size_t i = 0; i < w.size(); ++i) worst = std::max(worst, static_cast<double>(std::fabs(w[i] - out[i])));
    EXPECT_LE(worst / 0.04, c.max_rel_error) << c.name;
  }
}

}  // namespace
}  // namespace qs::formats
