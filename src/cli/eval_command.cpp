// qstudy eval: benchmark accuracy with lm-evaluation-harness's conventions, and the paired
// comparison of a model with its baseline (recovery, bootstrap CI, McNemar, flips).
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_args.h"
#include "cli/shared_paths.h"
#include "core/error.h"
#include "core/files.h"
#include "core/sysinfo.h"
#include "core/thread_pool.h"
#include "eval/model_identity.h"
#include "eval/report.h"

namespace qs::cli {

namespace {

struct EvalArgs {
  ModelArgs model, baseline;
  std::string tasks, task_dir, data_dir, json_out, samples_out;
  int num_fewshot = -1;
  int64_t limit = 0, max_length = 0, batch_tokens = 2048, kv_budget_mb = 1024;
  uint64_t seed = 1234;
  int gen_batch = 32, bootstrap = 10000;
  bool strict = false, force = false, add_bos = false, no_fingerprint = false;
  CommonOptions common;
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    std::string part = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!part.empty()) out.push_back(part);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

void warn_skipped(const eval::PreparedTask& p) {
  if (p.skipped.empty()) return;
  const size_t shown = std::min<size_t>(p.skipped.size(), 5);
  for (size_t i = 0; i < shown; ++i)
    std::fprintf(stderr, "qstudy: warning: %s (skipped)\n", p.skipped[i].text().c_str());
  std::fprintf(stderr, "qstudy: warning: task %s: %zu bad record%s skipped (--strict stops at the first)\n",
               p.spec->name.c_str(), p.skipped.size(), p.skipped.size() == 1 ? "" : "s");
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand(
      "eval", "Benchmark accuracy (lm-eval conventions); with --baseline: recovery, 95% CI, McNemar, flips");
  add_model_options(cmd, a->model);
  cmd->add_option("--baseline,-b", a->baseline.model, "Baseline model to compare with (same prompts, same tokens)");
  cmd->add_option("--baseline-tokenizer", a->baseline.tokenizer, "The baseline's tokenizer if not beside it");
  cmd->add_option("--tasks", a->tasks, "Comma-separated tasks or groups (arc_easy,hellaswag,mmlu,...) or task files (*.json)")
      ->required();
  cmd->add_option("--task-dir", a->task_dir, "Task definitions (default: the tasks/ folder of qstudy)");
  cmd->add_option("--data-dir", a->data_dir, "Where task data paths are relative to (default: ../shared/data)");
  cmd->add_option("--num-fewshot", a->num_fewshot, "Few-shot examples per prompt (default: each task's)")
      ->check(CLI::Range(0, 1000));
  cmd->add_option("--limit", a->limit, "Score only the first N documents of each task (0: all)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", a->seed, "Seed of the few-shot draws and the bootstrap");
  cmd->add_option("--max-length", a->max_length, "Context for scoring (default: the model's; lm-eval max_length)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--add-bos", a->add_bos, "Start every request with BOS (lm-eval add_bos_token=True; default off, as lm-eval)");
  cmd->add_option("--json", a->json_out, "Write the results JSON here (rewritten after each task)");
  cmd->add_option("--samples", a->samples_out, "Write per-example records (JSONL) here");
  cmd->add_flag("--strict", a->strict, "Stop at the first malformed record (default: skip and count)");
  cmd->add_flag("--force", a->force, "Compare with a baseline whose tokenizer differs");
  cmd->add_option("--batch-tokens", a->batch_tokens, "Most tokens per forward pass")->check(CLI::PositiveNumber);
  cmd->add_option("--kv-budget-mb", a->kv_budget_mb, "KV cache memory for shared-prefix scoring")->check(CLI::PositiveNumber);
  cmd->add_option("--gen-batch", a->gen_batch, "Sequences generated together (generation tasks)")->check(CLI::PositiveNumber);
  cmd->add_option("--bootstrap", a->bootstrap, "Bootstrap resamples for confidence intervals")->check(CLI::PositiveNumber);
  cmd->add_flag("--no-fingerprint", a->no_fingerprint, "Do not hash the weight files for the JSON");
  add_common_options(cmd, a->common);
  cmd->callback([a] {
    apply_common_options(a->common);
    const std::string task_dir = a->task_dir.empty() ? eval::find_tasks_dir() : a->task_dir;
    if (task_dir.empty()) fail("--task-dir: the tasks/ folder of qstudy was not found (pass --task-dir)");
    eval::TaskRegistry registry = eval::TaskRegistry::load(task_dir);
    const std::vector<const eval::TaskSpec*> specs = registry.resolve(split_list(a->tasks));
    std::string data_dir = a->data_dir;
    if (data_dir.empty()) {
      const std::string shared = find_shared_dir();
      if (shared.empty()) fail("--data-dir: ../shared/data was not found (pass --data-dir)");
      data_dir = shared + "/data";
    }
    require(is_directory(data_dir), "--data-dir: ", data_dir, " is not a directory");

    LoadedModel m = load_model_and_tokenizer(a->model);
    m.model->set_max_batch_tokens(a->batch_tokens);
    std::optional<LoadedModel> b;
    if (!a->baseline.model.empty()) {
      b = load_model_and_tokenizer(a->baseline);
      b->model->set_max_batch_tokens(a->batch_tokens);
      const std::string diff = eval::tokenizer_difference(*m.tokenizer, *b->tokenizer);
      if (!diff.empty()) {
        if (!a->force)
          fail("--baseline: its tokenizer differs from the model's (", diff,
               "); scores would not be comparable (pass --force to compare anyway)");
        std::fprintf(stderr, "qstudy: warning: the baseline's tokenizer differs (%s); prompts use the model's tokens\n",
                     diff.c_str());
      }
    }
    int64_t max_length = m.model->config().max_position_embeddings;
    if (b) max_length = std::min(max_length, b->model->config().max_position_embeddings);
    if (a->max_length > 0) max_length = std::min(max_length, a->max_length);

    nlohmann::json config = {{"model", a->model.model},
                             {"scheme", eval::scheme_name(*m.model)},
                             {"model_formats", eval::linear_formats(*m.model)},
                             {"tokenizer", a->model.tokenizer.empty() ? m.location.tokenizer : a->model.tokenizer},
                             {"tasks", split_list(a->tasks)},
                             {"num_fewshot", a->num_fewshot >= 0 ? nlohmann::json(a->num_fewshot) : nlohmann::json("task default")},
                             {"limit", a->limit},
                             {"seed", a->seed},
                             {"add_bos", a->add_bos},
                             {"max_length", max_length},
                             {"strict", a->strict},
                             {"data_dir", data_dir},
                             {"task_dir", task_dir},
                             {"bootstrap_resamples", a->bootstrap},
                             {"threads", default_pool().size()},
                             {"qstudy_version", "0.1.0"},
                             {"date", utc_now()}};
    if (!a->no_fingerprint) config["model_fingerprint"] = eval::fingerprint_path(m.location.weights);
    if (b) {
      config["baseline"] = a->baseline.model;
      config["baseline_scheme"] = eval::scheme_name(*b->model);
      config["baseline_formats"] = eval::linear_formats(*b->model);
      if (!a->no_fingerprint) config["baseline_fingerprint"] = eval::fingerprint_path(b->location.weights);
    }

    eval::PrepareOptions po;
    po.data_dir = data_dir;
    po.num_fewshot = a->num_fewshot;
    po.limit = a->limit;
    po.seed = a->seed;
    po.strict = a->strict;
    po.add_bos = a->add_bos;
    po.max_length = max_length;
    eval::EvalOptions eo;
    eo.score.max_length = max_length;
    eo.score.kv_budget_bytes = a->kv_budget_mb << 20;
    eo.generation_batch = a->gen_batch;
    eo.seed = a->seed;
    eval::BootstrapOptions bo;
    bo.resamples = a->bootstrap;
    bo.seed = a->seed;

    std::unique_ptr<std::ofstream> samples;
    if (!a->samples_out.empty()) {
      samples = std::make_unique<std::ofstream>(a->samples_out, std::ios::binary | std::ios::trunc);
      require(samples->good(), a->samples_out, ": cannot open for writing (--samples)");
    }
    std::vector<eval::TaskOutcome> outcomes;
    auto write_json = [&] {
      if (a->json_out.empty()) return;
      const auto groups = eval::aggregate_groups(registry, outcomes, bo);
      write_file_atomic(a->json_out, eval::results_json(outcomes, groups, config).dump(2) + "\n");
    };
    for (const eval::TaskSpec* spec : specs) {
      eval::TaskOutcome o;
      o.task = spec->name;
      try {
        o.prepared = std::make_shared<eval::PreparedTask>(eval::prepare_task(*spec, *m.tokenizer, po));
        warn_skipped(*o.prepared);
        if (b) o.baseline = eval::run_task(*o.prepared, *b->model, *m.tokenizer, eo, spec->name + " [baseline]");
        o.model = eval::run_task(*o.prepared, *m.model, *m.tokenizer, eo, spec->name + (b ? " [model]" : ""));
        if (b) o.comparison = eval::compare_runs(*o.baseline, *o.model, bo);
      } catch (const Error& e) {
        o.error = e.what();
        if (o.error.find("task " + spec->name) == std::string::npos) o.error = "task " + spec->name + ": " + o.error;
        std::fprintf(stderr, "qstudy: error: %s (continuing with the other tasks)\n", o.error.c_str());
      }
      if (samples && o.error.empty()) {
        eval::write_samples(*samples, o);
        samples->flush();
      }
      outcomes.push_back(std::move(o));
      write_json();  // partial results survive a later failure
    }
    const auto groups = eval::aggregate_groups(registry, outcomes, bo);
    std::printf("%s", eval::results_table(outcomes, groups).c_str());
    for (const auto& o : outcomes)
      if (o.model)
        std::fprintf(stderr, "%s: %zu examples in %.1fs (%.1f examples/s, %.0f tokens/s through the model%s)\n",
                     o.task.c_str(), o.model->docs.size(), o.model->seconds, o.model->examples_per_second(),
                     o.model->tokens_per_second(),
                     o.model->request_tokens > o.model->model_tokens
                         ? cat(", ", static_cast<int64_t>(o.model->request_tokens / std::max(1e-9, o.model->seconds)),
                               " request tokens/s with shared prefixes").c_str()
                         : "");
    size_t failed = 0;
    for (const auto& o : outcomes) failed += !o.error.empty();
    if (failed)
      fail(failed, " of ", outcomes.size(), " tasks failed (", a->json_out.empty() ? "see above" : "results of the others are in " + a->json_out,
           ")");
  });
}

}  // namespace qs::cli
