#include "fidelity/paired_generation.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "generate/generator.h"
#include "tokenizer/chat_template.h"

namespace qs::fidelity {

namespace {

std::string store_key(const std::string& model, const std::string& settings, const std::string& prompt_id, int sample) {
  return model + '\x1f' + settings + '\x1f' + prompt_id + '\x1f' + std::to_string(sample);
}

nlohmann::json to_json(const GenRecord& r) {
  return {{"model", r.model},   {"settings", r.settings}, {"prompt_id", r.prompt_id},   {"sample", r.sample},
          {"seed", r.seed},     {"text", r.text},         {"tokens", r.tokens},         {"stop_reason", r.stop_reason},
          {"decode_tok_s", r.decode_tok_s}};
}

}  // namespace

std::string GenSettings::key() const {
  return cat("T=", sampling.temperature, " top_k=", sampling.top_k, " top_p=", sampling.top_p, " min_p=", sampling.min_p,
             " max_new=", max_new_tokens);
}

GenerationStore::GenerationStore(std::string path) : path_(std::move(path)) {
  if (path_.empty() || !file_exists(path_)) return;
  std::ifstream in(path_);
  std::string line;
  int64_t line_no = 0;
  std::streamoff good_end = 0;  // end of the last complete record
  while (std::getline(in, line)) {
    ++line_no;
    const bool complete_line = !in.eof();  // ended by '\n'
    if (line.empty()) {
      good_end = in.tellg();
      continue;
    }
    nlohmann::json j;
    bool parsed = complete_line;
    if (parsed) {
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception&) {
        parsed = false;
      }
    }
    if (!parsed) {
      if (complete_line && in.peek() != EOF)
        fail(path_, ":", line_no, ": invalid JSON (not a generations file written by qstudy?)");
      // The last line of an interrupted run: cut it off so new records start on a fresh line.
      in.close();
      std::error_code ec;
      std::filesystem::resize_file(path_, static_cast<uintmax_t>(good_end), ec);
      if (ec) fail(path_, ": cannot truncate an unfinished last record: ", ec.message());
      break;
    }
    try {
      GenRecord r;
      r.model = j.at("model").get<std::string>();
      r.settings = j.at("settings").get<std::string>();
      r.prompt_id = j.at("prompt_id").get<std::string>();
      r.sample = j.at("sample").get<int>();
      r.seed = j.at("seed").get<uint64_t>();
      r.text = j.at("text").get<std::string>();
      r.tokens = j.at("tokens").get<std::vector<int32_t>>();
      r.stop_reason = j.value("stop_reason", "");
      r.decode_tok_s = j.value("decode_tok_s", 0.0);
      index_[store_key(r.model, r.settings, r.prompt_id, r.sample)] = records_.size();
      records_.push_back(std::move(r));
      good_end = in.tellg();
    } catch (const nlohmann::json::exception& e) {
      fail(path_, ":", line_no, ": missing or mistyped field (", e.what(), ")");
    }
  }
}

const GenRecord* GenerationStore::find(const std::string& model, const std::string& settings,
                                       const std::string& prompt_id, int sample) const {
  auto it = index_.find(store_key(model, settings, prompt_id, sample));
  return it == index_.end() ? nullptr : &records_[it->second];
}

void GenerationStore::append(const GenRecord& r) {
  index_[store_key(r.model, r.settings, r.prompt_id, r.sample)] = records_.size();
  records_.push_back(r);
  if (path_.empty()) return;
  std::ofstream out(path_, std::ios::app);
  out << to_json(r).dump() << '\n';
  out.flush();
  if (!out) fail(path_, ": cannot append generations (disk full?)");
}

uint64_t sample_seed(uint64_t run_seed, const std::string& prompt_id, int sample) {
  uint64_t h = 1469598103934665603ull ^ (run_seed * 0x9e3779b97f4a7c15ull);
  for (unsigned char c : prompt_id) h = (h ^ c) * 1099511628211ull;
  h = (h ^ static_cast<uint64_t>(sample)) * 1099511628211ull;
  return h;
}

std::vector<EncodedPrompt> encode_prompts(const PromptSet& set, const Tokenizer& tok, bool chat,
                                          int64_t max_prompt_tokens, LongPromptPolicy policy) {
  std::unique_ptr<ChatTemplate> tmpl;
  if (chat) {
    if (tok.chat_template().empty())
      fail("--chat: the tokenizer has no chat_template (tokenizer_config.json); drop --chat for raw prompts");
    tmpl = std::make_unique<ChatTemplate>(tok.chat_template());
  }
  std::vector<EncodedPrompt> out;
  int truncated = 0;
  for (const Prompt& p : set.prompts) {
    EncodedPrompt e;
    e.id = p.id;
    e.answer = p.answer;
    if (tmpl) {
      const std::string bos = tok.bos_id() ? tok.id_to_token(*tok.bos_id()) : "";
      const std::string eos = tok.eos_ids().empty() ? "" : tok.id_to_token(tok.eos_ids()[0]);
      const std::string text = tmpl->render(std::vector<ChatMessage>{{"user", p.text}}, ChatOptions{}, bos, eos);
      e.tokens = tok.encode(text, false);  // the template writes BOS itself where the model wants it
    } else {
      e.tokens = tok.encode(p.text, true);
    }
    if (e.tokens.empty()) fail(set.source, ": prompt ", quote(p.id), " encodes to no tokens");
    if (static_cast<int64_t>(e.tokens.size()) > max_prompt_tokens) {
      if (policy == LongPromptPolicy::Refuse)
        fail(set.source, ": prompt ", quote(p.id), " has ", e.tokens.size(), " tokens, more than the ", max_prompt_tokens,
             " the context leaves (use --on-long truncate to keep its last tokens)");
      e.tokens.erase(e.tokens.begin(), e.tokens.end() - max_prompt_tokens);
      ++truncated;
    }
    out.push_back(std::move(e));
  }
  if (truncated)
    std::fprintf(stderr, "qstudy: warning: %d prompt(s) longer than %lld tokens were cut to their last tokens\n", truncated,
                 static_cast<long long>(max_prompt_tokens));
  return out;
}

std::vector<GenRecord> generate_all(const Model& model, const Tokenizer& tok, const std::string& model_name,
                                    const std::vector<EncodedPrompt>& prompts, const GenerateAllOptions& o,
                                    GenerationStore& store) {
  const std::string settings = o.settings.key();
  struct Item {
    size_t prompt;
    int sample;
  };
  std::vector<Item> todo;
  for (size_t p = 0; p < prompts.size(); ++p)
    for (int s = 0; s < o.samples; ++s)
      if (!store.find(model_name, settings, prompts[p].id, s)) todo.push_back({p, s});
  GenerateOptions g;
  g.max_new_tokens = o.settings.max_new_tokens;
  g.sampling = o.settings.sampling;
  g.stop_tokens = o.stop_tokens;
  Progress progress(model_name + " " + settings, static_cast<int64_t>(todo.size()), "gen");
  for (size_t b = 0; b < todo.size(); b += static_cast<size_t>(o.batch)) {
    const size_t e = std::min(todo.size(), b + static_cast<size_t>(o.batch));
    std::vector<GenerationRequest> reqs;
    for (size_t i = b; i < e; ++i)
      reqs.push_back({prompts[todo[i].prompt].tokens, sample_seed(o.seed, prompts[todo[i].prompt].id, todo[i].sample)});
    // Stop sequences are text: decode each sequence's tokens as they come.
    std::vector<std::vector<int32_t>> produced(reqs.size());
    auto on_token = [&](size_t i, int32_t t) {
      if (o.stop_sequences.empty()) return true;
      produced[i].push_back(t);
      const std::string text = tok.decode(produced[i]);
      for (const auto& s : o.stop_sequences)
        if (text.find(s) != std::string::npos) return false;
      return true;
    };
    GenerationStats stats;
    auto gens = generate(model, reqs, g, on_token, &stats);
    for (size_t i = 0; i < gens.size(); ++i) {
      GenRecord r;
      r.model = model_name;
      r.settings = settings;
      r.prompt_id = prompts[todo[b + i].prompt].id;
      r.sample = todo[b + i].sample;
      r.seed = reqs[i].seed;
      r.tokens = gens[i].tokens;
      r.text = tok.decode(r.tokens);
      for (const auto& s : o.stop_sequences) {
        const auto pos = r.text.find(s);
        if (pos != std::string::npos) r.text.resize(pos);
      }
      r.stop_reason = gens[i].stop_reason;
      r.decode_tok_s = stats.decode_tok_s();
      store.append(r);
    }
    progress.add(static_cast<int64_t>(e - b));
  }
  progress.finish();
  std::vector<GenRecord> out;
  for (const auto& p : prompts)
    for (int s = 0; s < o.samples; ++s) out.push_back(*store.find(model_name, settings, p.id, s));
  return out;
}

}  // namespace qs::fidelity
