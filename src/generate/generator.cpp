#include "generate/generator.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/rng.h"
#include "core/timer.h"
#include "kernels/ops.h"

namespace qs {

std::vector<Generation> generate(const Model& model, std::span<const GenerationRequest> requests,
                                 const GenerateOptions& options, const TokenCallback& on_token,
                                 GenerationStats* stats) {
  options.sampling.validate();
  require(options.max_new_tokens >= 0, "--max-new-tokens: expected >= 0, got ", options.max_new_tokens);
  const int64_t model_ctx = model.config().max_position_embeddings;
  int64_t longest = 0;
  for (const auto& r : requests) {
    require(!r.prompt.empty(), "generate: empty prompt (nothing to condition on)");
    longest = std::max<int64_t>(longest, static_cast<int64_t>(r.prompt.size()));
  }
  int64_t capacity = options.context > 0 ? options.context : longest + options.max_new_tokens;
  capacity = std::min(capacity, model_ctx);
  if (longest >= capacity)
    fail("prompt of ", longest, " tokens does not fit the context of ", capacity, " tokens (leave room to generate)");

  const size_t n = requests.size();
  std::vector<Generation> out(n);
  if (n == 0) return out;
  KVCache cache(model.config(), static_cast<int>(n), capacity);
  std::vector<Sampler> samplers(n, Sampler(options.sampling));
  std::vector<Rng> rngs;
  std::vector<std::vector<int32_t>> history(n);
  for (size_t i = 0; i < n; ++i) {
    rngs.emplace_back(requests[i].seed);
    history[i] = requests[i].prompt;
  }
  const int64_t V = model.config().vocab_size;
  std::vector<char> active(n, 1);
  std::vector<int32_t> next(n);

  // Picks each active sequence's next token from its row of `fwd`; retires finished ones.
  auto advance = [&](const ForwardOutput& fwd, const std::vector<size_t>& rows_of) {
    for (size_t j = 0; j < rows_of.size(); ++j) {
      const size_t i = rows_of[j];
      std::span<const float> logits(fwd.logits_row(fwd.first_row[j]), V);
      const int32_t t = samplers[i].sample(logits, history[i], rngs[i].uniform());
      const float lse = kernels::log_sum_exp(logits.data(), V);
      if (std::find(options.stop_tokens.begin(), options.stop_tokens.end(), t) != options.stop_tokens.end()) {
        out[i].stop_reason = "eos";
        active[i] = 0;
        continue;
      }
      out[i].tokens.push_back(t);
      out[i].token_logprobs.push_back(logits[t] - lse);
      history[i].push_back(t);
      next[i] = t;
      if (on_token && !on_token(i, t)) {
        out[i].stop_reason = "stop";
        active[i] = 0;
      } else if (static_cast<int>(out[i].tokens.size()) >= options.max_new_tokens) {
        out[i].stop_reason = "length";
        active[i] = 0;
      } else if (static_cast<int64_t>(history[i].size()) >= capacity) {
        out[i].stop_reason = "context";
        active[i] = 0;
      }
    }
  };

  Stopwatch clock;
  ForwardOutput fwd;
  std::vector<SeqInput> inputs;
  std::vector<size_t> rows_of;
  if (options.max_new_tokens == 0) {
    for (auto& g : out) g.stop_reason = "length";
  } else {
    for (size_t i = 0; i < n; ++i) {
      inputs.push_back({static_cast<int>(i), requests[i].prompt, Outputs::Last});
      rows_of.push_back(i);
    }
    model.forward(inputs, cache, fwd);
    advance(fwd, rows_of);
  }
  GenerationStats st;
  for (const auto& r : requests) st.prompt_tokens += static_cast<int64_t>(r.prompt.size());
  st.prefill_seconds = clock.seconds();
  clock.reset();
  for (;;) {
    inputs.clear();
    rows_of.clear();
    for (size_t i = 0; i < n; ++i) {
      if (!active[i]) continue;
      inputs.push_back({static_cast<int>(i), std::span<const int32_t>(&next[i], 1), Outputs::Last});
      rows_of.push_back(i);
    }
    if (inputs.empty()) break;
    st.decode_tokens += static_cast<int64_t>(inputs.size());
    model.forward(inputs, cache, fwd);
    advance(fwd, rows_of);
  }
  st.decode_seconds = clock.seconds();
  for (const auto& g : out) st.generated_tokens += static_cast<int64_t>(g.tokens.size());
  if (stats) *stats = st;
  return out;
}

}  // namespace qs
