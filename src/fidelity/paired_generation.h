// Generations of several models on the same prompts with the same randomness, stored as they
// finish so an interrupted run resumes without regenerating anything.
//
// Coupling: sample s of prompt p is drawn with seed = f(run seed, prompt id, s) for every model,
// and the sampler uses one uniform per step from that seed (generate/sampler.h), so a baseline
// and its quantized variant see identical random numbers: where their next-token distributions
// agree they pick the same token, and differences come from the models.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "fidelity/prompts.h"
#include "generate/sampler.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace qs::fidelity {

struct GenSettings {
  SamplingParams sampling;
  int max_new_tokens = 128;
  std::string key() const;  // "T=0.7 top_k=0 top_p=1 min_p=0 max_new=128"
};

struct GenRecord {
  std::string model, settings, prompt_id;
  int sample = 0;
  uint64_t seed = 0;
  std::string text;
  std::vector<int32_t> tokens;
  std::string stop_reason;
  double decode_tok_s = 0;  // of the batch that produced it
};

// Append-only JSONL of GenRecords. Opening an existing file loads its records (a last line cut
// short by an interruption is ignored); records are flushed one line at a time.
class GenerationStore {
 public:
  explicit GenerationStore(std::string path = "");  // "" keeps records in memory only
  const GenRecord* find(const std::string& model, const std::string& settings, const std::string& prompt_id,
                        int sample) const;
  void append(const GenRecord& r);
  size_t size() const { return records_.size(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<GenRecord> records_;
  std::map<std::string, size_t> index_;
};

struct EncodedPrompt {
  std::string id;
  std::vector<int32_t> tokens;
  std::optional<std::string> answer;
};

enum class LongPromptPolicy { Refuse, Truncate };

// Encodes prompts (with the chat template when `chat` is set: the tokenizer's template, one user
// turn, generation prompt added). A prompt longer than `max_prompt_tokens` is refused (error
// naming it) or keeps its last tokens with a warning on stderr.
std::vector<EncodedPrompt> encode_prompts(const PromptSet& set, const Tokenizer& tok, bool chat,
                                          int64_t max_prompt_tokens, LongPromptPolicy policy);

uint64_t sample_seed(uint64_t run_seed, const std::string& prompt_id, int sample);

struct GenerateAllOptions {
  GenSettings settings;
  int samples = 1;
  uint64_t seed = 0;
  std::vector<int32_t> stop_tokens;
  std::vector<std::string> stop_sequences;  // generation ends at the first, which is cut off
  int batch = 16;                            // sequences decoded together
};

// Generates every (prompt, sample) the store lacks for `model_name` at these settings, appends
// them, and returns all records of that model and setting in prompt-major order.
std::vector<GenRecord> generate_all(const Model& model, const Tokenizer& tok, const std::string& model_name,
                                    const std::vector<EncodedPrompt>& prompts, const GenerateAllOptions& options,
                                    GenerationStore& store);

}  // namespace qs::fidelity
