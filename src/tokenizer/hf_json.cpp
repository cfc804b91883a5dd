// Reads Hugging Face tokenizer.json / tokenizer_config.json / generation_config.json into the
// pipeline. Every malformed or unsupported field is a one-line qs::Error naming file and field.
#include <algorithm>
#include <tuple>

#include "core/error.h"
#include "tokenizer/json_capture.h"
#include "tokenizer/loaders.h"

namespace qs::tok {

namespace {

using json = nlohmann::json;

// GPT-2's split pattern, used by the ByteLevel pre-tokenizer when use_regex is true (the same
// string transformers.js and HF tokenizers use).
constexpr std::string_view kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Ids beyond this many past the number of tokens are refused (a typo or a hostile file would
// otherwise make us allocate gigabytes for an empty id range).
constexpr int64_t kMaxIdGap = 1 << 20;

class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}
  const std::string& file() const { return file_; }

  [[noreturn]] void bad(const std::string& field, const std::string& what) const { fail(file_, ": ", field, ": ", what); }

  // The member `key` of object `obj` (at `field`); missing -> error.
  const json& get(const json& obj, const char* key, const std::string& field) const {
    const json* v = find(obj, key, field);
    if (!v) bad(join(field, key), "missing (expected a value)");
    return *v;
  }
  // The member or nullptr when absent or null.
  const json* find(const json& obj, const char* key, const std::string& field) const {
    if (!obj.is_object()) bad(field.empty() ? "(top level)" : field, cat("expected an object, got ", obj.type_name()));
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return nullptr;
    return &*it;
  }
  std::string str(const json& v, const std::string& field) const {
    if (!v.is_string()) bad(field, cat("expected a string, got ", v.type_name()));
    return v.get<std::string>();
  }
  bool boolean(const json& v, const std::string& field) const {
    if (!v.is_boolean()) bad(field, cat("expected true or false, got ", v.type_name()));
    return v.get<bool>();
  }
  int64_t integer(const json& v, const std::string& field) const {
    if (!v.is_number_integer()) bad(field, cat("expected an integer, got ", v.type_name()));
    return v.is_number_unsigned() ? static_cast<int64_t>(std::min<uint64_t>(v.get<uint64_t>(), INT64_MAX)) : v.get<int64_t>();
  }
  const json& array(const json& v, const std::string& field) const {
    if (!v.is_array()) bad(field, cat("expected an array, got ", v.type_name()));
    return v;
  }
  bool opt_bool(const json& obj, const char* key, const std::string& field, bool fallback) const {
    const json* v = find(obj, key, field);
    return v ? boolean(*v, join(field, key)) : fallback;
  }
  std::string opt_str(const json& obj, const char* key, const std::string& field, const std::string& fallback) const {
    const json* v = find(obj, key, field);
    return v ? str(*v, join(field, key)) : fallback;
  }
  std::string type_of(const json& obj, const std::string& field) const {
    return str(get(obj, "type", field), join(field, "type"));
  }
  static std::string join(const std::string& field, const char* key) { return field.empty() ? key : field + "." + key; }
  static std::string index(const std::string& field, size_t i) { return cat(field, "[", i, "]"); }

 private:
  std::string file_;
};

// A {"String": s} or {"Regex": r} pattern.
std::shared_ptr<const Regex> read_pattern(const Reader& r, const json& obj, const std::string& field) {
  const json& p = r.get(obj, "pattern", field);
  std::string f = Reader::join(field, "pattern");
  std::string where = cat(r.file(), ": ", f);
  if (const json* s = r.find(p, "String", f)) return Regex::literal(r.str(*s, Reader::join(f, "String")), where);
  if (const json* re = r.find(p, "Regex", f)) return Regex::compile(r.str(*re, Reader::join(f, "Regex")), where);
  r.bad(f, "expected {\"String\": ...} or {\"Regex\": ...}");
}

[[noreturn]] void unsupported(const Reader& r, const std::string& field, const std::string& type, const char* what) {
  r.bad(Reader::join(field, "type"), cat(qs::quote(type), " is not supported (", what, ")"));
}

void read_normalizer(const Reader& r, const json& n, const std::string& field, std::vector<Normalizer>& out) {
  std::string type = r.type_of(n, field);
  if (type == "Sequence") {
    const json& list = r.array(r.get(n, "normalizers", field), Reader::join(field, "normalizers"));
    for (size_t i = 0; i < list.size(); ++i) read_normalizer(r, list[i], Reader::index(Reader::join(field, "normalizers"), i), out);
  } else if (type == "Prepend") {
    Normalizer x(Normalizer::Kind::kPrepend);
    x.text = r.str(r.get(n, "prepend", field), Reader::join(field, "prepend"));
    out.push_back(std::move(x));
  } else if (type == "Replace") {
    Normalizer x(Normalizer::Kind::kReplace);
    x.text = r.str(r.get(n, "content", field), Reader::join(field, "content"));
    x.regex = read_pattern(r, n, field);
    out.push_back(std::move(x));
  } else if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    Normalizer x(Normalizer::Kind::kUnicode);
    x.form = type == "NFC" ? UnicodeForm::kNFC : type == "NFD" ? UnicodeForm::kNFD : type == "NFKC" ? UnicodeForm::kNFKC : UnicodeForm::kNFKD;
    out.push_back(std::move(x));
  } else if (type == "Strip") {
    Normalizer x(Normalizer::Kind::kStrip);
    x.strip_left = r.opt_bool(n, "strip_left", field, false);
    x.strip_right = r.opt_bool(n, "strip_right", field, false);
    out.push_back(std::move(x));
  } else {
    unsupported(r, field, type, "supported normalizers: Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Strip");
  }
}

void read_pre_tokenizer(const Reader& r, const json& p, const std::string& field, std::vector<PreTokenizer>& out) {
  std::string type = r.type_of(p, field);
  if (type == "Sequence") {
    std::string f = Reader::join(field, "pretokenizers");
    const json& list = r.array(r.get(p, "pretokenizers", field), f);
    for (size_t i = 0; i < list.size(); ++i) read_pre_tokenizer(r, list[i], Reader::index(f, i), out);
  } else if (type == "Split") {
    PreTokenizer x(PreTokenizer::Kind::kSplit);
    x.regex = read_pattern(r, p, field);
    x.invert = r.opt_bool(p, "invert", field, false);
    std::string behavior = r.opt_str(p, "behavior", field, "Isolated");
    if (behavior == "Removed") x.removed = true;
    else if (behavior != "Isolated")
      r.bad(Reader::join(field, "behavior"), cat(qs::quote(behavior), " is not supported (Isolated or Removed)"));
    out.push_back(std::move(x));
  } else if (type == "ByteLevel") {
    PreTokenizer x(PreTokenizer::Kind::kByteLevel);
    x.add_prefix_space = r.opt_bool(p, "add_prefix_space", field, false);
    if (r.opt_bool(p, "use_regex", field, true)) x.regex = Regex::compile(kGpt2Pattern, cat(r.file(), ": ", field));
    out.push_back(std::move(x));
  } else if (type == "Metaspace") {
    PreTokenizer x(PreTokenizer::Kind::kMetaspace);
    x.replacement = r.str(r.get(p, "replacement", field), Reader::join(field, "replacement"));
    if (x.replacement.empty()) r.bad(Reader::join(field, "replacement"), "expected a non-empty string");
    std::string scheme = r.opt_str(p, "prepend_scheme", field, "always");
    if (scheme == "always") x.prepend_scheme = PreTokenizer::Prepend::kAlways;
    else if (scheme == "first") x.prepend_scheme = PreTokenizer::Prepend::kFirst;
    else if (scheme == "never") x.prepend_scheme = PreTokenizer::Prepend::kNever;
    else r.bad(Reader::join(field, "prepend_scheme"), cat(qs::quote(scheme), " is not one of always, first, never"));
    x.add_prefix_space = r.opt_bool(p, "add_prefix_space", field, scheme != "never");
    out.push_back(std::move(x));
  } else {
    unsupported(r, field, type, "supported pre-tokenizers: Sequence, Split, ByteLevel, Metaspace");
  }
}

void read_decoder(const Reader& r, const json& d, const std::string& field, std::vector<Decoder>& out) {
  std::string type = r.type_of(d, field);
  if (type == "Sequence") {
    std::string f = Reader::join(field, "decoders");
    const json& list = r.array(r.get(d, "decoders", field), f);
    for (size_t i = 0; i < list.size(); ++i) read_decoder(r, list[i], Reader::index(f, i), out);
  } else if (type == "Replace") {
    Decoder x(Decoder::Kind::kReplace);
    x.regex = read_pattern(r, d, field);
    x.content = r.str(r.get(d, "content", field), Reader::join(field, "content"));
    out.push_back(std::move(x));
  } else if (type == "ByteFallback") {
    out.push_back(Decoder(Decoder::Kind::kByteFallback));
  } else if (type == "Fuse") {
    out.push_back(Decoder(Decoder::Kind::kFuse));
  } else if (type == "Strip") {
    Decoder x(Decoder::Kind::kStrip);
    x.content = r.str(r.get(d, "content", field), Reader::join(field, "content"));
    auto count = [&](const char* key) {
      int64_t v = r.integer(r.get(d, key, field), Reader::join(field, key));
      if (v < 0 || v > 1'000'000) r.bad(Reader::join(field, key), cat("expected a count between 0 and 1000000, got ", v));
      return static_cast<int>(v);
    };
    x.start = count("start");
    x.stop = count("stop");
    out.push_back(std::move(x));
  } else if (type == "ByteLevel") {
    out.push_back(Decoder(Decoder::Kind::kByteLevel));
  } else if (type == "Metaspace") {
    Decoder x(Decoder::Kind::kMetaspace);
    x.content = r.str(r.get(d, "replacement", field), Reader::join(field, "replacement"));
    std::string scheme = r.opt_str(d, "prepend_scheme", field, "always");
    x.add_prefix_space = r.opt_bool(d, "add_prefix_space", field, scheme != "never");
    out.push_back(std::move(x));
  } else {
    unsupported(r, field, type, "supported decoders: Sequence, Replace, ByteFallback, Fuse, Strip, ByteLevel, Metaspace");
  }
}

int32_t lookup_token(const Reader& r, const Core& core, const std::string& token, const std::string& field) {
  int32_t id = core.token_to_id.find(token);
  if (id < 0) r.bad(field, cat("the token ", qs::quote(token), " is not in the vocabulary"));
  return id;
}

// Adds the special tokens of one post-processor around the sequence (prefix, suffix).
void read_post_processor(const Reader& r, const json& p, const std::string& field, Core& core) {
  std::string type = r.type_of(p, field);
  if (type == "Sequence") {
    std::string f = Reader::join(field, "processors");
    const json& list = r.array(r.get(p, "processors", field), f);
    for (size_t i = 0; i < list.size(); ++i) read_post_processor(r, list[i], Reader::index(f, i), core);
  } else if (type == "ByteLevel") {
    // Offsets only; no tokens added.
  } else if (type == "TemplateProcessing") {
    std::string f = Reader::join(field, "single");
    const json& single = r.array(r.get(p, "single", field), f);
    std::vector<int32_t> prefix, suffix;
    bool seen_sequence = false;
    for (size_t i = 0; i < single.size(); ++i) {
      std::string fi = Reader::index(f, i);
      if (const json* s = r.find(single[i], "SpecialToken", fi)) {
        std::string fs = Reader::join(fi, "SpecialToken.id");
        int32_t id = lookup_token(r, core, r.str(r.get(*s, "id", Reader::join(fi, "SpecialToken")), fs), fs);
        (seen_sequence ? suffix : prefix).push_back(id);
      } else if (r.find(single[i], "Sequence", fi)) {
        seen_sequence = true;
      } else {
        r.bad(fi, "expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
      }
    }
    // Applied after the earlier processors: wraps what they produced.
    core.prefix_ids.insert(core.prefix_ids.begin(), prefix.begin(), prefix.end());
    core.suffix_ids.insert(core.suffix_ids.end(), suffix.begin(), suffix.end());
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    auto token = [&](const char* key) {
      std::string f = Reader::join(field, key);
      const json& pair = r.array(r.get(p, key, field), f);
      if (pair.empty()) r.bad(f, "expected [token, id]");
      return lookup_token(r, core, r.str(pair[0], Reader::index(f, 0)), Reader::index(f, 0));
    };
    core.prefix_ids.insert(core.prefix_ids.begin(), token("cls"));
    core.suffix_ids.push_back(token("sep"));
  } else {
    unsupported(r, field, type, "supported post-processors: Sequence, ByteLevel, TemplateProcessing, BertProcessing, RobertaProcessing");
  }
}

// A token in tokenizer_config.json: "<s>" or {"content": "<s>", ...} or null.
std::optional<std::string> config_token(const Reader& r, const json& config, const char* key) {
  const json* v = r.find(config, key, "");
  if (!v) return std::nullopt;
  if (v->is_object()) return r.str(r.get(*v, "content", key), cat(key, ".content"));
  return r.str(*v, key);
}

// A merge as token ids (validated: both parts and their concatenation are tokens).
struct MergeIds {
  int32_t left, right, result;
};

void read_model(const Reader& r, const TokenizerJson& doc, Core& core, std::vector<MergeIds>& merges) {
  const std::string field = "model";
  const json& model = r.get(doc.rest, "model", "");
  if (const json* t = r.find(model, "type", field)) {
    std::string type = r.str(*t, "model.type");
    if (type != "BPE") unsupported(r, field, type, "qstudy reads BPE tokenizers; WordPiece, Unigram and WordLevel are not implemented");
  } else if (!doc.merges_captured) {
    r.bad("model.type", "missing, and the model has no merges (only BPE tokenizers are supported)");
  }
  for (auto [key, captured, expected] : {std::tuple{"vocab", doc.vocab_captured, "an object {token: id}"},
                                         std::tuple{"merges", doc.merges_captured, "an array of merges"}}) {
    if (captured) continue;
    const json* v = r.find(model, key, field);
    r.bad(Reader::join(field, key), v ? cat("expected ", expected, ", got ", v->type_name()) : std::string("missing"));
  }

  const auto n = static_cast<int64_t>(doc.vocab.size());
  core.token_to_id.reserve(doc.vocab.size() + 1024);
  for (const auto& [token, id] : doc.vocab) {
    std::string f = cat("model.vocab[", qs::quote(token), "]");
    if (id < 0 || id >= n + kMaxIdGap) r.bad(f, cat("id ", id, " is out of range (the vocabulary has ", n, " tokens)"));
    auto i = static_cast<size_t>(id);
    if (i >= core.id_to_token.size()) {
      core.id_to_token.resize(i + 1);
      core.id_exists.resize(i + 1, 0);
    }
    if (core.id_exists[i]) r.bad(f, cat("id ", id, " is already used by ", qs::quote(core.id_to_token[i])));
    if (!core.token_to_id.insert(token, static_cast<int32_t>(id))) r.bad(f, "the token appears twice");
    core.id_to_token[i] = token;
    core.id_exists[i] = 1;
  }

  merges.reserve(doc.merges.size());
  std::string joined;
  for (size_t i = 0; i < doc.merges.size(); ++i) {
    const auto& [a, b] = doc.merges[i];
    joined.assign(a).append(b);
    MergeIds m{core.token_to_id.find(a), core.token_to_id.find(b), core.token_to_id.find(joined)};
    for (auto [id, text] : {std::pair<int32_t, std::string_view>{m.left, a}, {m.right, b}, {m.result, joined}})
      if (id < 0) r.bad(Reader::index("model.merges", i), cat("the token ", qs::quote(text), " is not in the vocabulary"));
    merges.push_back(m);
  }

  BpeModel& bpe = core.model;
  bpe.byte_fallback = r.opt_bool(model, "byte_fallback", field, false);
  bpe.fuse_unk = r.opt_bool(model, "fuse_unk", field, false);
  bpe.ignore_merges = r.opt_bool(model, "ignore_merges", field, false);
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    std::string v = r.opt_str(model, key, field, "");
    if (!v.empty()) r.bad(Reader::join(field, key), cat(qs::quote(v), " is not supported (only empty or null)"));
  }
  if (const json* d = r.find(model, "dropout", field)) {
    if (!d->is_number()) r.bad("model.dropout", cat("expected a number or null, got ", d->type_name()));
    if (d->get<double>() > 0) r.bad("model.dropout", "BPE dropout is random and is not supported (expected null or 0)");
  }
}

}  // namespace

std::unique_ptr<Core> build_from_hf(const TokenizerJson& doc, const json* config, const json* generation_config,
                                    const HfSources& sources) {
  Reader r(sources.tokenizer_name);
  const json& tokenizer = doc.rest;
  if (!tokenizer.is_object()) r.bad("(top level)", cat("expected a JSON object, got ", tokenizer.type_name()));
  auto core = std::make_unique<Core>();
  std::vector<MergeIds> merges;
  read_model(r, doc, *core, merges);

  if (const json* list = r.find(tokenizer, "added_tokens", "")) {
    r.array(*list, "added_tokens");
    const auto limit = static_cast<int64_t>(core->id_to_token.size()) + kMaxIdGap;
    for (size_t i = 0; i < list->size(); ++i) {
      std::string f = Reader::index("added_tokens", i);
      const json& t = (*list)[i];
      AddedToken a;
      a.id = static_cast<int32_t>(std::clamp<int64_t>(r.integer(r.get(t, "id", f), f + ".id"), -1, limit));
      if (a.id < 0 || a.id >= limit) r.bad(f + ".id", cat("id is out of range (expected 0..", limit - 1, ")"));
      a.content = r.str(r.get(t, "content", f), f + ".content");
      if (a.content.empty()) r.bad(f + ".content", "expected a non-empty string");
      a.special = r.opt_bool(t, "special", f, false);
      a.lstrip = r.opt_bool(t, "lstrip", f, false);
      a.rstrip = r.opt_bool(t, "rstrip", f, false);
      core->added.push_back(std::move(a));
    }
  }
  // transformers.js maps an added token's content to the added id even where the vocabulary
  // has the same string under another id; merges then produce the added id.
  bool added_overrides = false;
  for (const AddedToken& a : core->added) {
    int32_t vocab_id = core->token_to_id.find(a.content);
    added_overrides = added_overrides || (vocab_id >= 0 && vocab_id != a.id);
  }
  core->finish_added_tokens();
  if (added_overrides) {
    std::string joined;
    for (size_t i = 0; i < merges.size(); ++i) {
      const auto& [a, b] = doc.merges[i];
      joined.assign(a).append(b);
      merges[i] = {core->token_to_id.find(a), core->token_to_id.find(b), core->token_to_id.find(joined)};
    }
  }

  if (const json* n = r.find(tokenizer, "normalizer", "")) read_normalizer(r, *n, "normalizer", core->normalizers);
  if (const json* p = r.find(tokenizer, "pre_tokenizer", "")) read_pre_tokenizer(r, *p, "pre_tokenizer", core->pre_tokenizers);
  if (const json* d = r.find(tokenizer, "decoder", "")) {
    read_decoder(r, *d, "decoder", core->decoders);
    core->has_decoder = true;
  }
  if (const json* p = r.find(tokenizer, "post_processor", "")) read_post_processor(r, *p, "post_processor", *core);

  // The model works on bytes when the text was mapped to byte-level characters.
  BpeModel& bpe = core->model;
  for (size_t i = 0; i < core->pre_tokenizers.size(); ++i) {
    if (core->pre_tokenizers[i].kind != PreTokenizer::Kind::kByteLevel) continue;
    if (i + 1 != core->pre_tokenizers.size())
      r.bad("pre_tokenizer", "a ByteLevel pre-tokenizer must come last (later steps would see byte-level characters)");
    bpe.units = BpeModel::Units::kBytes;
  }
  std::vector<std::string> unit_form(core->id_to_token.size());
  std::vector<uint8_t> has_unit_form(core->id_to_token.size(), 0);
  for (size_t id = 0; id < core->id_to_token.size(); ++id) {
    if (!core->id_exists[id]) continue;
    if (bpe.units == BpeModel::Units::kBytes) {
      if (!byte_level_to_bytes(core->id_to_token[id], unit_form[id])) continue;  // cannot come out of bytes
    } else {
      unit_form[id] = core->id_to_token[id];
    }
    has_unit_form[id] = 1;
  }
  bpe.unit_vocab.reserve(unit_form.size());
  // The final string -> id map decides (added tokens override the vocabulary, as in transformers.js).
  for (size_t id = 0; id < unit_form.size(); ++id)
    if (has_unit_form[id] && core->token_to_id.find(core->id_to_token[id]) == static_cast<int32_t>(id))
      bpe.unit_vocab.insert(unit_form[id], static_cast<int32_t>(id), true);
  if (bpe.units == BpeModel::Units::kBytes)
    for (int b = 0; b < 256; ++b) bpe.byte_symbol[b] = bpe.unit_vocab.find(std::string(1, static_cast<char>(b)));
  std::vector<std::string_view> merge_results;
  merge_results.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const MergeIds& m = merges[i];
    bpe.merges.insert(m.left, m.right, Merge{static_cast<int32_t>(i), m.result});
    if (has_unit_form[static_cast<size_t>(m.result)]) merge_results.push_back(unit_form[static_cast<size_t>(m.result)]);
  }
  for (int b = 0; b < 256; ++b) bpe.byte_token[b] = core->token_to_id.find(byte_fallback_token(b));
  const json& model = tokenizer.at("model");
  if (const json* unk = r.find(model, "unk_token", "model")) bpe.unk_id = core->token_to_id.find(r.str(*unk, "model.unk_token"));
  bool splits = std::any_of(core->pre_tokenizers.begin(), core->pre_tokenizers.end(),
                            [](const PreTokenizer& p) { return p.kind != PreTokenizer::Kind::kMetaspace; });
  if (!splits && bpe.units == BpeModel::Units::kChars) {
    std::string unit = "\xE2\x96\x81";  // "▁"
    for (const PreTokenizer& p : core->pre_tokenizers) unit = p.replacement;
    bpe.enable_word_split(unit, merge_results);
  }

  // tokenizer_config.json: BOS/EOS, whether to add them, extra special tokens, chat template.
  if (config) {
    Reader c(sources.config_name);
    if (!config->is_object()) c.bad("(top level)", cat("expected a JSON object, got ", config->type_name()));
    for (const char* key : {"remove_space", "do_lowercase_and_remove_accent"})
      if (c.opt_bool(*config, key, "", false)) c.bad(key, "true is not supported");
    std::string cls = c.opt_str(*config, "tokenizer_class", "", "");
    if ((cls == "LlamaTokenizer" || cls == "LlamaTokenizerFast") && !c.opt_bool(*config, "legacy", "", true))
      c.bad("legacy", "false is not supported for LlamaTokenizer (the non-legacy SentencePiece handling)");
    auto id_of = [&](const char* key) -> std::optional<int32_t> {
      auto token = config_token(c, *config, key);
      if (!token) return std::nullopt;
      return lookup_token(c, *core, *token, key);
    };
    core->bos_id = id_of("bos_token");
    if (auto eos = id_of("eos_token")) core->eos_ids.push_back(*eos);
    const json* add_bos = c.find(*config, "add_bos_token", "");
    const json* add_eos = c.find(*config, "add_eos_token", "");
    if (add_bos || add_eos) {
      // transformers rebuilds the template from these flags when a config sets them.
      core->prefix_ids.clear();
      core->suffix_ids.clear();
      if (add_bos && c.boolean(*add_bos, "add_bos_token")) {
        if (!core->bos_id) c.bad("add_bos_token", "is true but there is no bos_token");
        core->prefix_ids.push_back(*core->bos_id);
      }
      if (add_eos && c.boolean(*add_eos, "add_eos_token")) {
        if (core->eos_ids.empty()) c.bad("add_eos_token", "is true but there is no eos_token");
        core->suffix_ids.push_back(core->eos_ids[0]);
      }
    }
    if (const json* extra = c.find(*config, "additional_special_tokens", "")) {
      c.array(*extra, "additional_special_tokens");
      for (size_t i = 0; i < extra->size(); ++i) {
        std::string f = Reader::index("additional_special_tokens", i);
        const json& e = (*extra)[i];
        std::string token = e.is_object() ? c.str(c.get(e, "content", f), f + ".content") : c.str(e, f);
        core->id_special[static_cast<size_t>(lookup_token(c, *core, token, f))] = 1;
      }
    }
    if (const json* t = c.find(*config, "chat_template", "")) {
      if (t->is_string()) {
        core->chat_template = t->get<std::string>();
      } else {
        // A list of named templates: keep "default" (else the first).
        c.array(*t, "chat_template");
        for (size_t i = 0; i < t->size(); ++i) {
          std::string f = Reader::index("chat_template", i);
          std::string name = c.str(c.get((*t)[i], "name", f), f + ".name");
          std::string text = c.str(c.get((*t)[i], "template", f), f + ".template");
          if (i == 0 || name == "default") core->chat_template = text;
          if (name == "default") break;
        }
      }
    }
  } else if (!core->prefix_ids.empty()) {
    core->bos_id = core->prefix_ids[0];
  }
  if (generation_config) {
    Reader g(sources.generation_config_name);
    if (const json* e = g.find(*generation_config, "eos_token_id", "")) {
      std::vector<const json*> ids;
      if (e->is_array()) {
        for (const json& x : *e) ids.push_back(&x);
      } else {
        ids.push_back(e);
      }
      for (const json* x : ids) {
        int64_t id = g.integer(*x, "eos_token_id");
        if (id < 0 || id >= core->vocab_size() || !core->id_exists[static_cast<size_t>(id)])
          g.bad("eos_token_id", cat(id, " is not a token id (the vocabulary has ", core->vocab_size(), " ids)"));
        if (std::find(core->eos_ids.begin(), core->eos_ids.end(), id) == core->eos_ids.end())
          core->eos_ids.push_back(static_cast<int32_t>(id));
      }
    }
  }
  return core;
}

}  // namespace qs::tok
