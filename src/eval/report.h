// What `qstudy eval` writes: the results JSON (close to lm-eval's results.json, with the
// comparison block that makes the baseline-vs-quantized study), per-example JSONL records (so
// flips and bootstrap can be recomputed from files), and a compact terminal table.
//
// Results JSON shape (every number with its sample count):
//   {"results":  {TASK: {"acc", "acc_stderr", "acc_norm", "acc_norm_stderr", ..., "n",
//                        "num_fewshot", "version", "source", "split", "skipped"}},
//    "groups":   {GROUP: {METRIC, METRIC_stderr, "n", "tasks", METRIC_macro}},
//    "baseline_results": {...same as results...}              (with --baseline)
//    "comparison": {TASK or GROUP: {"metric", "n", "baseline", "model", "recovery_pct", "diff",
//                   "diff_stderr", "ci95": [lo, hi], "mcnemar_p", "flips_to_wrong",
//                   "flips_to_right", "flips_to_wrong_pct", "flips_to_right_pct", "verdict",
//                   "metrics": {OTHER_METRIC: {...}}}},
//    "speed":    {TASK: {"model": {"seconds", "examples_per_s", "tokens_per_s", ...}, "baseline"}},
//    "config":   {"model", "model_fingerprint", "scheme", "baseline", ..., "tasks", "num_fewshot",
//                 "limit", "seed", "add_bos", "max_length", "qstudy_version", "date"},
//    "errors":   {TASK: "message"}}                            (tasks that failed; others kept)
// A corpus-level metric (perplexity, bits per byte) is compared by its difference with a paired
// bootstrap CI over documents; recovery, McNemar and flips apply to 0/1 metrics only.
// A difference whose CI contains 0 has the verdict "difference within noise".
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "eval/evaluator.h"
#include "eval/task.h"

namespace qs::eval {

struct TaskOutcome {
  std::string task;
  std::shared_ptr<PreparedTask> prepared;
  std::optional<TaskRun> model, baseline;
  std::optional<TaskComparison> comparison;
  std::string error;  // non-empty: the task failed with this message
};

struct GroupOutcome {
  std::string name, metric;
  AggregateScore model, baseline;
  bool has_baseline = false;
  std::optional<PairedComparison> concatenated;  // flips and McNemar over all member documents
  std::optional<PairedAggregate> paired;          // weighted difference with a stratified CI
  std::vector<std::string> members;
};

// Groups (from the registry) whose member tasks all finished.
std::vector<GroupOutcome> aggregate_groups(const TaskRegistry& registry, const std::vector<TaskOutcome>& outcomes,
                                           const BootstrapOptions& bootstrap);

nlohmann::json results_json(const std::vector<TaskOutcome>& outcomes, const std::vector<GroupOutcome>& groups,
                            const nlohmann::json& config);
// One JSON line per document and model ("model" or "baseline").
void write_samples(std::ostream& out, const TaskOutcome& outcome);
// The terminal table.
std::string results_table(const std::vector<TaskOutcome>& outcomes, const std::vector<GroupOutcome>& groups);

}  // namespace qs::eval
