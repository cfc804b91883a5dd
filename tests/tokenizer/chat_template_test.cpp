// Chat templates rendered by qstudy's engine are byte-identical to what transformers'
// apply_chat_template renders, with Python's jinja2 3.1 (Debian python3-jinja2) as the
// reference, set up the way transformers sets it up (tests/tokenizer/ref/chat_template_ref.py).
//
//  - RealTemplates: the Llama-3 and Qwen3 templates of ../shared/tokenizers and eleven public
//    templates (tests/tokenizer/ref/templates: Llama-2-chat, Llama-3.1 with tools, Mistral
//    v0.3, Gemma, Gemma 3, Phi-3, SmolLM2/ChatML, Qwen2.5, DeepSeek R1-distill and V3.1,
//    gpt-oss) over conversations with and without system prompt, multi-turn, empty and Unicode
//    content, reasoning, roles that do not alternate (the templates' raise_exception paths),
//    tool calls, add_generation_prompt on/off and enable_thinking unset/true/false.
//  - RandomTemplates: thousands of generated templates (ref/random_templates.py) mixing every
//    construct the engine implements, including ill-typed expressions and syntax errors: the
//    same output, or an error on both sides (raise_exception with the same message).
//  - SharedTokenizers: apply_chat_template(Tokenizer, ...) uses the tokenizer's template and
//    BOS/EOS tokens as transformers does.
#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "testing/testing.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace qs {
namespace {

using ojson = nlohmann::ordered_json;

std::string ref_dir() { return testing::source_dir() + "/tests/tokenizer/ref"; }

std::string template_file(const std::string& name) { return read_file(ref_dir() + "/templates/" + name + ".jinja"); }

std::string shared_template(const std::string& tokenizer) {
  return read_json_file(testing::shared_dir() + "/tokenizers/" + tokenizer + "/tokenizer_config.json")
      .at("chat_template")
      .get<std::string>();
}

uint64_t fnv1a(std::string_view s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Runs chat_template_ref.py over the cases; an empty result means it failed (already reported).
// Results are cached in the build tree under a hash of the cases, the script and today's date
// (strftime_now), so a second run of the tests does not start Python.
std::vector<ojson> run_reference(const ojson& cases, const std::string& tag) {
  std::string input = ojson{{"cases", cases}}.dump();
  std::time_t now = std::time(nullptr);
  char day[16];
  std::strftime(day, sizeof(day), "%Y-%m-%d", std::localtime(&now));
  uint64_t h = fnv1a(read_file(ref_dir() + "/chat_template_ref.py"), fnv1a(input, fnv1a(day)));
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
  std::string cache_dir = testing::binary_dir() + "/chat-ref-cache";
  std::filesystem::create_directories(cache_dir);
  std::string out = cache_dir + "/" + tag + "-" + hex + ".json";
  if (!file_exists(out)) {
    std::string dir = testing::make_temp_dir("chat-ref-" + tag);
    std::string in = dir + "/cases.json";
    write_file_atomic(in, input);
    testing::CommandResult r = testing::run_command(testing::python() + " " +
                                                    testing::shell_quote(ref_dir() + "/chat_template_ref.py") + " " +
                                                    testing::shell_quote(in) + " " + testing::shell_quote(dir + "/out.json"));
    if (r.exit_code != 0) {
      ADD_FAILURE() << "the jinja2 reference failed (exit " << r.exit_code << "): " << r.err;
      return {};
    }
    write_file_atomic(out, read_file(dir + "/out.json"));
    std::filesystem::remove_all(dir);
  }
  std::vector<ojson> results = ojson::parse(read_file(out)).get<std::vector<ojson>>();
  EXPECT_EQ(results.size(), cases.size());
  return results;
}

struct Ours {
  bool ok = false;
  std::string output;
  bool raised = false;
  std::string template_message;
  std::string error;
};

bool plain_messages(const ojson& messages) {
  for (const ojson& m : messages)
    if (m.size() != 2 || !m.contains("role") || !m.contains("content") || !m["content"].is_string()) return false;
  return true;
}

// Renders a case through the public API: ChatMessage vectors where the messages allow it.
Ours render_ours(const ojson& c) {
  Ours o;
  try {
    ChatTemplate t(c.at("template").get<std::string>(), "case");
    if (c.contains("variables")) {
      o.output = t.render_variables(c["variables"]);
    } else {
      ChatOptions opt;
      opt.add_generation_prompt = c.value("add_generation_prompt", false);
      if (c.contains("enable_thinking") && !c["enable_thinking"].is_null())
        opt.enable_thinking = c["enable_thinking"].get<bool>();
      if (c.contains("extra")) opt.extra = c["extra"];
      std::string bos = c.value("bos_token", ""), eos = c.value("eos_token", "");
      if (plain_messages(c["messages"])) {
        std::vector<ChatMessage> msgs;
        for (const ojson& m : c["messages"]) msgs.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
        o.output = t.render(msgs, opt, bos, eos);
      } else {
        o.output = t.render(c["messages"], opt, bos, eos);
      }
    }
    o.ok = true;
  } catch (const ChatTemplateError& e) {
    o.error = e.what();
    o.raised = e.raised_by_template();
    o.template_message = e.template_message();
  } catch (const Error& e) {
    o.error = e.what();
  }
  return o;
}

std::string show(const std::string& s) { return ojson(s).dump(); }

// Compares one case; returns "" when it agrees, else a description.
std::string compare(const ojson& ref, const Ours& ours) {
  if (ref.contains("output")) {
    std::string expected = ref["output"].get<std::string>();
    // CPython prints some objects with their address (a generator left unconsumed): the engine
    // must refuse those instead of printing something else.
    static const std::regex address("object .{0,40} 0x[0-9a-f]{8,}>", std::regex::icase);
    if (std::regex_search(expected, address))
      return !ours.ok && ours.error.find("not supported") != std::string::npos
                 ? ""
                 : "reference printed an object address; ours should refuse but got " +
                       (ours.ok ? "output " + show(ours.output) : ours.error);
    if (!ours.ok) return "reference rendered " + show(expected) + ", ours failed: " + ours.error;
    if (ours.output != expected) return "output differs:\n  reference " + show(expected) + "\n  ours      " + show(ours.output);
    return "";
  }
  if (ours.ok) return "reference failed (" + ref["error"].get<std::string>() + "), ours rendered " + show(ours.output);
  if (ref["raised"].get<bool>()) {
    // The template raised first in Python; the engine may have refused an unsupported feature
    // before reaching it, but must not invent another error.
    if (!ours.raised && ours.error.find("not supported") != std::string::npos) return "";
    if (!ours.raised) return "reference: raise_exception(" + show(ref["error"]) + "), ours: " + ours.error;
    if (ours.template_message != ref["error"].get<std::string>())
      return "raise_exception message differs: reference " + show(ref["error"]) + ", ours " + show(ours.template_message);
  }
  return "";
}

struct Tally {
  int outputs = 0, raised = 0, errors = 0, mismatches = 0;
};

Tally compare_all(const ojson& cases, const std::vector<ojson>& refs, const std::vector<std::string>& labels) {
  Tally t;
  for (size_t i = 0; i < refs.size(); ++i) {
    Ours ours = render_ours(cases[i]);
    std::string diff = compare(refs[i], ours);
    if (refs[i].contains("output")) ++t.outputs;
    else if (refs[i]["raised"].get<bool>()) ++t.raised;
    else ++t.errors;
    if (diff.empty()) continue;
    if (++t.mismatches <= 10)
      ADD_FAILURE() << labels[i] << ": " << diff << "\n  template: " << show(cases[i]["template"].get<std::string>().substr(0, 400));
  }
  return t;
}

// --- Conversations ---

ojson msg(const char* role, const std::string& content) { return ojson{{"role", role}, {"content", content}}; }

ojson weather_tools() {
  return ojson::parse(R"([{"type": "function", "function": {"name": "get_weather",
    "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {
      "city": {"type": "string", "description": "The city, e.g. Paris"},
      "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
      "days": {"type": "integer", "description": "Forecast days"},
      "hourly": {"type": "boolean"},
      "tags": {"type": "array", "items": {"type": "string"}},
      "where": {"type": "object", "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}}}},
    "required": ["city"]}}}])");
}

std::map<std::string, ojson> conversations() {
  std::map<std::string, ojson> c;
  c["single"] = ojson::array({msg("user", "Hello!")});
  c["system"] = ojson::array({msg("system", "You are a helpful assistant."), msg("user", "Hi there")});
  c["multi_turn"] = ojson::array({msg("system", "Answer briefly."), msg("user", "What is 2+2?"), msg("assistant", "4"),
                                  msg("user", "And 3+3?"), msg("assistant", "6"), msg("user", "Thanks")});
  c["ends_with_assistant"] = ojson::array({msg("user", "Question?"), msg("assistant", "Answer.")});
  c["empty_content"] = ojson::array({msg("user", ""), msg("assistant", ""), msg("user", "")});
  c["unicode_whitespace"] = ojson::array(
      {msg("system", "  Système: ünïcödé \t\n"), msg("user", "  東京 🙂 עברית e\u0301 \u00a0nbsp\u2028ls\n\n"),
       msg("assistant", "\n Ответ: Σίσυφος \"quoted\" 'single' \\back\\ {{ not_jinja }} {% raw %}\n"),
       msg("user", "<|im_start|>literal tokens<|eot_id|></s>[INST]")});
  c["reasoning"] = ojson::array({msg("user", "Solve x+1=2"), msg("assistant", "<think>\nx = 2 - 1\n</think>\n\nx = 1"),
                                 msg("user", "Now x+2=5")});
  c["roles_not_alternating"] = ojson::array({msg("user", "first"), msg("user", "second")});
  c["system_only"] = ojson::array({msg("system", "Only a system prompt.")});
  ojson longer = ojson::array({msg("system", "Long chat.")});
  for (int i = 0; i < 12; ++i) {
    longer.push_back(msg("user", "Turn " + std::to_string(i) + ": tell me more."));
    longer.push_back(msg("assistant", "Reply " + std::to_string(i) + "."));
  }
  longer.push_back(msg("user", "Last question."));
  c["long"] = longer;
  return c;
}

// A tool-calling exchange in the OpenAI / transformers message format.
ojson tool_conversation(bool arguments_as_string) {
  ojson args = arguments_as_string ? ojson("{\"city\": \"Paris\", \"days\": 2}") : ojson::parse(R"({"city": "Paris", "days": 2})");
  return ojson::array(
      {msg("system", "You can call tools."), msg("user", "What's the weather in Paris?"),
       ojson{{"role", "assistant"},
             {"content", ""},
             {"tool_calls", ojson::array({ojson{{"id", "call12345"},
                                                {"type", "function"},
                                                {"function", ojson{{"name", "get_weather"}, {"arguments", args}}}}})}},
       ojson{{"role", "tool"}, {"content", "{\"temperature\": 21, \"unit\": \"celsius\"}"}, {"tool_call_id", "call12345"}},
       msg("assistant", "It is 21°C in Paris."), msg("user", "And tomorrow?")});
}

struct TemplateSpec {
  std::string name, source, bos, eos;
  bool thinking_switch = false;  // reads enable_thinking
  bool tools = false;            // takes tools
  ojson extra = ojson::object();
};

std::vector<TemplateSpec> templates() {
  std::vector<TemplateSpec> t;
  t.push_back({"llama3 (shared)", shared_template("llama3"), "<|begin_of_text|>", "<|end_of_text|>"});
  t.push_back({"qwen3 (shared)", shared_template("qwen3"), "", "<|im_end|>", true, true});
  t.push_back({"llama2_chat", template_file("llama2_chat"), "<s>", "</s>"});
  t.push_back({"llama31_instruct", template_file("llama31_instruct"), "<|begin_of_text|>", "<|eot_id|>", false, true});
  t.push_back({"mistral_instruct_v03", template_file("mistral_instruct_v03"), "<s>", "</s>", false, true});
  t.push_back({"gemma_it", template_file("gemma_it"), "<bos>", "<eos>"});
  t.push_back({"gemma3_it", template_file("gemma3_it"), "<bos>", "<eos>"});
  t.push_back({"phi3_mini", template_file("phi3_mini"), "<s>", "<|endoftext|>"});
  t.push_back({"smollm2", template_file("smollm2"), "<|im_start|>", "<|im_end|>"});
  t.push_back({"qwen25_instruct", template_file("qwen25_instruct"), "", "<|im_end|>", false, true});
  t.push_back({"deepseek_r1_distill_qwen", template_file("deepseek_r1_distill_qwen"), "<｜begin▁of▁sentence｜>",
               "<｜end▁of▁sentence｜>"});
  t.push_back({"deepseek_v31", template_file("deepseek_v31"), "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", true});
  t.push_back({"gpt_oss", template_file("gpt_oss"), "<|startoftext|>", "<|return|>", false, true});
  return t;
}

TEST(ChatTemplate, RealTemplatesMatchJinja2) {
  ojson cases = ojson::array();
  std::vector<std::string> labels, template_of;
  auto add = [&](const TemplateSpec& t, const std::string& conv, const ojson& messages, bool agp,
                 std::optional<bool> thinking, const ojson& extra) {
    ojson c{{"template", t.source}, {"messages", messages}, {"add_generation_prompt", agp},
            {"bos_token", t.bos},   {"eos_token", t.eos}};
    c["enable_thinking"] = thinking ? ojson(*thinking) : ojson(nullptr);
    c["extra"] = extra;
    cases.push_back(std::move(c));
    labels.push_back(cat(t.name, " / ", conv, " / add_generation_prompt=", agp,
                         thinking ? cat(" / enable_thinking=", *thinking) : "", extra.empty() ? "" : " / " + extra.dump()));
    template_of.push_back(t.name);
  };
  for (const TemplateSpec& t : templates()) {
    std::vector<std::optional<bool>> thinking = {std::nullopt};
    if (t.thinking_switch) thinking = {std::nullopt, true, false};
    for (const auto& [name, messages] : conversations())
      for (bool agp : {true, false})
        for (auto th : thinking) add(t, name, messages, agp, th, t.extra);
    if (!t.tools) continue;
    for (bool as_string : {false, true}) {
      std::string conv = as_string ? "tool_call (string arguments)" : "tool_call";
      for (bool agp : {true, false}) {
        add(t, conv, tool_conversation(as_string), agp, std::nullopt, ojson{{"tools", weather_tools()}});
        add(t, conv + " without tools", tool_conversation(as_string), agp, std::nullopt, ojson::object());
      }
    }
  }
  // Template-specific variables and message fields.
  for (const TemplateSpec& t : templates()) {
    if (t.name == "llama31_instruct") {
      ojson convo = conversations()["system"];
      add(t, "system", convo, true, std::nullopt, {{"tools", weather_tools()}, {"tools_in_user_message", false}});
      add(t, "system", convo, true, std::nullopt, {{"builtin_tools", {"brave_search", "wolfram_alpha", "code_interpreter"}}});
      add(t, "system", convo, true, std::nullopt, {{"custom_tools", weather_tools()}, {"date_string", "01 Jan 2025"}});
      add(t, "system_only", conversations()["system_only"], true, std::nullopt, {{"tools", weather_tools()}});
    } else if (t.name == "qwen3 (shared)") {
      ojson convo = ojson::array({msg("user", "q"),
                                  ojson{{"role", "assistant"}, {"content", "a"}, {"reasoning_content", "because"}},
                                  msg("user", "<tool_response>r</tool_response>")});
      for (auto th : {std::optional<bool>(), std::optional<bool>(false)}) add(t, "reasoning_content", convo, true, th, ojson::object());
    } else if (t.name == "gemma3_it") {
      ojson parts = ojson::array({ojson{{"role", "system"}, {"content", ojson::array({ojson{{"type", "text"}, {"text", "Sys"}}})}},
                                  ojson{{"role", "user"}, {"content", ojson::array({ojson{{"type", "image"}},
                                                                                      ojson{{"type", "text"}, {"text", " Describe. "}}})}}});
      add(t, "content parts", parts, true, std::nullopt, ojson::object());
    } else if (t.name == "gpt_oss") {
      ojson convo = ojson::array({msg("developer", "Be terse."), msg("user", "Hi"),
                                  ojson{{"role", "assistant"}, {"content", "Hello"}, {"thinking", "greet"}}});
      add(t, "thinking", convo, false, std::nullopt, {{"reasoning_effort", "high"}, {"builtin_tools", {"browser", "python"}}});
      add(t, "thinking", convo, true, std::nullopt, {{"model_identity", "You are a test."}});
    }
  }
  std::vector<ojson> refs = run_reference(cases, "real");
  ASSERT_EQ(refs.size(), cases.size());
  Tally all = compare_all(cases, refs, labels);
  EXPECT_EQ(all.mismatches, 0);
  // Not vacuous: every template renders most conversations, and the raise_exception paths of
  // the templates that enforce alternating roles were exercised.
  std::map<std::string, int> rendered, raised;
  for (size_t i = 0; i < refs.size(); ++i) {
    if (refs[i].contains("output")) ++rendered[template_of[i]];
    else if (refs[i]["raised"].get<bool>()) ++raised[template_of[i]];
  }
  // (Gemma refuses system prompts, so it renders fewer.)
  for (const TemplateSpec& t : templates()) EXPECT_GE(rendered[t.name], 6) << t.name;
  for (const char* name : {"llama2_chat", "mistral_instruct_v03", "gemma_it", "gemma3_it"}) EXPECT_GE(raised[name], 2) << name;
  std::printf("real templates: %zu cases, %d rendered, %d raise_exception, %d other errors\n", cases.size(), all.outputs,
              all.raised, all.errors);
}

TEST(ChatTemplate, RandomTemplatesMatchJinja2) {
  const int kSeeds = 3, kPerSeed = 1200;
  Tally total;
  for (int seed = 1; seed <= kSeeds; ++seed) {
    std::string dir = testing::make_temp_dir("chat-random");
    std::string path = dir + "/cases.json";
    testing::CommandResult r = testing::run_command(
        testing::python() + " " + testing::shell_quote(ref_dir() + "/random_templates.py") + " " +
        std::to_string(seed) + " " + std::to_string(kPerSeed) + " " + testing::shell_quote(path));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ojson cases = ojson::parse(read_file(path))["cases"];
    std::filesystem::remove_all(dir);
    std::vector<ojson> refs = run_reference(cases, "random");
    ASSERT_EQ(refs.size(), cases.size());
    std::vector<std::string> labels;
    for (size_t i = 0; i < cases.size(); ++i) labels.push_back(cat("seed ", seed, " case ", i));
    Tally t = compare_all(cases, refs, labels);
    total.outputs += t.outputs, total.raised += t.raised, total.errors += t.errors, total.mismatches += t.mismatches;
  }
  EXPECT_EQ(total.mismatches, 0);
  int n = kSeeds * kPerSeed;
  EXPECT_GT(total.outputs, n * 6 / 10);  // mostly well-typed templates that render
  EXPECT_GT(total.raised, n / 100);
  EXPECT_GT(total.errors, n / 50);
  std::printf("random templates: %d cases, %d rendered, %d raise_exception, %d other errors\n", n, total.outputs,
              total.raised, total.errors);
}

TEST(ChatTemplate, SharedTokenizersUseTheirTemplateAndSpecialTokens) {
  std::vector<ChatMessage> msgs = {{"system", "Be brief."}, {"user", "Hello"}, {"assistant", "Hi!"}, {"user", "Bye"}};
  ojson cases = ojson::array();
  std::vector<std::string> ours;
  for (const char* name : {"llama3", "qwen3"}) {
    std::string dir = testing::shared_dir() + "/tokenizers/" + name;
    auto tok = Tokenizer::load(dir);
    ojson config = read_json_file(dir + "/tokenizer_config.json");
    ChatOptions opt;
    ours.push_back(apply_chat_template(*tok, msgs, opt));
    ojson c{{"template", config["chat_template"]}, {"add_generation_prompt", true}};
    c["messages"] = ojson::array();
    for (const ChatMessage& m : msgs) c["messages"].push_back(msg(m.role.c_str(), m.content));
    c["bos_token"] = config["bos_token"].is_string() ? config["bos_token"] : ojson("");
    c["eos_token"] = config["eos_token"].is_string() ? config["eos_token"] : ojson("");
    cases.push_back(c);
  }
  std::vector<ojson> refs = run_reference(cases, "shared");
  ASSERT_EQ(refs.size(), 2u);
  for (size_t i = 0; i < refs.size(); ++i) {
    ASSERT_TRUE(refs[i].contains("output")) << refs[i].dump();
    EXPECT_EQ(ours[i], refs[i]["output"].get<std::string>());
  }
  EXPECT_EQ(ours[0].rfind("<|begin_of_text|><|start_header_id|>system", 0), 0u) << ours[0];
}

}  // namespace
}  // namespace qs
