// Prompts for paired generation: from a .jsonl file (a text field per line, optional "id" and
// "answer"), a .txt file (one prompt per non-empty line), or a registered task (e.g. gsm8k; the
// evaluation module registers its tasks). Errors name file:line and the field.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace qs::fidelity {

struct Prompt {
  std::string id;
  std::string text;
  std::optional<std::string> answer;  // the reference answer when the source has one
};

// A task's prompts (questions with their few-shot context, answers) and how to grade a generation.
struct TaskPrompts {
  std::vector<Prompt> prompts;
  std::function<bool(const std::string& generation, const std::string& answer)> is_correct;
  std::vector<std::string> stop_sequences;
};
using TaskPromptSource = std::function<TaskPrompts(const std::string& task, int64_t limit)>;
// The evaluation module registers its tasks here; `load_prompts` consults it for non-file specs.
void register_task_prompts(TaskPromptSource source);

struct PromptSet {
  std::vector<Prompt> prompts;
  std::function<bool(const std::string&, const std::string&)> is_correct;  // empty: no grading
  std::vector<std::string> stop_sequences;
  std::string source;
};

// `spec`: a file path (.jsonl/.json or anything else as text) or a task name. limit 0: all.
// Errors: missing file, empty set, malformed lines, missing field, unknown task (listing them).
PromptSet load_prompts(const std::string& spec, const std::string& field = "prompt", int64_t limit = 0);

}  // namespace qs::fidelity
