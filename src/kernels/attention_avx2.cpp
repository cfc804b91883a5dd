// Blocked causal attention for AVX2 + FMA (flash-attention style, f32 throughout): the same
// algorithm and work split as attention_avx512.cpp, with tiles sized for 16 ymm registers.
// A work item is one KV head, a block of queries and a range of keys; its rows are the
// (query, head) pairs of the block for the heads sharing that KV head (GQA), so every K/V
// block loaded is used by all of them. Per block of 64 keys:
//   K block transposed to [d][64] -> scores = q . k by register tiles of 6 rows x 16 keys,
//   scaled, causally masked -> online softmax (running max m and sum l per row; the output
//   accumulator is rescaled by exp(m_old - m_new)) -> O += P V by tiles of 6 rows x 16 columns.
// Decode (few queries, long context) splits the keys of each KV head into chunks so all
// threads stream the cache; partial (m, l, O) are merged at the end.
#include "kernels/simd_avx2.h"  // first: see the note there
//
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <utility>
#include <vector>

#include "kernels/matmul_internal.h"
#include "kernels/ops_internal.h"

#if QS_HAVE_X86

namespace qs::kernels::detail {

namespace {

using namespace avx2;

constexpr int kBK = 64;          // keys per block
constexpr int kRowsTarget = 48;  // rows (query x head) per work item
constexpr int kTileRows = 6;     // rows per score / PV register tile: 6 x 2 accumulators

// K rows [nk][d] (nk <= 64) -> kt[d][64], zero beyond nk. Prefetches the same lines of the
// next block (`next`, may be null) into L2: in decode the cache streams from DRAM and the
// transposing loads, 8 rows apart, would otherwise wait on each miss.
QS_TARGET_AVX2 void transpose_k(const float* k, int64_t nk, int d, float* kt, const float* next) {
  const int d8 = d / 8 * 8;
  for (int jb = 0; jb < kBK; jb += 8) {
    for (int db = 0; db < d8; db += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i) {
        const int64_t off = (jb + i) * static_cast<int64_t>(d) + db;
        if (next && db % 16 == 0) _mm_prefetch(reinterpret_cast<const char*>(next + off), _MM_HINT_T1);
        r[i] = jb + i < nk ? _mm256_loadu_ps(k + off) : _mm256_setzero_ps();
      }
      transpose8x8(r);
      for (int i = 0; i < 8; ++i) _mm256_store_ps(kt + (db + i) * kBK + jb, r[i]);
    }
  }
  // Columns past the last multiple of 8 (odd head sizes only).
  for (int dd = d8; dd < d; ++dd)
    for (int j = 0; j < kBK; ++j) kt[dd * kBK + j] = j < nk ? k[j * static_cast<int64_t>(d) + dd] : 0.0f;
}

// s[i][0..8 KV) = q_i . k_j for RR rows and KV vectors of 8 keys (kt and s already offset to
// the first key of the tile).
template <int RR, int KV>
QS_TARGET_AVX2 void scores_tile(const float* const* q, const float* kt, int d, float* s) {
  __m256 acc[RR][KV];
#pragma GCC unroll 6
  for (int i = 0; i < RR; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < KV; ++v) acc[i][v] = _mm256_setzero_ps();
  for (int dd = 0; dd < d; ++dd) {
    const float* kr = kt + dd * kBK;
    __m256 kv[KV];
#pragma GCC unroll 2
    for (int v = 0; v < KV; ++v) kv[v] = _mm256_load_ps(kr + 8 * v);
#pragma GCC unroll 6
    for (int i = 0; i < RR; ++i) {
      const __m256 b = _mm256_broadcast_ss(q[i] + dd);
#pragma GCC unroll 2
      for (int v = 0; v < KV; ++v) acc[i][v] = _mm256_fmadd_ps(b, kv[v], acc[i][v]);
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < RR; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < KV; ++v) _mm256_store_ps(s + i * kBK + 8 * v, acc[i][v]);
}

using ScoresFn = void (*)(const float* const*, const float*, int, float*);
template <int KV, std::size_t... I>
constexpr std::array<ScoresFn, kTileRows> scores_row(std::index_sequence<I...>) {
  return {&scores_tile<static_cast<int>(I) + 1, KV>...};
}
constexpr std::array<std::array<ScoresFn, kTileRows>, 2> kScores = {  // [KV-1][RR-1]
    scores_row<1>(std::make_index_sequence<kTileRows>()), scores_row<2>(std::make_index_sequence<kTileRows>())};

// One row's online-softmax step over a block: s[0..8 nvec) holds raw scores, keys j < visible
// count (the rest are masked). Leaves exp(score - m_new) in s, updates m and l, returns the
// factor the row's output accumulator must be scaled by.
QS_TARGET_AVX2 float softmax_step(float* s, int nvec, int64_t visible, float scale, float& m, float& l) {
  const __m256 sc = _mm256_set1_ps(scale), ninf = _mm256_set1_ps(-INFINITY);
  __m256 mx = ninf;
  for (int v = 0; v < nvec; ++v) {
    const __m256 x = _mm256_blendv_ps(ninf, _mm256_mul_ps(_mm256_load_ps(s + 8 * v), sc),
                                      _mm256_castsi256_ps(lanes8(visible - 8 * v)));
    _mm256_store_ps(s + 8 * v, x);
    mx = _mm256_max_ps(mx, x);
  }
  const float m_new = std::max(m, hmax(mx));
  if (m_new == -INFINITY) {
    // No visible key yet (a key chunk that starts after this query): nothing to add, and
    // exp(-inf - -inf) would be NaN.
    for (int v = 0; v < nvec; ++v) _mm256_store_ps(s + 8 * v, _mm256_setzero_ps());
    return 1.0f;
  }
  // m = -inf on the first visible block: alpha = 0.
  const float alpha = _mm256_cvtss_f32(exp(_mm256_set1_ps(m - m_new)));
  const __m256 mn = _mm256_set1_ps(m_new);
  __m256 sum = _mm256_setzero_ps();
  for (int v = 0; v < nvec; ++v) {
    const __m256 p = exp(_mm256_sub_ps(_mm256_load_ps(s + 8 * v), mn));  // masked: exp(-inf) = 0
    _mm256_store_ps(s + 8 * v, p);
    sum = _mm256_add_ps(sum, p);
  }
  l = l * alpha + hsum(sum);
  m = m_new;
  return alpha;
}

// o[i][c] = o[i][c] * alpha[i] + sum_j p[i][j] v[j][c] for RT rows and DV vectors of 8
// columns (v rows readable in full: d is a multiple of 8 or V was padded). Prefetches the
// rows of the next V block (`next`, may be null) like transpose_k.
template <int RT, int DV>
QS_TARGET_AVX2 void pv_tile(const float* p, const float* v, int64_t ldv, int64_t nk, float* o, int64_t ldo,
                            const float* alpha, const float* next) {
  __m256 acc[RT][DV];
#pragma GCC unroll 6
  for (int i = 0; i < RT; ++i) {
    const __m256 a = _mm256_set1_ps(alpha[i]);
#pragma GCC unroll 2
    for (int c = 0; c < DV; ++c) acc[i][c] = _mm256_mul_ps(_mm256_load_ps(o + i * ldo + 8 * c), a);
  }
  for (int64_t j = 0; j < nk; ++j) {
    const float* vr = v + j * ldv;
    if (next) _mm_prefetch(reinterpret_cast<const char*>(next + j * ldv), _MM_HINT_T1);
    __m256 vv[DV];
#pragma GCC unroll 2
    for (int c = 0; c < DV; ++c) vv[c] = _mm256_loadu_ps(vr + 8 * c);
#pragma GCC unroll 6
    for (int i = 0; i < RT; ++i) {
      const __m256 b = _mm256_broadcast_ss(p + i * kBK + j);
#pragma GCC unroll 2
      for (int c = 0; c < DV; ++c) acc[i][c] = _mm256_fmadd_ps(b, vv[c], acc[i][c]);
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < RT; ++i)
#pragma GCC unroll 2
    for (int c = 0; c < DV; ++c) _mm256_store_ps(o + i * ldo + 8 * c, acc[i][c]);
}

using PvFn = void (*)(const float*, const float*, int64_t, int64_t, float*, int64_t, const float*, const float*);
template <int DV, std::size_t... I>
constexpr std::array<PvFn, kTileRows> pv_row(std::index_sequence<I...>) {
  return {&pv_tile<static_cast<int>(I) + 1, DV>...};
}
constexpr std::array<std::array<PvFn, kTileRows>, 2> kPv = {  // [DV-1][RT-1]
    pv_row<1>(std::make_index_sequence<kTileRows>()), pv_row<2>(std::make_index_sequence<kTileRows>())};

struct Geometry {
  int group = 1;   // query heads per KV head
  int d = 0;       // head_dim
  int d_pad = 0;   // head_dim rounded up to 8
  int64_t bq = 1;  // queries per work item
  int64_t n_qblocks = 0;
  int64_t n_chunks = 1;  // key chunks per (KV head, query block)
  int rows_max = 0;
};

struct RowState {  // per-thread scratch of one work item
  float* kt;       // [d_pad][64]
  float* vpad;     // [64][d_pad]: the V block with padded rows, when d is not a multiple of 8
  float* s;        // [rows][64]
  float* o;        // [rows][d_pad]
  float* m;        // [rows]
  float* l;
  float* alpha;
};

// Keys [key0, key1) of KV head g for queries [t0, t1): leaves unnormalized O, m, l in st.
QS_TARGET_AVX2 void run_item(const AttentionArgs& a, const Geometry& geo, int g, int64_t t0, int64_t t1, int64_t key0,
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
    for (int c = 0; c < geo.d_pad; c += 8) _mm256_store_ps(st.o + r * geo.d_pad + c, _mm256_setzero_ps());
  }
  const float* kh = a.k + g * a.kv_stride;
  const float* vh = a.v + g * a.kv_stride;
  const bool padded = d != geo.d_pad;
  for (int64_t j0 = key0; j0 < key1; j0 += kBK) {
    const int64_t nk = std::min<int64_t>(kBK, key1 - j0);
    const bool more = j0 + kBK < key1;
    transpose_k(kh + j0 * d, nk, d, st.kt, more ? kh + (j0 + kBK) * d : nullptr);
    // Scores of 8-key vectors past nk are not needed: a partial block ends in them.
    const int nvec = static_cast<int>((nk + 7) / 8);
    for (int jv = 0; jv < nvec; jv += 2) {
      const int kv = std::min(2, nvec - jv);
      for (int r0 = 0; r0 < rows; r0 += kTileRows)
        kScores[kv - 1][std::min(kTileRows, rows - r0) - 1](qrow + r0, st.kt + 8 * jv, d, st.s + r0 * kBK + 8 * jv);
    }
    for (int r = 0; r < rows; ++r) {
      const int64_t qpos = a.pos0 + t0 + r / geo.group;
      st.alpha[r] = softmax_step(st.s + r * kBK, nvec, std::min<int64_t>(nk, qpos - j0 + 1), a.scale, st.m[r], st.l[r]);
    }
    // V rows are read 8 columns at a time: odd head sizes go through a zero-padded copy.
    const float* vb = vh + j0 * d;
    int64_t ldv = d;
    if (padded) {
      for (int64_t j = 0; j < nk; ++j) {
        std::copy(vb + j * d, vb + (j + 1) * d, st.vpad + j * geo.d_pad);
        std::fill(st.vpad + j * geo.d_pad + d, st.vpad + (j + 1) * geo.d_pad, 0.0f);
      }
      vb = st.vpad;
      ldv = geo.d_pad;
    }
    for (int c0 = 0; c0 < geo.d_pad; c0 += 16) {
      const int dv = std::min(2, (geo.d_pad - c0) / 8);
      // A pass covers 16 columns, one 64-byte line of each V row: its first row tile prefetches
      // that line of the next block.
      const bool fetch = more && !padded;
      for (int r0 = 0; r0 < rows; r0 += kTileRows) {
        const int n = std::min(kTileRows, rows - r0);
        kPv[dv - 1][n - 1](st.s + r0 * kBK, vb + c0, ldv, nk, st.o + r0 * geo.d_pad + c0, geo.d_pad, st.alpha + r0,
                           fetch && r0 == 0 ? vh + (j0 + kBK) * d + c0 : nullptr);
      }
    }
  }
}

QS_TARGET_AVX2 void write_rows(const AttentionArgs& a, const Geometry& geo, int g, int64_t t0, int64_t t1,
                               const float* o, const float* l) {
  const int rows = static_cast<int>((t1 - t0) * geo.group);
  const int d8 = geo.d / 8 * 8;
  for (int r = 0; r < rows; ++r) {
    const int64_t t = t0 + r / geo.group;
    const int h = g * geo.group + r % geo.group;
    float* dst = a.out + (t * a.n_heads + h) * static_cast<int64_t>(geo.d);
    const float inv_s = 1.0f / l[r];
    const __m256 inv = _mm256_set1_ps(inv_s);
    const float* orow = o + r * geo.d_pad;
    for (int c = 0; c < d8; c += 8) _mm256_storeu_ps(dst + c, _mm256_mul_ps(_mm256_load_ps(orow + c), inv));
    // The row ends mid-vector: the next row may belong to another thread's item.
    for (int c = d8; c < geo.d; ++c) dst[c] = orow[c] * inv_s;
  }
}

}  // namespace

void attention_avx2(const AttentionArgs& a, ThreadPool& pool) {
  Geometry geo;
  geo.group = a.n_heads / a.n_kv_heads;
  geo.d = a.head_dim;
  geo.d_pad = (a.head_dim + 7) / 8 * 8;
  // Queries per item: about kRowsTarget rows, a multiple of the 6-row tiles where possible.
  geo.bq = std::max<int64_t>(1, kRowsTarget / geo.group);
  while (geo.bq > 1 && (geo.bq * geo.group) % kTileRows != 0) --geo.bq;
  if ((geo.bq * geo.group) % kTileRows != 0) geo.bq = std::max<int64_t>(1, kRowsTarget / geo.group);
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

  const size_t block_floats = static_cast<size_t>(geo.d_pad) * kBK;
  const size_t row_floats = static_cast<size_t>(geo.rows_max) * (kBK + geo.d_pad + 3);
  const size_t thread_floats = 2 * block_floats + row_floats + 64;
  // Partial results when keys are split: per item O [rows][d_pad], m [rows], l [rows].
  const size_t part_floats = static_cast<size_t>(geo.rows_max) * (geo.d_pad + 2);
  float* parts = geo.n_chunks > 1 ? scratch<float>(2, n_items * part_floats) : nullptr;

  std::atomic<int64_t> next{0};
  pool.run_dynamic([&](int, int) {
    float* buf = scratch<float>(3, thread_floats);
    RowState st;
    st.kt = buf;
    st.vpad = st.kt + block_floats;
    st.s = st.vpad + block_floats;
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
