// The tokenization pipeline behind qs::Tokenizer (internal to src/tokenizer).
//
// encode: split out added tokens (leftmost-longest, lstrip/rstrip) -> per remaining section:
// normalizers -> pre-tokenizers -> BPE model -> post-processor template (BOS/EOS).
// decode: ids -> token strings -> (skip special) -> decoder chain -> bytes -> valid UTF-8.
// Each step follows transformers.js 3.7 (the reference the tests compare with), which
// follows HF tokenizers; where they differ the header of the step says so.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/bpe.h"
#include "tokenizer/regex.h"
#include "tokenizer/tables.h"
#include "tokenizer/unicode.h"

namespace qs::tok {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool lstrip = false;  // eat JavaScript white space on the left / right of the token
  bool rstrip = false;
};

struct Normalizer {
  enum class Kind { kPrepend, kReplace, kUnicode, kStrip };
  explicit Normalizer(Kind k) : kind(k) {}
  Kind kind;
  std::string text;                     // kPrepend: the prefix; kReplace: the replacement
  std::shared_ptr<const Regex> regex;   // kReplace: what to replace
  UnicodeForm form = UnicodeForm::kNFC; // kUnicode
  bool strip_left = false, strip_right = false;
};

struct PreTokenizer {
  enum class Kind { kSplit, kByteLevel, kMetaspace };
  explicit PreTokenizer(Kind k) : kind(k) {}
  Kind kind;
  // kSplit: the pattern; kByteLevel with use_regex: GPT-2's pattern.
  std::shared_ptr<const Regex> regex;
  bool invert = false;   // kSplit: keep only the matches (whatever the behavior)
  bool removed = false;  // kSplit behavior "Removed": drop the matches (else "Isolated")
  bool add_prefix_space = false;  // kByteLevel, kMetaspace
  std::string replacement;        // kMetaspace
  enum class Prepend { kAlways, kFirst, kNever } prepend_scheme = Prepend::kAlways;
};

struct Decoder {
  enum class Kind { kReplace, kByteFallback, kFuse, kStrip, kByteLevel, kMetaspace };
  explicit Decoder(Kind k) : kind(k) {}
  Kind kind;
  std::shared_ptr<const Regex> regex;  // kReplace
  std::string content;                 // kReplace: replacement; kStrip: the character; kMetaspace: replacement
  int start = 0, stop = 0;             // kStrip
  bool add_prefix_space = false;       // kMetaspace
};

// Leftmost-longest matcher over the added tokens' contents (a byte trie).
class AddedTokenMatcher {
 public:
  void build(const std::vector<AddedToken>& tokens);
  // Index into the token list of the longest token starting at text[pos], or -1.
  int32_t match(std::string_view text, size_t pos, size_t& length) const;
  bool empty() const { return nodes_.size() <= 1; }

 private:
  struct Node {
    int32_t token = -1;
    std::vector<std::pair<unsigned char, int32_t>> children;  // sorted by byte
  };
  std::vector<Node> nodes_;
  std::array<bool, 256> first_byte_{};
};

class Core {
 public:
  // --- Vocabulary ---
  std::vector<std::string> id_to_token;  // display strings ("" for ids without a token)
  std::vector<uint8_t> id_exists;
  std::vector<uint8_t> id_special;       // special tokens: skipped by decode(skip_special)
  StringIdMap token_to_id;               // vocabulary + added tokens (added override)
  std::vector<AddedToken> added;
  AddedTokenMatcher added_matcher;
  StringIdMap added_contents;  // content -> index in `added`

  // --- Pipeline ---
  std::vector<Normalizer> normalizers;
  std::vector<PreTokenizer> pre_tokenizers;
  BpeModel model;
  std::vector<int32_t> prefix_ids, suffix_ids;  // add_special: prefix + text + suffix
  std::vector<Decoder> decoders;
  bool has_decoder = false;  // false: decode joins tokens with spaces (as HF does)

  // --- Configuration (tokenizer_config.json, generation_config.json) ---
  std::optional<int32_t> bos_id;
  std::vector<int32_t> eos_ids;
  std::string chat_template;

  std::vector<int32_t> encode(std::string_view text, bool add_special) const;
  // Raw decoded bytes (possibly ill-formed UTF-8 where tokens split a character).
  std::string decode_bytes(std::span<const int32_t> ids, bool skip_special) const;
  // Checks an id for decode/id_to_token; throws qs::Error naming `what`.
  void check_id(int64_t id, const char* what) const;
  int32_t vocab_size() const { return static_cast<int32_t>(id_to_token.size()); }
  // Fills id_exists/id_special sizes, the added-token matcher and token_to_id from added.
  void finish_added_tokens();

 private:
  void encode_section(std::string_view section, int section_index, std::vector<int32_t>& out,
                      BpeModel::Scratch& scratch, std::deque<std::string>& arena) const;
};

}  // namespace qs::tok
