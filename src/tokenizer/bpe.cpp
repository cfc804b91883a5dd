#include "tokenizer/bpe.h"

#include <algorithm>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace qs::tok {

std::string byte_fallback_token(int b) {
  static const char* hex = "0123456789ABCDEF";
  return {'<', '0', 'x', hex[(b >> 4) & 15], hex[b & 15], '>'};
}

void BpeModel::enable_word_split(std::string_view unit, const std::vector<std::string_view>& merge_results) {
  split_unit.clear();
  if (unit.empty()) return;
  // A merge that produces "X<unit>" (X another unit) could cross the cut, so no cutting then.
  for (std::string_view r : merge_results) {
    for (size_t k = r.find(unit, 1); k != std::string_view::npos; k = r.find(unit, k + 1)) {
      bool after_same = k >= unit.size() && r.substr(k - unit.size(), unit.size()) == unit;
      if (!after_same) return;
    }
  }
  split_unit = std::string(unit);
}

void BpeModel::encode_piece(std::string_view piece, std::vector<int32_t>& out, Scratch& scratch) const {
  if (piece.empty()) return;
  if (ignore_merges) {
    int32_t id = unit_vocab.find(piece);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  if (split_unit.empty()) {
    encode_word_cached(piece, out, scratch);
    return;
  }
  // Cut before each run of split_unit: "▁▁the▁cat" -> "▁▁the", "▁cat".
  const std::string_view unit = split_unit;
  size_t start = 0, i = 0;
  bool prev_is_unit = false;
  while (i < piece.size()) {
    bool is_unit = piece.compare(i, unit.size(), unit) == 0;
    if (is_unit && !prev_is_unit && i > start) {
      encode_word_cached(piece.substr(start, i - start), out, scratch);
      start = i;
    }
    prev_is_unit = is_unit;
    i += is_unit ? unit.size() : utf8_char_length(static_cast<unsigned char>(piece[i]));
  }
  encode_word_cached(piece.substr(start), out, scratch);
}

void BpeModel::encode_word_cached(std::string_view word, std::vector<int32_t>& out, Scratch& scratch) const {
  auto it = scratch.cache.find(word);
  if (it != scratch.cache.end()) {
    const int32_t* ids = scratch.cached_ids.data() + it->second.first;
    out.insert(out.end(), ids, ids + it->second.second);
    return;
  }
  size_t before = out.size();
  encode_word(word, out, scratch);
  auto offset = static_cast<uint32_t>(scratch.cached_ids.size());
  scratch.cached_ids.insert(scratch.cached_ids.end(), out.begin() + static_cast<ptrdiff_t>(before), out.end());
  scratch.cache.emplace(word, std::make_pair(offset, static_cast<uint32_t>(out.size() - before)));
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out, Scratch& scratch) const {
  std::vector<Symbol>& syms = scratch.symbols;
  syms.clear();
  auto add = [&](int32_t id, size_t begin, size_t end) {
    auto n = static_cast<int32_t>(syms.size());
    syms.push_back({id, n - 1, -1, static_cast<uint32_t>(begin), static_cast<uint32_t>(end)});
  };
  if (units == Units::kBytes) {
    for (size_t i = 0; i < word.size(); ++i) {
      int32_t id = byte_symbol[static_cast<unsigned char>(word[i])];
      add(id >= 0 ? id : kUnknown, i, i + 1);
    }
  } else {
    size_t i = 0;
    while (i < word.size()) {
      size_t len = std::min(utf8_char_length(static_cast<unsigned char>(word[i])), word.size() - i);
      int32_t id = unit_vocab.find(word.substr(i, len));
      if (id < 0 && fallback_before_merge && byte_fallback) {
        bool all = true;
        for (size_t k = i; k < i + len; ++k) all = all && byte_token[static_cast<unsigned char>(word[k])] >= 0;
        if (all) {
          for (size_t k = i; k < i + len; ++k) add(byte_token[static_cast<unsigned char>(word[k])], k, k + 1);
          i += len;
          continue;
        }
      }
      add(id >= 0 ? id : kUnknown, i, i + len);
      i += len;
    }
  }
  for (size_t k = 0; k + 1 < syms.size(); ++k) syms[k].next = static_cast<int32_t>(k + 1);
  if (syms.size() > 1) merge_symbols(scratch);
  emit(word, syms, out);
}

void BpeModel::merge_symbols(Scratch& scratch) const {
  std::vector<Symbol>& s = scratch.symbols;
  std::vector<Candidate>& heap = scratch.heap;
  heap.clear();
  // std heap functions build a max-heap: "less" puts the lowest (rank, position) on top.
  auto later = [](const Candidate& a, const Candidate& b) { return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos; };
  auto candidate = [&](int32_t i) -> bool {
    int32_t j = s[i].next;
    if (j < 0 || s[i].id < 0 || s[j].id < 0) return false;
    const Merge* m = merges.find(s[i].id, s[j].id);
    if (!m) return false;
    heap.push_back({m->rank, i, s[i].id, s[j].id, m->result});
    return true;
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(s.size()); ++i) candidate(i);
  std::make_heap(heap.begin(), heap.end(), later);
  auto push = [&](int32_t i) {
    if (candidate(i)) std::push_heap(heap.begin(), heap.end(), later);
  };
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    Candidate c = heap.back();
    heap.pop_back();
    Symbol& left = s[c.pos];
    // Skip candidates made stale by earlier merges.
    if (left.id != c.left || left.next < 0 || s[left.next].id != c.right) continue;
    Symbol& right = s[left.next];
    left.id = c.result;
    left.end = right.end;
    left.next = right.next;
    if (left.next >= 0) s[left.next].prev = c.pos;
    right.id = kDead;
    if (left.prev >= 0) push(left.prev);
    push(c.pos);
  }
}

void BpeModel::emit(std::string_view word, const std::vector<Symbol>& syms, std::vector<int32_t>& out) const {
  for (int32_t i = syms.empty() ? -1 : 0; i >= 0; i = syms[i].next) {
    const Symbol& sym = syms[i];
    if (sym.id >= 0) {
      out.push_back(sym.id);
      continue;
    }
    std::string_view bytes = word.substr(sym.begin, sym.end - sym.begin);
    bool have_bytes = byte_fallback;
    for (char b : bytes) have_bytes = have_bytes && byte_token[static_cast<unsigned char>(b)] >= 0;
    if (have_bytes) {
      for (char b : bytes) out.push_back(byte_token[static_cast<unsigned char>(b)]);
    } else if (unk_id >= 0) {
      out.push_back(unk_id);
    } else {
      fail("encode: ", qs::quote(bytes), " has no token, and the tokenizer has neither byte fallback nor an unk_token");
    }
  }
}

}  // namespace qs::tok
