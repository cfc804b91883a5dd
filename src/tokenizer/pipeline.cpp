#include "tokenizer/pipeline.h"

#include "core/error.h"

namespace qs::tok {

// ---------------------------------------------------------------------------------------------
// Added tokens

void AddedTokenMatcher::build(const std::vector<AddedToken>& tokens) {
  nodes_.assign(1, Node{});
  first_byte_.fill(false);
  for (size_t t = 0; t < tokens.size(); ++t) {
    const std::string& content = tokens[t].content;
    if (content.empty()) continue;
    first_byte_[static_cast<unsigned char>(content[0])] = true;
    int32_t node = 0;
    for (char ch : content) {
      auto b = static_cast<unsigned char>(ch);
      int32_t child = -1;
      for (const auto& [byte, index] : nodes_[node].children)
        if (byte == b) child = index;
      if (child < 0) {
        child = static_cast<int32_t>(nodes_.size());
        nodes_[node].children.emplace_back(b, child);
        nodes_.emplace_back();
      }
      node = child;
    }
    nodes_[node].token = static_cast<int32_t>(t);  // a later duplicate wins, as in transformers.js
  }
}

int32_t AddedTokenMatcher::match(std::string_view text, size_t pos, size_t& length) const {
  if (!first_byte_[static_cast<unsigned char>(text[pos])]) return -1;
  int32_t node = 0, best = -1;
  for (size_t j = pos; j < text.size(); ++j) {
    auto b = static_cast<unsigned char>(text[j]);
    int32_t child = -1;
    for (const auto& [byte, index] : nodes_[node].children)
      if (byte == b) child = index;
    if (child < 0) break;
    node = child;
    if (nodes_[node].token >= 0) {
      best = nodes_[node].token;
      length = j + 1 - pos;
    }
  }
  return best;
}

void Core::finish_added_tokens() {
  for (size_t i = 0; i < added.size(); ++i) {
    const AddedToken& t = added[i];
    auto id = static_cast<size_t>(t.id);
    if (id >= id_to_token.size()) id_to_token.resize(id + 1);
    id_to_token[id] = t.content;
    token_to_id.insert(t.content, t.id, /*overwrite=*/true);
    added_contents.insert(t.content, static_cast<int32_t>(i), /*overwrite=*/true);
  }
  id_exists.resize(id_to_token.size(), 0);
  id_special.resize(id_to_token.size(), 0);
  for (const AddedToken& t : added) {
    id_exists[static_cast<size_t>(t.id)] = 1;
    if (t.special) id_special[static_cast<size_t>(t.id)] = 1;
  }
  added_matcher.build(added);
}

// ---------------------------------------------------------------------------------------------
// Encoding

std::vector<int32_t> Core::encode(std::string_view input, bool add_special) const {
  // Ill-formed UTF-8 becomes U+FFFD, as when a JavaScript or Python reference decodes the bytes.
  std::string sanitized;
  std::string_view text = input;
  if (!is_valid_utf8(input)) {
    sanitized = to_valid_utf8(input);
    text = sanitized;
  }
  require(text.size() < (1ull << 32) - 1, "encode: text of ", text.size(), " bytes is too long (at most 4 GiB)");

  struct Section {
    std::string_view text;
    int32_t added;  // index into `added`, or -1 for text
  };
  std::vector<Section> sections;
  if (added_matcher.empty()) {
    sections.push_back({text, -1});
  } else {
    size_t start = 0, i = 0;
    while (i < text.size()) {
      size_t length = 0;
      int32_t t = added_matcher.match(text, i, length);
      if (t < 0) {
        ++i;
        continue;
      }
      if (i > start) sections.push_back({text.substr(start, i - start), -1});
      sections.push_back({text.substr(i, length), t});
      i += length;
      start = i;
    }
    if (start < text.size()) sections.push_back({text.substr(start), -1});
    for (size_t k = 0; k < sections.size(); ++k) {
      if (sections[k].added < 0) continue;
      const AddedToken& t = added[static_cast<size_t>(sections[k].added)];
      if (t.lstrip && k > 0 && sections[k - 1].added < 0)
        sections[k - 1].text = trim_js_whitespace_end(sections[k - 1].text);
      if (t.rstrip && k + 1 < sections.size() && sections[k + 1].added < 0)
        sections[k + 1].text = trim_js_whitespace_start(sections[k + 1].text);
    }
  }

  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + prefix_ids.size() + suffix_ids.size() + 8);
  if (add_special) out.insert(out.end(), prefix_ids.begin(), prefix_ids.end());
  BpeModel::Scratch scratch;
  std::deque<std::string> arena;  // strings made by normalizers; the word cache points into them
  for (size_t k = 0; k < sections.size(); ++k) {
    const Section& s = sections[k];
    if (s.added >= 0) out.push_back(added[static_cast<size_t>(s.added)].id);
    else if (!s.text.empty()) encode_section(s.text, static_cast<int>(k), out, scratch, arena);
  }
  if (add_special) out.insert(out.end(), suffix_ids.begin(), suffix_ids.end());
  return out;
}

void Core::encode_section(std::string_view section, int section_index, std::vector<int32_t>& out,
                          BpeModel::Scratch& scratch, std::deque<std::string>& arena) const {
  std::string_view x = section;
  for (const Normalizer& n : normalizers) {
    switch (n.kind) {
      case Normalizer::Kind::kPrepend: arena.push_back(n.text + std::string(x)); break;
      case Normalizer::Kind::kReplace: arena.push_back(n.regex->replace_all(x, n.text)); break;
      case Normalizer::Kind::kUnicode: arena.push_back(normalize_unicode(x, n.form)); break;
      case Normalizer::Kind::kStrip:
        if (n.strip_left) x = trim_js_whitespace_start(x);
        if (n.strip_right) x = trim_js_whitespace_end(x);
        continue;
    }
    x = arena.back();
  }
  if (x.empty()) return;

  std::vector<std::string_view> pieces{x}, next;
  std::vector<Span> spans;
  for (const PreTokenizer& p : pre_tokenizers) {
    next.clear();
    for (std::string_view piece : pieces) {
      switch (p.kind) {
        case PreTokenizer::Kind::kSplit: {
          spans.clear();
          p.regex->find_all(piece, spans);
          size_t last = 0;
          for (const Span& m : spans) {
            if (!p.invert && m.begin > last) next.push_back(piece.substr(last, m.begin - last));
            if (p.invert || !p.removed) next.push_back(piece.substr(m.begin, m.end - m.begin));
            last = m.end;
          }
          if (!p.invert && last < piece.size()) next.push_back(piece.substr(last));
          break;
        }
        case PreTokenizer::Kind::kByteLevel: {
          std::string_view q = piece;
          if (p.add_prefix_space && (q.empty() || q[0] != ' ')) {
            std::string& prefixed = arena.emplace_back(1, ' ');
            prefixed.append(q);
            q = prefixed;
          }
          if (!p.regex) {
            next.push_back(q);
            break;
          }
          spans.clear();
          p.regex->find_all(q, spans);
          for (const Span& m : spans) next.push_back(q.substr(m.begin, m.end - m.begin));
          break;
        }
        case PreTokenizer::Kind::kMetaspace: {
          std::string s;
          for (char c : piece) {
            if (c == ' ') s += p.replacement;
            else s += c;
          }
          bool prepend = p.prepend_scheme == PreTokenizer::Prepend::kAlways ||
                         (p.prepend_scheme == PreTokenizer::Prepend::kFirst && section_index == 0);
          if (p.add_prefix_space && prepend && s.compare(0, p.replacement.size(), p.replacement) != 0)
            s = p.replacement + s;
          arena.push_back(std::move(s));
          next.push_back(arena.back());
          break;
        }
      }
    }
    pieces.swap(next);
  }

  size_t first = out.size();
  for (std::string_view piece : pieces) model.encode_piece(piece, out, scratch);
  if (model.fuse_unk && model.unk_id >= 0) {
    size_t w = first;
    for (size_t r = first; r < out.size(); ++r) {
      if (out[r] == model.unk_id && w > first && out[w - 1] == model.unk_id) continue;
      out[w++] = out[r];
    }
    out.resize(w);
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

void Core::check_id(int64_t id, const char* what) const {
  if (id < 0 || id >= vocab_size())
    fail(what, ": token id ", id, " is out of range (the vocabulary has ids 0..", vocab_size() - 1, ")");
  if (!id_exists[static_cast<size_t>(id)]) fail(what, ": token id ", id, " has no token in the vocabulary");
}

namespace {

// transformers.js reads <0xNN> with parseInt(token.slice(3, 5), 16), which takes the longest
// hex prefix ("<0x4G>" is byte 4) and refuses a token whose first digit is not hex.
int byte_fallback_value(std::string_view t) {
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
  auto hex = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
  };
  int hi = hex(t[3]), lo = hex(t[4]);
  if (hi < 0) return -1;
  return lo < 0 ? hi : hi * 16 + lo;
}

}  // namespace

std::string Core::decode_bytes(std::span<const int32_t> ids, bool skip_special) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    check_id(id, "decode");
    if (skip_special && id_special[static_cast<size_t>(id)]) continue;
    tokens.push_back(id_to_token[static_cast<size_t>(id)]);
  }
  if (!has_decoder) {
    std::string joined;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) joined += ' ';
      joined += tokens[i];
    }
    return joined;
  }
  for (const Decoder& d : decoders) {
    std::vector<std::string> next;
    switch (d.kind) {
      case Decoder::Kind::kReplace:
        for (std::string& t : tokens) t = d.regex->replace_all(t, d.content);
        continue;
      case Decoder::Kind::kByteFallback: {
        std::string bytes;
        bool in_run = false;
        for (std::string& t : tokens) {
          int b = byte_fallback_value(t);
          if (b >= 0) {
            bytes += static_cast<char>(b);
            in_run = true;
            continue;
          }
          if (in_run) next.push_back(std::move(bytes)), bytes.clear(), in_run = false;
          next.push_back(std::move(t));
        }
        if (in_run) next.push_back(std::move(bytes));
        break;
      }
      case Decoder::Kind::kFuse: {
        std::string all;
        for (const std::string& t : tokens) all += t;
        next.push_back(std::move(all));
        break;
      }
      case Decoder::Kind::kStrip:
        for (std::string& t : tokens) {
          std::string_view v = t, c = d.content;
          for (int i = 0; i < d.start && !c.empty() && v.substr(0, c.size()) == c; ++i) v.remove_prefix(c.size());
          for (int i = 0; i < d.stop && !c.empty() && v.size() >= c.size() && v.substr(v.size() - c.size()) == c; ++i)
            v.remove_suffix(c.size());
          t = std::string(v);
        }
        continue;
      case Decoder::Kind::kByteLevel: {
        // Added tokens are text; runs of other tokens are byte-level characters to map back.
        std::string run;
        bool in_run = false;
        for (std::string& t : tokens) {
          if (added_contents.find(t) >= 0) {
            if (in_run) next.push_back(std::move(run)), run.clear(), in_run = false;
            next.push_back(std::move(t));
            continue;
          }
          in_run = true;
          size_t i = 0;
          while (i < t.size()) {
            Utf8Step st = utf8_step(t.data() + i, t.size() - i);
            int b = st.kind == Utf8Kind::kValid ? byte_level_byte(st.cp) : -1;
            if (b >= 0) run += static_cast<char>(b);
            else run.append(t, i, st.length);  // not byte-level: keep the character (HF does)
            i += st.length;
          }
        }
        if (in_run) next.push_back(std::move(run));
        break;
      }
      case Decoder::Kind::kMetaspace:
        for (size_t i = 0; i < tokens.size(); ++i) {
          std::string& t = tokens[i];
          std::string r;
          for (size_t k = 0; k < t.size();) {
            if (t.compare(k, d.content.size(), d.content) == 0 && !d.content.empty()) {
              r += ' ';
              k += d.content.size();
            } else {
              r += t[k++];
            }
          }
          if (d.add_prefix_space && i == 0 && !r.empty() && r[0] == ' ') r.erase(0, 1);
          t = std::move(r);
        }
        continue;
    }
    tokens.swap(next);
  }
  std::string out;
  for (const std::string& t : tokens) out += t;
  return out;
}

}  // namespace qs::tok
