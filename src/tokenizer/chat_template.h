// Chat templates: formats a conversation into a prompt exactly as transformers'
// tokenizer.apply_chat_template(messages, tokenize=False, ...) does.
//
// The template is the Jinja2 string from tokenizer_config.json. It is rendered the way
// transformers renders it: Jinja2 3.1 in an ImmutableSandboxedEnvironment with
// trim_blocks=True, lstrip_blocks=True, the loopcontrols extension ({% break %},
// {% continue %}), transformers' {% generation %} tag, the globals raise_exception(msg) and
// strftime_now(fmt), and transformers' tojson filter (json.dumps with ensure_ascii=False and
// the indent / separators / sort_keys arguments). The variables are those transformers passes:
// messages, tools and documents (None unless given), add_generation_prompt, bos_token and
// eos_token (left undefined when empty, as transformers leaves out a null token), then every
// extra keyword (enable_thinking, date_string, ...).
//
// The engine implements the part of Jinja2 that chat templates use (see tokenizer/jinja/):
// statements if/elif/else, for (with `if` filter, else, loop.*), set (also namespace
// attributes and {% set %}...{% endset %}), macro, call, filter, with, raw, break/continue,
// comments and all whitespace control; Python semantics for strings (code points), ints,
// floats, lists, tuples, dicts, None and Undefined; the common string and dict methods; the
// filters abs attr capitalize count default dictsort first float indent int items join last
// length list lower map max min reject rejectattr replace reverse round select selectattr sort
// string sum title tojson trim unique upper, and the tests defined undefined none boolean
// false true integer float number string mapping iterable sequence callable sameas escaped
// eq/equalto ne lt le gt ge in odd even divisibleby lower upper.
// What it does not implement is refused, never approximated: a statement such as
// {% include %} when the template is parsed; a filter, test, method or global function when
// a render reaches it (Jinja2 also defers unknown filters inside {% if %} to run time).
//
// Errors are qs::ChatTemplateError, one line: "<name>:<line>:<column>: <what>". A template's
// raise_exception("...") becomes "<name>:<line>:<column>: raise_exception: <its message>",
// with the message also in template_message().
//
// Rendering is const and thread-safe; a ChatTemplate parses once and renders many times.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace qs {

class Tokenizer;

struct ChatMessage {
  std::string role, content;
};

struct ChatOptions {
  bool add_generation_prompt = true;
  std::optional<bool> enable_thinking;  // passed to the template only when set (Qwen3)
  // More template variables, like keyword arguments of apply_chat_template: "tools" (a list
  // of JSON schemas), "documents", "date_string", anything a template reads. A JSON object or
  // null. ordered_json keeps key order, which tojson prints.
  nlohmann::ordered_json extra;
};

class ChatTemplateError : public Error {
 public:
  ChatTemplateError(const std::string& message, bool raised, std::string template_message)
      : Error(message), raised_(raised), template_message_(std::move(template_message)) {}
  // True when the template itself called raise_exception() (e.g. roles do not alternate).
  bool raised_by_template() const { return raised_; }
  // raise_exception's message, verbatim; empty otherwise.
  const std::string& template_message() const { return template_message_; }

 private:
  bool raised_;
  std::string template_message_;
};

class ChatTemplate {
 public:
  // Parses the template; `name` stands for it in error messages. Throws ChatTemplateError for
  // a malformed template or an unsupported statement, and for text that is not UTF-8.
  explicit ChatTemplate(std::string_view source, std::string name = "chat_template");
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  std::string render(const std::vector<ChatMessage>& messages, const ChatOptions& options,
                     const std::string& bos_token, const std::string& eos_token) const;
  // Messages as JSON objects, which may carry more than role and content (tool_calls,
  // reasoning_content, content as a list of parts...).
  std::string render(const nlohmann::ordered_json& messages, const ChatOptions& options,
                     const std::string& bos_token, const std::string& eos_token) const;
  // Renders with exactly these variables (a JSON object), nothing added.
  std::string render_variables(const nlohmann::ordered_json& variables) const;

  const std::string& name() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Parses and renders once (a ChatTemplate is faster for many prompts).
std::string apply_chat_template(const std::string& jinja_template, const std::vector<ChatMessage>& messages,
                                const ChatOptions& options, const std::string& bos_token,
                                const std::string& eos_token);

// The tokenizer's own chat template with its BOS and EOS token strings. Throws qs::Error when
// the tokenizer has no chat template.
std::string apply_chat_template(const Tokenizer& tokenizer, const std::vector<ChatMessage>& messages,
                                const ChatOptions& options);

// Chooses the template from tokenizer_config.json's "chat_template": a string, or a list of
// {"name", "template"}, from which it takes `name` when given, else "tool_use" when
// with_tools and there is one, else "default" (what transformers does). Throws qs::Error
// naming `source` for a value of another shape or a missing name.
std::string select_chat_template(const nlohmann::json& chat_template, const std::string& source,
                                 const std::string& name = "", bool with_tools = false);

}  // namespace qs
