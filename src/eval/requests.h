// From a task definition and its data to model requests, with lm-evaluation-harness's
// conventions, independent of the model (so a baseline and its quantized variant get exactly the
// same prompts and token ids):
//  - few-shot context = description + per example: text + target_delimiter + target +
//    fewshot_delimiter, then the document's text (lm-eval ConfigurableTask.fewshot_context);
//    examples come from the few-shot split ("first_n": its first n documents; "random": n
//    distinct documents drawn by qs::Rng(seed, document index), so --limit does not change the
//    prompts of the documents it keeps); a document is never its own example;
//  - multiple_choice: one (context, target_delimiter + choice) request per choice; with
//    multiple_input (Winogrande) one (context + choice, target_delimiter + target) per choice;
//  - loglikelihood: (context, target); loglikelihood_rolling: lm-eval's disjoint rolling windows
//    (utils.get_rolling_token_windows with context_len 1 + make_disjoint_window) over the
//    target's tokens, the first window predicted from the prefix token (BOS, else EOS);
//  - tokens as HFLM._encode_pair makes them: trailing white space of the context moves to the
//    continuation, whole = encode(context + continuation), context = encode(context),
//    continuation = whole[len(context):]; an empty context becomes [prefix token]. Special tokens
//    (BOS) are added only with add_bos (lm-eval's add_bos_token, default off);
//  - generate_until: the context's tokens, left-truncated to max_length - max_gen_toks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eval/task.h"
#include "tokenizer/tokenizer.h"

namespace qs::eval {

struct PrepareOptions {
  std::string data_dir;
  int num_fewshot = -1;   // -1: the task's default
  int64_t limit = 0;      // 0: every document
  uint64_t seed = 1234;
  bool strict = false;
  bool add_bos = false;
  int64_t max_length = 0;  // the model's context (required)
};

// One log-likelihood request: score `continuation` after `context`.
struct LLRequest {
  std::vector<int32_t> context, continuation;
  int64_t doc = 0;  // index into PreparedTask::docs
  int choice = 0;   // choice (multiple choice) or window (rolling)
};

struct PreparedDoc {
  int64_t doc_id = 0;       // position among the documents read (lm-eval's doc_id)
  std::string origin;       // FILE:LINE
  std::string prompt;       // the context text (multiple_input: the few-shot prefix)
  std::vector<std::string> choices;        // as doc_to_choice gives them (acc_norm lengths)
  std::vector<std::string> continuations;  // the continuation text of each request
  int gold = -1;
  std::string target;       // generate_until reference / loglikelihood continuation / rolling text
  size_t first_request = 0, n_requests = 0;
  int64_t words = 0, bytes = 0;  // loglikelihood_rolling units
  std::string prompt_hash;       // FNV-1a 64 of prompt and continuations, hex
};

struct PreparedTask {
  const TaskSpec* spec = nullptr;
  std::string source_path, fewshot_path;
  int num_fewshot = 0;
  std::vector<PreparedDoc> docs;
  std::vector<LLRequest> requests;                // every output type but generate_until
  std::vector<std::vector<int32_t>> gen_prompts;  // generate_until, per document
  std::vector<ReadIssue> skipped;                 // bad records (not in docs)
  int64_t documents_available = 0;                // valid documents before --limit
  int32_t prefix_token = 0;
  // engine_perplexity tasks: the text whose token perplexity is measured: the source file when
  // every document is evaluated (what llama-perplexity reads), else the evaluated documents'
  // units_text joined by newlines (so --limit shortens it too).
  std::string engine_text;
};

PreparedTask prepare_task(const TaskSpec& spec, const Tokenizer& tokenizer, const PrepareOptions& options);

// HFLM._encode_pair (see the file comment).
std::pair<std::vector<int32_t>, std::vector<int32_t>> encode_pair(const Tokenizer& tokenizer, std::string context,
                                                                   std::string continuation, bool add_bos,
                                                                   int32_t prefix_token);

// lm-eval's disjoint rolling windows: (context, continuation) pairs that together predict every
// token of `tokens` once, each input at most max_length tokens.
std::vector<std::pair<std::vector<int32_t>, std::vector<int32_t>>> rolling_windows(const std::vector<int32_t>& tokens,
                                                                                     int32_t prefix_token,
                                                                                     int64_t max_length);

// FNV-1a 64-bit hash as 16 hex digits.
std::string fnv1a_hex(std::string_view bytes);

}  // namespace qs::eval
