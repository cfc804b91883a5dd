// qstudy sweep: sampling sensitivity. For every setting of a grid (temperature x top-k x top-p x
// max-new-tokens) the baseline and each quantized model generate the same prompts with the same
// seeds; per model and setting: task accuracy (when the prompts have graded answers), similarity
// to the baseline at that setting, diversity, repetition, fluency under the baseline, length,
// speed and memory. Each format's gaps to the baseline along the grid say where it is most
// sensitive. Generations go to --out/generations.jsonl, so an interrupted sweep resumes.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "cli/commands.h"
#include "cli/paired_run.h"
#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "core/sysinfo.h"
#include "core/timer.h"
#include "fidelity/compare.h"
#include "fidelity/text_metrics.h"

namespace qs::cli {

namespace {

struct SweepArgs {
  PairedRunArgs run;
  std::string temperatures = "0", top_ks = "0", top_ps = "1", max_new = "128";
  double min_p = 0;
  bool json = false;
  CommonOptions common;
};

template <class T>
std::vector<T> parse_list(const std::string& text, const char* flag) {
  std::vector<T> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::istringstream v(item);
    T x;
    if (!(v >> x) || !(v >> std::ws).eof()) fail(flag, ": ", quote(item), " is not a number (expected a list like 0,0.5,1)");
    out.push_back(x);
  }
  if (out.empty()) fail(flag, ": empty list");
  return out;
}

std::vector<fidelity::GenSettings> settings_grid(const SweepArgs& a) {
  std::vector<fidelity::GenSettings> grid;
  for (int n : parse_list<int>(a.max_new, "--max-new-tokens"))
    for (double p : parse_list<double>(a.top_ps, "--top-p"))
      for (int k : parse_list<int>(a.top_ks, "--top-k"))
        for (double t : parse_list<double>(a.temperatures, "--temperature")) {
          fidelity::GenSettings s;
          s.sampling.temperature = t;
          s.sampling.top_k = k;
          s.sampling.top_p = p;
          s.sampling.min_p = a.min_p;
          s.max_new_tokens = n;
          s.sampling.validate();
          require(n >= 1, "--max-new-tokens: expected values >= 1, got ", n);
          grid.push_back(s);
        }
  return grid;
}

nlohmann::json ci_json(const eval::MeanWithCI& m) {
  if (m.n == 0) return nullptr;
  return {m.ci.low, m.ci.high};
}
nlohmann::json mean_json(const eval::MeanWithCI& m) { return m.n == 0 ? nlohmann::json(nullptr) : nlohmann::json(m.mean); }

std::vector<double> finite(const std::vector<double>& x) {
  std::vector<double> out;
  for (double v : x)
    if (std::isfinite(v)) out.push_back(v);
  return out;
}

// One model at one setting.
struct Point {
  std::string setting;
  fidelity::GenSettings settings;
  std::optional<eval::MeanWithCI> accuracy;
  std::optional<fidelity::Comparison> vs_baseline;  // none for the baseline itself
  double distinct1 = 0, distinct2 = 0;
  std::optional<eval::MeanWithCI> self_bleu;  // over prompts, when samples >= 2
  eval::MeanWithCI repetition, mean_logprob, length;
  double tok_s = 0, seconds = 0;
  int64_t rss_bytes = 0;
};

struct Curve {
  std::string model;
  std::vector<Point> points;
};

// `clock` started before `recs` were generated: seconds and memory are read when measuring ends.
Point measure(const std::vector<fidelity::GenRecord>& recs, const fidelity::GenSettings& settings,
              const Stopwatch& clock, const std::vector<fidelity::EncodedPrompt>& prompts,
              const fidelity::PromptSet& set, const fidelity::BaselineScorer& scorer) {
  Point p;
  p.setting = settings.key();
  p.settings = settings;
  std::map<std::string, const fidelity::EncodedPrompt*> by_id;
  for (const auto& e : prompts) by_id[e.id] = &e;
  std::vector<std::string> texts;
  std::vector<double> correct, rep, len;
  std::vector<std::vector<int32_t>> contexts, continuations;
  std::map<std::string, std::vector<std::string>> per_prompt;
  double tok_s = 0;
  for (const auto& r : recs) {
    const fidelity::EncodedPrompt& e = *by_id.at(r.prompt_id);
    texts.push_back(r.text);
    per_prompt[r.prompt_id].push_back(r.text);
    if (set.is_correct && e.answer) correct.push_back(set.is_correct(r.text, *e.answer) ? 1.0 : 0.0);
    rep.push_back(fidelity::repetition_rate(std::span<const int32_t>(r.tokens), 4));
    len.push_back(static_cast<double>(r.tokens.size()));
    contexts.push_back(e.tokens);
    continuations.push_back(r.tokens);
    tok_s += r.decode_tok_s;
  }
  if (!correct.empty()) p.accuracy = eval::mean_with_ci(correct);
  p.distinct1 = fidelity::distinct_n(texts, 1);
  p.distinct2 = fidelity::distinct_n(texts, 2);
  std::vector<double> sb;
  for (const auto& [id, samples] : per_prompt)
    if (samples.size() >= 2) sb.push_back(fidelity::self_bleu(samples));
  if (!sb.empty()) p.self_bleu = eval::mean_with_ci(sb);
  p.repetition = eval::mean_with_ci(rep);
  p.length = eval::mean_with_ci(len);
  p.mean_logprob = eval::mean_with_ci(finite(scorer.mean_logprob(contexts, continuations)));
  p.tok_s = recs.empty() ? 0 : tok_s / static_cast<double>(recs.size());
  p.seconds = clock.seconds();
  p.rss_bytes = current_rss_bytes();
  return p;
}

nlohmann::json point_json(const Point& p) {
  nlohmann::json j = {{"setting", p.setting},
                      {"temperature", p.settings.sampling.temperature},
                      {"top_k", p.settings.sampling.top_k},
                      {"top_p", p.settings.sampling.top_p},
                      {"max_new_tokens", p.settings.max_new_tokens},
                      {"accuracy", p.accuracy ? nlohmann::json(p.accuracy->mean) : nlohmann::json(nullptr)},
                      {"accuracy_ci95", p.accuracy ? ci_json(*p.accuracy) : nlohmann::json(nullptr)},
                      {"distinct1", p.distinct1},
                      {"distinct2", p.distinct2},
                      {"self_bleu", p.self_bleu ? nlohmann::json(p.self_bleu->mean) : nlohmann::json(nullptr)},
                      {"self_bleu_ci95", p.self_bleu ? ci_json(*p.self_bleu) : nlohmann::json(nullptr)},
                      {"repetition", mean_json(p.repetition)},
                      {"repetition_ci95", ci_json(p.repetition)},
                      {"mean_logprob", mean_json(p.mean_logprob)},
                      {"mean_logprob_ci95", ci_json(p.mean_logprob)},
                      {"length", mean_json(p.length)},
                      {"length_ci95", ci_json(p.length)},
                      {"decode_tok_s", p.tok_s},
                      {"seconds", p.seconds},
                      {"rss_bytes", p.rss_bytes}};
  if (p.vs_baseline) {
    const fidelity::Comparison& c = *p.vs_baseline;
    j["rougeL"] = c.text.rougeL_f.mean;
    j["rougeL_ci95"] = ci_json(c.text.rougeL_f);
    j["bleu"] = c.text.corpus_bleu;
    j["chrf"] = c.text.corpus_chrf;
    j["exact_match"] = c.text.exact_match.mean;
    j["token_agreement"] = c.token_agreement.mean;
    j["semantic_sim"] = c.semantic_sim.mean;
    j["semantic_sim_ci95"] = ci_json(c.semantic_sim);
  }
  return j;
}

// Where a model departs most from the baseline along the grid, per measure.
nlohmann::json sensitivity_json(const Curve& base, const Curve& model) {
  struct Largest {
    double value = -1e300;
    std::string setting;
  };
  Largest acc, fluency, dissimilar;
  for (size_t i = 0; i < model.points.size(); ++i) {
    const Point &b = base.points[i], &m = model.points[i];
    if (b.accuracy && m.accuracy && b.accuracy->mean - m.accuracy->mean > acc.value)
      acc = {b.accuracy->mean - m.accuracy->mean, m.setting};
    if (b.mean_logprob.n && m.mean_logprob.n && b.mean_logprob.mean - m.mean_logprob.mean > fluency.value)
      fluency = {b.mean_logprob.mean - m.mean_logprob.mean, m.setting};
    if (m.vs_baseline && 1 - m.vs_baseline->text.rougeL_f.mean > dissimilar.value)
      dissimilar = {1 - m.vs_baseline->text.rougeL_f.mean, m.setting};
  }
  auto item = [](const Largest& l) {
    return l.setting.empty() ? nlohmann::json(nullptr) : nlohmann::json{{"gap", l.value}, {"setting", l.setting}};
  };
  return {{"model", model.model},
          {"largest_accuracy_drop", item(acc)},
          {"largest_logprob_drop", item(fluency)},
          {"largest_rougeL_gap", item(dissimilar)}};
}

void print_curves(const std::vector<Curve>& curves) {
  for (const Curve& c : curves) {
    std::printf("\n%s\n%-40s %7s %8s %8s %7s %7s %8s %7s %8s\n", c.model.c_str(), "setting", "acc", "ROUGE-L",
                "sem.sim", "dist-2", "selfBLEU", "logprob", "rep-4", "tok/s");
    for (const Point& p : c.points) {
      auto opt = [](const std::optional<eval::MeanWithCI>& m, const char* fmt) {
        char buf[32];
        if (!m) return std::string("-");
        std::snprintf(buf, sizeof buf, fmt, m->mean);
        return std::string(buf);
      };
      std::printf("%-40s %7s %8s %8s %7.3f %8s %8.3f %7.3f %8.1f\n", p.setting.c_str(), opt(p.accuracy, "%.3f").c_str(),
                  p.vs_baseline ? cat(p.vs_baseline->text.rougeL_f.mean).substr(0, 6).c_str() : "1",
                  p.vs_baseline ? cat(p.vs_baseline->semantic_sim.mean).substr(0, 6).c_str() : "1", p.distinct2,
                  opt(p.self_bleu, "%.2f").c_str(), p.mean_logprob.mean, p.repetition.mean, p.tok_s);
    }
  }
}

}  // namespace

void add_sweep_command(CLI::App& app) {
  auto a = std::make_shared<SweepArgs>();
  auto* cmd = app.add_subcommand("sweep", "Sampling sensitivity: quantized models against the baseline over a grid of "
                                          "sampling settings");
  add_paired_run_options(cmd, a->run);
  cmd->add_option("--temperature", a->temperatures, "Temperatures, comma-separated (0: greedy)");
  cmd->add_option("--top-k", a->top_ks, "Top-k values, comma-separated (0: off)");
  cmd->add_option("--top-p", a->top_ps, "Top-p values in (0, 1], comma-separated (1: off)");
  cmd->add_option("--max-new-tokens,-n", a->max_new, "Generation lengths, comma-separated");
  cmd->add_option("--min-p", a->min_p, "Min-p for every setting (0: off)");
  cmd->add_flag("--json", a->json, "Print the curves as JSON");
  add_common_options(cmd, a->common);
  cmd->callback([a] {
    apply_common_options(a->common);
    const std::vector<fidelity::GenSettings> grid = settings_grid(*a);  // every value checked first
    const PairedRun run = plan_paired_run(a->run);
    Stopwatch clock;
    LoadedModel base = load_model_and_tokenizer(a->run.baseline);
    int longest = 0;
    for (const auto& s : grid) longest = std::max(longest, s.max_new_tokens);
    const auto encoded = encode_run_prompts(a->run, run, base, longest);
    const std::string& out = a->run.out;
    fidelity::GenerationStore store(out.empty() ? "" : out + "/generations.jsonl");
    fidelity::GenerateAllOptions g = run_generation_options(a->run, run, base);
    fidelity::BaselineScorer scorer(*base.model, *base.tokenizer);

    // The baseline at every setting first: its texts are the reference of each comparison.
    Curve base_curve{"baseline", {}};
    std::vector<std::vector<fidelity::GenRecord>> base_records;
    std::vector<std::vector<std::vector<float>>> base_embeddings;
    for (const auto& s : grid) {
      g.settings = s;
      Stopwatch t;
      base_records.push_back(fidelity::generate_all(*base.model, *base.tokenizer, "baseline", encoded, g, store));
      base_curve.points.push_back(measure(base_records.back(), s, t, encoded, run.prompts, scorer));
      std::vector<std::vector<int32_t>> toks;
      for (const auto& r : base_records.back()) toks.push_back(r.tokens);
      base_embeddings.push_back(scorer.embed(toks));
    }
    std::vector<Curve> curves{base_curve};
    for (const auto& v : run.variants) {
      LoadedModel m = load_variant(v, a->run.baseline);
      check_same_tokenizer(*base.tokenizer, *m.tokenizer, v.name, a->run.force);
      Curve c{v.name, {}};
      for (size_t i = 0; i < grid.size(); ++i) {
        g.settings = grid[i];
        Stopwatch t;
        const auto recs = fidelity::generate_all(*m.model, *m.tokenizer, v.name, encoded, g, store);
        Point p = measure(recs, grid[i], t, encoded, run.prompts, scorer);
        p.vs_baseline = fidelity::compare_generations(base_records[i], recs, base_embeddings[i], scorer);
        c.points.push_back(std::move(p));
      }
      curves.push_back(std::move(c));
    }

    nlohmann::json j = {{"baseline", a->run.baseline.model},
                        {"prompts", run.prompts.source},
                        {"n_prompts", encoded.size()},
                        {"samples", a->run.samples},
                        {"seed", a->run.seed},
                        {"graded", static_cast<bool>(run.prompts.is_correct)},
                        {"seconds", clock.seconds()},
                        {"peak_rss_bytes", peak_rss_bytes()},
                        {"curves", nlohmann::json::array()},
                        {"sensitivity", nlohmann::json::array()}};
    for (const Curve& c : curves) {
      nlohmann::json cj = {{"model", c.model}, {"points", nlohmann::json::array()}};
      for (const Point& p : c.points) cj["points"].push_back(point_json(p));
      j["curves"].push_back(cj);
      if (&c != &curves.front()) j["sensitivity"].push_back(sensitivity_json(curves.front(), c));
    }
    if (!out.empty()) write_file_atomic(out + "/sweep.json", j.dump(2));
    if (a->json) {
      std::printf("%s\n", j.dump(2).c_str());
      return;
    }
    std::printf("%zu prompts x %d samples per setting, %zu settings, against %s (%.1f s)\n", encoded.size(),
                a->run.samples, grid.size(), a->run.baseline.model.c_str(), clock.seconds());
    print_curves(curves);
    for (const auto& s : j["sensitivity"]) {
      const auto& r = s["largest_rougeL_gap"];
      if (!r.is_null())
        std::printf("%s: furthest from the baseline at %s (1 - ROUGE-L = %.3f)\n", s["model"].get<std::string>().c_str(),
                    r["setting"].get<std::string>().c_str(), r["gap"].get<double>());
    }
  });
}

}  // namespace qs::cli
