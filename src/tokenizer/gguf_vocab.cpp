// GGUF vocabularies (tokenizer.ggml.* metadata) in and out of the tokenization pipeline.
//
// Reading. Token types (llama.cpp's llama_token_type): 1 normal, 2 unknown, 3 control,
// 4 user-defined, 5 unused, 6 byte (<0xNN>); 0 (undefined) counts as normal.
//  - "llama": SentencePiece BPE. Text is prefixed with "▁" (tokenizer.ggml.add_space_prefix,
//    default true) and spaces become "▁"; the adjacent pair whose concatenation is a normal
//    token with the highest score merges first, leftmost on ties (SentencePiece, llama.cpp's
//    llm_tokenizer_spm and llama2.c all do this); characters left without a token become byte
//    tokens <0xNN>, or the unknown token. Control, unknown and user-defined tokens written in
//    the text are recognized as themselves. This is the pipeline of a Llama-2 tokenizer.json,
//    with merge ranks taken from the scores.
//  - "gpt2": byte-level BPE with the ranked merges; control tokens (special) and user-defined
//    tokens (not special) are added tokens. tokenizer.ggml.pre picks the split regex:
//    "llama-bpe" (aliases "llama3", "llama-v3") = Llama-3's, with ignore_merges as in its
//    tokenizer.json; "qwen2" = Qwen2's, with the NFC normalizer of Qwen's tokenizer.json;
//    "gpt-2" and "default" = GPT-2's ByteLevel regex. Other names are refused.
//  - BOS/EOS: tokenizer.ggml.bos/eos_token_id; add_bos_token / add_eos_token (llama.cpp's
//    defaults when absent: BOS added for "llama" and for "llama-bpe"); eot/eom ids also end
//    generation. tokenizer.chat_template is kept.
// Where llama.cpp itself tokenizes differently from the tokenizer.json these vocabularies come
// from (qstudy follows the tokenizer.json): llama.cpp does not NFC-normalize for "qwen2";
// its "default" pre-tokenizer adds splits of punctuation and digit runs to GPT-2's regex; its
// SPM tokenizer prefixes a space after special tokens only when add_space_prefix is set and
// merges by concatenated text even when a part is not a token.
//
// Writing (Tokenizer::to_gguf_metadata): what convert_hf_to_gguf.py writes for the same
// tokenizer: model, pre, tokens (padded with "[PADn]" unused tokens to the model's vocabulary),
// scores (SentencePiece), token_type, merges (byte-level), special ids, add_* flags, template.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/gguf.h"
#include "tokenizer/loaders.h"
#include "tokenizer/tokenizer.h"

namespace qs {

namespace {

using json = nlohmann::json;

enum TokenType : int32_t { kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

constexpr std::string_view kSpacePiece = "\xE2\x96\x81";  // "▁"
constexpr std::string_view kLlama3Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kGpt2Split = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

enum class Pre { kLlama3, kQwen2, kGpt2 };

std::optional<Pre> pre_from_name(std::string_view name) {
  if (name == "llama-bpe" || name == "llama3" || name == "llama-v3") return Pre::kLlama3;
  if (name == "qwen2") return Pre::kQwen2;
  if (name == "gpt-2" || name == "default") return Pre::kGpt2;
  return std::nullopt;
}

// A GGUF vocabulary, read and checked.
struct GgufVocab {
  std::string source;
  std::string model;
  std::string pre = "default";
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  std::vector<std::pair<std::string, std::string>> merges;
  std::optional<int32_t> bos, eos, unk, pad, eot, eom;
  bool add_bos = false, add_eos = false, add_space_prefix = false;
  std::string chat_template;
};

GgufVocab read_vocab(const GgufFile& f) {
  GgufVocab v;
  v.source = f.path;
  auto model = f.opt_string("tokenizer.ggml.model");
  if (!model) fail(f.path, ": missing metadata key 'tokenizer.ggml.model' (the file carries no tokenizer)");
  v.model = *model;
  if (v.model != "llama" && v.model != "gpt2")
    f.bad_key("tokenizer.ggml.model", cat(quote(v.model), " is not supported (expected \"llama\" for SentencePiece "
                                          "or \"gpt2\" for byte-level BPE)"));
  const GgufValue* tokens = f.find("tokenizer.ggml.tokens");
  if (!tokens) fail(f.path, ": missing metadata key 'tokenizer.ggml.tokens'");
  if (!tokens->as_strings()) f.bad_key("tokenizer.ggml.tokens", cat("expected an array of strings, got ", tokens->describe()));
  v.tokens = *tokens->as_strings();
  const auto n = static_cast<int64_t>(v.tokens.size());
  if (n == 0 || n > (int64_t{1} << 30)) f.bad_key("tokenizer.ggml.tokens", cat("holds ", n, " tokens"));
  for (int64_t i = 0; i < n; ++i)
    if (!tok::is_valid_utf8(v.tokens[static_cast<size_t>(i)]))
      f.bad_key("tokenizer.ggml.tokens", cat("token ", i, " is not valid UTF-8"));

  if (const GgufValue* s = f.find("tokenizer.ggml.scores")) {
    auto scores = s->as_floats();
    if (!scores || static_cast<int64_t>(scores->size()) != n)
      f.bad_key("tokenizer.ggml.scores", cat("expected ", n, " f32 scores (one per token), got ", s->describe()));
    v.scores = std::move(*scores);
  } else {
    v.scores.assign(static_cast<size_t>(n), 0.0f);
  }
  if (const GgufValue* t = f.find("tokenizer.ggml.token_type")) {
    auto types = t->as_ints();
    if (!types || static_cast<int64_t>(types->size()) != n)
      f.bad_key("tokenizer.ggml.token_type", cat("expected ", n, " integer types (one per token), got ", t->describe()));
    for (int64_t i = 0; i < n; ++i) {
      const int64_t ty = (*types)[static_cast<size_t>(i)];
      if (ty < 0 || ty > kByte) f.bad_key("tokenizer.ggml.token_type", cat("token ", i, " has type ", ty, " (expected 0-6)"));
      v.types.push_back(ty == kUndefined ? int32_t{kNormal} : static_cast<int32_t>(ty));
    }
  } else {
    v.types.assign(static_cast<size_t>(n), kNormal);
  }
  for (auto [key, slot] : {std::pair{"tokenizer.ggml.bos_token_id", &v.bos}, {"tokenizer.ggml.eos_token_id", &v.eos},
                           {"tokenizer.ggml.unknown_token_id", &v.unk}, {"tokenizer.ggml.padding_token_id", &v.pad},
                           {"tokenizer.ggml.eot_token_id", &v.eot}, {"tokenizer.ggml.eom_token_id", &v.eom}}) {
    if (auto id = f.opt_int(key)) {
      if (*id < 0 || *id >= n) f.bad_key(key, cat("id ", *id, " is outside the vocabulary of ", n, " tokens"));
      *slot = static_cast<int32_t>(*id);
    }
  }
  v.pre = f.opt_string("tokenizer.ggml.pre").value_or("default");
  if (v.model == "gpt2") {
    if (!pre_from_name(v.pre))
      f.bad_key("tokenizer.ggml.pre", cat(quote(v.pre), " is not a pre-tokenizer qstudy knows (llama-bpe, qwen2, gpt-2, "
                                          "default)"));
    const GgufValue* m = f.find("tokenizer.ggml.merges");
    if (!m) fail(f.path, ": missing metadata key 'tokenizer.ggml.merges' (a gpt2 vocabulary needs its merges)");
    if (!m->as_strings()) f.bad_key("tokenizer.ggml.merges", cat("expected an array of strings, got ", m->describe()));
    const auto& list = *m->as_strings();
    v.merges.reserve(list.size());
    for (size_t i = 0; i < list.size(); ++i) {
      // "left right"; the left part may itself start with a space (llama.cpp looks from byte 1).
      if (!tok::is_valid_utf8(list[i])) f.bad_key("tokenizer.ggml.merges", cat("merge ", i, " is not valid UTF-8"));
      const size_t cut = list[i].find(' ', 1);
      if (cut == std::string::npos)
        f.bad_key("tokenizer.ggml.merges", cat("merge ", i, " ", quote(list[i]), " is not \"left right\""));
      v.merges.emplace_back(list[i].substr(0, cut), list[i].substr(cut + 1));
    }
  }
  const bool spm = v.model == "llama";
  v.add_bos = f.opt_bool("tokenizer.ggml.add_bos_token").value_or(spm || pre_from_name(v.pre) == Pre::kLlama3);
  v.add_eos = f.opt_bool("tokenizer.ggml.add_eos_token").value_or(false);
  v.add_space_prefix = spm && f.opt_bool("tokenizer.ggml.add_space_prefix").value_or(true);
  if (v.add_bos && !v.bos) fail(f.path, ": tokenizer.ggml.add_bos_token is true but there is no tokenizer.ggml.bos_token_id");
  if (v.add_eos && !v.eos) fail(f.path, ": tokenizer.ggml.add_eos_token is true but there is no tokenizer.ggml.eos_token_id");
  v.chat_template = f.opt_string("tokenizer.chat_template").value_or("");
  if (!tok::is_valid_utf8(v.chat_template)) f.bad_key("tokenizer.chat_template", "not valid UTF-8");
  if (!tok::is_valid_utf8(v.pre)) f.bad_key("tokenizer.ggml.pre", "not valid UTF-8");
  return v;
}

// ---- "llama": SentencePiece BPE -------------------------------------------------------------

// Dense ranks of the scores of normal tokens, highest first (equal scores share a rank; the BPE
// model then takes the leftmost pair). -1: not a merge result.
std::vector<int32_t> spm_ranks(const GgufVocab& v) {
  std::vector<float> distinct;
  for (size_t i = 0; i < v.tokens.size(); ++i)
    if (v.types[i] == kNormal && !std::isnan(v.scores[i])) distinct.push_back(v.scores[i]);
  std::sort(distinct.begin(), distinct.end(), std::greater<float>());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  std::vector<int32_t> ranks(v.tokens.size(), -1);
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    if (v.types[i] != kNormal || std::isnan(v.scores[i])) continue;
    ranks[i] = static_cast<int32_t>(std::lower_bound(distinct.begin(), distinct.end(), v.scores[i], std::greater<float>()) -
                                    distinct.begin());
  }
  return ranks;
}

struct SpmMerge {
  int32_t left, right, result, rank;
};

// Every way a normal token splits into two tokens of the unit vocabulary.
std::vector<SpmMerge> spm_merges(const GgufVocab& v, const tok::StringIdMap& units) {
  const std::vector<int32_t> ranks = spm_ranks(v);
  std::vector<SpmMerge> out;
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    if (ranks[id] < 0) continue;
    const std::string_view t = v.tokens[id];
    for (size_t k = tok::utf8_char_length(static_cast<unsigned char>(t[0])); k < t.size();
         k += tok::utf8_char_length(static_cast<unsigned char>(t[k]))) {
      const int32_t left = units.find(t.substr(0, k));
      if (left < 0) continue;
      const int32_t right = units.find(t.substr(k));
      if (right >= 0) out.push_back({left, right, static_cast<int32_t>(id), ranks[id]});
    }
  }
  return out;
}

int byte_token_value(std::string_view t) {
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
  auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
  const int hi = hex(t[3]), lo = hex(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

std::unique_ptr<tok::Core> build_spm(const GgufVocab& v) {
  using namespace tok;
  auto core = std::make_unique<Core>();
  const size_t n = v.tokens.size();
  core->id_to_token = v.tokens;
  core->token_to_id.reserve(n);
  for (size_t id = 0; id < n; ++id) {
    if (v.types[id] == kUnused) continue;
    if (!core->token_to_id.insert(v.tokens[id], static_cast<int32_t>(id)))
      fail(v.source, ": metadata key 'tokenizer.ggml.tokens': token ", id, " ", qs::quote(v.tokens[id]),
           " duplicates token ", core->token_to_id.find(v.tokens[id]));
  }
  for (size_t id = 0; id < n; ++id) {
    const int32_t t = v.types[id];
    if ((t == kControl || t == kUnknown || t == kUserDefined) && !v.tokens[id].empty())
      core->added.push_back({v.tokens[id], static_cast<int32_t>(id), t != kUserDefined, false, false});
  }
  core->finish_added_tokens();
  core->id_exists.assign(n, 1);

  if (v.add_space_prefix) {
    Normalizer prefix(Normalizer::Kind::kPrepend);
    prefix.text = std::string(kSpacePiece);
    core->normalizers.push_back(prefix);
  }
  Normalizer spaces(Normalizer::Kind::kReplace);
  spaces.regex = Regex::literal(" ", v.source);
  spaces.text = std::string(kSpacePiece);
  core->normalizers.push_back(spaces);

  BpeModel& bpe = core->model;
  bpe.units = BpeModel::Units::kChars;
  bpe.unit_vocab = core->token_to_id;
  for (size_t id = 0; id < n; ++id) {
    if (v.types[id] != kByte) continue;
    const int b = byte_token_value(v.tokens[id]);
    if (b < 0) fail(v.source, ": metadata key 'tokenizer.ggml.tokens': byte token ", id, " ", qs::quote(v.tokens[id]),
                    " is not <0xNN>");
    bpe.byte_token[b] = static_cast<int32_t>(id);
    bpe.byte_fallback = true;
  }
  bpe.fuse_unk = true;
  bpe.unk_id = v.unk.value_or(-1);
  std::vector<std::string_view> results;
  for (const SpmMerge& m : spm_merges(v, bpe.unit_vocab)) {
    bpe.merges.insert(m.left, m.right, Merge{m.rank, m.result});
    results.push_back(v.tokens[static_cast<size_t>(m.result)]);
  }
  bpe.enable_word_split(kSpacePiece, results);

  if (v.add_bos) core->prefix_ids = {*v.bos};
  if (v.add_eos) core->suffix_ids = {*v.eos};
  core->bos_id = v.bos;
  core->has_decoder = true;
  Decoder replace(Decoder::Kind::kReplace);
  replace.regex = Regex::literal(kSpacePiece, v.source);
  replace.content = " ";
  core->decoders = {replace, Decoder(Decoder::Kind::kByteFallback), Decoder(Decoder::Kind::kFuse)};
  if (v.add_space_prefix) {
    Decoder strip(Decoder::Kind::kStrip);
    strip.content = " ";
    strip.start = 1;
    core->decoders.push_back(strip);
  }
  core->chat_template = v.chat_template;
  return core;
}

// tokenizer.json equivalent of a "llama" vocabulary (for to_hf_json): merges ranked by score,
// longer results first among equal scores (what a rank list can say of SentencePiece's
// leftmost rule, see llama2c.cpp).
json spm_hf_json(const GgufVocab& v) {
  tok::StringIdMap units;
  for (size_t id = 0; id < v.tokens.size(); ++id)
    if (v.types[id] != kUnused) units.insert(v.tokens[id], static_cast<int32_t>(id));
  std::vector<SpmMerge> merges = spm_merges(v, units);
  std::sort(merges.begin(), merges.end(), [&](const SpmMerge& a, const SpmMerge& b) {
    if (a.rank != b.rank) return a.rank < b.rank;
    const size_t la = v.tokens[static_cast<size_t>(a.result)].size(), lb = v.tokens[static_cast<size_t>(b.result)].size();
    if (la != lb) return la > lb;
    return std::tie(a.result, a.left, a.right) < std::tie(b.result, b.left, b.right);
  });
  json vocab = json::object(), merge_list = json::array(), added = json::array();
  for (size_t id = 0; id < v.tokens.size(); ++id) vocab[v.tokens[id]] = id;
  for (const SpmMerge& m : merges)
    merge_list.push_back({v.tokens[static_cast<size_t>(m.left)], v.tokens[static_cast<size_t>(m.right)]});
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    const int32_t t = v.types[id];
    if (t == kControl || t == kUnknown || t == kUserDefined)
      added.push_back({{"id", id}, {"content", v.tokens[id]}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                       {"normalized", false}, {"special", t != kUserDefined}});
  }
  json normalizers = json::array();
  if (v.add_space_prefix) normalizers.push_back({{"type", "Prepend"}, {"prepend", kSpacePiece}});
  normalizers.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpacePiece}});
  json decoders = json::array({{{"type", "Replace"}, {"pattern", {{"String", kSpacePiece}}}, {"content", " "}},
                               {{"type", "ByteFallback"}}, {{"type", "Fuse"}}});
  if (v.add_space_prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  json out = {{"version", "1.0"},
              {"truncation", nullptr},
              {"padding", nullptr},
              {"added_tokens", added},
              {"normalizer", {{"type", "Sequence"}, {"normalizers", normalizers}}},
              {"pre_tokenizer", nullptr},
              {"post_processor", nullptr},
              {"decoder", {{"type", "Sequence"}, {"decoders", decoders}}}};
  out["model"] = {{"type", "BPE"},          {"dropout", nullptr},       {"unk_token", v.unk ? json(v.tokens[*v.unk]) : json()},
                  {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr}, {"fuse_unk", true},
                  {"byte_fallback", true},  {"ignore_merges", false},   {"vocab", std::move(vocab)},
                  {"merges", std::move(merge_list)}};
  return out;
}

json hf_config_json(const GgufVocab& v) {
  auto token = [&](const std::optional<int32_t>& id) { return id ? json(v.tokens[static_cast<size_t>(*id)]) : json(); };
  json c = {{"bos_token", token(v.bos)}, {"eos_token", token(v.eos)},   {"unk_token", token(v.unk)},
            {"pad_token", token(v.pad)}, {"add_bos_token", v.add_bos}, {"add_eos_token", v.add_eos},
            {"clean_up_tokenization_spaces", false}};
  if (v.model == "llama") c["legacy"] = true;
  if (!v.chat_template.empty()) c["chat_template"] = v.chat_template;
  return c;
}

// ---- "gpt2": byte-level BPE ----------------------------------------------------------------

// tokenizer.json text of a "gpt2" vocabulary; the large parts are written as text directly.
std::string gpt2_hf_json_text(const GgufVocab& v) {
  const Pre pre = *pre_from_name(v.pre);
  json added = json::array();
  std::string vocab = "{";
  bool first = true;
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    const int32_t t = v.types[id];
    if ((t == kControl || t == kUserDefined) && !v.tokens[id].empty()) {
      added.push_back({{"id", id}, {"content", v.tokens[id]}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                       {"normalized", false}, {"special", t == kControl}});
      continue;
    }
    vocab += (first ? "" : ",") + json(v.tokens[id]).dump() + ":" + std::to_string(id);
    first = false;
  }
  vocab += "}";
  std::string merges = "[";
  for (size_t i = 0; i < v.merges.size(); ++i)
    merges += (i ? ",[" : "[") + json(v.merges[i].first).dump() + "," + json(v.merges[i].second).dump() + "]";
  merges += "]";
  json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
  json pre_tokenizer;
  if (pre == Pre::kGpt2) {
    pre_tokenizer = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", true}};
  } else {
    json split = {{"type", "Split"},
                  {"pattern", {{"Regex", pre == Pre::kLlama3 ? kLlama3Split : kQwen2Split}}},
                  {"behavior", "Isolated"},
                  {"invert", false}};
    pre_tokenizer = {{"type", "Sequence"}, {"pretokenizers", json::array({split, byte_level})}};
  }
  json rest = {{"version", "1.0"},
               {"truncation", nullptr},
               {"padding", nullptr},
               {"added_tokens", added},
               {"normalizer", pre == Pre::kQwen2 ? json{{"type", "NFC"}} : json()},
               {"pre_tokenizer", pre_tokenizer},
               {"post_processor", nullptr},
               {"decoder", byte_level}};
  json model = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", v.unk ? json(v.tokens[*v.unk]) : json()},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"ignore_merges", pre == Pre::kLlama3}};
  std::string text = rest.dump();
  std::string m = model.dump();
  m.pop_back();  // '}'
  m += ",\"vocab\":" + vocab + ",\"merges\":" + merges + "}";
  text.pop_back();
  text += ",\"model\":" + m + "}";
  return text;
}

// ---- Writing --------------------------------------------------------------------------------

// Which convert_hf_to_gguf.py pre-tokenizer name a tokenizer.json's split regex corresponds to.
std::optional<std::string> pre_name_of(const json& hf) {
  const json& p = hf.value("pre_tokenizer", json());
  if (!p.is_object()) return std::nullopt;
  auto is_byte_level = [](const json& x, bool use_regex) {
    return x.is_object() && x.value("type", "") == "ByteLevel" && x.value("use_regex", true) == use_regex &&
           !x.value("add_prefix_space", false);
  };
  if (is_byte_level(p, true)) return "gpt-2";
  if (p.value("type", "") != "Sequence" || !p.contains("pretokenizers") || p["pretokenizers"].size() != 2) return std::nullopt;
  const json& split = p["pretokenizers"][0];
  if (!is_byte_level(p["pretokenizers"][1], false) || split.value("type", "") != "Split" ||
      split.value("behavior", "") != "Isolated" || split.value("invert", false))
    return std::nullopt;
  const json& pattern = split.value("pattern", json());
  if (!pattern.is_object() || !pattern.contains("Regex") || !pattern["Regex"].is_string()) return std::nullopt;
  const std::string regex = pattern["Regex"].get<std::string>();
  if (regex == kLlama3Split) return "llama-bpe";
  if (regex == kQwen2Split) return "qwen2";
  if (regex == kGpt2Split) return "gpt-2";  // GPT-2's regex written out as a Split
  return std::nullopt;
}

bool is_sentencepiece_style(const json& hf) {
  const json& model = hf.value("model", json());
  if (!model.is_object() || !model.value("byte_fallback", false)) return false;
  const json& n = hf.value("normalizer", json());
  // Llama-2's tokenizer.json: Prepend "▁" then Replace " " with "▁", no pre-tokenizer.
  if (!n.is_object() || n.value("type", "") != "Sequence" || !n.contains("normalizers") || n["normalizers"].size() != 2)
    return false;
  const json& a = n["normalizers"][0];
  const json& b = n["normalizers"][1];
  return a.value("type", "") == "Prepend" && a.value("prepend", "") == kSpacePiece && b.value("type", "") == "Replace" &&
         b.value("content", "") == kSpacePiece && hf.value("pre_tokenizer", json()).is_null();
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const GgufFile& file) {
  GgufVocab v = read_vocab(file);
  std::unique_ptr<Tokenizer> t;
  if (v.model == "gpt2") {
    t = from_hf_json_text(gpt2_hf_json_text(v), hf_config_json(v).dump(), file.path + " (GGUF vocabulary)");
  } else {
    t.reset(new Tokenizer());
    t->core_ = build_spm(v);
    t->hf_json_text_ = spm_hf_json(v).dump();
    t->hf_config_text_ = hf_config_json(v).dump();
  }
  std::vector<int32_t> eos;
  for (const auto& id : {v.eos, v.eot, v.eom})
    if (id && std::find(eos.begin(), eos.end(), *id) == eos.end()) eos.push_back(*id);
  t->core_->eos_ids = eos;
  t->core_->bos_id = v.bos;
  auto keep = std::make_shared<std::vector<GgufKV>>();
  for (const auto& kv : file.metadata)
    if (kv.key.rfind("tokenizer.", 0) == 0) keep->push_back(kv);
  t->gguf_vocab_ = std::move(keep);
  return t;
}

std::unique_ptr<Tokenizer> Tokenizer::from_gguf_file(const std::string& path) { return from_gguf(read_gguf(path)); }

std::vector<GgufKV> Tokenizer::to_gguf_metadata(int64_t vocab_size) const {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  std::vector<std::string> merges;
  std::string model, pre;
  std::optional<int32_t> unk, pad;
  const std::string what = "tokenizer";

  if (gguf_vocab_) {
    // Round trip: the source's keys, with the token arrays padded below.
    GgufFile f;
    f.path = what;
    f.metadata = *gguf_vocab_;
    GgufVocab v = read_vocab(f);
    model = v.model;
    tokens = v.tokens;
    scores = v.scores;
    for (int32_t ty : v.types) types.push_back(ty);
  } else if (llama2c_) {
    model = "llama";
    pre = "default";
    const nlohmann::json hf = to_hf_json();
    tokens.resize(llama2c_->pieces.size());
    for (const auto& [token, id] : hf["model"]["vocab"].items()) tokens[id.get<size_t>()] = token;
    scores = llama2c_->scores;
    for (size_t id = 0; id < tokens.size(); ++id)
      types.push_back(id == 0 ? kUnknown : id <= 2 ? kControl : id < 259 ? kByte : kNormal);
    unk = 0;
  } else {
    const nlohmann::json hf = to_hf_json();
    const nlohmann::json& m = hf.at("model");
    if (m.value("type", "BPE") != "BPE") fail(what, ": only BPE tokenizers can be written as a GGUF vocabulary");
    std::map<int64_t, std::pair<std::string, int32_t>> by_id;  // id -> token, type
    for (const auto& [token, id] : m.at("vocab").items()) by_id[id.get<int64_t>()] = {token, kNormal};
    for (const auto& a : hf.value("added_tokens", json::array()))
      by_id[a.at("id").get<int64_t>()] = {a.at("content").get<std::string>(),
                                          a.value("special", false) ? kControl : kUserDefined};
    const int64_t n = by_id.empty() ? 0 : by_id.rbegin()->first + 1;
    for (int64_t id = 0; id < n; ++id) {
      auto it = by_id.find(id);
      tokens.push_back(it != by_id.end() ? it->second.first : cat("[PAD", id, "]"));
      types.push_back(it != by_id.end() ? it->second.second : kUnused);
    }
    auto merge_text = [](const json& x) {
      return x.is_array() ? x[0].get<std::string>() + " " + x[1].get<std::string>() : x.get<std::string>();
    };
    if (const auto p = pre_name_of(hf)) {
      model = "gpt2";
      pre = *p;
      for (const auto& x : m.at("merges")) merges.push_back(merge_text(x));
    } else if (is_sentencepiece_style(hf)) {
      model = "llama";
      pre = "default";
      // Scores that rank merge results as the merge list does: the first merge producing a
      // token gives its score; tokens no merge produces sit below every merge result.
      scores.assign(tokens.size(), -1e9f);
      tok::StringIdMap ids;
      for (size_t id = 0; id < tokens.size(); ++id) ids.insert(tokens[id], static_cast<int32_t>(id));
      const auto& list = m.at("merges");
      for (size_t r = list.size(); r-- > 0;) {
        const std::string text = merge_text(list[r]);
        const size_t cut = text.find(' ', 1);
        const int32_t id = cut == std::string::npos ? -1 : ids.find(text.substr(0, cut) + text.substr(cut + 1));
        if (id >= 0) scores[static_cast<size_t>(id)] = -static_cast<float>(r);
      }
      for (size_t id = 0; id < tokens.size(); ++id)
        if (types[id] == kNormal && byte_token_value(tokens[id]) >= 0) types[id] = kByte;
      if (m.contains("unk_token") && m["unk_token"].is_string()) {
        const int32_t id = ids.find(m["unk_token"].get<std::string>());
        if (id >= 0) {
          unk = id;
          types[static_cast<size_t>(id)] = kUnknown;
        }
      }
    } else {
      fail(what, ": cannot be written as a GGUF vocabulary: llama.cpp knows byte-level BPE with the Llama-3, Qwen2 "
           "or GPT-2 split regex, and SentencePiece-style BPE (Llama-2)");
    }
    const json config = to_hf_config_json();
    if (config.contains("pad_token") && config["pad_token"].is_string())
      if (auto id = token_to_id(config["pad_token"].get<std::string>())) pad = *id;
  }

  const auto have = static_cast<int64_t>(tokens.size());
  if (have > vocab_size)
    fail(what, ": has ", have, " tokens, more than the model's vocabulary of ", vocab_size);
  for (int64_t id = have; id < vocab_size; ++id) {
    tokens.push_back(cat("[PAD", id, "]"));
    types.push_back(kUnused);
    if (!scores.empty()) scores.push_back(-1000.0f);
  }

  std::vector<GgufKV> out;
  if (gguf_vocab_) {
    // The source's keys in their order, the token arrays replaced by the padded ones.
    GgufValue padded_tokens = GgufValue::strings(std::move(tokens));
    for (const auto& kv : *gguf_vocab_) {
      if (kv.key == "tokenizer.ggml.tokens") out.push_back({kv.key, padded_tokens});
      else if (kv.key == "tokenizer.ggml.scores") out.push_back({kv.key, GgufValue::f32_array(scores)});
      else if (kv.key == "tokenizer.ggml.token_type") out.push_back({kv.key, GgufValue::i32_array(types)});
      else out.push_back(kv);
    }
    if (!std::any_of(out.begin(), out.end(), [](const GgufKV& kv) { return kv.key == "tokenizer.ggml.token_type"; }))
      out.push_back({"tokenizer.ggml.token_type", GgufValue::i32_array(types)});
    return out;
  }
  out.push_back({"tokenizer.ggml.model", GgufValue::string(model)});
  out.push_back({"tokenizer.ggml.pre", GgufValue::string(pre)});
  out.push_back({"tokenizer.ggml.tokens", GgufValue::strings(std::move(tokens))});
  if (model == "llama") out.push_back({"tokenizer.ggml.scores", GgufValue::f32_array(scores)});
  out.push_back({"tokenizer.ggml.token_type", GgufValue::i32_array(types)});
  if (model == "gpt2") out.push_back({"tokenizer.ggml.merges", GgufValue::strings(std::move(merges))});
  if (bos_id()) out.push_back({"tokenizer.ggml.bos_token_id", GgufValue::u32(static_cast<uint32_t>(*bos_id()))});
  const auto eos = eos_ids();
  if (!eos.empty()) out.push_back({"tokenizer.ggml.eos_token_id", GgufValue::u32(static_cast<uint32_t>(eos[0]))});
  if (eos.size() > 1) out.push_back({"tokenizer.ggml.eot_token_id", GgufValue::u32(static_cast<uint32_t>(eos[1]))});
  if (unk) out.push_back({"tokenizer.ggml.unknown_token_id", GgufValue::u32(static_cast<uint32_t>(*unk))});
  if (pad) out.push_back({"tokenizer.ggml.padding_token_id", GgufValue::u32(static_cast<uint32_t>(*pad))});
  out.push_back({"tokenizer.ggml.add_bos_token", GgufValue::boolean(adds_bos())});
  out.push_back({"tokenizer.ggml.add_eos_token", GgufValue::boolean(!core_->suffix_ids.empty())});
  if (model == "llama") out.push_back({"tokenizer.ggml.add_space_prefix", GgufValue::boolean(true)});
  if (!chat_template().empty()) out.push_back({"tokenizer.chat_template", GgufValue::string(chat_template())});
  return out;
}

}  // namespace qs
