#include "eval/dataset.h"

#include <filesystem>

#include "core/error.h"
#include "core/files.h"
#include "eval/text_ops.h"

namespace qs::eval {

using json = nlohmann::json;

namespace {

std::string get_string(const json& j, const char* key, const std::string& where, bool required) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (required) fail(where, ": missing key '", key, "'");
    return {};
  }
  if (!it->is_string()) fail(where, ": key '", key, "' must be a string");
  return it->get<std::string>();
}

// Collects issues; in strict mode the first one is an error.
struct IssueSink {
  bool strict;
  std::vector<ReadIssue>& out;
  void add(std::string origin, std::string message) {
    if (strict) fail(origin, ": ", message, " (--strict stops at the first bad record)");
    out.push_back({std::move(origin), std::move(message)});
  }
};

// Line number (1-based) of byte offset `pos`.
size_t line_of(std::string_view text, size_t pos) {
  size_t line = 1;
  for (size_t i = 0; i < pos && i < text.size(); ++i) line += text[i] == '\n';
  return line;
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

void read_jsonl(std::string_view bytes, const std::string& name, std::vector<Record>& out, IssueSink& issues) {
  size_t start = 0, line = 0;
  while (start < bytes.size()) {
    ++line;
    size_t nl = bytes.find('\n', start);
    std::string_view text = bytes.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    start = nl == std::string_view::npos ? bytes.size() : nl + 1;
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    bool blank = true;
    for (char c : text) blank = blank && (c == ' ' || c == '\t');
    if (blank) continue;
    const std::string origin = name + ":" + std::to_string(line);
    json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded()) {
      // Re-parse with exceptions for the parser's own description of the problem.
      std::string why = "not valid JSON";
      try {
        const json again = json::parse(text);
        why = again.dump();  // not reached: the first parse failed
      } catch (const json::exception& e) {
        why = e.what();
        if (auto at = why.find("parse error"); at != std::string::npos) why = why.substr(at);
      }
      issues.add(origin, "malformed JSON line (" + one_line(why) + ")");
      continue;
    }
    if (!doc.is_object()) {
      issues.add(origin, "expected a JSON object per line");
      continue;
    }
    out.push_back({std::move(doc), origin});
  }
}

void read_json(std::string_view bytes, const std::string& name, const std::string& key, std::vector<Record>& out,
               IssueSink& issues) {
  json doc;
  try {
    doc = json::parse(bytes);
  } catch (const json::parse_error& e) {
    fail(name, ":", line_of(bytes, e.byte > 0 ? e.byte - 1 : 0), ": malformed JSON (", one_line(e.what()), ")");
  } catch (const json::out_of_range&) {  // a number beyond double/int64 range
    fail(name, ": invalid JSON: a number is out of range");
  }
  if (!key.empty()) {
    if (!doc.is_object() || !doc.contains(key)) fail(name, ": expected an object with key '", key, "'");
    doc = doc[key];
  }
  if (!doc.is_array()) fail(name, ": expected a JSON array of records", key.empty() ? "" : " under '" + key + "'");
  for (size_t i = 0; i < doc.size(); ++i) {
    const std::string origin = name + ":record " + std::to_string(i + 1);
    if (!doc[i].is_object()) {
      issues.add(origin, "expected a JSON object");
      continue;
    }
    out.push_back({std::move(doc[i]), origin});
  }
}

void read_csv(std::string_view bytes, const std::string& name, std::vector<Record>& out, IssueSink& issues) {
  std::vector<std::string> header;
  size_t i = 0, line = 1;
  if (bytes.substr(0, 3) == "\xEF\xBB\xBF") i = 3;  // UTF-8 byte order mark
  while (i < bytes.size()) {
    const size_t row_line = line;
    std::vector<std::string> fields(1);
    bool quoted = false, ok = true;
    // One record: fields separated by ',', ended by a newline outside quotes.
    while (true) {
      if (i >= bytes.size()) {
        if (quoted) ok = false;
        break;
      }
      const char c = bytes[i];
      if (quoted) {
        if (c == '"') {
          if (i + 1 < bytes.size() && bytes[i + 1] == '"') {
            fields.back() += '"';
            i += 2;
          } else {
            quoted = false;
            ++i;
          }
        } else {
          line += c == '\n';
          fields.back() += c;
          ++i;
        }
        continue;
      }
      if (c == '"' && fields.back().empty()) {
        quoted = true;
        ++i;
      } else if (c == ',') {
        fields.emplace_back();
        ++i;
      } else if (c == '\n' || c == '\r') {
        if (c == '\r' && i + 1 < bytes.size() && bytes[i + 1] == '\n') ++i;
        ++i;
        ++line;
        break;
      } else {
        fields.back() += c;
        ++i;
      }
    }
    const std::string origin = name + ":" + std::to_string(row_line);
    if (!ok) fail(origin, ": unterminated quoted CSV field (the rest of the file cannot be read)");
    if (fields.size() == 1 && fields[0].empty()) continue;  // blank line
    bool valid_utf8 = true;
    for (const auto& f : fields) valid_utf8 = valid_utf8 && find_invalid_utf8(f) == std::string::npos;
    if (header.empty()) {
      if (!valid_utf8) fail(origin, ": CSV header is not valid UTF-8");
      header = std::move(fields);
      continue;
    }
    if (!valid_utf8) {
      issues.add(origin, "CSV row is not valid UTF-8");
      continue;
    }
    if (fields.size() != header.size()) {
      issues.add(origin, "CSV row has " + std::to_string(fields.size()) + " fields, the header has " +
                             std::to_string(header.size()));
      continue;
    }
    json doc = json::object();
    for (size_t k = 0; k < header.size(); ++k) doc[header[k]] = std::move(fields[k]);
    out.push_back({std::move(doc), origin});
  }
  if (header.empty()) fail(name, ": empty CSV file (expected a header row)");
}

void read_lines(std::string_view bytes, const std::string& name, int per_record, std::vector<Record>& out,
                IssueSink& issues) {
  require(per_record >= 1, name, ": 'lines_per_record' must be >= 1");
  if (find_invalid_utf8(bytes) != std::string::npos) fail(name, ": not valid UTF-8");
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < bytes.size()) {
    size_t nl = bytes.find('\n', start);
    std::string_view l = bytes.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    lines.emplace_back(l);
    start = nl == std::string_view::npos ? bytes.size() : nl + 1;
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  for (size_t r = 0; r < lines.size(); r += per_record) {
    const std::string origin = name + ":" + std::to_string(r + 1);
    if (r + per_record > lines.size()) {
      issues.add(origin, "incomplete record: " + std::to_string(lines.size() - r) + " of " +
                             std::to_string(per_record) + " lines at the end of the file");
      break;
    }
    json doc = {{"lines", json::array()}};
    for (int k = 0; k < per_record; ++k) doc["lines"].push_back(lines[r + k]);
    out.push_back({std::move(doc), origin});
  }
}

}  // namespace

SourceSpec parse_source_spec(const json& j, const std::string& where) {
  if (!j.is_object()) fail(where, ": expected an object with 'path' and 'format'");
  SourceSpec s;
  s.path = get_string(j, "path", where, true);
  s.format = get_string(j, "format", where, true);
  s.split = get_string(j, "split", where, false);
  s.note = get_string(j, "note", where, false);
  s.records_key = get_string(j, "records_key", where, false);
  static const char* formats[] = {"jsonl", "json", "csv", "lines", "wikitext_documents"};
  bool known = false;
  for (const char* f : formats) known = known || s.format == f;
  if (!known) fail(where, ": 'format' is ", quote(s.format), ", expected jsonl, json, csv, lines or wikitext_documents");
  if (auto it = j.find("lines_per_record"); it != j.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 1000)
      fail(where, ": 'lines_per_record' must be an integer in 1..1000");
    s.lines_per_record = it->get<int>();
  }
  if (s.format == "lines" && s.lines_per_record == 0) fail(where, ": format 'lines' needs 'lines_per_record'");
  if (auto it = j.find("labels"); it != j.end()) {
    if (!it->is_object()) fail(where, ": 'labels' must be an object with 'path' and 'field'");
    s.labels_path = get_string(*it, "path", where + ".labels", true);
    s.labels_field = get_string(*it, "field", where + ".labels", true);
  }
  if (auto it = j.find("fields"); it != j.end()) {
    if (!it->is_object()) fail(where, ": 'fields' must be an object of field name -> template");
    for (auto f = it->begin(); f != it->end(); ++f) {
      if (!f->is_string()) fail(where, ".fields.", f.key(), ": expected a template string");
      s.fields.emplace_back(f.key(), Template::compile(f->get<std::string>(), where + ".fields." + f.key()));
    }
  }
  return s;
}

std::string resolve_data_path(const std::string& path, const std::string& data_dir) {
  if (path.empty() || path[0] == '/' || data_dir.empty()) return path;
  return (std::filesystem::path(data_dir) / path).lexically_normal().string();
}

ReadResult read_source_bytes(const SourceSpec& spec, std::string_view bytes, const std::string& name, bool strict,
                             const std::vector<std::string>* labels) {
  ReadResult r;
  r.path = name;
  IssueSink issues{strict, r.skipped};
  std::vector<Record> raw;
  if (spec.format == "jsonl") read_jsonl(bytes, name, raw, issues);
  else if (spec.format == "json") read_json(bytes, name, spec.records_key, raw, issues);
  else if (spec.format == "csv") read_csv(bytes, name, raw, issues);
  else if (spec.format == "lines") read_lines(bytes, name, spec.lines_per_record, raw, issues);
  else if (spec.format == "wikitext_documents") {
    if (find_invalid_utf8(bytes) != std::string::npos) fail(name, ": not valid UTF-8");
    size_t k = 0;
    for (auto& page : wikitext_documents(bytes)) raw.push_back({json{{"page", std::move(page)}}, name + ":page " + std::to_string(++k)});
  } else {
    fail(name, ": unknown format ", quote(spec.format));
  }
  if (labels) {
    // Line-aligned labels must match the records read before any was skipped.
    const size_t total = raw.size() + r.skipped.size();
    if (labels->size() != total)
      fail(spec.labels_path, ": ", labels->size(), " labels for ", total, " records of ", name, " (they must align line by line)");
    if (!r.skipped.empty())
      fail(name, ": cannot align the labels of ", spec.labels_path, " after skipping bad records (fix the file or use --strict)");
    for (size_t i = 0; i < raw.size(); ++i) raw[i].doc[spec.labels_field] = (*labels)[i];
  }
  r.records.reserve(raw.size());
  for (auto& rec : raw) {
    if (spec.fields.empty()) {
      r.records.push_back(std::move(rec));
      continue;
    }
    json doc = json::object();
    bool ok = true;
    for (const auto& [field, tmpl] : spec.fields) {
      try {
        doc[field] = tmpl.evaluate(rec.doc);
      } catch (const Error& e) {
        issues.add(rec.origin, "field '" + field + "': " + e.what());
        ok = false;
        break;
      }
    }
    if (ok) r.records.push_back({std::move(doc), rec.origin});
  }
  return r;
}

ReadResult read_source(const SourceSpec& spec, const std::string& data_dir, bool strict) {
  const std::string path = resolve_data_path(spec.path, data_dir);
  const std::string bytes = read_file(path);
  std::vector<std::string> labels;
  if (!spec.labels_path.empty()) {
    const std::string label_path = resolve_data_path(spec.labels_path, data_dir);
    const std::string text = read_file(label_path);
    size_t start = 0;
    while (start < text.size()) {
      size_t nl = text.find('\n', start);
      std::string l = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
      if (!l.empty() && l.back() == '\r') l.pop_back();
      labels.push_back(l);
      start = nl == std::string::npos ? text.size() : nl + 1;
    }
    SourceSpec s = spec;
    s.labels_path = label_path;
    return read_source_bytes(s, bytes, path, strict, &labels);
  }
  return read_source_bytes(spec, bytes, path, strict);
}

}  // namespace qs::eval
