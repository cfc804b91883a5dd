// Blocked causal attention for AVX-512 (flash-attention style, f32 throughout).
// A work item is one KV head, a block of queries and a range of keys. Its rows are the
// (query, head) pairs of the block for the heads sharing that KV head (GQA), so every K/V
// block loaded is used by all of them. Per block of 64 keys:
//   K block transposed to [d][64] -> scores = q . k by register tiles of 4 rows x 64 keys,
//   scaled, causally masked -> online softmax (running max m and sum l per row; the output
//   accumulator is rescaled by exp(m_old - m_new)) -> O += P V by tiles of rows x d.
// The result equals softmax-then-weighted-sum up to f32 rounding (no approximation besides
// the ~1 ulp exp). Decode (few queries, long context) splits the keys of each KV head into
// chunks so all threads stream the cache; partial (m, l, O) are merged at the end.
#include "kernels/simd_avx512.h"  // first: see the note there
//
#include <array>
#include <cmath>
#include <utility>
#include <vector>

#include "kernels/matmul_internal.h"
#include "kernels/ops_internal.h"

#if QS_HAVE_X86

namespace qs::kernels::detail {

namespace {

using namespace avx512;

constexpr int kBK = 64;          // keys per block
constexpr int kRowsTarget = 48;  // rows (query x head) per work item
constexpr int kMaxDV = 8;        // output columns per PV pass: 8 vectors = 128 values

// K rows [nk][d] (nk <= 64) -> kt[d][64], zero beyond nk. Prefetches the same lines of the
// next block (`next`, may be null) into L2: in decode the cache streams from DRAM and the
// transposing loads, 16 rows apart, would otherwise wait on each miss.
QS_TARGET_AVX512 void transpose_k(const float* k, int64_t nk, int d, float* kt, const float* next) {
  for (int jb = 0; jb < kBK; jb += 16) {
    for (int db = 0; db < d; db += 16) {
      __m512 r[16];
      const __mmask16 m = lanes16(d - db);
      for (int i = 0; i < 16; ++i) {
        const int64_t off = (jb + i) * static_cast<int64_t>(d) + db;
        if (next) _mm_prefetch(reinterpret_cast<const char*>(next + off), _MM_HINT_T1);
        r[i] = jb + i < nk ? _mm512_maskz_loadu_ps(m, k + off) : _mm512_setzero_ps();
      }
      transpose16x16(r);
      const int rows = std::min(16, d - db);
      for (int i = 0; i < rows; ++i) _mm512_store_ps(kt + (db + i) * kBK + jb, r[i]);
    }
  }
}

// s[i][0..16 KV) = q_i . k_j for RR rows and the first 16 KV keys of the block (the rest of a
// partial last block is masked later and need not be computed).
template <int RR, int KV>
QS_TARGET_AVX512 void scores_tile(const float* const* q, const float* kt, int d, float* s) {
  __m512 acc[RR][KV];
#pragma GCC unroll 6
  for (int i = 0; i < RR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < KV; ++v) acc[i][v] = _mm512_setzero_ps();
  for (int dd = 0; dd < d; ++dd) {
    const float* kr = kt + dd * kBK;
    __m512 kv[KV];
#pragma GCC unroll 4
    for (int v = 0; v < KV; ++v) kv[v] = _mm512_load_ps(kr + 16 * v);
#pragma GCC unroll 6
    for (int i = 0; i < RR; ++i) {
      const __m512 b = _mm512_set1_ps(q[i][dd]);
#pragma GCC unroll 4
      for (int v = 0; v < KV; ++v) acc[i][v] = _mm512_fmadd_ps(b, kv[v], acc[i][v]);
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < RR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < KV; ++v) _mm512_store_ps(s + i * kBK + 16 * v, acc[i][v]);
}

constexpr int kScoreRows = 6;  // 6 rows x 4 key vectors = 24 accumulators
using ScoresFn = void (*)(const float* const*, const float*, int, float*);
template <int KV, std::size_t... I>
constexpr std::array<ScoresFn, kScoreRows> scores_row(std::index_sequence<I...>) {
  return {&scores_tile<static_cast<int>(I) + 1, KV>...};
}
constexpr std::array<std::array<ScoresFn, kScoreRows>, 4> kScores = {
    scores_row<1>(std::make_index_sequence<kScoreRows>()), scores_row<2>(std::make_index_sequence<kScoreRows>()),
    scores_row<3>(std::make_index_sequence<kScoreRows>()), scores_row<4>(std::make_index_sequence<kScoreRows>())};

// One row's online-softmax step over a block: s[0..16 nvec) holds raw scores, keys j < visible
// count (the rest are masked). Leaves exp(score - m_new) in s, updates m and l, returns the
// factor the row's output accumulator must be scaled by.
QS_TARGET_AVX512 float softmax_step(float* s, int nvec, int64_t visible, float scale, float& m, float& l) {
  const __m512 sc = _mm512_set1_ps(scale), ninf = _mm512_set1_ps(-INFINITY);
  __m512 x[4];
  __m512 mx = ninf;
  for (int v = 0; v < nvec; ++v) {
    x[v] = _mm512_mask_mul_ps(ninf, lanes16(visible - 16 * v), _mm512_load_ps(s + 16 * v), sc);
    mx = _mm512_max_ps(mx, x[v]);
  }
  const float m_new = std::max(m, hmax(mx));
  if (m_new == -INFINITY) {
    // No visible key yet (a key chunk that starts after this query): nothing to add, and
    // exp(-inf - -inf) would be NaN.
    for (int v = 0; v < nvec; ++v) _mm512_store_ps(s + 16 * v, _mm512_setzero_ps());
    return 1.0f;
  }
  // m = -inf on the first visible block: alpha = 0.
  const float alpha = _mm512_cvtss_f32(exp(_mm512_set1_ps(m - m_new)));
  const __m512 mn = _mm512_set1_ps(m_new);
  __m512 sum = _mm512_setzero_ps();
  for (int v = 0; v < nvec; ++v) {
    const __m512 p = exp(_mm512_sub_ps(x[v], mn));  // masked: exp(-inf) = 0
    _mm512_store_ps(s + 16 * v, p);
    sum = _mm512_add_ps(sum, p);
  }
  l = l * alpha + hsum(sum);
  m = m_new;
  return alpha;
}

// o[i][c] = o[i][c] * alpha[i] + sum_j p[i][j] v[j][c] for RT rows, DV column vectors
// starting at column c0 (cols valid columns in the last vector). Prefetches the rows of the
// next V block (`next`, may be null) like transpose_k.
template <int RT, int DV>
QS_TARGET_AVX512 void pv_tile(const float* p, const float* v, int64_t ldv, int64_t nk, int cols, float* o, int64_t ldo,
                              const float* alpha, const float* next) {
  __m512 acc[RT][DV];
  const __mmask16 last = lanes16(cols - 16 * (DV - 1));
#pragma GCC unroll 8
  for (int i = 0; i < RT; ++i) {
    const __m512 a = _mm512_set1_ps(alpha[i]);
#pragma GCC unroll 8
    for (int c = 0; c < DV; ++c) acc[i][c] = _mm512_mul_ps(_mm512_load_ps(o + i * ldo + 16 * c), a);
  }
  for (int64_t j = 0; j < nk; ++j) {
    __m512 vv[DV];
    const float* vr = v + j * ldv;
#pragma GCC unroll 8
    for (int c = 0; c < DV; ++c) {
      if (next) _mm_prefetch(reinterpret_cast<const char*>(next + j * ldv + 16 * c), _MM_HINT_T1);
      vv[c] = c == DV - 1 ? _mm512_maskz_loadu_ps(last, vr + 16 * c) : _mm512_loadu_ps(vr + 16 * c);
    }
#pragma GCC unroll 8
    for (int i = 0; i < RT; ++i) {
      const __m512 b = _mm512_set1_ps(p[i * kBK + j]);
#pragma GCC unroll 8
      for (int c = 0; c < DV; ++c) acc[i][c] = _mm512_fmadd_ps(b, vv[c], acc[i][c]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < RT; ++i)
#pragma GCC unroll 8
    for (int c = 0; c < DV; ++c) _mm512_store_ps(o + i * ldo + 16 * c, acc[i][c]);
}

using PvFn = void (*)(const float*, const float*, int64_t, int64_t, int, float*, int64_t, const float*, const float*);

// Rows per PV pass for DV column vectors: at most 24 accumulators.
constexpr int pv_rows(int dv) { return std::min(8, 24 / dv); }

template <int DV, std::size_t... I>
constexpr std::array<PvFn, 8> pv_row_table(std::index_sequence<I...>) {
  return {&pv_tile<static_cast<int>(I) + 1, DV>...};
}
template <std::size_t... D>
constexpr std::array<std::array<PvFn, 8>, kMaxDV> pv_table(std::index_sequence<D...>) {
  return {pv_row_table<static_cast<int>(D) + 1>(std::make_index_sequence<8>())...};
}
constexpr auto kPv = pv_table(std::make_index_sequence<kMaxDV>());  // [DV-1][RT-1]

struct Geometry {
  int group = 1;   // query heads per KV head
  int d = 0;       // head_dim
  int d_pad = 0;   // head_dim rounded up to 16
  int64_t bq = 1;  // queries per work item
  int64_t n_qblocks = 0;
  int64_t n_chunks = 1;  // key chunks per (KV head, query block)
  int rows_max = 0;
};

struct RowState {  // per-thread scratch of one work item
  float* kt;       // [d_pad][64]
  float* s;        // [rows][64]
  float* o;        // [rows][d_pad]
  float* m;        // [rows]
  float* l;
  float* alpha;
};

// Keys [key0, key1) of KV head g for queries [t0, t1): leaves unnormalized O, m, l in st.
QS_TARGET_AVX512 void run_item(const AttentionArgs& a, const Geometry& geo, int g, int64_t t0, int64_t t1, int64_t key0,
                               int64_t key1, RowState& st) {
  const int rows = static_cast<int>((t1 - t0) * geo.group);
  const int d = geo.d;
  std::array<const float*, 256> qrow_storage;
  std::vector<const float*> qrow_heap;
  const float** qrow = qrow_storage.data();
  if (rows > 256) {
    qrow_heap.resize(rows);
    qrow = qrow_heap.data();
  }
  for (int r = 0; r < rows; ++r) {
    const int64_t t = t0 + r / geo.group;
    const int h = g * geo.group + r % geo.group;
    qrow[r] = a.q + (t * a.n_heads + h) * static_cast<int64_t>(d);
    st.m[r] = -INFINITY;
    st.l[r] = 0;
    for (int c = 0; c < geo.d_pad; c += 16) _mm512_store_ps(st.o + r * geo.d_pad + c, _mm512_setzero_ps());
  }
  const float* kh = a.k + g * a.kv_stride;
  const float* vh = a.v + g * a.kv_stride;
  for (int64_t j0 = key0; j0 < key1; j0 += kBK) {
    const int64_t nk = std::min<int64_t>(kBK, key1 - j0);
    const bool more = j0 + kBK < key1;
    transpose_k(kh + j0 * d, nk, d, st.kt, more ? kh + (j0 + kBK) * d : nullptr);
    const int kv = static_cast<int>((nk + 15) / 16);
    for (int r0 = 0; r0 < rows; r0 += kScoreRows)
      kScores[kv - 1][std::min(kScoreRows, rows - r0) - 1](qrow + r0, st.kt, d, st.s + r0 * kBK);
    for (int r = 0; r < rows; ++r) {
      const int64_t qpos = a.pos0 + t0 + r / geo.group;
      st.alpha[r] = softmax_step(st.s + r * kBK, kv, std::min<int64_t>(nk, qpos - j0 + 1), a.scale, st.m[r], st.l[r]);
    }
    for (int c0 = 0; c0 < d; c0 += 16 * kMaxDV) {
      const int cols = std::min(16 * kMaxDV, d - c0);
      const int dv = (cols + 15) / 16;
      const int rt = pv_rows(dv);
      for (int r0 = 0; r0 < rows; r0 += rt) {
        const int n = std::min(rt, rows - r0);
        kPv[dv - 1][n - 1](st.s + r0 * kBK, vh + j0 * d + c0, d, nk, cols, st.o + r0 * geo.d_pad + c0, geo.d_pad,
                           st.alpha + r0, more && r0 == 0 ? vh + (j0 + kBK) * d + c0 : nullptr);
      }
    }
  }
}

QS_TARGET_AVX512 void write_rows(const AttentionArgs& a, const Geometry& geo, int g, int64_t t0, int64_t t1,
                                 const float* o, const float* l) {
  const int rows = static_cast<int>((t1 - t0) * geo.group);
  for (int r = 0; r < rows; ++r) {
    const int64_t t = t0 + r / geo.group;
    const int h = g * geo.group + r % geo.group;
    float* dst = a.out + (t * a.n_heads + h) * static_cast<int64_t>(geo.d);
    const __m512 inv = _mm512_set1_ps(1.0f / l[r]);
    for (int c = 0; c < geo.d; c += 16)
      _mm512_mask_storeu_ps(dst + c, lanes16(geo.d - c), _mm512_mul_ps(_mm512_load_ps(o + r * geo.d_pad + c), inv));
  }
}

}  // namespace

void attention_avx512(const AttentionArgs& a, ThreadPool& pool) {
  Geometry geo;
  geo.group = a.n_heads / a.n_kv_heads;
  geo.d = a.head_dim;
  geo.d_pad = (a.head_dim + 15) / 16 * 16;
  // Queries per item: about kRowsTarget rows, a multiple of the 6-row tiles where possible.
  geo.bq = std::max<int64_t>(1, kRowsTarget / geo.group);
  while (geo.bq > 1 && (geo.bq * geo.group) % kScoreRows != 0) --geo.bq;
  if ((geo.bq * geo.group) % kScoreRows != 0) geo.bq = std::max<int64_t>(1, kRowsTarget / geo.group);
  geo.bq = std::min(geo.bq, a.n_new);
  geo.n_qblocks = (a.n_new + geo.bq - 1) / geo.bq;
  geo.rows_max = static_cast<int>(geo.bq * geo.group);
  const int threads = pool.size();
  const int64_t base_items = a.n_kv_heads * geo.n_qblocks;
  const int64_t max_keys = a.pos0 + a.n_new;
  // Too few items to balance the threads (decode: one per KV head): split the keys, in chunks
  // of >= 256, so there are about 8 items per thread.
  if (base_items < 8 * threads && max_keys > 256)
    geo.n_chunks = std::min<int64_t>((8 * threads + base_items - 1) / base_items, (max_keys + 255) / 256);
  const int64_t n_items = base_items * geo.n_chunks;

  const size_t row_floats = static_cast<size_t>(geo.rows_max) * (kBK + geo.d_pad + 3);
  const size_t thread_floats = static_cast<size_t>(geo.d_pad) * kBK + row_floats + 64;
  // Partial results when keys are split: per item O [rows][d_pad], m [rows], l [rows].
  const size_t part_floats = static_cast<size_t>(geo.rows_max) * (geo.d_pad + 2);
  float* parts = geo.n_chunks > 1 ? scratch<float>(2, n_items * part_floats) : nullptr;

  std::atomic<int64_t> next{0};
  pool.run_dynamic([&](int, int) {
    float* buf = scratch<float>(3, thread_floats);
    RowState st;
    st.kt = buf;
    st.s = st.kt + static_cast<size_t>(geo.d_pad) * kBK;
    st.o = st.s + static_cast<size_t>(geo.rows_max) * kBK;
    st.m = st.o + static_cast<size_t>(geo.rows_max) * geo.d_pad;
    st.l = st.m + geo.rows_max;
    st.alpha = st.l + geo.rows_max;
    for (;;) {
      const int64_t item = next.fetch_add(1, std::memory_order_relaxed);
      if (item >= n_items) break;
      // Largest items first: later query blocks see more keys.
      const int64_t chunk = item % geo.n_chunks;
      const int64_t rest = item / geo.n_chunks;
      const int g = static_cast<int>(rest % a.n_kv_heads);
      const int64_t qb = geo.n_qblocks - 1 - rest / a.n_kv_heads;
      const int64_t t0 = qb * geo.bq, t1 = std::min(a.n_new, t0 + geo.bq);
      const int64_t keys = a.pos0 + t1;  // causal: the block's last query sees this many
      const int64_t per_chunk = (keys + geo.n_chunks - 1) / geo.n_chunks;
      const int64_t aligned = (per_chunk + kBK - 1) / kBK * kBK;
      const int64_t key0 = std::min(keys, chunk * aligned), key1 = std::min(keys, key0 + aligned);
      run_item(a, geo, g, t0, t1, key0, key1, st);
      if (geo.n_chunks == 1) {
        write_rows(a, geo, g, t0, t1, st.o, st.l);
      } else {
        float* part = parts + item * part_floats;
        const int rows = static_cast<int>((t1 - t0) * geo.group);
        std::copy(st.o, st.o + static_cast<size_t>(rows) * geo.d_pad, part);
        std::copy(st.m, st.m + rows, part + static_cast<size_t>(geo.rows_max) * geo.d_pad);
        std::copy(st.l, st.l + rows, part + static_cast<size_t>(geo.rows_max) * (geo.d_pad + 1));
      }
    }
  });
  if (geo.n_chunks == 1) return;

  // Merge the chunks of each (KV head, query block): rescale to the common max.
  AlignedVector<float> o(static_cast<size_t>(geo.rows_max) * geo.d_pad), l(geo.rows_max);
  for (int64_t base = 0; base < base_items; ++base) {
    const int g = static_cast<int>(base % a.n_kv_heads);
    const int64_t qb = geo.n_qblocks - 1 - base / a.n_kv_heads;
    const int64_t t0 = qb * geo.bq, t1 = std::min(a.n_new, t0 + geo.bq);
    const int rows = static_cast<int>((t1 - t0) * geo.group);
    for (int r = 0; r < rows; ++r) {
      float m_all = -INFINITY;
      for (int64_t c = 0; c < geo.n_chunks; ++c) {
        const float* part = parts + (base * geo.n_chunks + c) * part_floats;
        m_all = std::max(m_all, part[static_cast<size_t>(geo.rows_max) * geo.d_pad + r]);
      }
      float l_all = 0;
      float* orow = o.data() + static_cast<size_t>(r) * geo.d_pad;
      std::fill(orow, orow + geo.d_pad, 0.0f);
      for (int64_t c = 0; c < geo.n_chunks; ++c) {
        const float* part = parts + (base * geo.n_chunks + c) * part_floats;
        const float lc = part[static_cast<size_t>(geo.rows_max) * (geo.d_pad + 1) + r];
        if (lc == 0) continue;  // empty chunk, or none of its keys visible to this row
        const float w = std::exp(part[static_cast<size_t>(geo.rows_max) * geo.d_pad + r] - m_all);
        l_all += lc * w;
        for (int c2 = 0; c2 < geo.d; ++c2) orow[c2] += part[static_cast<size_t>(r) * geo.d_pad + c2] * w;
      }
      l[r] = l_all;
    }
    write_rows(a, geo, g, t0, t1, o.data(), l.data());
  }
}

}  // namespace qs::kernels::detail

#endif  // QS_HAVE_X86
