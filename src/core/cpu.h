// What the CPU can do, and which kernel family to run. Hot kernels are compiled per
// instruction set with QS_TARGET_* function attributes (no global -march), so one binary
// runs everywhere and uses AVX-512 (BF16, VNNI) where present. QSTUDY_SIMD=generic|avx2|avx512
// forces a lower level, which is how tests check that fallbacks agree with fast paths.
#pragma once

#include <string>

namespace qs {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512bf16 = false;
  bool avx512vnni = false;
  std::string model_name;
};

const CpuFeatures& cpu_features();

enum class SimdLevel { Generic = 0, Avx2 = 1, Avx512 = 2 };

// The level kernels dispatch on: the best the CPU supports, capped by QSTUDY_SIMD or
// set_simd_level (for tests). Avx512 means F, BW, VL, DQ; BF16 and VNNI are checked apart.
SimdLevel simd_level();
void set_simd_level(SimdLevel level);  // capped at what the CPU supports
bool use_avx512_bf16();                // Avx512 level and the CPU has AVX512_BF16
bool use_avx512_vnni();                // Avx512 level and the CPU has AVX512_VNNI
const char* simd_level_name(SimdLevel level);
// One line for reports: "AMD EPYC (avx512 bf16 vnni)".
std::string cpu_summary();

}  // namespace qs

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define QS_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define QS_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c,avx2")))
#define QS_TARGET_AVX512_BF16 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c,avx2")))
#define QS_TARGET_AVX512_VNNI \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c,avx2")))
#define QS_HAVE_X86 1
#else
#define QS_TARGET_AVX2
#define QS_TARGET_AVX512
#define QS_TARGET_AVX512_BF16
#define QS_TARGET_AVX512_VNNI
#define QS_HAVE_X86 0
#endif
