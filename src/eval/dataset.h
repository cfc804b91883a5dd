// Benchmark data files -> documents (JSON objects), with file:line for every record so that a
// malformed one can be reported where it is. Formats (a task definition's "format"):
//   jsonl               one JSON object per line (Hugging Face `to_json` exports, llm-foundry)
//   json                a JSON array of objects (or the array under "records_key")
//   csv                 RFC 4180, first row = field names (MMLU); every field a string
//   lines               groups of `lines_per_record` lines -> {"lines": [...]} (HellaSwag text)
//   wikitext_documents  a WikiText raw file -> {"page": ...} per article, split as
//                       EleutherAI/wikitext_document_level does
// A source may add line-aligned labels from a second file ("labels": {"path", "field"}: PIQA's
// valid-labels.lst) and map raw records to the task's fields with templates ("fields"), so one
// task reads several layouts of the same data.
//
// Bad records: a malformed JSON line, a CSV row with the wrong number of fields, a template that
// fails on a record (a missing field) are issues naming FILE:LINE. In strict mode the first one
// is a qs::Error; otherwise the record is skipped and the issue counted. Files that cannot be
// read or parsed as a whole (a broken JSON array, a missing file) are always errors.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/template.h"

namespace qs::eval {

struct SourceSpec {
  std::string path;    // relative to the data directory (or absolute)
  std::string format;  // see the file comment
  std::string split;   // informational: "test", "validation", ...
  std::string note;    // why this source, known caveats
  int lines_per_record = 0;
  std::string records_key;
  std::string labels_path, labels_field;
  std::vector<std::pair<std::string, Template>> fields;  // applied in order; empty: records as read
};

// Parses one source object of a task definition; errors name `where`.
SourceSpec parse_source_spec(const nlohmann::json& j, const std::string& where);

struct Record {
  nlohmann::json doc;
  std::string origin;  // "FILE:LINE" (or "FILE:record N" / "FILE:page N")
};

struct ReadIssue {
  std::string origin;
  std::string message;
  std::string text() const { return origin + ": " + message; }
};

struct ReadResult {
  std::vector<Record> records;
  std::vector<ReadIssue> skipped;
  std::string path;  // the file read
};

// Reads `spec` (path resolved against `data_dir`). `strict`: the first issue throws.
ReadResult read_source(const SourceSpec& spec, const std::string& data_dir, bool strict);
// The same from bytes in memory (`name` stands for the file in messages; no labels file).
ReadResult read_source_bytes(const SourceSpec& spec, std::string_view bytes, const std::string& name, bool strict,
                             const std::vector<std::string>* labels = nullptr);
// Resolves a path against the data directory.
std::string resolve_data_path(const std::string& path, const std::string& data_dir);

}  // namespace qs::eval
