// Shared helpers for the kernel tests: random data, SIMD levels to sweep, scoped level override.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "core/dtype.h"
#include "core/rng.h"

namespace qs::kernels::testing {

inline std::vector<float> random_floats(Rng& rng, size_t n, double scale = 1.0) {
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.normal() * scale);
  return v;
}

// The levels this CPU can run, lowest first.
inline std::vector<SimdLevel> available_levels() {
  std::vector<SimdLevel> out;
  const SimdLevel saved = simd_level();
  for (SimdLevel l : {SimdLevel::Generic, SimdLevel::Avx2, SimdLevel::Avx512}) {
    set_simd_level(l);
    if (simd_level() == l) out.push_back(l);
  }
  set_simd_level(saved);
  return out;
}

// Forces a SIMD level for one scope (restores the best level afterwards).
class ScopedLevel {
 public:
  explicit ScopedLevel(SimdLevel l) { set_simd_level(l); }
  ~ScopedLevel() { set_simd_level(SimdLevel::Avx512); }
  ScopedLevel(const ScopedLevel&) = delete;
  ScopedLevel& operator=(const ScopedLevel&) = delete;
};

inline std::string level_name(SimdLevel l) { return simd_level_name(l); }

// Distance in units in the last place between two finite floats of the same sign.
inline int64_t ulp_distance(float a, float b) {
  auto key = [](float f) {
    int32_t i = static_cast<int32_t>(f32_bits(f));
    return i < 0 ? static_cast<int64_t>(INT32_MIN) - i : static_cast<int64_t>(i);
  };
  const int64_t d = key(a) - key(b);
  return d < 0 ? -d : d;
}

}  // namespace qs::kernels::testing
