// The two ceilings kernel speed is judged against (`qstudy bench` reports decode as a share of
// weight bytes / bandwidth and prefill as a share of peak FLOP/s):
//  - sustained memory read bandwidth: all threads streaming a buffer much larger than the L3;
//  - peak arithmetic: register-only FMA (f32) or VDPBF16PS (bf16) loops on all threads, with
//    the instructions the current SIMD level dispatches to.
// Both are measured, best of a few repeats, since the spec sheet number is rarely reached.
#pragma once

#include <cstddef>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace qs::kernels {

// GB/s (1e9 bytes per second) streaming a buffer of `bytes` with every thread of `pool`: the best
// of several timed windows of 1/8 of the buffer (each still far larger than the L3).
double measure_memory_bandwidth_gbs(ThreadPool& pool, size_t bytes = size_t{1} << 30);

// GFLOP/s (1e9 floating point operations per second; one FMA = 2) with every thread of `pool`,
// for the arithmetic matmul uses with weights of `dtype`: BF16 -> VDPBF16PS where the CPU
// has it (f32 FMA otherwise), I8 -> VPDPBUSD where the CPU has AVX512-VNNI (integer operations,
// f32 FMA otherwise), F32 and F16 -> f32 FMA. Each thread's rate is taken over its own
// CPU time and the rates are summed: the ceiling of the cores themselves, which other processes
// sharing them do not lower (wall-clock rates of a loaded machine would).
double measure_peak_gflops(DType dtype, ThreadPool& pool);

}  // namespace qs::kernels
