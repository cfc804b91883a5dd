// Integer affine quantization of weight matrices (the storage behind GPTQ, AWQ, RTN and the
// compressed-tensors "int-quantized" / "pack-quantized" formats).
//
// W [N, K] is split along K into groups (per-group, size g), whole rows (per-channel, g = K)
// or one group for the whole tensor (per-tensor). Each group gets a scale s and an integer
// zero point z; codes are unsigned b-bit integers q in [0, 2^b - 1] and
//     W_hat = (q - z) * s            (f32 arithmetic)
//
// Parameters per group, from xmin = min(min(x), 0), xmax = max(max(x), 0) (0 is always
// representable, as in GPTQ and compressed-tensors):
//  - symmetric, SymmetricRange::Full (GPTQ and compressed-tensors, the default):
//      s = max(|xmin|, |xmax|) / ((2^b - 1) / 2),  z = 2^(b-1),  q in [0, 2^b - 1],
//      i.e. signed codes q - z in [-2^(b-1), 2^(b-1) - 1] (int4: s = amax / 7.5, [-8, 7]).
//      compressed-tensors stores exactly these signed codes (int8, or +2^(b-1) when packed).
//  - symmetric, SymmetricRange::Restricted (llm.int8 / SmoothQuant / vLLM per-token int8):
//      s = amax / (2^(b-1) - 1), signed codes in [-(2^(b-1) - 1), 2^(b-1) - 1].
//  - asymmetric (GPTQ / compressed-tensors asym): s = (xmax - xmin) / (2^b - 1),
//      z = round(-xmin / s) clamped to [0, 2^b - 1]. (compressed-tensors' signed view of the
//      same numbers is q - 2^(b-1), z - 2^(b-1).)
//  Codes: q = clamp(round(x / s) + z, qmin, qmax) with round = half to even (torch.round),
//  in GPTQ's order (round, then add z). x / s is an f32 division, as torch does in f32.
//  With scale_dtype F16/BF16 the scale is rounded to that type (RNE) and the codes are
//  computed with the rounded scale, so the stored checkpoint is self-consistent; the zero
//  point is derived from the unrounded scale, as compressed-tensors' calculate_qparams does
//  (a scale that would round to 0 is raised to the type's smallest positive value).
//  An all-zero group is quantized as if its range were [-1, 1] (GPTQ's convention); its codes
//  all equal z and dequantize to exactly 0. NaN inputs map to the lowest code.
//
// Clipping: a clip ratio p in (0, 1] shrinks the range to [p * xmin, p * xmax] (f32 products)
// before the parameters are derived. MseSearch tries p = 1 - i / grid for
// i = 0 .. int(max_shrink * grid) - 1 and keeps the first p with the smallest error
// sum |x - x_hat|^norm: the search of GPTQ's Quantizer (mse=True: grid 100, maxshrink 0.8,
// norm 2.4) and of llm-compressor's MSE observer (grid 100, maxshrink 0.2, norm 2.4, stop
// after 5 non-improving steps). The default here scans 1.0 down to 0.505 (100 steps of
// 0.005) minimizing the squared error.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace qs::formats {

enum class IntGranularity : uint8_t { PerTensor, PerChannel, PerGroup };
enum class SymmetricRange : uint8_t { Full, Restricted };
enum class ScaleDType : uint8_t { F32, F16, BF16 };

struct IntQuantConfig {
  int bits = 4;  // 2..8
  bool symmetric = true;
  IntGranularity granularity = IntGranularity::PerGroup;
  int64_t group_size = 128;  // PerGroup only; must divide K
  SymmetricRange range = SymmetricRange::Full;
  ScaleDType scale_dtype = ScaleDType::F32;
};

struct MseSearch {
  int grid = 200;
  double max_shrink = 0.5;
  double norm = 2.0;
  // Stop after this many consecutive steps in which no group improved (quantize_int scans
  // all groups of the matrix together, as llm-compressor's observer does); 0 = scan all.
  int patience = 0;
  static MseSearch gptq() { return {100, 0.8, 2.4, 0}; }
  static MseSearch llm_compressor() { return {100, 0.2, 2.4, 5}; }
};

// A quantized matrix [rows, cols]. Codes are unsigned; zero points per group.
struct IntMatrix {
  int bits = 4;
  bool symmetric = true;
  IntGranularity granularity = IntGranularity::PerGroup;
  int64_t rows = 0, cols = 0;
  int64_t group_size = 0;       // columns per group (cols for per-channel and per-tensor)
  std::vector<uint8_t> codes;   // [rows, cols], values in [0, 2^bits - 1]
  std::vector<float> scales;    // [rows, groups_per_row()] ([1] per tensor)
  std::vector<uint8_t> zeros;   // same shape as scales
  std::vector<int32_t> g_idx;   // optional [cols]: group of each column (GPTQ act-order);
                                // empty means column c belongs to group c / group_size

  int64_t groups_per_row() const { return granularity == IntGranularity::PerGroup ? cols / group_size : 1; }
  int64_t group_of(int64_t c) const { return g_idx.empty() ? c / group_size : g_idx[c]; }
  // Index into scales/zeros of (row, group).
  int64_t param_index(int64_t r, int64_t g) const {
    return granularity == IntGranularity::PerTensor ? 0 : r * groups_per_row() + g;
  }
  // Signed code q - 2^(bits-1), the value compressed-tensors stores.
  int signed_code(int64_t i) const { return static_cast<int>(codes[i]) - (1 << (bits - 1)); }
};

// Result of quantizing one group.
struct GroupFit {
  float clip_ratio = 1.0f;
  float scale = 0.0f;
  int zero = 0;
  double error = 0.0;  // sum |x - x_hat|^norm over the group
};

// Quantizes one group with clip ratio `clip_ratio`; writes its codes when `codes` is not
// empty (same length as `group`) and returns scale, zero and the error (norm 2 = squared).
GroupFit quantize_group_with_clip(std::span<const float> group, const IntQuantConfig& cfg, float clip_ratio,
                                  std::span<uint8_t> codes = {}, double norm = 2.0);
// Searches the clip ratio (see MseSearch) and writes the codes of the best one.
GroupFit search_group_clip(std::span<const float> group, const IntQuantConfig& cfg, const MseSearch& search,
                           std::span<uint8_t> codes = {});

// Checks bits, group size and shape; throws naming the layer.
void validate_int_config(const IntQuantConfig& cfg, int64_t n, int64_t k, std::string_view name);

// Round-to-nearest quantization of W [n, k]; with `mse`, each group's clip ratio is searched.
IntMatrix quantize_int(std::span<const float> w, int64_t n, int64_t k, const IntQuantConfig& cfg,
                       std::string_view name, const MseSearch* mse = nullptr);
// W_hat = (q - z) * s, [rows, cols].
void dequantize_int(const IntMatrix& q, std::span<float> out);
std::vector<float> fake_quant_int(std::span<const float> w, int64_t n, int64_t k, const IntQuantConfig& cfg,
                                  std::string_view name, const MseSearch* mse = nullptr);

// Rounds a scale to the storage dtype (RNE), keeping it positive.
float round_scale(float scale, ScaleDType dtype);

}  // namespace qs::formats
