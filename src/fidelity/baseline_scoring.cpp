#include "fidelity/baseline_scoring.h"

#include <cmath>
#include <limits>

#include "kernels/ops.h"

namespace qs::fidelity {

BaselineScorer::BaselineScorer(const Model& baseline, const Tokenizer& tokenizer, int batch)
    : model_(baseline), tok_(tokenizer), batch_(batch < 1 ? 1 : batch) {}

std::vector<std::vector<float>> BaselineScorer::embed(const std::vector<std::vector<int32_t>>& texts) const {
  const int64_t ctx = model_.config().max_position_embeddings, H = model_.config().hidden_size;
  std::vector<std::vector<float>> out(texts.size());
  std::vector<std::vector<int32_t>> seqs(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    if (texts[i].empty()) continue;
    if (tok_.adds_bos() && tok_.bos_id()) seqs[i].push_back(*tok_.bos_id());
    seqs[i].insert(seqs[i].end(), texts[i].begin(), texts[i].end());
    if (static_cast<int64_t>(seqs[i].size()) > ctx) seqs[i].resize(ctx);
  }
  for (size_t b = 0; b < texts.size(); b += batch_) {
    const size_t e = std::min(texts.size(), b + batch_);
    KVCache cache(model_.config(), static_cast<int>(e - b), ctx);
    std::vector<SeqInput> in;
    std::vector<size_t> idx;
    for (size_t i = b; i < e; ++i)
      if (!seqs[i].empty()) {
        in.push_back({static_cast<int>(in.size()), seqs[i], Outputs::All});
        idx.push_back(i);
      }
    if (in.empty()) continue;
    ForwardOutput fo;
    ForwardOptions opt;
    opt.logits = false;
    opt.hidden = true;
    model_.forward(in, cache, fo, opt);
    for (size_t j = 0; j < in.size(); ++j) {
      std::vector<double> mean(H, 0.0);
      const int64_t n = static_cast<int64_t>(in[j].tokens.size());
      for (int64_t t = 0; t < n; ++t) {
        const float* row = fo.hidden.data() + (fo.first_row[j] + t) * H;
        for (int64_t h = 0; h < H; ++h) mean[h] += row[h];
      }
      out[idx[j]].resize(H);
      for (int64_t h = 0; h < H; ++h) out[idx[j]][h] = static_cast<float>(mean[h] / n);
    }
  }
  return out;
}

std::vector<double> BaselineScorer::mean_logprob(const std::vector<std::vector<int32_t>>& prompts,
                                                 const std::vector<std::vector<int32_t>>& continuations) const {
  const int64_t ctx = model_.config().max_position_embeddings, V = model_.config().vocab_size;
  std::vector<double> out(prompts.size(), std::numeric_limits<double>::quiet_NaN());
  for (size_t b = 0; b < prompts.size(); b += batch_) {
    const size_t e = std::min(prompts.size(), b + batch_);
    std::vector<std::vector<int32_t>> seqs;
    std::vector<size_t> idx, first;  // index, position of the first continuation token
    for (size_t i = b; i < e; ++i) {
      if (continuations[i].empty()) continue;
      std::vector<int32_t> s = prompts[i];
      s.insert(s.end(), continuations[i].begin(), continuations[i].end());
      if (static_cast<int64_t>(s.size()) > ctx) s.resize(ctx);
      if (s.size() <= prompts[i].size()) continue;
      idx.push_back(i);
      first.push_back(prompts[i].size());
      seqs.push_back(std::move(s));
    }
    if (seqs.empty()) continue;
    KVCache cache(model_.config(), static_cast<int>(seqs.size()), ctx);
    std::vector<SeqInput> in;
    for (size_t j = 0; j < seqs.size(); ++j) in.push_back({static_cast<int>(j), seqs[j], Outputs::All});
    ForwardOutput fo;
    model_.forward(in, cache, fo);
    for (size_t j = 0; j < seqs.size(); ++j) {
      double sum = 0;
      int64_t n = 0;
      for (size_t t = first[j]; t < seqs[j].size(); ++t) {
        const float* row = fo.logits_row(fo.first_row[j] + static_cast<int64_t>(t) - 1);
        sum += row[seqs[j][t]] - kernels::log_sum_exp(row, V);
        ++n;
      }
      out[idx[j]] = sum / n;
    }
  }
  return out;
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.empty() || b.empty()) return a.empty() && b.empty() ? 1.0 : 0.0;
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) dot += double(a[i]) * b[i], na += double(a[i]) * a[i], nb += double(b[i]) * b[i];
  return na > 0 && nb > 0 ? dot / std::sqrt(na * nb) : 0.0;
}

}  // namespace qs::fidelity
