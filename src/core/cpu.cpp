#include "core/cpu.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace qs {

namespace {

CpuFeatures detect() {
  CpuFeatures f;
#if QS_HAVE_X86
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.f16c = true;  // every AVX2 CPU has F16C; only used together with avx2
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  f.avx512dq = __builtin_cpu_supports("avx512dq");
  f.avx512bf16 = __builtin_cpu_supports("avx512bf16");
  f.avx512vnni = __builtin_cpu_supports("avx512vnni");
#endif
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) f.model_name = line.substr(p + 2);
      break;
    }
  }
  if (f.model_name.empty()) f.model_name = "unknown CPU";
  return f;
}

SimdLevel hardware_level(const CpuFeatures& f) {
  if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.fma) return SimdLevel::Avx512;
  if (f.avx2 && f.fma) return SimdLevel::Avx2;
  return SimdLevel::Generic;
}

SimdLevel initial_level() {
  SimdLevel hw = hardware_level(cpu_features());
  const char* env = std::getenv("QSTUDY_SIMD");
  if (!env) return hw;
  SimdLevel want = hw;
  if (!std::strcmp(env, "generic")) want = SimdLevel::Generic;
  else if (!std::strcmp(env, "avx2")) want = SimdLevel::Avx2;
  else if (!std::strcmp(env, "avx512")) want = SimdLevel::Avx512;
  return want < hw ? want : hw;
}

std::atomic<int>& level_storage() {
  static std::atomic<int> level{static_cast<int>(initial_level())};
  return level;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

SimdLevel simd_level() { return static_cast<SimdLevel>(level_storage().load(std::memory_order_relaxed)); }

void set_simd_level(SimdLevel level) {
  SimdLevel hw = hardware_level(cpu_features());
  level_storage().store(static_cast<int>(level < hw ? level : hw));
}

bool use_avx512_bf16() { return simd_level() == SimdLevel::Avx512 && cpu_features().avx512bf16; }
bool use_avx512_vnni() { return simd_level() == SimdLevel::Avx512 && cpu_features().avx512vnni; }

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::Avx512: return "avx512";
    case SimdLevel::Avx2: return "avx2";
    default: return "generic";
  }
}

std::string cpu_summary() {
  std::string s = cpu_features().model_name + " (" + simd_level_name(simd_level());
  if (use_avx512_bf16()) s += " bf16";
  if (use_avx512_vnni()) s += " vnni";
  return s + ")";
}

}  // namespace qs
