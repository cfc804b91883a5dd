// Fuzzes task definition files (tasks/*.json, or any file a user passes to --tasks): any bytes
// must either be refused with a qs::Error (malformed JSON included) or give a task whose
// templates evaluate over sample documents to values or qs::Errors, never a crash.
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "eval/task.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  nlohmann::json j = nlohmann::json::parse(bytes, nullptr, false);
  if (j.is_discarded()) return 0;
  qs::eval::TaskSpec spec;
  try {
    spec = qs::eval::parse_task_spec(j, "fuzz.json");
  } catch (const qs::Error&) {
    return 0;
  }
  const nlohmann::json docs[] = {
      {{"question", "Q?"}, {"choices", {{"text", {"a", "b"}}, {"label", {"A", "B"}}}}, {"answerKey", "A"}, {"label", 1}},
      {{"sentence", "A _ b."}, {"option1", "x"}, {"option2", "y"}, {"answer", "2"}, {"text", "one two"}},
      j.value("example", nlohmann::json::object())};
  for (const auto& doc : docs) {
    for (const auto* t : {&spec.description, &spec.doc_to_text, &spec.doc_to_choice, &spec.doc_to_target, &spec.units_text}) {
      try {
        (void)t->evaluate(doc);
        (void)t->render(doc);
      } catch (const qs::Error&) {
      }
    }
    for (const auto& [field, t] : spec.process_docs) {
      try {
        (void)t.evaluate(doc);
      } catch (const qs::Error&) {
      }
    }
  }
  return 0;
}
