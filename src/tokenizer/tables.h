// Flat open-addressing hash tables for the tokenizer's hot paths (internal to src/tokenizer):
// string -> id (vocabulary lookups) and (left id, right id) -> merge (BPE). One allocation
// each, no per-entry nodes, so lookups are a hash and usually one cache line.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace qs::tok {

// Maps byte strings to ids; the keys are copied into one arena.
class StringIdMap {
 public:
  void reserve(size_t n) {
    while (slots_.size() < 2 * n) grow();
  }
  // Sets key -> id; returns false (and keeps the old id) when the key is present and
  // overwrite is false.
  bool insert(std::string_view key, int32_t id, bool overwrite = false) {
    if ((count_ + 1) * 2 > slots_.size()) grow();
    uint64_t h = hash(key);
    size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.id < 0) {
        s = {h, static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(key.size()), id};
        arena_.append(key);
        ++count_;
        return true;
      }
      if (s.hash == h && key_of(s) == key) {
        if (overwrite) s.id = id;
        return overwrite;
      }
    }
  }
  // The id of key, or -1.
  int32_t find(std::string_view key) const {
    if (slots_.empty()) return -1;
    uint64_t h = hash(key);
    size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.id < 0) return -1;
      if (s.hash == h && key_of(s) == key) return s.id;
    }
  }
  size_t size() const { return count_; }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t offset = 0;
    uint32_t length = 0;
    int32_t id = -1;
  };
  static uint64_t hash(std::string_view key) { return std::hash<std::string_view>{}(key); }
  std::string_view key_of(const Slot& s) const { return std::string_view(arena_).substr(s.offset, s.length); }
  void grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(old.empty() ? 64 : old.size() * 2, Slot{});
    size_t mask = slots_.size() - 1;
    for (const Slot& s : old) {
      if (s.id < 0) continue;
      size_t i = s.hash & mask;
      while (slots_[i].id >= 0) i = (i + 1) & mask;
      slots_[i] = s;
    }
  }
  std::vector<Slot> slots_;
  std::string arena_;
  size_t count_ = 0;
};

// A BPE merge: the pair (left, right) becomes `result`; lower rank merges first.
struct Merge {
  int32_t rank;
  int32_t result;
};

// Maps (left id, right id) to its merge.
class PairMap {
 public:
  // Sets the merge of a pair; a later duplicate replaces the earlier one, as in both HF
  // tokenizers and transformers.js (their merge maps are filled in list order). Returns false
  // for a duplicate.
  bool insert(int32_t left, int32_t right, Merge m) {
    if ((count_ + 1) * 2 > slots_.size()) grow();
    uint64_t key = pack(left, right);
    size_t mask = slots_.size() - 1;
    for (size_t i = mix(key) & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.merge.result < 0) {
        s = {key, m};
        ++count_;
        return true;
      }
      if (s.key == key) {
        s.merge = m;
        return false;
      }
    }
  }
  // The merge of (left, right), or nullptr.
  const Merge* find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    uint64_t key = pack(left, right);
    size_t mask = slots_.size() - 1;
    for (size_t i = mix(key) & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.merge.result < 0) return nullptr;
      if (s.key == key) return &s.merge;
    }
  }
  size_t size() const { return count_; }

 private:
  struct Slot {
    uint64_t key = 0;
    Merge merge{0, -1};
  };
  static uint64_t pack(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  }
  static uint64_t mix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
  }
  void grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(old.empty() ? 64 : old.size() * 2, Slot{});
    size_t mask = slots_.size() - 1;
    for (const Slot& s : old) {
      if (s.merge.result < 0) continue;
      size_t i = mix(s.key) & mask;
      while (slots_[i].merge.result >= 0) i = (i + 1) & mask;
      slots_[i] = s;
    }
  }
  std::vector<Slot> slots_;
  size_t count_ = 0;
};

}  // namespace qs::tok
