// Benchmark questions as prompts for paired generation (compare-gen, sweep): a task definition of
// tasks/ (gsm8k, arc_easy, mmlu_*, ...) turned into its lm-eval few-shot contexts, with the
// reference answer and, for generate_until tasks, the task's own grading (its first filter +
// exact_match, "exact_match,strict-match" for GSM8K) and stop sequences.
#pragma once

#include <string>

#include "tokenizer/tokenizer.h"

namespace qs::cli {

// Registers the task source with fidelity::load_prompts for this process. `tokenizer` must outlive
// the load_prompts calls; num_fewshot < 0 keeps each task's default.
void use_task_prompts(const Tokenizer& tokenizer, int num_fewshot);

}  // namespace qs::cli
