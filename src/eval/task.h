// Task definitions: one JSON file per task under tasks/ (data, not code), read at run time so that
// a user adds a task without recompiling. A definition mirrors an lm-evaluation-harness task YAML
// (same field names and template language, see tasks/README.md):
//   task, version, output_type (multiple_choice | loglikelihood | loglikelihood_rolling |
//   generate_until), dataset (sources, the first that exists wins), fewshot_dataset,
//   fewshot_sampler (random | first_n), num_fewshot, process_docs, description, doc_to_text,
//   doc_to_choice, doc_to_target, multiple_input, target_delimiter, fewshot_delimiter, metrics,
//   primary_metric, generation_kwargs {until, max_gen_toks}, filter_list, exact_match options,
//   units_text (rolling tasks), engine_perplexity.
// A group file ("group": "mmlu") expands a task template over subjects: mmlu_abstract_algebra,
// ..., with category groups (mmlu_stem, ...).
// Every error names the definition file and the key.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "eval/dataset.h"
#include "eval/template.h"
#include "eval/text_ops.h"

namespace qs::eval {

enum class OutputType { MultipleChoice, Loglikelihood, LoglikelihoodRolling, GenerateUntil };
const char* output_type_name(OutputType t);

// lm-eval's RegexFilter + take_first: the group_select-th match of `regex` (negative from the
// end); a match with several groups gives its first non-empty group; no match gives `fallback`.
struct FilterSpec {
  std::string name;  // "strict-match"
  std::string pattern;
  std::shared_ptr<const PyRegex> regex;
  int group_select = 0;
  std::string fallback = "[invalid]";
};

// lm-eval's exact_match (HF evaluate semantics): each regex of regexes_to_ignore is removed
// (re.sub) from prediction and reference, then optional lower-casing and punctuation removal.
struct ExactMatchSpec {
  bool ignore_case = false, ignore_punctuation = false;
  std::vector<std::shared_ptr<const PyRegex>> regexes_to_ignore;
  std::vector<std::string> regex_sources;
};

struct TaskSpec {
  std::string name, version, about, file;
  OutputType output_type = OutputType::MultipleChoice;
  std::vector<SourceSpec> dataset, fewshot_dataset;
  std::string fewshot_sampler = "random";  // or "first_n"
  int num_fewshot = 0;
  std::vector<std::pair<std::string, Template>> process_docs;
  Template description, doc_to_text, doc_to_choice, doc_to_target;
  bool multiple_input = false;  // winogrande: choices fill the context, one shared continuation
  std::string target_delimiter = " ", fewshot_delimiter = "\n\n";
  std::vector<std::string> metrics;
  std::string primary_metric;
  // generate_until
  std::vector<std::string> until;
  int max_gen_toks = 256;
  std::vector<FilterSpec> filters;
  ExactMatchSpec exact_match;
  // loglikelihood_rolling: words and bytes are counted on this text (lm-eval: the raw page)
  Template units_text;
  bool engine_perplexity = false;  // also llama.cpp-convention token perplexity of the source file
  std::vector<std::string> groups;  // groups this task belongs to ("mmlu", "mmlu_stem")
};

// Parses a task definition (not a group); errors name `file`.
TaskSpec parse_task_spec(const nlohmann::json& j, const std::string& file);

struct GroupSpec {
  std::string name;  // "mmlu"
  std::string about, file;
  std::vector<std::string> tasks;                                  // member task names
  std::map<std::string, std::vector<std::string>> subgroups;      // "mmlu_stem" -> tasks
};

class TaskRegistry {
 public:
  // Every *.json file of `dir`; a broken definition is an error naming its file.
  static TaskRegistry load(const std::string& dir);
  // Adds one definition file (task or group).
  void add_file(const std::string& path);

  bool has(const std::string& name) const;
  // Task and group names, sorted.
  std::vector<std::string> names() const;
  // Expands names (groups to their tasks, in definition order; a path ending in .json is loaded
  // as a definition). Unknown names are an error that lists the known ones.
  std::vector<const TaskSpec*> resolve(const std::vector<std::string>& names);
  const std::map<std::string, GroupSpec>& groups() const { return groups_; }
  const TaskSpec& task(const std::string& name) const;

 private:
  std::map<std::string, std::unique_ptr<TaskSpec>> tasks_;
  std::vector<std::string> order_;  // tasks in the order they were defined
  std::map<std::string, GroupSpec> groups_;
};

// Where the built-in task definitions are: $QSTUDY_TASKS_DIR, else ./tasks, else tasks/ beside
// the source tree the binary was built from. "" when none is found.
std::string find_tasks_dir();

}  // namespace qs::eval
