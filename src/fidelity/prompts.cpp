#include "fidelity/prompts.h"

#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/files.h"

namespace qs::fidelity {

namespace {
TaskPromptSource& task_source() {
  static TaskPromptSource source;
  return source;
}
}  // namespace

void register_task_prompts(TaskPromptSource source) { task_source() = std::move(source); }

PromptSet load_prompts(const std::string& spec, const std::string& field, int64_t limit) {
  require(limit >= 0, "--limit: expected >= 0, got ", limit);
  PromptSet set;
  set.source = spec;
  if (!file_exists(spec)) {
    if (spec.find('/') != std::string::npos || spec.find('.') != std::string::npos)
      fail(spec, ": no such prompt file");
    if (!task_source()) fail("--prompts: ", quote(spec), " is neither a file nor a known task");
    TaskPrompts t = task_source()(spec, limit);
    set.prompts = std::move(t.prompts);
    set.is_correct = std::move(t.is_correct);
    set.stop_sequences = std::move(t.stop_sequences);
  } else {
    const std::string text = read_text_file(spec);
    std::istringstream in(text);
    std::string line;
    int64_t line_no = 0;
    const bool jsonl = spec.ends_with(".jsonl") || spec.ends_with(".json");
    while (std::getline(in, line)) {
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      Prompt p;
      p.id = std::to_string(line_no);
      if (jsonl) {
        nlohmann::json j;
        try {
          j = nlohmann::json::parse(line);
        } catch (const nlohmann::json::parse_error& e) {
          fail(spec, ":", line_no, ": invalid JSON at byte ", e.byte);
        } catch (const nlohmann::json::out_of_range&) {  // a number beyond double/int64 range
          fail(spec, ":", line_no, ": invalid JSON: a number is out of range");
        }
        if (!j.is_object() || !j.contains(field) || !j[field].is_string())
          fail(spec, ":", line_no, ": no string field ", quote(field), " (choose one with --field)");
        p.text = j[field].get<std::string>();
        if (j.contains("id")) p.id = j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump();
        if (j.contains("answer") && j["answer"].is_string()) p.answer = j["answer"].get<std::string>();
      } else {
        p.text = line;
      }
      set.prompts.push_back(std::move(p));
      if (limit && static_cast<int64_t>(set.prompts.size()) >= limit) break;
    }
  }
  if (set.prompts.empty()) fail(spec, ": no prompts (expected one per line)");
  return set;
}

}  // namespace qs::fidelity
