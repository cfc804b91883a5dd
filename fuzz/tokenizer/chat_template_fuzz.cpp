// Fuzz target: arbitrary bytes as a chat template, rendered over a fixed conversation (system,
// user, assistant with reasoning and a tool call, tool result) with tools and both
// add_generation_prompt settings. Parsing and rendering either succeed or throw qs::Error
// (ChatTemplateError); nothing else may escape, and the engine's limits (recursion depth, loop
// iterations, string sizes) keep hostile templates finite.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/chat_template.h"

namespace {

const nlohmann::ordered_json& conversation() {
  static const nlohmann::ordered_json messages = nlohmann::ordered_json::parse(R"([
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "  Hi  \n東京 🙂"},
    {"role": "assistant", "content": "<think>\nr\n</think>\n\nHello", "reasoning_content": "r"},
    {"role": "user", "content": "Weather?"},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "call12345", "type": "function",
      "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
    {"role": "tool", "content": "{\"t\": 21}", "tool_call_id": "call12345"}
  ])");
  return messages;
}

const nlohmann::ordered_json& tools() {
  static const nlohmann::ordered_json t = nlohmann::ordered_json::parse(R"({"tools": [{"type": "function",
    "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object",
    "properties": {"city": {"type": "string"}}, "required": ["city"]}}}], "date_string": "26 Jul 2024"})");
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view source(reinterpret_cast<const char*>(data), size);
  try {
    qs::ChatTemplate chat_template(source, "fuzz");
    for (bool generation_prompt : {true, false}) {
      qs::ChatOptions options;
      options.add_generation_prompt = generation_prompt;
      options.enable_thinking = generation_prompt;
      options.extra = tools();
      try {
        chat_template.render(conversation(), options, "<s>", "</s>");
      } catch (const qs::Error&) {
        // A runtime error (raise_exception, a type error, a refused feature) is a valid outcome.
      }
    }
  } catch (const qs::Error&) {
    // A template that does not parse.
  }
  return 0;
}
