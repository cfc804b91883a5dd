// Fuzzes the benchmark data readers (jsonl, json, csv, line groups, WikiText articles): any file
// must give records and counted issues (never a crash), every record a JSON object with its
// origin, and strict mode must either agree (no issues) or stop with a qs::Error. The first byte
// picks the format.
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "eval/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const char* formats[] = {"jsonl", "json", "csv", "lines", "wikitext_documents"};
  nlohmann::json spec_json = {{"path", "x"}, {"format", formats[data[0] % 5]}, {"lines_per_record", 1 + data[0] / 5 % 7}};
  if (data[0] & 0x80) spec_json["fields"] = {{"q", "{{ question|default('') }}"}};
  const qs::eval::SourceSpec spec = qs::eval::parse_source_spec(spec_json, "fuzz");
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  qs::eval::ReadResult loose;
  try {
    loose = qs::eval::read_source_bytes(spec, bytes, "fuzz.data", false);
  } catch (const qs::Error&) {
    return 0;  // a whole-file problem (broken JSON array, unterminated CSV quote, bad UTF-8)
  }
  for (const auto& r : loose.records)
    if (!r.doc.is_object() || r.origin.empty()) __builtin_trap();
  try {
    const qs::eval::ReadResult strict = qs::eval::read_source_bytes(spec, bytes, "fuzz.data", true);
    if (!loose.skipped.empty() || strict.records.size() != loose.records.size()) __builtin_trap();
  } catch (const qs::Error&) {
    if (loose.skipped.empty()) __builtin_trap();
  }
  return 0;
}
