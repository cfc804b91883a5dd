// The BPE model shared by every tokenizer format (internal to src/tokenizer).
//
// A word (one pre-tokenized piece of text) starts as one symbol per unit: per byte for
// byte-level BPE (GPT-2, Llama-3, Qwen), per Unicode character otherwise (SentencePiece-style).
// Then the adjacent pair with the lowest merge rank is merged, ties going to the leftmost pair,
// until no adjacent pair has a merge. This is the order of HF tokenizers, transformers.js
// (rank + positional bias) and, with ranks taken from the merged token's score and equal scores
// sharing a rank, of llama2.c and SentencePiece (highest score first, leftmost on ties).
// Symbols left that are not tokens become byte-fallback tokens <0xNN>, or the unknown token.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/tables.h"

namespace qs::tok {

// The name of the byte-fallback token of byte b: "<0x0A>" (two upper-case hex digits).
std::string byte_fallback_token(int b);

class BpeModel {
 public:
  enum class Units { kBytes, kChars };

  // --- Configuration, filled in by the loaders ---
  Units units = Units::kChars;
  // Token strings in the form words are matched in (raw bytes for byte-level BPE) -> id.
  StringIdMap unit_vocab;
  PairMap merges;
  // kBytes: the id of the single-byte token of each byte (-1: none).
  std::array<int32_t, 256> byte_symbol{};
  // The ids of the byte-fallback tokens <0x00>..<0xFF> (-1: absent).
  std::array<int32_t, 256> byte_token{};
  bool byte_fallback = false;
  // llama2.c: characters that are not tokens become byte tokens before merging (and may merge).
  bool fallback_before_merge = false;
  // A word that is itself a token is emitted as is, without merges (Llama-3).
  bool ignore_merges = false;
  // Consecutive unknown tokens become one.
  bool fuse_unk = false;
  int32_t unk_id = -1;
  // When set, a word may be cut before each run of this unit (e.g. "▁") because no merge
  // result contains another unit followed by it: BPE of the parts equals BPE of the whole.
  // Lets tokenizers without a pre-tokenizer (Llama-2) cache per word instead of running BPE
  // over a whole document as one word.
  std::string split_unit;

  BpeModel() {
    byte_symbol.fill(-1);
    byte_token.fill(-1);
  }

  // Sets split_unit to `unit` unless a merge result (in unit form) contains another unit
  // followed by it.
  void enable_word_split(std::string_view unit, const std::vector<std::string_view>& merge_results);

  struct Symbol {
    int32_t id;  // token id; kUnknown for a character without a token, kDead once merged away
    int32_t prev, next;
    uint32_t begin, end;  // bytes of the word it covers
  };
  struct Candidate {
    int32_t rank;
    int32_t pos;  // index of the left symbol = its original position (ties: leftmost first)
    int32_t left, right, result;
  };
  // Buffers reused across the words of one encode call.
  struct Scratch {
    std::vector<Symbol> symbols;
    std::vector<Candidate> heap;
    // Per-call cache: word (a view into text that outlives the call) -> its ids.
    std::unordered_map<std::string_view, std::pair<uint32_t, uint32_t>> cache;
    std::vector<int32_t> cached_ids;
  };

  // Appends the ids of one pre-tokenized piece (cut at split_unit when set, cached per word).
  // Throws qs::Error when a character has no token, no byte fallback and there is no unk.
  void encode_piece(std::string_view piece, std::vector<int32_t>& out, Scratch& scratch) const;

 private:
  static constexpr int32_t kUnknown = -1;
  static constexpr int32_t kDead = -2;
  void encode_word(std::string_view word, std::vector<int32_t>& out, Scratch& scratch) const;
  void encode_word_cached(std::string_view word, std::vector<int32_t>& out, Scratch& scratch) const;
  void merge_symbols(Scratch& scratch) const;
  void emit(std::string_view word, const std::vector<Symbol>& syms, std::vector<int32_t>& out) const;
};

}  // namespace qs::tok
