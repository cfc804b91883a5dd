#include "eval/kld.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <limits>
#include <numeric>

#include "core/error.h"
#include "core/files.h"
#include "core/thread_pool.h"
#include "eval/stats.h"

namespace qs::eval {

static_assert(std::endian::native == std::endian::little, "the compact baseline format is little-endian");

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr char kMagic[8] = {'Q', 'S', 'K', 'L', 'D', 'B', '0', '1'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 8 + 4 * 4 + 8;

// log-softmax normaliser of one logit vector: log p_i = x_i - log_norm.
struct Normalizer {
  double max = 0;
  double sum = 0;       // sum exp(x_i - max)
  double log_norm = 0;  // max + log(sum)
  size_t argmax = 0;    // first index of the maximum
};

Normalizer normalize(std::span<const float> x, double* exp_out, const char* which) {
  require(!x.empty(), "KL divergence: empty ", which, " logits");
  Normalizer n;
  float best = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < x.size(); ++i) {
    float v = x[i];
    if (std::isnan(v) || v == std::numeric_limits<float>::infinity())
      fail("KL divergence: ", which, " logit ", i, " is ", v, " (expected a finite value or -inf)");
    if (v > best) {  // strict: the first index wins ties, as in llama.cpp
      best = v;
      n.argmax = i;
    }
  }
  require(best > -std::numeric_limits<float>::infinity(), "KL divergence: every ", which, " logit is -inf");
  n.max = best;
  double sum = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    double e = std::exp(static_cast<double>(x[i]) - n.max);
    if (exp_out) exp_out[i] = e;
    sum += e;
  }
  n.sum = sum;
  n.log_norm = n.max + std::log(sum);
  return n;
}

// Sum of exp(x_i - max) over the ids not marked, in index order (the same order for the
// baseline and the model, so identical logits give bit-identical tails).
double tail_sum(std::span<const float> x, double max, const std::vector<uint8_t>& marked) {
  double sum = 0;
  for (size_t i = 0; i < x.size(); ++i)
    if (!marked[i]) sum += std::exp(static_cast<double>(x[i]) - max);
  return sum;
}

std::pair<double, double> mean_and_uncertainty(double sum, double sum2, size_t count) {
  if (count < 1) return {0.0, 0.0};
  double n = static_cast<double>(count);
  double f = sum / n;
  double df = sum2 / n - f * f;
  df = df > 0 && count > 10 ? std::sqrt(df / (n - 1)) : 0.0;
  return {f, df};
}

double covariance(double suma, double sumb, double sumab, size_t count) {
  if (count < 10) return 0.0;
  double n = static_cast<double>(count);
  return (sumab / n - (suma / n) * (sumb / n)) / (n - 1);
}

double sqrt_clamped(double v) { return std::sqrt(std::max(v, 0.0)); }

template <class T>
void put(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}
template <class T>
T get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// CompactBaseline

CompactBaseline::CompactBaseline(int32_t n_vocab, int k)
    : n_vocab_(n_vocab), k_(static_cast<int>(std::min<int64_t>(k, n_vocab))) {
  require(n_vocab > 0, "compact baseline: n_vocab must be positive, got ", n_vocab);
  require(k >= 1, "compact baseline: k must be >= 1, got ", k);
}

namespace {

struct TopKRecord {
  std::vector<int32_t> ids;
  std::vector<double> logprobs;
  double tail_logprob = 0, next_logprob = 0;
};

TopKRecord summarize_row(std::span<const float> logits, int32_t next_token, int32_t n_vocab, int k) {
  require(n_vocab > 0, "compact baseline: not initialised with a vocabulary size");
  require(logits.size() == static_cast<size_t>(n_vocab), "compact baseline: got ", logits.size(),
          " logits, expected n_vocab = ", n_vocab);
  require(next_token >= 0 && next_token < n_vocab, "compact baseline: next token ", next_token,
          " is outside the vocabulary [0, ", n_vocab, ")");
  Normalizer norm = normalize(logits, nullptr, "baseline");
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  auto by_prob = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(order.begin(), order.begin() + k, order.end(), by_prob);
  TopKRecord r;
  std::vector<uint8_t> marked(logits.size(), 0);
  for (int j = 0; j < k; ++j) {
    int32_t id = order[j];
    marked[id] = 1;
    r.ids.push_back(id);
    r.logprobs.push_back(static_cast<double>(logits[id]) - norm.log_norm);
  }
  double tail = tail_sum(logits, norm.max, marked);
  r.tail_logprob = tail > 0 ? std::log(tail) - std::log(norm.sum) : -kInf;
  r.next_logprob = static_cast<double>(logits[next_token]) - norm.log_norm;
  return r;
}

}  // namespace

void CompactBaseline::push(int32_t next_token, double next_logprob, double tail_logprob,
                           std::span<const int32_t> ids, std::span<const double> logprobs) {
  ids_.insert(ids_.end(), ids.begin(), ids.end());
  logprobs_.insert(logprobs_.end(), logprobs.begin(), logprobs.end());
  tail_logprob_.push_back(tail_logprob);
  next_token_.push_back(next_token);
  next_logprob_.push_back(next_logprob);
}

void CompactBaseline::append(std::span<const float> logits, int32_t next_token) {
  TopKRecord r = summarize_row(logits, next_token, n_vocab_, k_);
  push(next_token, r.next_logprob, r.tail_logprob, r.ids, r.logprobs);
}

void CompactBaseline::append_rows(std::span<const float> logits, std::span<const int32_t> next_tokens) {
  const size_t n = next_tokens.size(), v = static_cast<size_t>(n_vocab_);
  require(n_vocab_ > 0 && logits.size() == n * v, "compact baseline: expected ", n, " rows of ", n_vocab_,
          " logits, got ", logits.size(), " values");
  std::vector<TopKRecord> records(n);
  std::exception_ptr error;
  std::mutex error_mutex;
  default_pool().parallel_for(static_cast<int64_t>(n), [&](int64_t begin, int64_t end) {
    try {
      for (int64_t i = begin; i < end; ++i)
        records[i] = summarize_row(logits.subspan(i * v, v), next_tokens[i], n_vocab_, k_);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  });
  if (error) std::rethrow_exception(error);
  for (size_t i = 0; i < n; ++i) {
    const TopKRecord& r = records[i];
    push(next_tokens[i], r.next_logprob, r.tail_logprob, r.ids, r.logprobs);
  }
}

std::string CompactBaseline::serialize() const {
  std::string out;
  size_t record = 8 + 8 + 8 + static_cast<size_t>(k_) * 12;
  out.reserve(kHeaderBytes + size() * record);
  out.append(kMagic, 8);
  put(out, kVersion);
  put(out, static_cast<uint32_t>(n_vocab_));
  put(out, static_cast<uint32_t>(k_));
  put(out, uint32_t{0});
  put(out, static_cast<uint64_t>(size()));
  for (size_t t = 0; t < size(); ++t) {
    put(out, next_token_[t]);
    put(out, int32_t{0});
    put(out, next_logprob_[t]);
    put(out, tail_logprob_[t]);
    for (int32_t id : ids(t)) put(out, id);
    for (double lp : logprobs(t)) put(out, lp);
  }
  return out;
}

CompactBaseline CompactBaseline::parse(std::string_view bytes, const std::string& source) {
  const std::string& src = source;
  require(bytes.size() >= kHeaderBytes, src, ": compact KLD baseline: file is ", bytes.size(),
          " bytes, shorter than the ", kHeaderBytes, "-byte header");
  require(std::memcmp(bytes.data(), kMagic, 8) == 0, src,
          ": compact KLD baseline: bad magic (expected \"QSKLDB01\" at byte 0)");
  const char* p = bytes.data() + 8;
  uint32_t version = get<uint32_t>(p), n_vocab = get<uint32_t>(p + 4), k = get<uint32_t>(p + 8);
  uint32_t reserved = get<uint32_t>(p + 12);
  uint64_t n_tokens = get<uint64_t>(p + 16);
  require(version == kVersion, src, ": compact KLD baseline: field 'version' is ", version, ", expected ", kVersion);
  require(reserved == 0, src, ": compact KLD baseline: field 'reserved' at byte 20 is ", reserved, ", expected 0");
  require(n_vocab >= 1 && n_vocab <= static_cast<uint32_t>(std::numeric_limits<int32_t>::max()), src,
          ": compact KLD baseline: field 'n_vocab' is ", n_vocab, ", expected 1 .. 2^31-1");
  require(k >= 1 && k <= n_vocab, src, ": compact KLD baseline: field 'k' is ", k, ", expected 1 .. n_vocab (",
          n_vocab, ")");
  const uint64_t record = 24 + uint64_t{k} * 12;
  const uint64_t body = bytes.size() - kHeaderBytes;
  require(n_tokens <= body / record && body == n_tokens * record, src, ": compact KLD baseline: header says ",
          n_tokens, " tokens of ", record, " bytes but the file holds ", body, " bytes after the header");

  CompactBaseline b(static_cast<int32_t>(n_vocab), static_cast<int>(k));
  b.next_token_.reserve(n_tokens);
  b.next_logprob_.reserve(n_tokens);
  b.tail_logprob_.reserve(n_tokens);
  b.ids_.reserve(n_tokens * k);
  b.logprobs_.reserve(n_tokens * k);
  // Sized only when records exist: then the file size bounds k (an empty body does not).
  std::vector<int32_t> sorted_ids(n_tokens > 0 ? k : 0);
  constexpr double kSlack = 1e-9;  // rounding room for log-probs and the total mass
  p = bytes.data() + kHeaderBytes;
  for (uint64_t t = 0; t < n_tokens; ++t, p += record) {
    auto where = [&](const char* field) { return cat(src, ": compact KLD baseline: token record ", t, ": field '", field, "'"); };
    int32_t next = get<int32_t>(p);
    double next_lp = get<double>(p + 8), tail_lp = get<double>(p + 16);
    require(next >= 0 && static_cast<uint32_t>(next) < n_vocab, where("next_token"), " is ", next,
            ", expected 0 .. ", n_vocab - 1);
    require(get<int32_t>(p + 4) == 0, where("reserved"), " is not 0");
    require(!std::isnan(next_lp) && next_lp <= kSlack, where("next_logprob"), " is ", next_lp,
            ", expected a log-probability (<= 0)");
    require(!std::isnan(tail_lp) && tail_lp <= kSlack, where("tail_logprob"), " is ", tail_lp,
            ", expected a log-probability (<= 0) or -inf");
    double mass = std::exp(tail_lp);
    const char* id_p = p + 24;
    const char* lp_p = id_p + 4 * uint64_t{k};
    for (uint32_t j = 0; j < k; ++j) {
      int32_t id = get<int32_t>(id_p + 4 * j);
      double lp = get<double>(lp_p + 8 * j);
      require(id >= 0 && static_cast<uint32_t>(id) < n_vocab, where("ids"), " [", j, "] is ", id, ", expected 0 .. ",
              n_vocab - 1);
      require(!std::isnan(lp) && lp <= kSlack, where("logprobs"), " [", j, "] is ", lp,
              ", expected a log-probability (<= 0)");
      require(j == 0 || lp <= b.logprobs_.back(), where("logprobs"), " [", j,
              "] is larger than the one before (expected decreasing order)");
      sorted_ids[j] = id;
      b.ids_.push_back(id);
      b.logprobs_.push_back(lp);
      mass += std::exp(lp);
    }
    std::sort(sorted_ids.begin(), sorted_ids.end());
    require(std::adjacent_find(sorted_ids.begin(), sorted_ids.end()) == sorted_ids.end(), where("ids"),
            " lists a token id twice");
    require(std::fabs(mass - 1.0) <= 1e-6, where("logprobs"), " and tail_logprob sum to probability ", mass,
            ", expected 1");
    b.next_token_.push_back(next);
    b.next_logprob_.push_back(next_lp);
    b.tail_logprob_.push_back(tail_lp);
  }
  return b;
}

void CompactBaseline::save(const std::string& path) const { write_file_atomic(path, serialize()); }

CompactBaseline CompactBaseline::load(const std::string& path) { return parse(read_file(path), path); }

// ----------------------------------------------------------------------------------------------
// KldAccumulator

void KldAccumulator::add_token(double kld, double nll, double nll_base, bool same_top) {
  sum_nll_ += nll;
  sum_nll2_ += nll * nll;
  sum_nll_base_ += nll_base;
  sum_nll_base2_ += nll_base * nll_base;
  sum_nll_nll_base_ += nll * nll_base;
  sum_kld_ += kld;
  sum_kld2_ += kld * kld;
  double dp = std::exp(-nll) - std::exp(-nll_base);
  sum_dp_ += dp;
  sum_dp2_ += dp * dp;
  sum_dp4_ += dp * dp * dp * dp;
  if (same_top) ++n_same_top_;
  kld_values_.push_back(kld);
  dp_values_.push_back(dp);
}

namespace {

// What one scored position contributes.
struct TokenValues {
  double kld = 0, nll = 0, nll_base = 0, tail_mass = 0;
  bool same_top = false;
};

TokenValues exact_token(std::span<const float> base_logits, std::span<const float> model_logits, int32_t next_token,
                        std::vector<double>& scratch) {
  require(base_logits.size() == model_logits.size(), "KL divergence: baseline has ", base_logits.size(),
          " logits but the model has ", model_logits.size());
  require(next_token >= 0 && static_cast<size_t>(next_token) < base_logits.size(), "KL divergence: next token ",
          next_token, " is outside the vocabulary [0, ", base_logits.size(), ")");
  scratch.resize(base_logits.size());
  Normalizer nb = normalize(base_logits, scratch.data(), "baseline");
  Normalizer nm = normalize(model_logits, nullptr, "model");
  // log p_i - log q_i = (b_i - m_i) - (log_norm_b - log_norm_m); tokens with p_i = 0 add nothing.
  const double shift = nb.log_norm - nm.log_norm;
  double kld = 0;
  for (size_t i = 0; i < base_logits.size(); ++i) {
    double e = scratch[i];
    if (e == 0) continue;
    kld += e * ((static_cast<double>(base_logits[i]) - static_cast<double>(model_logits[i])) - shift);
  }
  TokenValues v;
  v.kld = kld / nb.sum;
  v.nll = nm.log_norm - model_logits[next_token];
  v.nll_base = nb.log_norm - base_logits[next_token];
  v.same_top = nb.argmax == nm.argmax;
  return v;
}

TokenValues compact_token(const CompactBaseline& base, size_t t, std::span<const float> model_logits,
                          std::vector<uint8_t>& in_top) {
  require(t < base.size(), "KL divergence: compact baseline has ", base.size(), " tokens, asked for token ", t);
  require(model_logits.size() == static_cast<size_t>(base.n_vocab()), "KL divergence: the model has ",
          model_logits.size(), " logits but the compact baseline was made with n_vocab = ", base.n_vocab());
  Normalizer nm = normalize(model_logits, nullptr, "model");
  auto ids = base.ids(t);
  auto lps = base.logprobs(t);
  double head = 0;
  in_top.assign(model_logits.size(), 0);
  for (size_t j = 0; j < ids.size(); ++j) {
    in_top[ids[j]] = 1;
    double p = std::exp(lps[j]);
    if (p == 0) continue;
    head += p * (lps[j] - (static_cast<double>(model_logits[ids[j]]) - nm.log_norm));
  }
  TokenValues v;
  double base_tail_lp = base.tail_logprob(t);
  v.tail_mass = std::exp(base_tail_lp);
  double tail_term = 0;
  if (v.tail_mass > 0) {
    double model_tail = tail_sum(model_logits, nm.max, in_top);
    double model_tail_lp = model_tail > 0 ? std::log(model_tail) - std::log(nm.sum) : -kInf;
    tail_term = v.tail_mass * (base_tail_lp - model_tail_lp);
  }
  v.kld = head + tail_term;
  v.nll = nm.log_norm - model_logits[base.next_token(t)];
  v.nll_base = -base.next_logprob(t);
  v.same_top = static_cast<size_t>(ids[0]) == nm.argmax;
  return v;
}

// Computes rows in parallel into `out` (per-thread scratch); callers then accumulate in order,
// so results do not depend on the thread count.
template <class Compute>
std::vector<TokenValues> compute_rows(size_t n, Compute&& compute) {
  std::vector<TokenValues> out(n);
  std::exception_ptr error;
  std::mutex error_mutex;
  default_pool().parallel_for(static_cast<int64_t>(n), [&](int64_t begin, int64_t end) {
    try {
      std::vector<double> scratch;
      std::vector<uint8_t> marks;
      for (int64_t i = begin; i < end; ++i) out[i] = compute(static_cast<size_t>(i), scratch, marks);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  });
  if (error) std::rethrow_exception(error);
  return out;
}

}  // namespace

void KldAccumulator::add(std::span<const float> base_logits, std::span<const float> model_logits,
                         int32_t next_token) {
  std::vector<double> scratch;
  TokenValues v = exact_token(base_logits, model_logits, next_token, scratch);
  add_token(v.kld, v.nll, v.nll_base, v.same_top);
}

void KldAccumulator::add(const CompactBaseline& base, size_t t, std::span<const float> model_logits) {
  std::vector<uint8_t> in_top;
  TokenValues v = compact_token(base, t, model_logits, in_top);
  add_token(v.kld, v.nll, v.nll_base, v.same_top);
  ++n_compact_;
  sum_tail_ += v.tail_mass;
  max_tail_ = std::max(max_tail_, v.tail_mass);
}

void KldAccumulator::add_rows(std::span<const float> base_logits, std::span<const float> model_logits,
                              size_t n_vocab, std::span<const int32_t> next_tokens) {
  const size_t n = next_tokens.size();
  require(n_vocab > 0 && base_logits.size() == n * n_vocab && model_logits.size() == n * n_vocab,
          "KL divergence: expected ", n, " rows of ", n_vocab, " logits, got ", base_logits.size(), " baseline and ",
          model_logits.size(), " model values");
  auto values = compute_rows(n, [&](size_t i, std::vector<double>& scratch, std::vector<uint8_t>&) {
    return exact_token(base_logits.subspan(i * n_vocab, n_vocab), model_logits.subspan(i * n_vocab, n_vocab),
                       next_tokens[i], scratch);
  });
  for (const auto& v : values) add_token(v.kld, v.nll, v.nll_base, v.same_top);
}

void KldAccumulator::add_rows(const CompactBaseline& base, size_t first_token, std::span<const float> model_logits) {
  const size_t n_vocab = static_cast<size_t>(base.n_vocab());
  require(n_vocab > 0 && model_logits.size() % n_vocab == 0, "KL divergence: ", model_logits.size(),
          " model logits is not a whole number of rows of n_vocab = ", n_vocab);
  const size_t n = model_logits.size() / n_vocab;
  require(first_token + n <= base.size(), "KL divergence: rows ", first_token, "..", first_token + n,
          " run past the compact baseline's ", base.size(), " tokens");
  auto values = compute_rows(n, [&](size_t i, std::vector<double>&, std::vector<uint8_t>& marks) {
    return compact_token(base, first_token + i, model_logits.subspan(i * n_vocab, n_vocab), marks);
  });
  for (const auto& v : values) {
    add_token(v.kld, v.nll, v.nll_base, v.same_top);
    ++n_compact_;
    sum_tail_ += v.tail_mass;
    max_tail_ = std::max(max_tail_, v.tail_mass);
  }
}

void KldAccumulator::merge(const KldAccumulator& o) {
  sum_nll_ += o.sum_nll_;
  sum_nll2_ += o.sum_nll2_;
  sum_nll_base_ += o.sum_nll_base_;
  sum_nll_base2_ += o.sum_nll_base2_;
  sum_nll_nll_base_ += o.sum_nll_nll_base_;
  sum_kld_ += o.sum_kld_;
  sum_kld2_ += o.sum_kld2_;
  sum_dp_ += o.sum_dp_;
  sum_dp2_ += o.sum_dp2_;
  sum_dp4_ += o.sum_dp4_;
  n_same_top_ += o.n_same_top_;
  n_compact_ += o.n_compact_;
  sum_tail_ += o.sum_tail_;
  max_tail_ = std::max(max_tail_, o.max_tail_);
  kld_values_.insert(kld_values_.end(), o.kld_values_.begin(), o.kld_values_.end());
  dp_values_.insert(dp_values_.end(), o.dp_values_.begin(), o.dp_values_.end());
}

KldStats KldAccumulator::stats() const {
  KldStats s;
  const size_t n = tokens();
  s.tokens = n;
  if (n == 0) return s;

  auto log_ppl = mean_and_uncertainty(sum_nll_, sum_nll2_, n);
  s.ppl_model = std::exp(log_ppl.first);
  s.ppl_model_err = s.ppl_model * log_ppl.second;
  auto log_ppl_base = mean_and_uncertainty(sum_nll_base_, sum_nll_base2_, n);
  s.ppl_base = std::exp(log_ppl_base.first);
  s.ppl_base_err = s.ppl_base * log_ppl_base.second;
  double cov = covariance(sum_nll_, sum_nll_base_, sum_nll_nll_base_, n);
  double denom = log_ppl.second * log_ppl_base.second;
  s.ln_ppl_correlation = denom > 0 ? cov / denom : std::numeric_limits<double>::quiet_NaN();
  s.ln_ppl_ratio = log_ppl.first - log_ppl_base.first;
  s.ln_ppl_ratio_err =
      sqrt_clamped(log_ppl.second * log_ppl.second + log_ppl_base.second * log_ppl_base.second - 2.0 * cov);
  s.ppl_ratio = std::exp(s.ln_ppl_ratio);
  s.ppl_ratio_err = s.ppl_ratio * s.ln_ppl_ratio_err;
  double ppl_cov = s.ppl_model * s.ppl_base * cov;
  s.ppl_diff = s.ppl_model - s.ppl_base;
  s.ppl_diff_err = sqrt_clamped(s.ppl_model_err * s.ppl_model_err + s.ppl_base_err * s.ppl_base_err - 2.0 * ppl_cov);

  auto kld = mean_and_uncertainty(sum_kld_, sum_kld2_, n);
  s.kld_mean = kld.first;
  s.kld_mean_err = kld.second;
  std::vector<double> sorted(kld_values_.begin(), kld_values_.end());
  std::sort(sorted.begin(), sorted.end());
  s.kld_min = sorted.front();
  s.kld_max = sorted.back();
  s.kld_median = quantile_sorted(sorted, 0.5);
  s.kld_p99_9 = quantile_sorted(sorted, 0.999);
  s.kld_p99 = quantile_sorted(sorted, 0.99);
  s.kld_p95 = quantile_sorted(sorted, 0.95);
  s.kld_p90 = quantile_sorted(sorted, 0.90);
  s.kld_p10 = quantile_sorted(sorted, 0.10);
  s.kld_p5 = quantile_sorted(sorted, 0.05);
  s.kld_p1 = quantile_sorted(sorted, 0.01);
  s.kld_p0_1 = quantile_sorted(sorted, 0.001);

  auto dp = mean_and_uncertainty(sum_dp_, sum_dp2_, n);
  s.dp_mean = dp.first;
  s.dp_mean_err = dp.second;
  sorted.assign(dp_values_.begin(), dp_values_.end());
  std::sort(sorted.begin(), sorted.end());
  s.dp_min = sorted.front();
  s.dp_max = sorted.back();
  s.dp_median = quantile_sorted(sorted, 0.5);
  s.dp_p99_9 = quantile_sorted(sorted, 0.999);
  s.dp_p99 = quantile_sorted(sorted, 0.99);
  s.dp_p95 = quantile_sorted(sorted, 0.95);
  s.dp_p90 = quantile_sorted(sorted, 0.90);
  s.dp_p75 = quantile_sorted(sorted, 0.75);
  s.dp_p25 = quantile_sorted(sorted, 0.25);
  s.dp_p10 = quantile_sorted(sorted, 0.10);
  s.dp_p5 = quantile_sorted(sorted, 0.05);
  s.dp_p1 = quantile_sorted(sorted, 0.01);
  s.dp_p0_1 = quantile_sorted(sorted, 0.001);
  auto mse = mean_and_uncertainty(sum_dp2_, sum_dp4_, n);
  s.dp_rms = std::sqrt(mse.first);
  s.dp_rms_err = s.dp_rms > 0 ? 0.5 / s.dp_rms * mse.second : 0.0;

  double same = static_cast<double>(n_same_top_) / static_cast<double>(n);
  s.same_top_pct = 100.0 * same;
  s.same_top_pct_err = n > 1 ? 100.0 * std::sqrt(same * (1.0 - same) / static_cast<double>(n - 1)) : 0.0;

  s.kld_is_lower_bound = n_compact_ > 0;
  s.baseline_tail_mass_mean = n_compact_ > 0 ? sum_tail_ / static_cast<double>(n_compact_) : 0.0;
  s.baseline_tail_mass_max = max_tail_;
  return s;
}

namespace {
__attribute__((format(printf, 2, 3))) void appendf(std::string& out, const char* fmt, ...) {
  char line[192];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(line, sizeof line, fmt, args);
  va_end(args);
  out += line;
}
}  // namespace

std::string llama_style_report(const KldStats& s) {
  std::string out;
  appendf(out, "====== Perplexity statistics ======\n");
  appendf(out, "Mean PPL(Q)                   : %10.6lf ± %10.6lf\n", s.ppl_model, s.ppl_model_err);
  appendf(out, "Mean PPL(base)                : %10.6lf ± %10.6lf\n", s.ppl_base, s.ppl_base_err);
  appendf(out, "Cor(ln(PPL(Q)), ln(PPL(base))): %6.2lf%%\n", 100.0 * s.ln_ppl_correlation);
  appendf(out, "Mean ln(PPL(Q)/PPL(base))     : %10.6lf ± %10.6lf\n", s.ln_ppl_ratio, s.ln_ppl_ratio_err);
  appendf(out, "Mean PPL(Q)/PPL(base)         : %10.6lf ± %10.6lf\n", s.ppl_ratio, s.ppl_ratio_err);
  appendf(out, "Mean PPL(Q)-PPL(base)         : %10.6lf ± %10.6lf\n", s.ppl_diff, s.ppl_diff_err);
  appendf(out, "\n====== KL divergence statistics%s ======\n", s.kld_is_lower_bound ? " (lower bounds: top-k baseline)" : "");
  appendf(out, "Mean    KLD: %10.6lf ± %10.6lf\n", s.kld_mean, s.kld_mean_err);
  appendf(out, "Maximum KLD: %10.6f\n", s.kld_max);
  appendf(out, "99.9%%   KLD: %10.6f\n", s.kld_p99_9);
  appendf(out, "99.0%%   KLD: %10.6f\n", s.kld_p99);
  appendf(out, "95.0%%   KLD: %10.6f\n", s.kld_p95);
  appendf(out, "90.0%%   KLD: %10.6f\n", s.kld_p90);
  appendf(out, "Median  KLD: %10.6f\n", s.kld_median);
  appendf(out, "10.0%%   KLD: %10.6f\n", s.kld_p10);
  appendf(out, " 5.0%%   KLD: %10.6f\n", s.kld_p5);
  appendf(out, " 1.0%%   KLD: %10.6f\n", s.kld_p1);
  appendf(out, " 0.1%%   KLD: %10.6f\n", s.kld_p0_1);
  appendf(out, "Minimum KLD: %10.6f\n", s.kld_min);
  appendf(out, "\n====== Token probability statistics ======\n");
  appendf(out, "Mean    Δp: %6.3lf ± %5.3lf %%\n", 100.0 * s.dp_mean, 100.0 * s.dp_mean_err);
  appendf(out, "Maximum Δp: %6.3lf%%\n", 100.0 * s.dp_max);
  appendf(out, "99.9%%   Δp: %6.3lf%%\n", 100.0 * s.dp_p99_9);
  appendf(out, "99.0%%   Δp: %6.3lf%%\n", 100.0 * s.dp_p99);
  appendf(out, "95.0%%   Δp: %6.3lf%%\n", 100.0 * s.dp_p95);
  appendf(out, "90.0%%   Δp: %6.3lf%%\n", 100.0 * s.dp_p90);
  appendf(out, "75.0%%   Δp: %6.3lf%%\n", 100.0 * s.dp_p75);
  appendf(out, "Median  Δp: %6.3lf%%\n", 100.0 * s.dp_median);
  appendf(out, "25.0%%   Δp: %6.3lf%%\n", 100.0 * s.dp_p25);
  appendf(out, "10.0%%   Δp: %6.3lf%%\n", 100.0 * s.dp_p10);
  appendf(out, " 5.0%%   Δp: %6.3lf%%\n", 100.0 * s.dp_p5);
  appendf(out, " 1.0%%   Δp: %6.3lf%%\n", 100.0 * s.dp_p1);
  appendf(out, " 0.1%%   Δp: %6.3lf%%\n", 100.0 * s.dp_p0_1);
  appendf(out, "Minimum Δp: %6.3lf%%\n", 100.0 * s.dp_min);
  appendf(out, "RMS Δp    : %6.3lf ± %5.3lf %%\n", 100.0 * s.dp_rms, 100.0 * s.dp_rms_err);
  appendf(out, "Same top p: %6.3lf ± %5.3lf %%\n", s.same_top_pct, s.same_top_pct_err);
  return out;
}

}  // namespace qs::eval
