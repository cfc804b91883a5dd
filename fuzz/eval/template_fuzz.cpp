// Fuzzes the task template language (templates come from task files users write): any text must
// either compile or be refused with a qs::Error, and a compiled template must evaluate over a
// document to a value or a qs::Error, never crash. The first line is the template, the rest (if
// it is a JSON object) the document.
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "eval/template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const size_t nl = bytes.find('\n');
  const std::string_view text = bytes.substr(0, nl);
  nlohmann::json doc = {{"question", "Which is it?"}, {"choices", {{"text", {"a", "b"}}, {"label", {"A", "B"}}}},
                        {"answerKey", "B"}, {"n", 3}, {"x", 1.5}, {"lines", {"ctx", "1", "e"}}, {"none", nullptr}};
  if (nl != std::string_view::npos) {
    nlohmann::json parsed = nlohmann::json::parse(bytes.substr(nl + 1), nullptr, false);
    if (!parsed.is_discarded() && parsed.is_object()) doc = parsed;
  }
  try {
    const qs::eval::Template t = qs::eval::Template::compile(text, "fuzz");
    nlohmann::json v = t.evaluate(doc);
    std::string s = t.render(doc);
    (void)qs::eval::python_str(v);
    (void)s;
  } catch (const qs::Error&) {
  }
  return 0;
}
