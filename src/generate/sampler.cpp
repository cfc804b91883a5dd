#include "generate/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_set>

#include "core/error.h"

namespace qs {

void SamplingParams::validate() const {
  if (!(temperature >= 0) || !std::isfinite(temperature))
    fail("--temperature: ", temperature, " is invalid (expected a finite value >= 0; 0 means greedy)");
  if (top_k < 0) fail("--top-k: ", top_k, " is invalid (expected >= 0; 0 disables it)");
  if (!(top_p > 0 && top_p <= 1)) fail("--top-p: ", top_p, " is invalid (expected a value in (0, 1])");
  if (!(min_p >= 0 && min_p <= 1)) fail("--min-p: ", min_p, " is invalid (expected a value in [0, 1])");
  if (!(repeat_penalty > 0) || !std::isfinite(repeat_penalty))
    fail("--repeat-penalty: ", repeat_penalty, " is invalid (expected a finite value > 0; 1 disables it)");
  if (repeat_last_n < -1) fail("--repeat-last-n: ", repeat_last_n, " is invalid (expected >= -1)");
}

std::string SamplingParams::describe() const {
  std::string s = greedy() ? "greedy" : cat("T=", temperature);
  if (!greedy()) {
    if (top_k > 0) s += cat(" top_k=", top_k);
    if (top_p < 1) s += cat(" top_p=", top_p);
    if (min_p > 0) s += cat(" min_p=", min_p);
  }
  if (repeat_penalty != 1.0) s += cat(" repeat_penalty=", repeat_penalty);
  return s;
}

int32_t argmax(std::span<const float> x) {
  int32_t best = 0;
  for (size_t i = 1; i < x.size(); ++i)
    if (x[i] > x[best]) best = static_cast<int32_t>(i);
  return best;
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history, double u) {
  const SamplingParams& p = params_;
  const int32_t V = static_cast<int32_t>(logits.size());
  scaled_.assign(logits.begin(), logits.end());
  if (p.repeat_penalty != 1.0 && p.repeat_last_n != 0) {
    const size_t n = p.repeat_last_n < 0 ? history.size() : std::min<size_t>(history.size(), p.repeat_last_n);
    std::unordered_set<int32_t> seen(history.end() - static_cast<std::ptrdiff_t>(n), history.end());
    for (int32_t t : seen) {
      if (t < 0 || t >= V) continue;
      float& l = scaled_[t];
      l = l > 0 ? static_cast<float>(l / p.repeat_penalty) : static_cast<float>(l * p.repeat_penalty);
    }
  }
  kept_.clear();
  if (p.greedy()) {
    const int32_t t = argmax(scaled_);
    kept_.push_back({t, 1.0f});
    return t;
  }
  const double inv_t = 1.0 / p.temperature;
  // Candidates sorted by scaled logit, descending (ties: lower id first) — only as many as needed.
  order_.resize(V);
  std::iota(order_.begin(), order_.end(), 0);
  auto by_logit = [&](int32_t a, int32_t b) { return scaled_[a] > scaled_[b] || (scaled_[a] == scaled_[b] && a < b); };
  size_t n = static_cast<size_t>(V);
  if (p.top_k > 0 && p.top_k < V) {
    n = static_cast<size_t>(p.top_k);
    std::partial_sort(order_.begin(), order_.begin() + n, order_.end(), by_logit);
  } else {
    std::sort(order_.begin(), order_.end(), by_logit);
  }
  // Softmax over the candidates at temperature T (in double).
  const double mx = scaled_[order_[0]] * inv_t;
  std::vector<double> prob(n);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += (prob[i] = std::exp(scaled_[order_[i]] * inv_t - mx));
  for (auto& q : prob) q /= sum;
  // top-p: the smallest prefix whose mass reaches p (HF removes tokens once the mass before them
  // reaches p; at least one token stays).
  if (p.top_p < 1.0) {
    double cum = 0;
    size_t keep = n;
    for (size_t i = 0; i < n; ++i) {
      cum += prob[i];
      if (cum >= p.top_p) {
        keep = i + 1;
        break;
      }
    }
    n = std::max<size_t>(1, keep);
  }
  if (p.min_p > 0) {
    const double floor = p.min_p * prob[0];
    size_t keep = 1;
    while (keep < n && prob[keep] >= floor) ++keep;
    n = keep;
  }
  // Renormalize, then draw by inverse CDF over ids in ascending order (stable coupling).
  double mass = 0;
  for (size_t i = 0; i < n; ++i) mass += prob[i];
  for (size_t i = 0; i < n; ++i) kept_.push_back({order_[i], static_cast<float>(prob[i] / mass)});
  std::sort(kept_.begin(), kept_.end());
  const double target = u * mass;
  double cum = 0;
  std::vector<std::pair<int32_t, double>> by_id;
  by_id.reserve(n);
  for (size_t i = 0; i < n; ++i) by_id.push_back({order_[i], prob[i]});
  std::sort(by_id.begin(), by_id.end());
  for (const auto& [id, q] : by_id) {
    cum += q;
    if (target < cum) return id;
  }
  return by_id.back().first;
}

}  // namespace qs
