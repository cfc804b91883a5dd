#include "eval/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/progress.h"

namespace qs::eval {

using json = nlohmann::json;

namespace {

// "exact_match,strict-match" -> "exact_match_stderr,strict-match" (lm-eval's naming).
std::string stderr_key(const std::string& metric) {
  const size_t comma = metric.find(',');
  if (comma == std::string::npos) return metric + "_stderr";
  return metric.substr(0, comma) + "_stderr" + metric.substr(comma);
}

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json run_json(const TaskRun& run) {
  const PreparedTask& p = *run.prepared;
  json j = json::object();
  for (const auto& name : run.metric_names) {
    const MetricValue& m = run.metrics.at(name);
    j[name] = number_or_null(m.value);
    j[stderr_key(name)] = m.stderr_ ? number_or_null(*m.stderr_) : json(nullptr);
  }
  j["n"] = run.docs.size();
  j["num_fewshot"] = p.num_fewshot;
  j["version"] = p.spec->version;
  j["output_type"] = output_type_name(p.spec->output_type);
  j["primary_metric"] = run.metric_names.empty() ? "" : (p.spec->output_type == OutputType::GenerateUntil ? run.metric_names.front() : p.spec->primary_metric);
  j["source"] = p.source_path;
  for (const auto& s : p.spec->dataset)
    if (p.source_path.size() >= s.path.size() && p.source_path.compare(p.source_path.size() - s.path.size(), s.path.size(), s.path) == 0) {
      j["split"] = s.split;
      break;
    }
  if (!p.fewshot_path.empty()) j["fewshot_source"] = p.fewshot_path;
  j["documents_available"] = p.documents_available;
  j["skipped"] = p.skipped.size();
  if (run.engine_ppl) {
    j["token_perplexity"] = run.engine_ppl->ppl;
    j["token_perplexity_stderr"] = run.engine_ppl->ppl_stderr;
    j["token_perplexity_ctx"] = run.engine_ppl->ctx;
    j["token_perplexity_tokens"] = run.engine_ppl->tokens_scored;
  }
  return j;
}

json speed_json(const TaskRun& run) {
  return {{"seconds", run.seconds},
          {"examples", run.docs.size()},
          {"examples_per_s", run.examples_per_second()},
          {"tokens_per_s", run.tokens_per_second()},
          {"model_tokens", run.model_tokens},
          {"request_tokens", run.request_tokens},
          {"request_tokens_per_s", run.seconds > 0 ? run.request_tokens / run.seconds : 0.0},
          {"generated_tokens", run.generated_tokens},
          {"forward_calls", run.forward_calls}};
}

const char* verdict_of(const ConfidenceInterval& ci, double) {
  if (ci.contains(0.0)) return verdict_text(Verdict::WithinNoise);
  return ci.high < 0 ? verdict_text(Verdict::ModelWorse) : verdict_text(Verdict::ModelBetter);
}

json paired_json(const std::string& metric, const PairedComparison& c) {
  json j = {{"metric", metric},
            {"n", c.n},
            {"baseline", c.baseline_mean},
            {"model", c.model_mean},
            {"recovery_pct", number_or_null(c.recovery_pct)},
            {"diff", c.difference},
            {"diff_stderr", c.difference_stderr},
            {"ci95", {c.difference_ci.low, c.difference_ci.high}},
            {"verdict", verdict_text(c.verdict())}};
  if (c.binary && c.mcnemar) {
    j["mcnemar_p"] = c.mcnemar->p_value;
    j["mcnemar_log_p"] = c.mcnemar->log_p;
    j["flips_to_wrong"] = c.flips_to_wrong;
    j["flips_to_right"] = c.flips_to_right;
    j["flips_to_wrong_pct"] = c.flips_to_wrong_pct;
    j["flips_to_right_pct"] = c.flips_to_right_pct;
    j["both_right"] = c.both_right;
    j["both_wrong"] = c.both_wrong;
  }
  return j;
}

json metric_comparison_json(const MetricComparison& m) {
  if (!m.corpus_level) return paired_json(m.metric, m.paired);
  return {{"metric", m.metric},
          {"n", m.n},
          {"baseline", m.baseline_value},
          {"model", m.model_value},
          {"ratio", number_or_null(m.model_value / m.baseline_value)},
          {"diff", m.difference},
          {"ci95", {m.difference_ci.low, m.difference_ci.high}},
          {"verdict", verdict_of(m.difference_ci, m.difference)}};
}

json comparison_json(const TaskComparison& c) {
  json j;
  const MetricComparison* primary = c.find(c.primary_metric);
  if (!primary && !c.metrics.empty()) primary = &c.metrics.front();
  if (primary) j = metric_comparison_json(*primary);
  json others = json::object();
  for (const auto& m : c.metrics)
    if (&m != primary) others[m.metric] = metric_comparison_json(m);
  if (!others.empty()) j["metrics"] = others;
  return j;
}

std::string fmt(const char* f, double v) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string ci_text(const ConfidenceInterval& ci) {
  std::string s(1, '[');
  s.append(fmt("%+.4f", ci.low)).append(", ").append(fmt("%+.4f", ci.high)).push_back(']');
  return s;
}

}  // namespace

std::vector<GroupOutcome> aggregate_groups(const TaskRegistry& registry, const std::vector<TaskOutcome>& outcomes,
                                           const BootstrapOptions& bootstrap) {
  std::map<std::string, const TaskOutcome*> by_task;
  for (const auto& o : outcomes)
    if (o.error.empty() && o.model) by_task[o.task] = &o;
  std::vector<GroupOutcome> out;
  for (const auto& [name, g] : registry.groups()) {
    bool complete = !g.tasks.empty();
    for (const auto& t : g.tasks) complete = complete && by_task.count(t);
    if (!complete) continue;
    GroupOutcome go;
    go.name = name;
    go.members = g.tasks;
    go.metric = by_task[g.tasks.front()]->prepared->spec->primary_metric;
    std::vector<TaskScore> model_scores, base_scores;
    std::vector<double> cat_model, cat_base;
    std::vector<PairedTask> paired;
    go.has_baseline = true;
    for (const auto& t : g.tasks) {
      const TaskOutcome& o = *by_task[t];
      const MetricValue& m = o.model->metrics.at(go.metric);
      model_scores.push_back({t, m.value, m.stderr_.value_or(0), m.n});
      if (o.baseline) {
        const MetricValue& b = o.baseline->metrics.at(go.metric);
        base_scores.push_back({t, b.value, b.stderr_.value_or(0), b.n});
        const auto& mv = o.model->per_doc.at(go.metric);
        const auto& bv = o.baseline->per_doc.at(go.metric);
        cat_model.insert(cat_model.end(), mv.begin(), mv.end());
        cat_base.insert(cat_base.end(), bv.begin(), bv.end());
        paired.push_back({bv, mv});
      } else {
        go.has_baseline = false;
      }
    }
    go.model = aggregate_tasks(model_scores);
    if (go.has_baseline) {
      go.baseline = aggregate_tasks(base_scores);
      go.concatenated = compare_paired(cat_base, cat_model, bootstrap);
      go.paired = compare_paired_tasks(paired, bootstrap);
    }
    out.push_back(std::move(go));
  }
  return out;
}

json results_json(const std::vector<TaskOutcome>& outcomes, const std::vector<GroupOutcome>& groups, const json& config) {
  json j = {{"results", json::object()}};
  json base = json::object(), cmp = json::object(), speed = json::object(), errors = json::object();
  for (const auto& o : outcomes) {
    if (!o.error.empty()) errors[o.task] = o.error;
    if (o.model) {
      j["results"][o.task] = run_json(*o.model);
      speed[o.task]["model"] = speed_json(*o.model);
    }
    if (o.baseline) {
      base[o.task] = run_json(*o.baseline);
      speed[o.task]["baseline"] = speed_json(*o.baseline);
    }
    if (o.comparison) cmp[o.task] = comparison_json(*o.comparison);
  }
  json gj = json::object();
  for (const auto& g : groups) {
    json e = {{g.metric, g.model.weighted_mean},
              {g.metric + "_stderr", number_or_null(g.model.pooled_stderr)},
              {g.metric + "_macro", g.model.macro_mean},
              {"n", g.model.n_examples},
              {"tasks", g.model.n_tasks}};
    gj[g.name] = e;
    if (g.has_baseline && g.concatenated && g.paired) {
      json c = paired_json(g.metric, *g.concatenated);
      // The weighted difference's CI stratified by task (each task resampled on its own).
      c["ci95"] = {g.paired->weighted_ci.low, g.paired->weighted_ci.high};
      c["verdict"] = verdict_of(g.paired->weighted_ci, g.paired->weighted_difference);
      c["macro_diff"] = g.paired->macro_difference;
      c["macro_ci95"] = {g.paired->macro_ci.low, g.paired->macro_ci.high};
      c["tasks"] = g.paired->n_tasks;
      cmp[g.name] = c;
    }
  }
  if (!gj.empty()) j["groups"] = gj;
  if (!base.empty()) j["baseline_results"] = base;
  if (!cmp.empty()) j["comparison"] = cmp;
  j["speed"] = speed;
  j["config"] = config;
  if (!errors.empty()) j["errors"] = errors;
  return j;
}

void write_samples(std::ostream& out, const TaskOutcome& o) {
  if (!o.prepared) return;
  const PreparedTask& p = *o.prepared;
  auto emit = [&](const TaskRun& run, const char* which) {
    for (size_t d = 0; d < run.docs.size(); ++d) {
      const PreparedDoc& doc = p.docs[d];
      const DocResult& r = run.docs[d];
      json j = {{"task", o.task}, {"doc_id", doc.doc_id}, {"origin", doc.origin}, {"model", which},
                {"prompt_hash", doc.prompt_hash}};
      switch (p.spec->output_type) {
        case OutputType::MultipleChoice: {
          j["gold"] = doc.gold;
          j["choices_ll"] = r.lls;
          j["choices_greedy"] = r.greedy;
          std::vector<size_t> lens;
          for (const auto& c : doc.choices) lens.push_back(code_point_count(c));
          j["choice_chars"] = lens;
          j["pred"] = r.pred;
          j["pred_norm"] = r.pred_norm;
          break;
        }
        case OutputType::Loglikelihood:
          j["target"] = doc.target;
          j["ll"] = r.lls.at(0);
          j["greedy"] = static_cast<bool>(r.greedy.at(0));
          break;
        case OutputType::LoglikelihoodRolling:
          j["ll"] = r.scores.at("ll");
          j["windows"] = r.lls.size();
          j["words"] = doc.words;
          j["bytes"] = doc.bytes;
          break;
        case OutputType::GenerateUntil:
          j["target"] = doc.target;
          j["generation"] = r.generation;
          j["filtered"] = r.filtered;
          break;
      }
      for (const auto& [k, v] : r.scores)
        if (k != "ll") j[k] = v;
      out << j.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
    }
  };
  if (o.model) emit(*o.model, "model");
  if (o.baseline) emit(*o.baseline, "baseline");
}

std::string results_table(const std::vector<TaskOutcome>& outcomes, const std::vector<GroupOutcome>& groups) {
  bool with_base = false;
  for (const auto& o : outcomes) with_base = with_base || o.baseline.has_value();
  std::string s;
  char line[512];
  if (with_base) {
    std::snprintf(line, sizeof line, "%-30s %-26s %6s %8s %8s %8s %8s %-21s %7s %9s %11s  %s\n", "task", "metric", "n",
                  "model", "±", "baseline", "diff", "95% CI of diff", "recov%", "McNemar p", "flips -/+", "verdict");
  } else {
    std::snprintf(line, sizeof line, "%-30s %-26s %6s %9s %9s\n", "task", "metric", "n", "value", "±");
  }
  s += line;
  std::map<std::string, const GroupOutcome*> group_by_name;
  for (const auto& g : groups) group_by_name[g.name] = &g;
  for (const auto& o : outcomes) {
    if (!o.error.empty()) {
      std::snprintf(line, sizeof line, "%-30s FAILED: %s\n", o.task.c_str(), o.error.substr(0, 200).c_str());
      s += line;
      continue;
    }
    if (!o.model) continue;
    for (const auto& name : o.model->metric_names) {
      const MetricValue& m = o.model->metrics.at(name);
      const std::string err = m.stderr_ ? fmt("%.4f", *m.stderr_) : "-";
      if (!with_base || !o.comparison) {
        std::snprintf(line, sizeof line, "%-30s %-26s %6zu %9.4f %9s\n", o.task.c_str(), name.c_str(), m.n, m.value,
                      err.c_str());
        s += line;
        continue;
      }
      const MetricComparison* c = o.comparison->find(name);
      if (!c) continue;
      const ConfidenceInterval& ci_v = c->corpus_level ? c->difference_ci : c->paired.difference_ci;
      const std::string ci = ci_text(ci_v);
      const double base_v = c->corpus_level ? c->baseline_value : c->paired.baseline_mean;
      const double diff = c->corpus_level ? c->difference : c->paired.difference;
      std::string recov = c->corpus_level ? "-" : fmt("%.1f", c->paired.recovery_pct);
      std::string p = "-", flips = "-";
      if (!c->corpus_level && c->paired.mcnemar) {
        p = fmt("%.3g", c->paired.mcnemar->p_value);
        flips = std::to_string(c->paired.flips_to_wrong) + "/" + std::to_string(c->paired.flips_to_right);
      }
      std::snprintf(line, sizeof line, "%-30s %-26s %6zu %8.4f %8s %8.4f %+8.4f %-21s %7s %9s %11s  %s\n", o.task.c_str(),
                    name.c_str(), m.n, m.value, err.c_str(), base_v, diff, ci.c_str(), recov.c_str(), p.c_str(),
                    flips.c_str(), ci_v.contains(0.0) ? "within noise" : (ci_v.high < 0 ? "lower" : "higher"));
      s += line;
    }
    if (o.model->engine_ppl) {
      const auto& e = *o.model->engine_ppl;
      std::snprintf(line, sizeof line, "%-30s %-26s %6lld %9.4f %9.4f   (llama.cpp convention, ctx %lld%s)\n",
                    o.task.c_str(), "token_perplexity", static_cast<long long>(e.tokens_scored), e.ppl, e.ppl_stderr,
                    static_cast<long long>(e.ctx),
                    o.baseline && o.baseline->engine_ppl ? cat("; baseline ", fmt("%.4f", o.baseline->engine_ppl->ppl)).c_str() : "");
      s += line;
    }
  }
  for (const auto& g : groups) {
    std::string err = fmt("%.4f", g.model.pooled_stderr);
    if (!g.has_baseline) {
      std::snprintf(line, sizeof line, "%-30s %-26s %6zu %9.4f %9s   (%zu tasks, weighted)\n", g.name.c_str(),
                    g.metric.c_str(), g.model.n_examples, g.model.weighted_mean, err.c_str(), g.model.n_tasks);
    } else {
      const auto& c = *g.concatenated;
      const auto& pa = *g.paired;
      const std::string ci = ci_text(pa.weighted_ci);
      std::snprintf(line, sizeof line, "%-30s %-26s %6zu %8.4f %8s %8.4f %+8.4f %-21s %7s %9s %11s  %s\n", g.name.c_str(),
                    g.metric.c_str(), g.model.n_examples, g.model.weighted_mean, err.c_str(), g.baseline.weighted_mean,
                    pa.weighted_difference, ci.c_str(), fmt("%.1f", pa.weighted_recovery_pct).c_str(),
                    c.mcnemar ? fmt("%.3g", c.mcnemar->p_value).c_str() : "-",
                    (std::to_string(c.flips_to_wrong) + "/" + std::to_string(c.flips_to_right)).c_str(),
                    pa.weighted_ci.contains(0.0) ? "within noise" : (pa.weighted_ci.high < 0 ? "lower" : "higher"));
    }
    s += line;
  }
  return s;
}

}  // namespace qs::eval
