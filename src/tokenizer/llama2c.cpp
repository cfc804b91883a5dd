// llama2.c tokenizer.bin: reading, the SentencePiece-BPE pipeline over it, and export to an
// equivalent Hugging Face tokenizer.json.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "core/error.h"
#include "tokenizer/loaders.h"

namespace qs::tok {

namespace {

using json = nlohmann::json;

constexpr std::string_view kSpacePiece = "\xE2\x96\x81";  // "▁": SentencePiece's space
// llama2.c never merges into a token scored at or below its initial best score.
constexpr float kNoMergeScore = -1e10f;
constexpr int32_t kFirstByteId = 3;  // llama2.c: byte b falls back to id b + 3
constexpr int32_t kBosId = 1, kEosId = 2, kUnkId = 0;

// The SentencePiece form of a stored piece: llama2.c's export wrote BOS/EOS as "\n<s>\n" and
// "\n</s>\n" and every "▁" as " "; this undoes it.
std::string display_piece(const std::string& piece, size_t id) {
  if (id == kBosId && piece == "\n<s>\n") return "<s>";
  if (id == kEosId && piece == "\n</s>\n") return "</s>";
  std::string out;
  for (char c : piece) {
    if (c == ' ') out += kSpacePiece;
    else out += c;
  }
  return out;
}

// Dense ranks of the scores, highest first: equal scores share a rank (llama2.c breaks such
// ties by position, which the BPE model does for equal ranks). -1: never merged.
std::vector<int32_t> score_ranks(const std::vector<float>& scores) {
  std::vector<float> distinct;
  for (float s : scores)
    if (s > kNoMergeScore) distinct.push_back(s);  // false for NaN too
  std::sort(distinct.begin(), distinct.end(), std::greater<float>());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  std::vector<int32_t> ranks(scores.size(), -1);
  for (size_t i = 0; i < scores.size(); ++i) {
    if (!(scores[i] > kNoMergeScore)) continue;
    auto it = std::lower_bound(distinct.begin(), distinct.end(), scores[i], std::greater<float>());
    ranks[i] = static_cast<int32_t>(it - distinct.begin());
  }
  return ranks;
}

struct RawMerge {
  int32_t left, right, result;
};

// Every way a token splits into two tokens (llama2.c looks up the concatenation of any pair).
std::vector<RawMerge> all_merges(const Llama2cSource& src, const StringIdMap& raw) {
  std::vector<RawMerge> out;
  for (size_t id = 0; id < src.pieces.size(); ++id) {
    const std::string& t = src.pieces[id];
    for (size_t k = utf8_char_length(static_cast<unsigned char>(t[0])); k < t.size();
         k += utf8_char_length(static_cast<unsigned char>(t[k]))) {
      int32_t left = raw.find(std::string_view(t).substr(0, k));
      if (left < 0) continue;
      int32_t right = raw.find(std::string_view(t).substr(k));
      if (right >= 0) out.push_back({left, right, static_cast<int32_t>(id)});
    }
  }
  return out;
}

StringIdMap raw_vocab(const Llama2cSource& src) {
  StringIdMap raw;
  for (size_t id = 0; id < src.pieces.size(); ++id) raw.insert(src.pieces[id], static_cast<int32_t>(id));
  return raw;
}

}  // namespace

Llama2cSource parse_llama2c(std::string_view bytes, const std::string& name) {
  Llama2cSource src;
  src.name = name;
  auto read_i32 = [&](size_t at) {
    int32_t v;
    std::memcpy(&v, bytes.data() + at, 4);
    return v;
  };
  if (bytes.size() < 4)
    fail(name, ": truncated: expected a 4-byte max_token_length header, the file has ", bytes.size(), " bytes");
  src.max_token_length = read_i32(0);
  if (src.max_token_length <= 0 || src.max_token_length > (1 << 20))
    fail(name, ": max_token_length: expected a positive token length, got ", src.max_token_length);
  size_t at = 4;
  while (at < bytes.size()) {
    size_t i = src.pieces.size();
    if (bytes.size() - at < 8)
      fail(name, ": truncated at token ", i, ": expected a float32 score and an int32 length at byte ", at, ", only ",
           bytes.size() - at, " bytes left");
    float score;
    std::memcpy(&score, bytes.data() + at, 4);
    int32_t len = read_i32(at + 4);
    at += 8;
    if (len <= 0 || len > src.max_token_length)
      fail(name, ": token ", i, ": length ", len, " is not between 1 and max_token_length (", src.max_token_length, ")");
    if (bytes.size() - at < static_cast<size_t>(len))
      fail(name, ": truncated at token ", i, ": expected ", len, " bytes of text at byte ", at, ", only ",
           bytes.size() - at, " left");
    std::string piece(bytes.substr(at, static_cast<size_t>(len)));
    at += static_cast<size_t>(len);
    if (!is_valid_utf8(piece)) fail(name, ": token ", i, ": ", qs::quote(piece), " is not valid UTF-8");
    src.pieces.push_back(std::move(piece));
    src.scores.push_back(score);
  }
  // <unk>, <s>, </s>, then the byte tokens llama2.c's byte fallback (id = byte + 3) relies on.
  if (src.pieces.size() < kFirstByteId + 256)
    fail(name, ": has ", src.pieces.size(), " tokens; a llama2.c tokenizer needs at least 259 (<unk>, <s>, </s> "
         "and the byte tokens <0x00>..<0xFF>)");
  for (int b = 0; b < 256; ++b) {
    const std::string& piece = src.pieces[static_cast<size_t>(kFirstByteId + b)];
    if (piece != byte_fallback_token(b))
      fail(name, ": token ", kFirstByteId + b, " is ", qs::quote(piece), ", expected ", byte_fallback_token(b),
           " (llama2.c encodes byte b as id b + 3)");
  }
  StringIdMap seen;
  for (size_t id = 0; id < src.pieces.size(); ++id) {
    if (!seen.insert(display_piece(src.pieces[id], id), static_cast<int32_t>(id)))
      fail(name, ": token ", id, " (", qs::quote(src.pieces[id]), ") duplicates token ",
           seen.find(display_piece(src.pieces[id], id)));
  }
  return src;
}

std::unique_ptr<Core> build_from_llama2c(const Llama2cSource& src) {
  auto core = std::make_unique<Core>();
  const size_t n = src.pieces.size();
  for (size_t id = 0; id < n; ++id) {
    core->id_to_token.push_back(display_piece(src.pieces[id], id));
    core->token_to_id.insert(core->id_to_token.back(), static_cast<int32_t>(id));
  }
  core->id_exists.assign(n, 1);
  for (int32_t id : {kUnkId, kBosId, kEosId})
    core->added.push_back({core->id_to_token[static_cast<size_t>(id)], id, /*special=*/true, false, false});
  core->finish_added_tokens();

  // Matching uses the stored strings, so a space in the text is the " " piece (SentencePiece's
  // "▁") while a literal "▁" has no piece and falls back to bytes, as in llama2.c.
  Normalizer dummy_prefix(Normalizer::Kind::kPrepend);
  dummy_prefix.text = " ";
  core->normalizers.push_back(dummy_prefix);
  BpeModel& bpe = core->model;
  bpe.units = BpeModel::Units::kChars;
  bpe.unit_vocab = raw_vocab(src);
  bpe.byte_fallback = true;
  bpe.fallback_before_merge = true;
  bpe.unk_id = kUnkId;
  for (int b = 0; b < 256; ++b) bpe.byte_token[b] = kFirstByteId + b;
  std::vector<int32_t> ranks = score_ranks(src.scores);
  std::vector<std::string_view> results;
  for (const RawMerge& m : all_merges(src, bpe.unit_vocab)) {
    int32_t rank = ranks[static_cast<size_t>(m.result)];
    if (rank < 0) continue;
    bpe.merges.insert(m.left, m.right, Merge{rank, m.result});
    results.push_back(src.pieces[static_cast<size_t>(m.result)]);
  }
  bpe.enable_word_split(" ", results);

  core->prefix_ids = {kBosId};
  core->bos_id = kBosId;
  core->eos_ids = {kEosId};
  core->has_decoder = true;
  Decoder replace(Decoder::Kind::kReplace);
  replace.regex = Regex::literal(kSpacePiece, src.name);
  replace.content = " ";
  Decoder strip(Decoder::Kind::kStrip);
  strip.content = " ";
  strip.start = 1;
  core->decoders = {replace, Decoder(Decoder::Kind::kByteFallback), Decoder(Decoder::Kind::kFuse), strip};
  return core;
}

json llama2c_to_hf_json(const Llama2cSource& src) {
  const size_t n = src.pieces.size();
  std::vector<std::string> display(n);
  for (size_t id = 0; id < n; ++id) display[id] = display_piece(src.pieces[id], id);

  json vocab = json::object();
  for (size_t id = 0; id < n; ++id) vocab[display[id]] = id;

  // Merge ranks: the merged token's score, highest first. llama2.c takes the leftmost of equally
  // scored pairs, which a rank list cannot express in general; longer results first reproduces
  // it for the case that occurs (runs of spaces, whose pieces all share one score in Llama-2):
  // the leftmost run keeps growing before the next one starts, as in llama2.c.
  StringIdMap raw = raw_vocab(src);
  std::vector<RawMerge> merges = all_merges(src, raw);
  std::vector<int32_t> ranks = score_ranks(src.scores);
  merges.erase(std::remove_if(merges.begin(), merges.end(), [&](const RawMerge& m) { return ranks[static_cast<size_t>(m.result)] < 0; }),
               merges.end());
  std::sort(merges.begin(), merges.end(), [&](const RawMerge& a, const RawMerge& b) {
    int32_t ra = ranks[static_cast<size_t>(a.result)], rb = ranks[static_cast<size_t>(b.result)];
    if (ra != rb) return ra < rb;
    size_t la = src.pieces[static_cast<size_t>(a.result)].size(), lb = src.pieces[static_cast<size_t>(b.result)].size();
    if (la != lb) return la > lb;
    if (a.result != b.result) return a.result < b.result;
    return a.left != b.left ? a.left < b.left : a.right < b.right;
  });
  json merge_list = json::array();
  for (const RawMerge& m : merges)
    merge_list.push_back(json::array({display[static_cast<size_t>(m.left)], display[static_cast<size_t>(m.right)]}));

  json added = json::array();
  for (int32_t id : {kUnkId, kBosId, kEosId})
    added.push_back({{"id", id}, {"content", display[static_cast<size_t>(id)]}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  const std::string& bos = display[kBosId];
  auto string_pattern = [](std::string_view s) { return json{{"String", s}}; };
  json out;
  out["version"] = "1.0";
  out["truncation"] = nullptr;
  out["padding"] = nullptr;
  out["added_tokens"] = added;
  out["normalizer"] = {{"type", "Sequence"},
                       {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", kSpacePiece}},
                                                    {{"type", "Replace"}, {"pattern", string_pattern(" ")}, {"content", kSpacePiece}}})}};
  out["pre_tokenizer"] = nullptr;
  auto special = [](const std::string& token, int type_id) { return json{{"SpecialToken", {{"id", token}, {"type_id", type_id}}}}; };
  auto sequence = [](const char* id, int type_id) { return json{{"Sequence", {{"id", id}, {"type_id", type_id}}}}; };
  out["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", json::array({special(bos, 0), sequence("A", 0)})},
      {"pair", json::array({special(bos, 0), sequence("A", 0), special(bos, 1), sequence("B", 1)})},
      {"special_tokens", {{bos, {{"id", bos}, {"ids", json::array({kBosId})}, {"tokens", json::array({bos})}}}}}};
  out["decoder"] = {{"type", "Sequence"},
                    {"decoders", json::array({{{"type", "Replace"}, {"pattern", string_pattern(kSpacePiece)}, {"content", " "}},
                                              {{"type", "ByteFallback"}},
                                              {{"type", "Fuse"}},
                                              {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}};
  out["model"] = {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", display[kUnkId]},
                  {"continuing_subword_prefix", nullptr},
                  {"end_of_word_suffix", nullptr},
                  {"fuse_unk", true},
                  {"byte_fallback", true},
                  {"ignore_merges", false},
                  {"vocab", std::move(vocab)},
                  {"merges", std::move(merge_list)}};
  return out;
}

json llama2c_to_hf_config(const Llama2cSource& src) {
  json decoder_map = json::object();
  for (int32_t id : {kUnkId, kBosId, kEosId})
    decoder_map[std::to_string(id)] = {{"content", display_piece(src.pieces[static_cast<size_t>(id)], static_cast<size_t>(id))},
                                       {"lstrip", false}, {"normalized", false}, {"rstrip", false},
                                       {"single_word", false}, {"special", true}};
  return {{"add_bos_token", true},
          {"add_eos_token", false},
          {"added_tokens_decoder", decoder_map},
          {"bos_token", display_piece(src.pieces[kBosId], kBosId)},
          {"eos_token", display_piece(src.pieces[kEosId], kEosId)},
          {"unk_token", display_piece(src.pieces[kUnkId], kUnkId)},
          {"pad_token", nullptr},
          {"clean_up_tokenization_spaces", false},
          {"legacy", true},
          {"spaces_between_special_tokens", false},
          {"tokenizer_class", "LlamaTokenizer"}};
}

}  // namespace qs::tok
