// Shape checks and small numeric helpers shared by the number formats in src/formats.
//
// Conventions used by every format here:
//  - A weight matrix W is [N, K] row-major as Hugging Face stores a Linear layer: N output
//    channels (rows), K inputs (columns). Groups and blocks run along K inside a row.
//  - Every error about a shape or parameter is a qs::Error naming the layer (`name`) and
//    what was expected, e.g. "group size 128 does not divide input size 300 of layer 'x'".
#pragma once

#include <cstdint>
#include <string_view>

namespace qs::formats {

// Throws unless n > 0, k > 0 and the buffer holds n * k values.
void check_matrix(int64_t n, int64_t k, size_t size, std::string_view name);

// Number of groups per row; throws unless group_size > 0 divides k.
// `what` names the parameter in the message ("group size", "block size").
int64_t groups_per_row(int64_t k, int64_t group_size, std::string_view name, std::string_view what = "group size");

// Round half to even for |v| < 2^22 (the callers clamp first). Adding and subtracting
// 1.5 * 2^23 leaves the integer part rounded in the current (nearest-even) mode; this is
// what torch.round / std::nearbyint do, but it vectorizes without SSE4.1.
inline float round_half_even_small(float v) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  return (v + kMagic) - kMagic;
}

}  // namespace qs::formats
