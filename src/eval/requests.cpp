#include "eval/requests.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <mutex>
#include <set>

#include "core/error.h"
#include "core/files.h"
#include "core/rng.h"
#include "core/thread_pool.h"

namespace qs::eval {

using json = nlohmann::json;

std::string fnv1a_hex(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::pair<std::vector<int32_t>, std::vector<int32_t>> encode_pair(const Tokenizer& tok, std::string context,
                                                                   std::string continuation, bool add_bos,
                                                                   int32_t prefix_token) {
  if (context.empty()) return {{prefix_token}, tok.encode(continuation, add_bos)};
  // Trailing white space belongs to the continuation (a context ending in " " would otherwise
  // tokenize the space on its own).
  const std::string stripped = py_rstrip(context);
  if (stripped.size() < context.size()) {
    continuation = context.substr(stripped.size()) + continuation;
    context = stripped;
  }
  std::vector<int32_t> whole = tok.encode(context + continuation, add_bos);
  std::vector<int32_t> ctx = tok.encode(context, add_bos);
  std::vector<int32_t> cont;
  if (whole.size() > ctx.size()) cont.assign(whole.begin() + static_cast<std::ptrdiff_t>(ctx.size()), whole.end());
  if (ctx.empty()) ctx = {prefix_token};  // a white-space-only context
  return {std::move(ctx), std::move(cont)};
}

std::vector<std::pair<std::vector<int32_t>, std::vector<int32_t>>> rolling_windows(const std::vector<int32_t>& tokens,
                                                                                     int32_t prefix_token,
                                                                                     int64_t max_length) {
  require(max_length >= 1, "rolling windows: max_length must be >= 1");
  std::vector<std::pair<std::vector<int32_t>, std::vector<int32_t>>> out;
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n == 0) return out;
  auto slice = [&](int64_t a, int64_t b) {
    return std::vector<int32_t>(tokens.begin() + a, tokens.begin() + b);
  };
  // The window's input `a` and its predicted tokens `b`; the disjoint context is the part of
  // `a` before the first predicted token.
  auto push = [&](std::vector<int32_t> a, std::vector<int32_t> b) {
    a.resize(a.size() - (b.size() - 1));
    out.emplace_back(std::move(a), std::move(b));
  };
  const int64_t first = std::min(max_length, n);
  std::vector<int32_t> a = {prefix_token};
  a.insert(a.end(), tokens.begin(), tokens.begin() + (first - 1));
  push(std::move(a), slice(0, first));
  int64_t predicted = first;
  while (predicted < n) {
    const int64_t len = std::min(n - predicted, max_length);
    const int64_t end = predicted + len;
    push(slice(end - max_length - 1, end - 1), slice(end - len, end));
    predicted += len;
  }
  return out;
}

namespace {

// Runs fn(i) for i in [0, n) on the default pool; the first exception is rethrown.
template <class Fn>
void parallel_each(size_t n, Fn&& fn) {
  std::exception_ptr error;
  std::mutex mu;
  default_pool().parallel_for(static_cast<int64_t>(n), [&](int64_t b, int64_t e) {
    try {
      for (int64_t i = b; i < e; ++i) fn(static_cast<size_t>(i));
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!error) error = std::current_exception();
    }
  });
  if (error) std::rethrow_exception(error);
}

struct DocSet {
  std::vector<Record> records;
  std::string path;
  std::vector<ReadIssue> skipped;
};

DocSet read_first_existing(const std::vector<SourceSpec>& sources, const std::string& data_dir, bool strict,
                           const std::string& task, const char* what) {
  std::string tried;
  for (const auto& s : sources) {
    const std::string path = resolve_data_path(s.path, data_dir);
    if (!file_exists(path)) {
      tried += (tried.empty() ? "" : ", ") + path;
      continue;
    }
    ReadResult r = read_source(s, data_dir, strict);
    return {std::move(r.records), r.path, std::move(r.skipped)};
  }
  fail("task ", task, ": no ", what, " file found (tried ", tried, "); pass --data-dir");
}

// What a task's templates make of one document.
struct Built {
  std::string text;                  // doc_to_text (not for multiple_input)
  std::vector<std::string> choices;  // doc_to_choice
  int gold = -1;
  std::string target;                // doc_to_target as text (non multiple-choice, or multiple_input)
};

std::vector<std::string> string_list(const json& v, const char* what) {
  if (!v.is_array()) fail(what, " must give a list, got ", quote(python_str(v)));
  std::vector<std::string> out;
  for (const auto& x : v) out.push_back(python_str(x));
  return out;
}

int to_index(const json& v, const std::vector<std::string>& choices) {
  const char* what = "gold index";
  int64_t idx;
  if (v.is_number_integer()) {
    idx = v.get<int64_t>();
  } else if (v.is_string()) {
    const std::string s = py_strip(v.get<std::string>());
    if (!s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }) && s.size() < 10) {
      idx = std::stoll(s);
    } else {
      auto it = std::find(choices.begin(), choices.end(), v.get<std::string>());
      if (it == choices.end()) fail(what, " ", quote(v.get<std::string>()), " is neither an index nor one of the choices");
      idx = it - choices.begin();
    }
  } else {
    fail(what, " must be an index, got ", quote(python_str(v)));
  }
  if (idx < 0 || idx >= static_cast<int64_t>(choices.size()))
    fail(what, " ", idx, " is out of range for ", choices.size(), " choices");
  return static_cast<int>(idx);
}

Built build(const TaskSpec& t, const json& doc) {
  Built b;
  auto stage = [](const char* name, auto&& fn) {
    try {
      fn();
    } catch (const Error& e) {
      fail(name, ": ", e.what());
    }
  };
  if (t.output_type == OutputType::MultipleChoice) {
    stage("doc_to_choice", [&] { b.choices = string_list(t.doc_to_choice.evaluate(doc), "doc_to_choice"); });
    if (b.choices.empty()) fail("doc_to_choice: no choices");
    if (t.multiple_input) {
      stage("doc_to_text", [&] { b.gold = to_index(t.doc_to_text.evaluate(doc), b.choices); });
      stage("doc_to_target", [&] { b.target = t.doc_to_target.render(doc); });
    } else {
      stage("doc_to_text", [&] { b.text = t.doc_to_text.render(doc); });
      stage("doc_to_target", [&] { b.gold = to_index(t.doc_to_target.evaluate(doc), b.choices); });
    }
  } else {
    if (t.output_type != OutputType::LoglikelihoodRolling || !t.doc_to_text.empty())
      stage("doc_to_text", [&] { b.text = t.doc_to_text.render(doc); });
    stage("doc_to_target", [&] { b.target = t.doc_to_target.render(doc); });
  }
  return b;
}

// The text one few-shot example contributes (lm-eval ContextSampler.get_context).
std::string example_text(const TaskSpec& t, const Built& ex) {
  std::string s, target;
  if (t.output_type == OutputType::MultipleChoice && t.multiple_input) {
    s = ex.choices[ex.gold];
    target = ex.target;
  } else if (t.output_type == OutputType::MultipleChoice) {
    s = ex.text;
    target = ex.choices[ex.gold];
  } else {
    s = ex.text;
    target = ex.target;
  }
  if (!target.empty()) s += t.target_delimiter + target + t.fewshot_delimiter;
  return s;
}

uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Applies process_docs to every record; failures are issues.
std::vector<Record> process(const TaskSpec& t, std::vector<Record> records, bool strict, std::vector<ReadIssue>& skipped) {
  if (t.process_docs.empty()) return records;
  std::vector<Record> out;
  out.reserve(records.size());
  for (auto& r : records) {
    try {
      for (const auto& [field, tmpl] : t.process_docs) r.doc[field] = tmpl.evaluate(r.doc);
      out.push_back(std::move(r));
    } catch (const Error& e) {
      std::string msg = std::string("process_docs: ") + e.what();
      if (strict) fail(r.origin, ": task ", t.name, ": ", msg, " (--strict stops at the first bad record)");
      skipped.push_back({r.origin, msg});
    }
  }
  return out;
}

}  // namespace

PreparedTask prepare_task(const TaskSpec& t, const Tokenizer& tok, const PrepareOptions& o) {
  require(o.max_length >= 2, "task ", t.name, ": max_length must be >= 2, got ", o.max_length);
  PreparedTask p;
  p.spec = &t;
  p.num_fewshot = o.num_fewshot >= 0 ? o.num_fewshot : t.num_fewshot;
  if (auto bos = tok.bos_id()) p.prefix_token = *bos;
  else if (!tok.eos_ids().empty()) p.prefix_token = tok.eos_ids().front();

  DocSet eval = read_first_existing(t.dataset, o.data_dir, o.strict, t.name, "data");
  p.source_path = eval.path;
  p.skipped = std::move(eval.skipped);
  std::vector<Record> records = process(t, std::move(eval.records), o.strict, p.skipped);

  // Every valid document, in file order; --limit keeps the first ones (the few-shot pool of a
  // task without a few-shot split is every valid document, so --limit does not change prompts).
  struct Kept {
    Record record;
    Built built;
    size_t index;  // position among the records read
  };
  std::vector<Kept> valid;
  for (size_t i = 0; i < records.size(); ++i) {
    try {
      Built b = build(t, records[i].doc);
      valid.push_back({std::move(records[i]), std::move(b), i});
    } catch (const Error& e) {
      if (o.strict) fail(records[i].origin, ": task ", t.name, ": ", e.what(), " (--strict stops at the first bad record)");
      p.skipped.push_back({records[i].origin, e.what()});
    }
  }
  p.documents_available = static_cast<int64_t>(valid.size());
  if (valid.empty())
    fail("task ", t.name, ": no usable documents in ", p.source_path,
         p.skipped.empty() ? std::string(" (the file holds no records)") : cat(" (", p.skipped.size(), " skipped; first: ", p.skipped.front().text(), ")"));
  const size_t n_kept = o.limit > 0 ? std::min<size_t>(valid.size(), static_cast<size_t>(o.limit)) : valid.size();
  const std::vector<Kept>& kept = valid;

  // Few-shot examples.
  std::vector<Built> shots;
  bool same_split = false;
  if (p.num_fewshot > 0) {
    if (!t.fewshot_dataset.empty()) {
      DocSet fs = read_first_existing(t.fewshot_dataset, o.data_dir, o.strict, t.name, "few-shot");
      p.fewshot_path = fs.path;
      std::vector<ReadIssue> fs_skipped = std::move(fs.skipped);
      for (auto& r : process(t, std::move(fs.records), o.strict, fs_skipped)) {
        try {
          shots.push_back(build(t, r.doc));
        } catch (const Error& e) {
          if (o.strict) fail(r.origin, ": task ", t.name, " (few-shot): ", e.what());
        }
      }
      same_split = p.fewshot_path == p.source_path;
    } else {
      // lm-eval falls back to the evaluation split and leaves the document itself out.
      p.fewshot_path = p.source_path;
      same_split = true;
      for (const auto& k : valid) shots.push_back(k.built);
    }
    const size_t available = shots.size() > (same_split ? 1u : 0u) ? shots.size() - (same_split ? 1 : 0) : 0;
    if (static_cast<size_t>(p.num_fewshot) > available)
      fail("task ", t.name, ": --num-fewshot ", p.num_fewshot, " but the few-shot split (", p.fewshot_path, ") has only ",
           available, " usable examples");
  }

  p.docs.resize(n_kept);
  for (size_t d = 0; d < n_kept; ++d) {
    const Kept& k = kept[d];
    PreparedDoc& doc = p.docs[d];
    doc.doc_id = static_cast<int64_t>(k.index);
    doc.origin = k.record.origin;
    std::string prefix;
    if (!t.description.empty()) {
      try {
        prefix = t.description.render(k.record.doc);
      } catch (const Error& e) {
        fail(k.record.origin, ": task ", t.name, ": description: ", e.what());
      }
    }
    if (p.num_fewshot > 0) {
      std::vector<size_t> picked;
      // With the evaluation split as the pool, position d is the document itself.
      const size_t self = same_split && t.fewshot_dataset.empty() ? d : shots.size();
      if (t.fewshot_sampler == "first_n") {
        for (size_t i = 0; i < shots.size() && picked.size() < static_cast<size_t>(p.num_fewshot); ++i)
          if (i != self) picked.push_back(i);
      } else {
        Rng rng(mix(o.seed ^ mix(static_cast<uint64_t>(doc.doc_id))));
        std::set<size_t> used;
        while (picked.size() < static_cast<size_t>(p.num_fewshot)) {
          const size_t i = static_cast<size_t>(rng.below(shots.size()));
          if (i == self || !used.insert(i).second) continue;
          picked.push_back(i);
        }
      }
      for (size_t i : picked) prefix += example_text(t, shots[i]);
    }
    doc.gold = k.built.gold;
    doc.choices = k.built.choices;
    doc.target = k.built.target;
    switch (t.output_type) {
      case OutputType::MultipleChoice:
        if (t.multiple_input) {
          doc.prompt = prefix;
          for (size_t c = 0; c < doc.choices.size(); ++c) doc.continuations.push_back(t.target_delimiter + doc.target);
        } else {
          doc.prompt = prefix + k.built.text;
          for (const auto& c : doc.choices) doc.continuations.push_back(t.target_delimiter + c);
        }
        break;
      case OutputType::Loglikelihood:
        doc.prompt = prefix + k.built.text;
        doc.continuations = {doc.target};
        break;
      case OutputType::GenerateUntil: doc.prompt = prefix + k.built.text; break;
      case OutputType::LoglikelihoodRolling: {
        std::string units = doc.target;
        if (!t.units_text.empty()) {
          try {
            units = t.units_text.render(k.record.doc);
          } catch (const Error& e) {
            fail(k.record.origin, ": task ", t.name, ": units_text: ", e.what());
          }
        }
        doc.words = static_cast<int64_t>(python_word_split_count(units));
        doc.bytes = static_cast<int64_t>(units.size());
        if (t.engine_perplexity) {
          if (d) p.engine_text.push_back('\n');
          p.engine_text.append(units);
        }
        break;
      }
    }
    std::string key = doc.prompt;
    for (size_t c = 0; c < doc.continuations.size(); ++c) {
      key.push_back(c ? '\x1e' : '\x1f');
      if (t.multiple_input) key.append(doc.choices[c]);
      key.append(doc.continuations[c]);
    }
    if (t.output_type == OutputType::LoglikelihoodRolling) key = doc.target;
    doc.prompt_hash = fnv1a_hex(key);
  }

  if (t.engine_perplexity && static_cast<int64_t>(p.docs.size()) == p.documents_available) {
    for (const auto& s : t.dataset)
      if (resolve_data_path(s.path, o.data_dir) == p.source_path && s.format != "jsonl" && s.format != "json" && s.format != "csv")
        p.engine_text = read_text_file(p.source_path);
  }

  // Tokens, in parallel over documents (the tokenizer is thread-safe).
  std::vector<std::vector<LLRequest>> per_doc(p.docs.size());
  if (t.output_type == OutputType::GenerateUntil) p.gen_prompts.resize(p.docs.size());
  const int64_t max_ctx = o.max_length - t.max_gen_toks;
  if (t.output_type == OutputType::GenerateUntil)
    require(max_ctx >= 1, "task ", t.name, ": max_gen_toks ", t.max_gen_toks, " leaves no room for a prompt in a context of ",
            o.max_length, " tokens");
  parallel_each(p.docs.size(), [&](size_t d) {
    const PreparedDoc& doc = p.docs[d];
    auto& out = per_doc[d];
    try {
      switch (t.output_type) {
        case OutputType::MultipleChoice:
        case OutputType::Loglikelihood:
          for (size_t c = 0; c < doc.continuations.size(); ++c) {
            std::string ctx = t.multiple_input ? doc.prompt + doc.choices[c] : doc.prompt;
            auto [ce, xe] = encode_pair(tok, std::move(ctx), doc.continuations[c], o.add_bos, p.prefix_token);
            if (xe.empty()) fail("the continuation ", quote(doc.continuations[c]), " encodes to no tokens");
            if (static_cast<int64_t>(xe.size()) > o.max_length)
              fail("the continuation has ", xe.size(), " tokens, more than the context of ", o.max_length);
            out.push_back({std::move(ce), std::move(xe), static_cast<int64_t>(d), static_cast<int>(c)});
          }
          break;
        case OutputType::LoglikelihoodRolling: {
          const std::vector<int32_t> tokens = tok.encode(doc.target, o.add_bos);
          int w = 0;
          for (auto& [ce, xe] : rolling_windows(tokens, p.prefix_token, o.max_length))
            out.push_back({std::move(ce), std::move(xe), static_cast<int64_t>(d), w++});
          break;
        }
        case OutputType::GenerateUntil: {
          std::vector<int32_t> ids = tok.encode(doc.prompt, o.add_bos);
          if (static_cast<int64_t>(ids.size()) > max_ctx) ids.erase(ids.begin(), ids.end() - max_ctx);
          if (ids.empty()) ids = {p.prefix_token};
          p.gen_prompts[d] = std::move(ids);
          break;
        }
      }
    } catch (const Error& e) {
      fail(doc.origin, ": task ", t.name, ": ", e.what());
    }
  });
  for (size_t d = 0; d < per_doc.size(); ++d) {
    p.docs[d].first_request = p.requests.size();
    p.docs[d].n_requests = per_doc[d].size();
    for (auto& r : per_doc[d]) p.requests.push_back(std::move(r));
  }
  return p;
}

}  // namespace qs::eval
