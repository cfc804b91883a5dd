// Tokenizers of the models qstudy measures: text <-> token ids, exactly as the model was trained.
//
// Formats:
//  - GGUF vocabularies (tokenizer.ggml.* metadata of a llama.cpp model file; see gguf_vocab.cpp):
//    "llama" = SentencePiece BPE ranked by scores, "gpt2" = byte-level BPE with merges and the
//    pre-tokenizer named by tokenizer.ggml.pre.
//  - Hugging Face tokenizer.json (+ tokenizer_config.json, + generation_config.json if present):
//    BPE models with byte-level pre-tokenization (GPT-2, Llama-3, Qwen split regexes, run by
//    PCRE2 with full Unicode properties) or SentencePiece-style BPE (Llama-2: "▁" normalizer,
//    <0xNN> byte fallback), added and special tokens, NFC/NFKC normalization (ICU), decoders.
//    WordPiece, Unigram and other components we cannot reproduce exactly are refused by name.
//  - llama2.c tokenizer.bin: int32 max_token_length, then per token float32 score, int32
//    length, bytes. Encoded with llama2.c / SentencePiece BPE semantics: the adjacent pair whose
//    merged string is the token with the highest score merges first (leftmost on ties), " " is
//    a space ("▁" in SentencePiece), characters without a token become <0xNN> byte tokens
//    (id = byte + 3), BOS = 1, EOS = 2, a dummy space prefix before non-empty text.
//
// Semantics: those of transformers.js 3.7 for tokenizer.json (the tests compare ids on the
// shared evaluation data: identical on every document) and of llama2.c's run.c for
// tokenizer.bin. Where transformers.js and HF tokenizers (Rust) differ we follow transformers.js
// (regexes use JavaScript's \s, ASCII-only (?i:...), see regex.h), except in two places where
// we follow HF transformers: add_bos_token/add_eos_token in tokenizer_config.json rebuild the
// BOS/EOS template (transformers.js ignores them), and a Metaspace step without
// add_prefix_space derives it from prepend_scheme; and lstrip/rstrip of an added token never
// trim a neighbouring added token (transformers.js would, turning it into text). Ill-formed UTF-8 is first replaced by U+FFFD per maximal subpart (what a JavaScript or
// Python decoder does with the same bytes). Special and added tokens written in the text are
// always recognized, as HF does (for tokenizer.bin: <unk>, <s>, </s>, which llama2.c itself
// would spell out character by character).
// Decoding returns valid UTF-8 (U+FFFD where the ids split a character) and does not apply
// clean_up_tokenization_spaces, so decode(encode(x)) == x wherever the tokenizer can represent x.
// Every error caused by a file or an argument is a one-line qs::Error naming file and field.
// Encoding and decoding are const and thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace qs {

class GgufFile;
struct GgufKV;

namespace tok {
class Core;
struct Llama2cSource;
}  // namespace tok

class Tokenizer {
 public:
  // tokenizer.json (+ optional tokenizer_config.json path; empty = look beside it). A
  // generation_config.json beside tokenizer.json adds its eos_token_id(s) to eos_ids().
  static std::unique_ptr<Tokenizer> from_hf_json(const std::string& tokenizer_json_path,
                                                 const std::string& tokenizer_config_path = "");
  // The same from JSON text in memory; `source_name` stands for the file in error messages.
  static std::unique_ptr<Tokenizer> from_hf_json_text(std::string_view tokenizer_json, std::string_view config_json,
                                                      const std::string& source_name);
  static std::unique_ptr<Tokenizer> from_llama2c(const std::string& tokenizer_bin_path);
  static std::unique_ptr<Tokenizer> from_llama2c_bytes(std::string_view bytes, const std::string& source_name);
  // A HF model directory (tokenizer.json + tokenizer_config.json, or a tokenizer.bin in it) or a
  // file: *.json is tokenizer.json, anything else is sniffed (JSON object or llama2.c binary).
  static std::unique_ptr<Tokenizer> load(const std::string& path);
  // The vocabulary of a GGUF file: tokenizer.ggml.model "llama" (SentencePiece BPE: tokens,
  // scores, token_type) or "gpt2" (byte-level BPE: tokens, merges; tokenizer.ggml.pre names
  // the pre-tokenizer: "llama-bpe", "qwen2", "gpt-2" or "default"); other models and
  // pre-tokenizers are refused by name. Encodes like the tokenizer.json / tokenizer.bin the
  // vocabulary was converted from (gguf_vocab.cpp says where llama.cpp itself differs).
  static std::unique_ptr<Tokenizer> from_gguf(const GgufFile& file);
  static std::unique_ptr<Tokenizer> from_gguf_file(const std::string& path);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // add_special: add BOS/EOS as the tokenizer's config says (HF post-processor, overridden by
  // add_bos_token/add_eos_token when tokenizer_config.json sets them, as transformers does).
  // Special/added tokens written in the text are always recognized (as HF does).
  std::vector<int32_t> encode(std::string_view text, bool add_special = true) const;
  // Throws qs::Error for an id out of range.
  std::string decode(std::span<const int32_t> ids, bool skip_special = true) const;
  int32_t vocab_size() const;             // number of ids (base + added)
  std::optional<int32_t> bos_id() const;  // nullopt if none
  // Every id that ends generation: eos_token of tokenizer_config.json and the eos_token_id(s)
  // of generation_config.json (e.g. <|eot_id|>, <|im_end|>), without duplicates.
  std::vector<int32_t> eos_ids() const;
  bool adds_bos() const;                  // encode(text, true) starts with bos_id()
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::string id_to_token(int32_t id) const;  // the vocabulary string; throws for a bad id
  bool is_special(int32_t id) const;
  const std::string& chat_template() const;  // "" if none

  // HF tokenizer.json + tokenizer_config.json equivalent. For a tokenizer.bin: a Llama-2-style
  // BPE tokenizer.json whose merges are ranked by the merged token's score, so that it encodes
  // exactly like the .bin (one exception: HF normalizes " " to "▁", so a literal "▁" in the
  // text becomes a space there while llama2.c byte-encodes it). For a tokenizer.json: the
  // file's content.
  nlohmann::json to_hf_json() const;
  nlohmann::json to_hf_config_json() const;
  // The tokenizer.* metadata llama.cpp reads (as convert_hf_to_gguf.py writes it), for a model
  // with `vocab_size` ids: the vocabulary is padded with unused "[PADn]" tokens up to it (an
  // error when it has more tokens). Byte-level BPE becomes "gpt2" (its split regex must be one
  // llama.cpp names: Llama-3, Qwen2 or GPT-2), SentencePiece-style BPE becomes "llama" (scores
  // from tokenizer.bin, or from the merge ranks of a tokenizer.json).
  std::vector<GgufKV> to_gguf_metadata(int64_t vocab_size) const;

 private:
  friend class StreamDecoder;
  Tokenizer();
  std::unique_ptr<tok::Core> core_;
  std::string hf_json_path_, hf_json_text_, hf_config_path_, hf_config_text_;
  std::shared_ptr<const tok::Llama2cSource> llama2c_;
  std::shared_ptr<const std::vector<GgufKV>> gguf_vocab_;  // tokenizer.* keys of a GGUF source
};

// Incremental detokenizer for streaming generation: feed ids one by one, get the new complete
// UTF-8 text. It holds back bytes of a character that is not complete yet, and decodes a short
// window of ids so that rules about the first token (SentencePiece's leading-space strip) apply
// only at the start: the concatenation of push() results and flush() equals decode(all ids).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = true);
  std::string push(int32_t id);
  // Returns what is held back (an incomplete character becomes U+FFFD) and resets.
  std::string flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  std::vector<int32_t> ids_;
  size_t prefix_offset_ = 0;  // start of the window decoded each time
  size_t read_offset_ = 0;    // ids before this are emitted
};

}  // namespace qs
