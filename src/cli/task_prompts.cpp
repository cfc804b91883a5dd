#include "cli/task_prompts.h"

#include "cli/shared_paths.h"
#include "core/error.h"
#include "core/files.h"
#include "eval/evaluator.h"
#include "eval/requests.h"
#include "eval/task.h"
#include "fidelity/prompts.h"

namespace qs::cli {

void use_task_prompts(const Tokenizer& tokenizer, int num_fewshot) {
  fidelity::register_task_prompts([&tokenizer, num_fewshot](const std::string& name, int64_t limit) {
    const std::string task_dir = eval::find_tasks_dir();
    if (task_dir.empty()) fail("--prompts ", name, ": the tasks/ folder of qstudy was not found");
    const std::string shared = find_shared_dir();
    if (shared.empty()) fail("--prompts ", name, ": ../shared/data was not found");
    auto registry = std::make_shared<eval::TaskRegistry>(eval::TaskRegistry::load(task_dir));
    if (!registry->has(name))
      fail("--prompts: ", quote(name), " is neither a file nor a task (tasks: gsm8k, arc_easy, mmlu, ... see tasks/)");
    const std::vector<const eval::TaskSpec*> specs = registry->resolve({name});
    eval::PrepareOptions po;
    po.data_dir = shared + "/data";
    po.num_fewshot = num_fewshot;
    po.limit = limit;
    po.max_length = int64_t{1} << 30;  // truncation is the caller's (--on-long)
    fidelity::TaskPrompts out;
    for (const eval::TaskSpec* spec : specs) {
      const eval::PreparedTask prepared = eval::prepare_task(*spec, tokenizer, po);
      for (const eval::PreparedDoc& d : prepared.docs) {
        fidelity::Prompt p;
        p.id = cat(spec->name, "/", d.doc_id);
        p.text = d.prompt;
        if (spec->output_type == eval::OutputType::GenerateUntil) p.answer = d.target;
        else if (d.gold >= 0 && d.gold < static_cast<int>(d.choices.size())) p.answer = d.choices[d.gold];
        out.prompts.push_back(std::move(p));
        if (limit > 0 && static_cast<int64_t>(out.prompts.size()) >= limit) break;
      }
      if (spec->output_type == eval::OutputType::GenerateUntil && specs.size() == 1) {
        out.stop_sequences = spec->until;
        if (!spec->filters.empty()) {
          // The registry owns the spec; the grader keeps it alive.
          out.is_correct = [registry, spec](const std::string& generation, const std::string& answer) {
            return eval::exact_match(spec->exact_match, eval::apply_filter(spec->filters.front(), generation), answer);
          };
        }
      }
      if (limit > 0 && static_cast<int64_t>(out.prompts.size()) >= limit) break;
    }
    return out;
  });
}

}  // namespace qs::cli
