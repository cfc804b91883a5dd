#include "tokenizer/chat_template.h"

#include "core/files.h"
#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/pystr.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace qs {

namespace {

using jinja::Value;

// A one-line rendition of a message: newlines and other controls escaped, nothing cut.
std::string one_line(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (static_cast<unsigned char>(c) < 0x20) out += cat("\\x", "0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15]);
    else out += c;
  }
  return out;
}

Value from_json(const nlohmann::ordered_json& j, const std::string& where) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return Value::none();
    case nlohmann::ordered_json::value_t::boolean: return Value::boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value::integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) fail(where, ": integer ", u, " does not fit in 64 bits");
      return Value::integer(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return Value::floating(j.get<double>());
    case nlohmann::ordered_json::value_t::string: {
      const std::string& s = j.get_ref<const std::string&>();
      if (!tok::is_valid_utf8(s)) fail(where, ": text is not valid UTF-8");
      return Value::string(s);
    }
    case nlohmann::ordered_json::value_t::array: {
      jinja::ValueList items;
      items.reserve(j.size());
      for (size_t i = 0; i < j.size(); ++i) items.push_back(from_json(j[i], cat(where, "[", i, "]")));
      return Value::list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      auto d = std::make_shared<jinja::Dict>();
      d->entries.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (!tok::is_valid_utf8(it.key())) fail(where, ": a key is not valid UTF-8");
        d->entries.emplace_back(Value::string(it.key()), from_json(it.value(), cat(where, ".", it.key())));
      }
      return Value::dict(std::move(d));
    }
    default: fail(where, ": binary JSON values are not supported");
  }
}

Value message_value(const ChatMessage& m, size_t i) {
  auto d = std::make_shared<jinja::Dict>();
  for (const auto* s : {&m.role, &m.content})
    if (!tok::is_valid_utf8(*s)) fail("messages[", i, "]: text is not valid UTF-8");
  d->entries.emplace_back(Value::string("role"), Value::string(m.role));
  d->entries.emplace_back(Value::string("content"), Value::string(m.content));
  return Value::dict(std::move(d));
}

}  // namespace

struct ChatTemplate::Impl {
  std::string name;
  std::string source;  // normalized, what positions refer to
  jinja::Program program;

  [[noreturn]] void raise(const jinja::TemplateError& e) const {
    size_t line = 1, column = 1;
    size_t pos = e.pos == jinja::kNoPos ? source.size() : std::min<size_t>(e.pos, source.size());
    for (size_t i = 0; i < pos; ++i) {
      if (source[i] == '\n') {
        ++line;
        column = 1;
      } else if ((static_cast<unsigned char>(source[i]) & 0xC0) != 0x80) {
        ++column;
      }
    }
    std::string where = e.pos == jinja::kNoPos ? name : cat(name, ":", line, ":", column);
    if (e.raised) throw ChatTemplateError(cat(where, ": raise_exception: ", one_line(e.message)), true, e.message);
    throw ChatTemplateError(cat(where, ": ", one_line(e.message)), false, "");
  }

  std::string render(const std::vector<std::pair<std::string, Value>>& variables) const {
    std::string out;
    try {
      jinja::Interpreter interpreter(program);
      interpreter.render(variables, out);
    } catch (const jinja::TemplateError& e) {
      raise(e);
    }
    return out;
  }

  std::string render_chat(Value messages, const ChatOptions& options, const std::string& bos,
                          const std::string& eos) const {
    // The order of transformers' render(messages=..., tools=..., documents=...,
    // add_generation_prompt=..., **special_tokens, **kwargs): later entries win.
    std::vector<std::pair<std::string, Value>> vars;
    vars.emplace_back("messages", std::move(messages));
    vars.emplace_back("tools", Value::none());
    vars.emplace_back("documents", Value::none());
    vars.emplace_back("add_generation_prompt", Value::boolean(options.add_generation_prompt));
    if (!bos.empty()) vars.emplace_back("bos_token", Value::string(bos));
    if (!eos.empty()) vars.emplace_back("eos_token", Value::string(eos));
    if (options.enable_thinking) vars.emplace_back("enable_thinking", Value::boolean(*options.enable_thinking));
    if (!options.extra.is_null()) {
      if (!options.extra.is_object()) fail(name, ": ChatOptions.extra must be a JSON object, not ", options.extra.type_name());
      for (auto it = options.extra.begin(); it != options.extra.end(); ++it)
        vars.emplace_back(it.key(), from_json(it.value(), it.key()));
    }
    for (const std::string* token : {&bos, &eos})
      if (!tok::is_valid_utf8(*token)) fail(name, ": a special token is not valid UTF-8");
    return render(vars);
  }
};

ChatTemplate::ChatTemplate(std::string_view source, std::string name) : impl_(std::make_unique<Impl>()) {
  impl_->name = std::move(name);
  size_t bad = find_invalid_utf8(source);
  if (bad != std::string_view::npos)
    throw ChatTemplateError(cat(impl_->name, ": the template is not valid UTF-8 (byte ", bad, ")"), false, "");
  impl_->source = jinja::normalize_newlines(source);
  try {
    impl_->program = jinja::parse(jinja::tokenize(impl_->source));
  } catch (const jinja::TemplateError& e) {
    impl_->raise(e);
  }
}

ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

const std::string& ChatTemplate::name() const { return impl_->name; }

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, const ChatOptions& options,
                                 const std::string& bos_token, const std::string& eos_token) const {
  jinja::ValueList list;
  list.reserve(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) list.push_back(message_value(messages[i], i));
  return impl_->render_chat(Value::list(std::move(list)), options, bos_token, eos_token);
}

std::string ChatTemplate::render(const nlohmann::ordered_json& messages, const ChatOptions& options,
                                 const std::string& bos_token, const std::string& eos_token) const {
  if (!messages.is_array()) fail(impl_->name, ": messages must be a JSON array, not ", messages.type_name());
  return impl_->render_chat(from_json(messages, "messages"), options, bos_token, eos_token);
}

std::string ChatTemplate::render_variables(const nlohmann::ordered_json& variables) const {
  if (!variables.is_object()) fail(impl_->name, ": template variables must be a JSON object");
  std::vector<std::pair<std::string, Value>> vars;
  for (auto it = variables.begin(); it != variables.end(); ++it)
    vars.emplace_back(it.key(), from_json(it.value(), it.key()));
  return impl_->render(vars);
}

std::string apply_chat_template(const std::string& jinja_template, const std::vector<ChatMessage>& messages,
                                const ChatOptions& options, const std::string& bos_token,
                                const std::string& eos_token) {
  return ChatTemplate(jinja_template).render(messages, options, bos_token, eos_token);
}

std::string apply_chat_template(const Tokenizer& tokenizer, const std::vector<ChatMessage>& messages,
                                const ChatOptions& options) {
  if (tokenizer.chat_template().empty()) fail("the tokenizer has no chat_template in its tokenizer_config.json");
  std::string bos = tokenizer.bos_id() ? tokenizer.id_to_token(*tokenizer.bos_id()) : "";
  std::vector<int32_t> eos_ids = tokenizer.eos_ids();
  std::string eos = eos_ids.empty() ? "" : tokenizer.id_to_token(eos_ids.front());
  return ChatTemplate(tokenizer.chat_template()).render(messages, options, bos, eos);
}

std::string select_chat_template(const nlohmann::json& chat_template, const std::string& source,
                                 const std::string& name, bool with_tools) {
  if (chat_template.is_string()) {
    if (!name.empty() && name != "default") fail(source, ": chat_template: there is no template named ", quote(name));
    return chat_template.get<std::string>();
  }
  if (!chat_template.is_array()) fail(source, ": chat_template: expected a string or a list of {name, template}");
  std::string fallback, tool_use;
  bool has_default = false, has_tool_use = false;
  for (size_t i = 0; i < chat_template.size(); ++i) {
    const nlohmann::json& e = chat_template[i];
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string() || !e.contains("template") ||
        !e["template"].is_string())
      fail(source, ": chat_template[", i, "]: expected {\"name\": string, \"template\": string}");
    const std::string& n = e["name"].get_ref<const std::string&>();
    const std::string& t = e["template"].get_ref<const std::string&>();
    if (!name.empty() && n == name) return t;
    if (n == "default") has_default = true, fallback = t;
    if (n == "tool_use") has_tool_use = true, tool_use = t;
  }
  if (!name.empty()) fail(source, ": chat_template: there is no template named ", quote(name));
  if (with_tools && has_tool_use) return tool_use;
  if (has_default) return fallback;
  fail(source, ": chat_template: the list has no template named \"default\"");
}

}  // namespace qs
