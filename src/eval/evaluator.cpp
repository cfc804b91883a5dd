#include "eval/evaluator.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>

#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/timer.h"
#include "generate/generator.h"

namespace qs::eval {

namespace {

// numpy.argmax: the first maximum; a NaN wins (numpy returns the first NaN).
int np_argmax(const std::vector<double>& x) {
  int best = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i])) return static_cast<int>(i);
    if (x[i] > x[best]) best = static_cast<int>(i);
  }
  return best;
}

double bootstrap_stderr(const std::vector<double>& x, uint64_t seed, const std::function<double(double)>& of_mean) {
  const size_t n = x.size();
  if (n < 2) return 0;
  const int B = 1000;
  std::vector<double> values(B);
  for (int b = 0; b < B; ++b) {
    Rng rng(seed ^ (0x9e3779b97f4a7c15ull * static_cast<uint64_t>(b + 1)));
    double sum = 0;
    for (size_t i = 0; i < n; ++i) sum += x[rng.below(n)];
    values[b] = of_mean(sum / static_cast<double>(n));
  }
  return sample_stddev(values);
}

std::string metric_name(const std::string& metric, const std::string& filter) {
  return filter == "none" ? metric : metric + "," + filter;
}

void generate_docs(const PreparedTask& p, const Model& model, const Tokenizer& tok, const EvalOptions& o, TaskRun& run,
                   const std::string& label) {
  const TaskSpec& t = *p.spec;
  std::vector<int32_t> stops = tok.eos_ids();
  for (int32_t id : model.config().eos_token_ids)
    if (std::find(stops.begin(), stops.end(), id) == stops.end()) stops.push_back(id);
  size_t longest_stop = 1;
  for (const auto& s : t.until) longest_stop = std::max(longest_stop, s.size());

  std::vector<size_t> order(p.docs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p.gen_prompts[a].size() > p.gen_prompts[b].size(); });
  Progress progress(label, static_cast<int64_t>(p.docs.size()), "doc");
  const size_t batch = static_cast<size_t>(std::max(1, o.generation_batch));
  for (size_t b = 0; b < order.size(); b += batch) {
    const size_t e = std::min(order.size(), b + batch);
    std::vector<GenerationRequest> reqs;
    std::vector<std::unique_ptr<StreamDecoder>> streams;
    std::vector<std::string> texts(e - b);
    for (size_t k = b; k < e; ++k) {
      reqs.push_back({p.gen_prompts[order[k]], 0});
      run.request_tokens += static_cast<int64_t>(p.gen_prompts[order[k]].size());
      run.model_tokens += static_cast<int64_t>(p.gen_prompts[order[k]].size());
      streams.push_back(std::make_unique<StreamDecoder>(tok, true));
    }
    GenerateOptions go;
    go.max_new_tokens = t.max_gen_toks;
    go.stop_tokens = stops;
    // Stop a sequence as soon as a stop sequence shows up in its text.
    auto on_token = [&](size_t i, int32_t token) {
      std::string& text = texts[i];
      const size_t before = text.size();
      text += streams[i]->push(token);
      const size_t from = before >= longest_stop ? before - longest_stop + 1 : 0;
      for (const auto& s : t.until)
        if (text.find(s, from) != std::string::npos) return false;
      return true;
    };
    GenerationStats gs;
    std::vector<Generation> gens = generate(model, reqs, go, on_token, &gs);
    for (size_t k = b; k < e; ++k) {
      const Generation& g = gens[k - b];
      run.generated_tokens += static_cast<int64_t>(g.tokens.size());
      run.docs[order[k]].generation = cut_at_stop_sequences(tok.decode(g.tokens), t.until);
    }
    progress.add(static_cast<int64_t>(e - b));
  }
  progress.finish();
}

}  // namespace

ChoiceScores score_choices(const std::vector<double>& lls, const std::vector<std::string>& choices, int gold) {
  require(!lls.empty() && lls.size() == choices.size(), "score_choices: ", lls.size(), " log-likelihoods for ",
          choices.size(), " choices");
  ChoiceScores s;
  s.pred = np_argmax(lls);
  std::vector<double> norm(lls.size());
  for (size_t i = 0; i < lls.size(); ++i) norm[i] = lls[i] / static_cast<double>(code_point_count(choices[i]));
  s.pred_norm = np_argmax(norm);
  s.acc = s.pred == gold ? 1.0 : 0.0;
  s.acc_norm = s.pred_norm == gold ? 1.0 : 0.0;
  return s;
}

std::string apply_filter(const FilterSpec& f, const std::string& response) {
  if (!f.regex) return response;
  auto matches = f.regex->findall(response);
  if (matches.empty()) return f.fallback;
  const int64_t n = static_cast<int64_t>(matches.size());
  const int64_t i = f.group_select < 0 ? f.group_select + n : f.group_select;
  if (i < 0 || i >= n) return f.fallback;  // Python would raise IndexError
  const auto& groups = matches[static_cast<size_t>(i)];
  std::string m;
  if (groups.size() == 1) {
    m = groups[0];
  } else {
    auto it = std::find_if(groups.begin(), groups.end(), [](const std::string& g) { return !g.empty(); });
    if (it == groups.end()) return f.fallback;
    m = *it;
  }
  return py_strip(m);
}

bool exact_match(const ExactMatchSpec& spec, std::string prediction, std::string reference) {
  for (const auto& re : spec.regexes_to_ignore) {
    prediction = re->sub(prediction, "");
    reference = re->sub(reference, "");
  }
  if (spec.ignore_case) {
    prediction = py_lower(prediction);
    reference = py_lower(reference);
  }
  if (spec.ignore_punctuation) {
    auto drop = [](std::string s) {
      static const std::string punct = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";  // Python string.punctuation
      s.erase(std::remove_if(s.begin(), s.end(), [](char c) { return punct.find(c) != std::string::npos; }), s.end());
      return s;
    };
    prediction = drop(prediction);
    reference = drop(reference);
  }
  return prediction == reference;
}

std::string cut_at_stop_sequences(std::string text, const std::vector<std::string>& until) {
  for (const auto& s : until) {
    if (s.empty()) continue;
    const size_t at = text.find(s);
    if (at != std::string::npos) text.resize(at);
  }
  return text;
}

TaskRun run_task(const PreparedTask& p, const Model& model, const Tokenizer& tok, const EvalOptions& o,
                 const std::string& label) {
  const TaskSpec& t = *p.spec;
  TaskRun run;
  run.task = t.name;
  run.prepared = &p;
  run.docs.resize(p.docs.size());
  Stopwatch clock;

  if (t.output_type == OutputType::GenerateUntil) {
    generate_docs(p, model, tok, o, run, label);
  } else {
    Progress progress(label, static_cast<int64_t>(p.requests.size()), "req");
    ScoreStats st;
    ScoreOptions so = o.score;
    const std::vector<ScoreResult> res = score_requests(model, p.requests, so, &st, [&](int64_t n) { progress.add(n); });
    progress.finish();
    run.model_tokens = st.model_tokens;
    run.request_tokens = st.request_tokens;
    run.forward_calls = st.forward_calls;
    for (size_t i = 0; i < p.requests.size(); ++i) {
      DocResult& d = run.docs[static_cast<size_t>(p.requests[i].doc)];
      d.lls.push_back(res[i].logprob);
      d.greedy.push_back(res[i].greedy);
    }
  }
  run.seconds = clock.seconds();

  const size_t n = p.docs.size();
  auto add_mean = [&](const std::string& name) {
    const std::vector<double>& v = run.per_doc[name];
    run.metric_names.push_back(name);
    run.metrics[name] = {mean(v), mean_stderr(v), v.size()};
  };
  switch (t.output_type) {
    case OutputType::MultipleChoice: {
      auto& acc = run.per_doc["acc"];
      auto& acc_norm = run.per_doc["acc_norm"];
      for (size_t d = 0; d < n; ++d) {
        DocResult& r = run.docs[d];
        const ChoiceScores s = score_choices(r.lls, p.docs[d].choices, p.docs[d].gold);
        r.pred = s.pred;
        r.pred_norm = s.pred_norm;
        r.scores["acc"] = s.acc;
        r.scores["acc_norm"] = s.acc_norm;
        acc.push_back(s.acc);
        acc_norm.push_back(s.acc_norm);
      }
      for (const auto& m : t.metrics) add_mean(m);
      for (auto it = run.per_doc.begin(); it != run.per_doc.end();)
        it = std::find(t.metrics.begin(), t.metrics.end(), it->first) == t.metrics.end() ? run.per_doc.erase(it) : std::next(it);
      break;
    }
    case OutputType::Loglikelihood: {
      std::vector<double> lls;
      auto& acc = run.per_doc["acc"];
      for (size_t d = 0; d < n; ++d) {
        DocResult& r = run.docs[d];
        const double a = r.greedy.at(0) ? 1.0 : 0.0;
        r.scores["acc"] = a;
        r.scores["ll"] = r.lls.at(0);
        acc.push_back(a);
        lls.push_back(r.lls[0]);
      }
      for (const auto& m : t.metrics) {
        if (m == "acc") {
          add_mean("acc");
        } else {
          run.metric_names.push_back("perplexity");
          run.metrics["perplexity"] = {std::exp(-mean(lls)),
                                       bootstrap_stderr(lls, o.seed, [](double m_) { return std::exp(-m_); }), n};
        }
      }
      break;
    }
    case OutputType::LoglikelihoodRolling: {
      double ll = 0;
      int64_t words = 0, bytes = 0;
      for (size_t d = 0; d < n; ++d) {
        DocResult& r = run.docs[d];
        const double doc_ll = std::accumulate(r.lls.begin(), r.lls.end(), 0.0);
        r.scores["ll"] = doc_ll;
        ll += doc_ll;
        words += p.docs[d].words;
        bytes += p.docs[d].bytes;
      }
      for (const auto& m : t.metrics) {
        run.metric_names.push_back(m);
        double v = m == "word_perplexity" ? std::exp(-ll / static_cast<double>(words))
                   : m == "byte_perplexity" ? std::exp(-ll / static_cast<double>(bytes))
                                            : -ll / static_cast<double>(bytes) / std::log(2.0);
        run.metrics[m] = {v, std::nullopt, n};
      }
      break;
    }
    case OutputType::GenerateUntil: {
      for (const auto& f : t.filters) {
        const std::string name = metric_name("exact_match", f.name);
        auto& v = run.per_doc[name];
        for (size_t d = 0; d < n; ++d) {
          DocResult& r = run.docs[d];
          const std::string pred = apply_filter(f, r.generation);
          r.filtered[f.name] = pred;
          const double s = exact_match(t.exact_match, pred, p.docs[d].target) ? 1.0 : 0.0;
          r.scores[name] = s;
          v.push_back(s);
        }
        add_mean(name);
      }
      break;
    }
  }

  if (t.engine_perplexity) {
    const std::vector<int32_t> tokens = tok.encode(p.engine_text, true);
    PerplexityOptions po;
    po.ctx = std::min<int64_t>(o.engine_ppl_ctx, model.config().max_position_embeddings);
    if (tok.adds_bos()) po.bos = tok.bos_id();
    if (static_cast<int64_t>(tokens.size()) >= po.ctx) run.engine_ppl = compute_perplexity(model, tokens, po);
  }
  return run;
}

const MetricComparison* TaskComparison::find(const std::string& metric) const {
  for (const auto& m : metrics)
    if (m.metric == metric) return &m;
  return nullptr;
}

TaskComparison compare_runs(const TaskRun& base, const TaskRun& model, const BootstrapOptions& bo) {
  require(base.task == model.task && base.docs.size() == model.docs.size(), "comparison of task ", model.task,
          ": the baseline run has ", base.docs.size(), " documents and the model run ", model.docs.size());
  const PreparedTask& p = *model.prepared;
  TaskComparison c;
  c.task = model.task;
  c.primary_metric = p.spec->primary_metric;
  if (p.spec->output_type == OutputType::GenerateUntil) {
    // The task's primary metric names the filter-less metric; pick the first filter's.
    c.primary_metric = model.metric_names.empty() ? "" : model.metric_names.front();
  }
  for (const auto& name : model.metric_names) {
    MetricComparison m;
    m.metric = name;
    auto bi = base.per_doc.find(name), mi = model.per_doc.find(name);
    if (bi != base.per_doc.end() && mi != model.per_doc.end()) {
      m.paired = compare_paired(bi->second, mi->second, bo);
      m.n = m.paired.n;
      c.metrics.push_back(std::move(m));
      continue;
    }
    // Corpus-level metric: recompute it on resampled documents for both runs.
    const size_t n = p.docs.size();
    std::vector<double> bl(n), ml(n), units(n);
    for (size_t d = 0; d < n; ++d) {
      bl[d] = base.docs[d].scores.at("ll");
      ml[d] = model.docs[d].scores.at("ll");
      units[d] = name == "word_perplexity" ? static_cast<double>(p.docs[d].words)
                 : name == "perplexity"    ? 1.0
                                           : static_cast<double>(p.docs[d].bytes);
    }
    auto value = [&](const std::vector<double>& ll, std::span<const uint32_t> idx) {
      double s = 0, u = 0;
      for (uint32_t i : idx) {
        s += ll[i];
        u += units[i];
      }
      if (name == "bits_per_byte") return -s / u / std::log(2.0);
      return std::exp(-s / u);
    };
    std::vector<uint32_t> all(n);
    std::iota(all.begin(), all.end(), 0u);
    m.corpus_level = true;
    m.n = n;
    m.baseline_value = value(bl, all);
    m.model_value = value(ml, all);
    m.difference = m.model_value - m.baseline_value;
    m.difference_ci = bootstrap_ci(n, [&](std::span<const uint32_t> idx) { return value(ml, idx) - value(bl, idx); }, bo);
    c.metrics.push_back(std::move(m));
  }
  return c;
}

}  // namespace qs::eval
