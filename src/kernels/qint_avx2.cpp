// Int8 (W8A8-INT8, LLM.int8()), GGUF (Q8_0, Q4_0) and Fp8 kernels for AVX2 + FMA CPUs without
// AVX-512. One loop nest for decode and prefill: threads take chunks of W rows; x rows are taken
// in blocks that fit the L2, and each register tile of R W rows sweeps the block's x rows MR at a
// time, so W comes from memory once per x block (once per call for decode) and from L1/L2 for
// the other x rows. Each tile holds MR x R vector dot products, summed across lanes at the end.
//  - Int8 and GGUF integer dots: AVX2 has no u8 x s8 dot with int32 accumulation, so the sign
//    trick: |w| (u8) times x with w's sign (s8) in VPMADDUBSW, pairs then summed to int32 with
//    VPMADDWD. |x| <= 127 and |w| <= 128, so a pair is at most 2 * 127 * 128 < 2^15: no
//    saturation, every sum exact.
//  - GGUF: each block's int32 lanes converted to f32 and accumulated with FMA against
//    d_w * d_x, as ggml's AVX2 vec_dot kernels do (f32 lane sums, added up at the end). Q4_0
//    runs two blocks per vector with unsigned nibbles and the offset 8 as a correction from x
//    (see q4_0_tile).
//  - Fp8: e4m3 codes decoded exactly in registers (through f16 bits and F16C, see
//    decode_e4m3_32_over_256; the GEMV holds x times 2^8 and turns rows with NaN codes into NaN
//    at the end; the GEMM decodes each W panel once), exact products with x's e4m3 (or bf16)
//    values, f32 FMA sums.
// Activations are prepared once per call, as the references do, in the layout the tiles read.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/cpu.h"
#include "core/dtype.h"
#include "formats/fp8.h"
#include "formats/gguf_blocks.h"
#include "kernels/matmul_internal.h"
#include "kernels/qmatmul_internal.h"

#if QS_HAVE_X86
#include <immintrin.h>

namespace qs::kernels::qdetail {

namespace {

#define QS_INLINE_AVX2 inline __attribute__((always_inline, target("avx2,fma,f16c")))

// ---- Schedule --------------------------------------------------------------------------------

// Bytes of prepared x rows one W tile sweeps: they stay in L2 (512 KiB and up on AVX2 x86).
constexpr int64_t kXBlockBytes = int64_t{192} << 10;

template <int MR, int R, class Tile>
void sweep_x_rows(const Tile& tile, int64_t m0, int64_t m1, int64_t n) {
  int64_t m = m0;
  for (; m + MR <= m1; m += MR) tile.template operator()<MR, R>(m, n);
  for (; m < m1; ++m) tile.template operator()<1, R>(m, n);
}

// y[0..M, 0..N) by tiles: tile.operator()<mr, r>(m, n) computes x rows [m, m + mr) against W
// rows [n, n + r); finish(n0, n1) runs once per chunk of W rows after all its tiles.
template <int MR, int R, class Tile, class Finish>
void run_tiles(int64_t M, int64_t N, int64_t x_row_bytes, ThreadPool& pool, const Tile& tile, const Finish& finish) {
  const int64_t m_block = std::max<int64_t>(MR, kXBlockBytes / x_row_bytes / MR * MR);
  const int64_t chunk = detail::chunk_for(N, pool.size(), 8, R);
  detail::parallel_chunks(pool, N, chunk, [&](int64_t n0, int64_t n1) {
    for (int64_t m0 = 0; m0 < M; m0 += m_block) {
      const int64_t m1 = std::min(M, m0 + m_block);
      int64_t n = n0;
      for (; n + R <= n1; n += R) sweep_x_rows<MR, R>(tile, m0, m1, n);
      for (; n < n1; ++n) sweep_x_rows<MR, 1>(tile, m0, m1, n);
    }
    finish(n0, n1);
  });
}

// Tile shapes (rows of x, rows of W): the GEMV keeps more W rows in flight, the GEMM reuses each
// load more (3 x 3 measured 10-25% faster than 4 x 2 and 2 x 4 for Int8 and GGUF prefill).
constexpr int kGemvMR = 2, kGemvR = 4;
constexpr int kGemmMR = 3, kGemmR = 3;

template <class Tile, class Finish>
void run(bool gemm, int64_t M, int64_t N, int64_t x_row_bytes, ThreadPool& pool, const Tile& tile,
         const Finish& finish) {
  if (gemm) run_tiles<kGemmMR, kGemmR>(M, N, x_row_bytes, pool, tile, finish);
  else run_tiles<kGemvMR, kGemvR>(M, N, x_row_bytes, pool, tile, finish);
}

// ---- Helpers ---------------------------------------------------------------------------------

QS_INLINE_AVX2 float hsum_ps(__m256 v) {
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_movehdup_ps(q));
  return _mm_cvtss_f32(q);
}

QS_INLINE_AVX2 int32_t hsum_epi32(__m256i v) {
  __m128i q = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  q = _mm_add_epi32(q, _mm_unpackhi_epi64(q, q));
  q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 1));
  return _mm_cvtsi128_si32(q);
}

// sum over the 32 byte pairs of w * x as 8 int32 lanes (|x| <= 127, any int8 w).
QS_INLINE_AVX2 __m256i dot_i8(__m256i abs_w, __m256i w, __m256i x) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(abs_w, _mm256_sign_epi8(x, w)), _mm256_set1_epi16(1));
}

// 32 bytes at p, of which only n < 32 are in bounds; the rest zero.
QS_INLINE_AVX2 __m256i load_tail32(const void* p, int64_t n) {
  alignas(32) uint8_t buf[32] = {};
  std::memcpy(buf, p, static_cast<size_t>(n));
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(buf));
}

// ---- Int8 ------------------------------------------------------------------------------------

// Sums of up to K * 127 * 128 stay within int32.
constexpr int64_t kInt8Avx2MaxK = 131072;

// x row -> q (ldq bytes, zero padded) exactly as quantize_row_int8 or the static scale; returns s_x.
QS_TARGET_AVX2 float quantize_x_int8(const float* x, int64_t K, float static_scale, int8_t* q, int64_t ldq) {
  const int64_t k_vec = K / 32 * 32;
  float s = static_scale;
  if (!(s > 0)) {
    __m256 m = _mm256_setzero_ps();
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t k = 0; k < k_vec; k += 8) m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + k), abs_mask), m);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float amax = _mm_cvtss_f32(h);
    for (int64_t k = k_vec; k < K; ++k) amax = std::max(amax, std::fabs(x[k]));  // NaN ignored, as the reference
    s = amax > 0 ? amax / 127.0f : 1.0f;
  }
  const __m256 sv = _mm256_set1_ps(s), hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t k = 0; k < k_vec; k += 32) {
    __m256i v[4];
    for (int i = 0; i < 4; ++i) {
      __m256 f = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(x + k + 8 * i), sv),
                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      f = _mm256_max_ps(_mm256_min_ps(f, hi), lo);  // min(f, 127) is 127 for NaN, as std::min(127, NaN)
      v[i] = _mm256_cvttps_epi32(f);
    }
    const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + k), _mm256_permutevar8x32_epi32(bytes, order));
  }
  for (int64_t k = k_vec; k < K; ++k)
    q[k] = static_cast<int8_t>(std::max(-127.0f, std::min(127.0f, std::nearbyint(x[k] / s))));
  std::fill(q + K, q + ldq, int8_t{0});
  return s;
}

struct Int8Ctx {
  const Int8Args* a;
  const int8_t* xq;  // [M][ldq], zero padded
  int64_t ldq;
  const float* sx;  // [M]
};

template <int MR, int R>
QS_INLINE_AVX2 void int8_step(const __m256i (&w)[R], const int8_t* x, int64_t ldq, __m256i (&acc)[MR][R]) {
  __m256i xv[MR];
#pragma GCC unroll 4
  for (int m = 0; m < MR; ++m) xv[m] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + m * ldq));
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    const __m256i aw = _mm256_abs_epi8(w[r]);
#pragma GCC unroll 4
    for (int m = 0; m < MR; ++m) acc[m][r] = _mm256_add_epi32(acc[m][r], dot_i8(aw, w[r], xv[m]));
  }
}

template <int MR, int R>
QS_TARGET_AVX2 void int8_tile(const Int8Ctx& c, int64_t m0, int64_t n) {
  const Int8Args& a = *c.a;
  const int64_t K = a.K, k_main = K / 32 * 32;
  const int8_t* w = a.w + n * K;
  const int8_t* x = c.xq + m0 * c.ldq;
  __m256i acc[MR][R];
#pragma GCC unroll 4
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc[m][r] = _mm256_setzero_si256();
  __m256i wv[R];
  for (int64_t k = 0; k < k_main; k += 32) {
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(w + (R + r) * K + k), _MM_HINT_T1);
      wv[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + r * K + k));
    }
    int8_step<MR, R>(wv, x + k, c.ldq, acc);
  }
  if (k_main < K) {  // x is zero padded; W's tail is copied so no read passes the matrix
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) wv[r] = load_tail32(w + r * K + k_main, K - k_main);
    int8_step<MR, R>(wv, x + k_main, c.ldq, acc);
  }
#pragma GCC unroll 4
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
      a.y[(m0 + m) * a.N + n + r] = c.sx[m0 + m] * a.w_scale[n + r] * static_cast<float>(hsum_epi32(acc[m][r]));
}

// ---- GGUF ------------------------------------------------------------------------------------

struct GgufCtx {
  const GgufArgs* a;
  const int8_t* xq;  // [M][K] Q8_0 codes
  const float* dx;   // [M][nb] block scales
  int64_t nb, block_bytes;
};

template <int MR, int R>
QS_TARGET_AVX2 void q8_0_tile(const GgufCtx& c, int64_t m0, int64_t n) {
  const GgufArgs& a = *c.a;
  const int64_t row_bytes = c.nb * c.block_bytes;
  const uint8_t* w = static_cast<const uint8_t*>(a.blocks) + n * row_bytes;
  __m256 acc[MR][R];
#pragma GCC unroll 4
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc[m][r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < c.nb; ++b) {
    __m256i xv[MR];
    float dx[MR];
#pragma GCC unroll 4
    for (int m = 0; m < MR; ++m) {
      xv[m] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c.xq + (m0 + m) * a.K + 32 * b));
      dx[m] = c.dx[(m0 + m) * c.nb + b];
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const uint8_t* blk = w + r * row_bytes + b * c.block_bytes;
      _mm_prefetch(reinterpret_cast<const char*>(blk + R * row_bytes), _MM_HINT_T1);
      uint16_t d;
      std::memcpy(&d, blk, 2);
      const float dw = _cvtsh_ss(d);
      const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
      const __m256i aw = _mm256_abs_epi8(wv);
#pragma GCC unroll 4
      for (int m = 0; m < MR; ++m)
        acc[m][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_i8(aw, wv, xv[m])), _mm256_set1_ps(dw * dx[m]), acc[m][r]);
    }
  }
#pragma GCC unroll 4
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) a.y[(m0 + m) * a.N + n + r] = hsum_ps(acc[m][r]) + (a.bias ? a.bias[n + r] : 0.0f);
}

// Q4_0 takes blocks two at a time: the 16 code bytes of blocks b and b + 1 fill one vector, whose
// low nibbles are k 0..15 of both and high nibbles k 16..31. The nibbles (0..15, unsigned) go
// straight into VPMADDUBSW against x codes stored in that order; the two products' int16 pair
// sums add without overflow (2 * 2 * 15 * 127), and the offset 8 enters as precomputed int16
// corrections -8 * (sum of the x codes of the lane). One VPMADDWD then leaves block b in int32
// lanes 0..3 and b + 1 in 4..7, scaled by [d_b x 4, d_b+1 x 4].
struct Q4Pair {  // x row layout per pair of blocks (128 bytes)
  int8_t lo[32];      // k 0..15 of b, then of b + 1
  int8_t hi[32];      // k 16..31 of b, then of b + 1
  int16_t corr[16];   // -8 * (lo[2j] + lo[2j + 1] + hi[2j] + hi[2j + 1])
  float dx[8];        // d_x of b (x 4), of b + 1 (x 4)
};
static_assert(sizeof(Q4Pair) == 128);

void prepare_q4_pairs(const formats::BlockQ8_0* blocks, int64_t nb, Q4Pair* out) {
  for (int64_t s = 0; s < (nb + 1) / 2; ++s) {
    Q4Pair& p = out[s];
    for (int i = 0; i < 2; ++i) {
      const int64_t b = 2 * s + i;
      const bool present = b < nb;
      for (int j = 0; j < 16; ++j) {
        p.lo[16 * i + j] = present ? blocks[b].qs[j] : int8_t{0};
        p.hi[16 * i + j] = present ? blocks[b].qs[16 + j] : int8_t{0};
      }
      for (int j = 0; j < 4; ++j) p.dx[4 * i + j] = present ? f16_to_f32(blocks[b].d) : 0.0f;
    }
    for (int j = 0; j < 16; ++j)
      p.corr[j] = static_cast<int16_t>(-8 * (p.lo[2 * j] + p.lo[2 * j + 1] + p.hi[2 * j] + p.hi[2 * j + 1]));
  }
}

struct Q4Ctx {
  const GgufArgs* a;
  const Q4Pair* x;  // [M][pairs]
  int64_t nb, pairs;
};

template <int MR, int R>
QS_TARGET_AVX2 void q4_0_tile(const Q4Ctx& c, int64_t m0, int64_t n) {
  const GgufArgs& a = *c.a;
  constexpr int64_t kBlock = sizeof(formats::BlockQ4_0);
  const int64_t row_bytes = c.nb * kBlock;
  const uint8_t* w = static_cast<const uint8_t*>(a.blocks) + n * row_bytes;
  const __m256i low4 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
  const __m256i spread = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
  __m256 acc[MR][R];
#pragma GCC unroll 4
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc[m][r] = _mm256_setzero_ps();
  for (int64_t s = 0; s < c.pairs; ++s) {
    const bool two = 2 * s + 1 < c.nb;  // an odd block count leaves the last pair half empty
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const uint8_t* blk = w + r * row_bytes + 2 * s * kBlock;
      _mm_prefetch(reinterpret_cast<const char*>(blk + R * row_bytes), _MM_HINT_T1);
      const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
      const __m128i q1 = two ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + kBlock + 2)) : _mm_setzero_si128();
      const __m256i q = _mm256_set_m128i(q1, q0);
      const __m256i nib_lo = _mm256_and_si256(q, low4), nib_hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
      uint16_t d0, d1 = 0;
      std::memcpy(&d0, blk, 2);
      if (two) std::memcpy(&d1, blk + kBlock, 2);
      const __m128 d01 = _mm_cvtph_ps(_mm_cvtsi32_si128(d0 | (d1 << 16)));
      const __m256 dw = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(d01), spread);
#pragma GCC unroll 4
      for (int m = 0; m < MR; ++m) {
        const Q4Pair& x = c.x[(m0 + m) * c.pairs + s];
        const __m256i p = _mm256_add_epi16(
            _mm256_add_epi16(_mm256_maddubs_epi16(nib_lo, _mm256_load_si256(reinterpret_cast<const __m256i*>(x.lo))),
                             _mm256_maddubs_epi16(nib_hi, _mm256_load_si256(reinterpret_cast<const __m256i*>(x.hi)))),
            _mm256_load_si256(reinterpret_cast<const __m256i*>(x.corr)));
        const __m256 d = _mm256_mul_ps(dw, _mm256_load_ps(x.dx));
        acc[m][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones)), d, acc[m][r]);
      }
    }
  }
#pragma GCC unroll 4
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) a.y[(m0 + m) * a.N + n + r] = hsum_ps(acc[m][r]) + (a.bias ? a.bias[n + r] : 0.0f);
}

// ---- Fp8 -------------------------------------------------------------------------------------

// The e4m3 value nearest to v (ties to even), saturated to +-448, NaN kept: the value of
// formats::f32_to_fp8_e4m3(v), decoded.
QS_INLINE_AVX2 __m256 round_to_e4m3(__m256 v) {
  const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(0x80000000u)));
  const __m256 a = _mm256_andnot_ps(sign, v);
  // Beyond 1024 everything saturates; clamping first keeps the mantissa rounding below below Inf.
  const __m256i u = _mm256_castps_si256(_mm256_min_ps(a, _mm256_set1_ps(1024.0f)));
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 20), _mm256_set1_epi32(1));
  const __m256i normal = _mm256_and_si256(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7ffff))),
                                          _mm256_set1_epi32(static_cast<int>(0xfff00000u)));
  const __m256 sub = _mm256_mul_ps(
      _mm256_round_ps(_mm256_mul_ps(a, _mm256_set1_ps(512.0f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
      _mm256_set1_ps(1.0f / 512));
  __m256 r = _mm256_blendv_ps(_mm256_castsi256_ps(normal), sub, _mm256_cmp_ps(a, _mm256_set1_ps(1.0f / 64), _CMP_LT_OQ));
  r = _mm256_min_ps(r, _mm256_set1_ps(formats::kFp8E4M3Max));
  r = _mm256_blendv_ps(r, a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));  // NaN stays NaN
  return _mm256_or_ps(r, _mm256_and_ps(v, sign));
}

// One row of x -> f32 values the products use (e4m3 of x / s, or bf16 of x), zero padded to ldx.
QS_TARGET_AVX2 void prepare_x_fp8(const Fp8Args& a, const float* x, float s, float* out, int64_t ldx) {
  const int64_t k_vec = a.K / 8 * 8;
  if (a.act == Fp8Args::Act::Bf16) {
    for (int64_t k = 0; k < a.K; ++k) out[k] = bf16_to_f32(f32_to_bf16(x[k]));
  } else {
    const __m256 sv = _mm256_set1_ps(s);
    for (int64_t k = 0; k < k_vec; k += 8)
      _mm256_storeu_ps(out + k, round_to_e4m3(_mm256_div_ps(_mm256_loadu_ps(x + k), sv)));
    for (int64_t k = k_vec; k < a.K; ++k) out[k] = formats::fp8_e4m3_to_f32(formats::f32_to_fp8_e4m3(x[k] / s));
  }
  std::fill(out + a.K, out + ldx, 0.0f);
}

// 32 e4m3 codes -> 4 x 8 f32 values / 2^8, exact. The 7 magnitude bits shifted left by 7 are
// an f16 with the same mantissa and exponent field (bias 15 instead of 7; e4m3 subnormals become
// f16 subnormals), which F16C widens exactly. No f32 subnormal is ever formed (a multiply by
// 2^120 of one costs a microcode assist). NaN codes (0x7f, 0xff) come out as +-480 / 2^8.
QS_INLINE_AVX2 void decode_e4m3_32_over_256(__m256i codes, __m256 (&out)[4]) {
  const __m256i keep = _mm256_set1_epi16(static_cast<short>(0xbf80));  // sign (bit 15), magnitude (7..13)
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    const __m128i bytes = h ? _mm256_extracti128_si256(codes, 1) : _mm256_castsi256_si128(codes);
    const __m256i f16 = _mm256_and_si256(_mm256_slli_epi16(_mm256_cvtepi8_epi16(bytes), 7), keep);
    out[2 * h] = _mm256_cvtph_ps(_mm256_castsi256_si128(f16));
    out[2 * h + 1] = _mm256_cvtph_ps(_mm256_extracti128_si256(f16, 1));
  }
}

QS_INLINE_AVX2 __m256i nan_code_bytes(__m256i codes) {
  return _mm256_cmpeq_epi8(_mm256_or_si256(codes, _mm256_set1_epi8(-128)), _mm256_set1_epi8(-1));
}

// 32 e4m3 codes -> their exact values, NaN included.
QS_INLINE_AVX2 void decode_e4m3_32(__m256i codes, __m256 (&out)[4]) {
  decode_e4m3_32_over_256(codes, out);
  for (int i = 0; i < 4; ++i) out[i] = _mm256_mul_ps(out[i], _mm256_set1_ps(256.0f));
  const __m256i nan_bytes = nan_code_bytes(codes);
  if (!_mm256_testz_si256(nan_bytes, nan_bytes)) {  // +-480 is no finite e4m3 value
    const __m256 nan = _mm256_set1_ps(std::numeric_limits<float>::quiet_NaN());
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i)
      out[i] = _mm256_blendv_ps(out[i], nan, _mm256_cmp_ps(_mm256_and_ps(out[i], abs_mask), _mm256_set1_ps(480.0f), _CMP_EQ_OQ));
  }
}

struct Fp8Ctx {
  const Fp8Args* a;
  const float* xq;  // [M][ldx], zero padded
  int64_t ldx;
  const float* sx;  // [M]
};

// The GEMV's x is stored times 2^8 when that is exact (kX256; always for e4m3 activations), which
// saves the multiply of the decode: the products are the same. NaN codes are not patched per
// step but noted, and make the row's outputs NaN at the end (as any NaN product would).
template <int MR, int R, bool kX256>
QS_INLINE_AVX2 void fp8_step(const __m256i (&codes)[R], const float* x, int64_t ldx, __m256 (&acc)[MR][R],
                             __m256i (&nan_seen)[R]) {
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    __m256 w[4];
    decode_e4m3_32_over_256(codes[r], w);
    if constexpr (!kX256)
      for (int i = 0; i < 4; ++i) w[i] = _mm256_mul_ps(w[i], _mm256_set1_ps(256.0f));
    nan_seen[r] = _mm256_or_si256(nan_seen[r], nan_code_bytes(codes[r]));
#pragma GCC unroll 4
    for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) acc[m][r] = _mm256_fmadd_ps(_mm256_loadu_ps(x + m * ldx + 8 * i), w[i], acc[m][r]);
  }
}

template <int MR, int R, bool kX256>
QS_TARGET_AVX2 void fp8_tile(const Fp8Ctx& c, int64_t m0, int64_t n) {
  const Fp8Args& a = *c.a;
  const int64_t K = a.K, k_main = K / 32 * 32;
  const uint8_t* w = a.w + n * K;
  const float* x = c.xq + m0 * c.ldx;
  __m256 acc[MR][R];
  __m256i nan_seen[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    nan_seen[r] = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int m = 0; m < MR; ++m) acc[m][r] = _mm256_setzero_ps();
  }
  __m256i codes[R];
  for (int64_t k = 0; k < k_main; k += 32) {
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(w + (R + r) * K + k), _MM_HINT_T1);
      codes[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + r * K + k));
    }
    fp8_step<MR, R, kX256>(codes, x + k, c.ldx, acc, nan_seen);
  }
  if (k_main < K) {  // code 0 is +0 and x is zero padded: the padding adds nothing
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) codes[r] = load_tail32(w + r * K + k_main, K - k_main);
    fp8_step<MR, R, kX256>(codes, x + k_main, c.ldx, acc, nan_seen);
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    const bool nan = !_mm256_testz_si256(nan_seen[r], nan_seen[r]);
#pragma GCC unroll 4
    for (int m = 0; m < MR; ++m)
      a.y[(m0 + m) * a.N + n + r] = nan ? std::numeric_limits<float>::quiet_NaN()
                                        : hsum_ps(acc[m][r]) * c.sx[m0 + m] * a.w_scale[n + r] +
                                              (a.bias ? a.bias[n + r] : 0.0f);
  }
}

// ---- Fp8 GEMM -------------------------------------------------------------------------------
//
// Decoding costs more than the FMAs it feeds, so the GEMM decodes each panel of 16 W rows (one
// K block) once for all rows of x and runs the f32 GEMM of matmul_avx2.cpp on it: x packed
// [m tiles][kc][6], the panel [kc][16], 6 x 16 register tiles of FMAs (exact products: x holds
// e4m3 or bf16 values). Partial sums of earlier K blocks wait in y; the last applies the scales.

constexpr int kFp8MR = 6, kFp8NR = 16;
constexpr int64_t kFp8Kc = 1024;

// W rows [n, n + rows), columns [k0, k0 + kc) (kc a multiple of 32, zero past K) -> out[rows][kc].
QS_TARGET_AVX2 void decode_fp8_rows(const Fp8Args& a, int64_t n, int64_t rows, int64_t k0, int64_t kc, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* w = a.w + (n + r) * a.K;
    for (int64_t k = 0; k < kc; k += 32) {
      const int64_t left = a.K - (k0 + k);
      const __m256i codes = left >= 32 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + k0 + k))
                                       : left > 0 ? load_tail32(w + k0 + k, left) : _mm256_setzero_si256();
      __m256 v[4];
      decode_e4m3_32(codes, v);
      for (int i = 0; i < 4; ++i) _mm256_storeu_ps(out + r * kc + k + 8 * i, v[i]);
    }
  }
}

template <int MR>
QS_TARGET_AVX2 void fp8_gemm_tile(const Fp8Ctx& c, const float* xp, const float* wp, int64_t kc, int64_t m0, int64_t n0,
                                  int64_t cols, bool first, bool last) {
  const Fp8Args& a = *c.a;
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int m = 0; m < MR; ++m) acc[m][0] = acc[m][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 w0 = _mm256_load_ps(wp), w1 = _mm256_load_ps(wp + 8);
#pragma GCC unroll 6
    for (int m = 0; m < MR; ++m) {
      const __m256 b = _mm256_broadcast_ss(xp + m);
      acc[m][0] = _mm256_fmadd_ps(b, w0, acc[m][0]);
      acc[m][1] = _mm256_fmadd_ps(b, w1, acc[m][1]);
    }
    xp += kFp8MR;
    wp += kFp8NR;
  }
  alignas(32) float tile[kFp8NR];
#pragma GCC unroll 6
  for (int m = 0; m < MR; ++m) {
    _mm256_store_ps(tile, acc[m][0]);
    _mm256_store_ps(tile + 8, acc[m][1]);
    float* y = a.y + (m0 + m) * a.N + n0;
    for (int64_t j = 0; j < cols; ++j) {
      float v = first ? tile[j] : y[j] + tile[j];
      if (last) v = v * c.sx[m0 + m] * a.w_scale[n0 + j] + (a.bias ? a.bias[n0 + j] : 0.0f);
      y[j] = v;
    }
  }
}

void fp8_gemm(const Fp8Ctx& c, ThreadPool& pool) {
  const Fp8Args& a = *c.a;
  const int64_t m_tiles = (a.M + kFp8MR - 1) / kFp8MR;
  const int64_t n_panels = (a.N + kFp8NR - 1) / kFp8NR;
  for (int64_t k0 = 0; k0 < c.ldx; k0 += kFp8Kc) {
    const int64_t kc = std::min(kFp8Kc, c.ldx - k0);
    const bool first = k0 == 0, last = k0 + kc == c.ldx;
    float* xp = detail::scratch<float>(0, static_cast<size_t>(m_tiles * kc * kFp8MR));
    detail::parallel_chunks(pool, m_tiles, detail::chunk_for(m_tiles, pool.size(), 4, 1), [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t)
        for (int i = 0; i < kFp8MR; ++i) {
          const int64_t m = t * kFp8MR + i;
          const float* x = c.xq + m * c.ldx + k0;
          float* dst = xp + t * kc * kFp8MR + i;
          for (int64_t k = 0; k < kc; ++k) dst[k * kFp8MR] = m < a.M ? x[k] : 0.0f;
        }
    });
    detail::parallel_chunks(pool, n_panels, detail::chunk_for(n_panels, pool.size(), 8, 1), [&](int64_t p0, int64_t p1) {
      float* rows = detail::scratch<float>(3, static_cast<size_t>(kFp8NR * kc));
      float* wp = detail::scratch<float>(1, static_cast<size_t>(kc * kFp8NR));
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t n0 = p * kFp8NR;
        const int64_t cols = std::min<int64_t>(kFp8NR, a.N - n0);
        decode_fp8_rows(a, n0, cols, k0, kc, rows);
        for (int64_t k = 0; k < kc; ++k)
          for (int64_t j = 0; j < kFp8NR; ++j) wp[k * kFp8NR + j] = j < cols ? rows[j * kc + k] : 0.0f;
        for (int64_t t = 0; t < m_tiles; ++t) {
          const int64_t m0 = t * kFp8MR;
          const int64_t mr = std::min<int64_t>(kFp8MR, a.M - m0);
          const float* xt = xp + t * kc * kFp8MR;
          switch (mr) {
            case 6: fp8_gemm_tile<6>(c, xt, wp, kc, m0, n0, cols, first, last); break;
            case 5: fp8_gemm_tile<5>(c, xt, wp, kc, m0, n0, cols, first, last); break;
            case 4: fp8_gemm_tile<4>(c, xt, wp, kc, m0, n0, cols, first, last); break;
            case 3: fp8_gemm_tile<3>(c, xt, wp, kc, m0, n0, cols, first, last); break;
            case 2: fp8_gemm_tile<2>(c, xt, wp, kc, m0, n0, cols, first, last); break;
            default: fp8_gemm_tile<1>(c, xt, wp, kc, m0, n0, cols, first, last);
          }
        }
      }
    });
  }
}

}  // namespace

bool int8_avx2_supported(const Int8Args& a) { return a.K <= kInt8Avx2MaxK; }

void int8_avx2(const Int8Args& a, ThreadPool& pool, bool gemm) {
  const std::vector<int32_t> outliers = llm_int8_outlier_columns(a);
  const int64_t ldq = (a.K + 31) / 32 * 32;
  int8_t* xq = detail::scratch<int8_t>(2, static_cast<size_t>(a.M * ldq));
  std::vector<float> sx(static_cast<size_t>(a.M));
  detail::parallel_chunks(pool, a.M, 16, [&](int64_t m0, int64_t m1) {
    std::vector<float> row;
    for (int64_t m = m0; m < m1; ++m) {
      const float* x = a.x + m * a.K;
      if (!outliers.empty()) {  // LLM.int8(): outlier columns leave the int8 part
        row.assign(x, x + a.K);
        for (int32_t k : outliers) row[k] = 0.0f;
        x = row.data();
      }
      sx[m] = quantize_x_int8(x, a.K, a.static_x_scale, xq + m * ldq, ldq);
    }
  });
  const Int8Ctx c{&a, xq, ldq, sx.data()};
  run(
      gemm, a.M, a.N, ldq, pool,
      [&]<int MR, int R>(int64_t m, int64_t n) { int8_tile<MR, R>(c, m, n); },
      [&](int64_t n0, int64_t n1) { llm_int8_finish(a, outliers, 0, a.M, n0, n1); });
}

void gguf_avx2(const GgufArgs& a, ThreadPool& pool, bool gemm) {
  const int64_t nb = a.K / 32, pairs = (nb + 1) / 2;
  const auto none = [](int64_t, int64_t) {};
  if (a.q4_0) {
    auto* x = detail::scratch<Q4Pair>(2, static_cast<size_t>(a.M * pairs));
    detail::parallel_chunks(pool, a.M, 16, [&](int64_t m0, int64_t m1) {
      std::vector<formats::BlockQ8_0> blocks(static_cast<size_t>(nb));
      for (int64_t m = m0; m < m1; ++m) {
        formats::quantize_row_q8_0({a.x + m * a.K, static_cast<size_t>(a.K)}, blocks);
        prepare_q4_pairs(blocks.data(), nb, x + m * pairs);
      }
    });
    const Q4Ctx c{&a, x, nb, pairs};
    run(gemm, a.M, a.N, pairs * int64_t{sizeof(Q4Pair)}, pool,
        [&]<int MR, int R>(int64_t m, int64_t n) { q4_0_tile<MR, R>(c, m, n); }, none);
    return;
  }
  const int64_t codes_bytes = (a.M * a.K + 63) / 64 * 64;
  char* buf = detail::scratch<char>(2, static_cast<size_t>(codes_bytes + a.M * nb * 4));
  int8_t* xq = reinterpret_cast<int8_t*>(buf);
  float* dx = reinterpret_cast<float*>(buf + codes_bytes);
  detail::parallel_chunks(pool, a.M, 16, [&](int64_t m0, int64_t m1) {
    std::vector<formats::BlockQ8_0> blocks(static_cast<size_t>(nb));
    for (int64_t m = m0; m < m1; ++m) {
      formats::quantize_row_q8_0({a.x + m * a.K, static_cast<size_t>(a.K)}, blocks);
      for (int64_t b = 0; b < nb; ++b) {
        dx[m * nb + b] = f16_to_f32(blocks[b].d);
        std::memcpy(xq + m * a.K + 32 * b, blocks[b].qs, 32);
      }
    }
  });
  const GgufCtx c{&a, xq, dx, nb, int64_t{sizeof(formats::BlockQ8_0)}};
  run(gemm, a.M, a.N, a.K, pool, [&]<int MR, int R>(int64_t m, int64_t n) { q8_0_tile<MR, R>(c, m, n); }, none);
}

void fp8_avx2(const Fp8Args& a, ThreadPool& pool, bool gemm) {
  const int64_t ldx = (a.K + 31) / 32 * 32;
  float* xq = detail::scratch<float>(2, static_cast<size_t>(a.M * ldx));
  std::vector<float> sx(static_cast<size_t>(a.M));
  std::vector<char> x_too_large(static_cast<size_t>(a.M), 0);  // bf16 x whose 2^8 multiple could overflow
  detail::parallel_chunks(pool, a.M, 16, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      float* row = xq + m * ldx;
      sx[m] = fp8_row_scale(a, a.x + m * a.K);
      prepare_x_fp8(a, a.x + m * a.K, sx[m], row, ldx);
      if (a.act == Fp8Args::Act::Bf16)
        for (int64_t k = 0; k < a.K; ++k) x_too_large[m] |= static_cast<char>(!(std::fabs(row[k]) < 0x1p100f));
    }
  });
  const Fp8Ctx c{&a, xq, ldx, sx.data()};
  if (gemm) return fp8_gemm(c, pool);
  if (std::find(x_too_large.begin(), x_too_large.end(), 1) != x_too_large.end()) {
    run(
        false, a.M, a.N, ldx * 4, pool, [&]<int MR, int R>(int64_t m, int64_t n) { fp8_tile<MR, R, false>(c, m, n); },
        [](int64_t, int64_t) {});
    return;
  }
  for (int64_t i = 0; i < a.M * ldx; ++i) xq[i] *= 256.0f;  // exact: no overflow, no rounding
  run(
      false, a.M, a.N, ldx * 4, pool, [&]<int MR, int R>(int64_t m, int64_t n) { fp8_tile<MR, R, true>(c, m, n); },
      [](int64_t, int64_t) {});
}

}  // namespace qs::kernels::qdetail

#endif  // QS_HAVE_X86
