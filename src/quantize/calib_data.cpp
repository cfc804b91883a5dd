#include "quantize/calib_data.h"

#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/files.h"
#include "core/rng.h"

namespace qs::quant {

std::vector<std::string> read_documents(const std::string& file, const std::string& field) {
  const std::string text = read_text_file(file);
  std::vector<std::string> docs;
  const bool jsonl = file.ends_with(".jsonl") || file.ends_with(".json");
  if (jsonl) {
    std::istringstream in(text);
    std::string line;
    int64_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::parse_error& e) {
        fail(file, ":", line_no, ": invalid JSON at byte ", e.byte);
      } catch (const nlohmann::json::out_of_range&) {  // a number beyond double/int64 range
        fail(file, ":", line_no, ": invalid JSON: a number is out of range");
      }
      if (!j.is_object() || !j.contains(field) || !j[field].is_string())
        fail(file, ":", line_no, ": no string field ", quote(field), " (choose one with --calib-field)");
      docs.push_back(j[field].get<std::string>());
    }
  } else {
    // Paragraphs separated by blank lines.
    std::istringstream in(text);
    std::string line, doc;
    while (std::getline(in, line)) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) {
        if (!doc.empty()) docs.push_back(doc), doc.clear();
      } else {
        doc += doc.empty() ? line : "\n" + line;
      }
    }
    if (!doc.empty()) docs.push_back(doc);
  }
  if (docs.empty()) fail(file, ": no calibration text (expected documents of text)");
  return docs;
}

std::vector<std::vector<int32_t>> load_calibration_tokens(const Tokenizer& tok, const CalibDataOptions& o) {
  require(o.samples >= 1, "--calib-samples: expected >= 1, got ", o.samples);
  require(o.seqlen >= 2, "--calib-seqlen: expected >= 2, got ", o.seqlen);
  const std::vector<std::string> docs = read_documents(o.file, o.field);
  std::string joined;
  for (const auto& d : docs) joined += (joined.empty() ? "" : "\n\n") + d;
  const std::vector<int32_t> stream = tok.encode(joined, false);
  const bool bos = tok.adds_bos() && tok.bos_id();
  const int64_t body = o.seqlen - (bos ? 1 : 0);
  if (static_cast<int64_t>(stream.size()) < body)
    fail(o.file, ": calibration text is too short: ", stream.size(), " tokens, fewer than one window of --calib-seqlen ",
         o.seqlen);
  Rng rng(o.seed);
  std::vector<std::vector<int32_t>> out;
  for (int64_t s = 0; s < o.samples; ++s) {
    const int64_t start = static_cast<int64_t>(rng.below(stream.size() - body + 1));
    std::vector<int32_t> w;
    if (bos) w.push_back(*tok.bos_id());
    w.insert(w.end(), stream.begin() + start, stream.begin() + start + body);
    out.push_back(std::move(w));
  }
  return out;
}

}  // namespace qs::quant
