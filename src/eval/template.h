// Templates of task definition files: the subset of Jinja2 that lm-evaluation-harness task YAMLs
// use in doc_to_text / doc_to_choice / doc_to_target ("Question: {{question}}\nAnswer:",
// "{{choices.label.index(answerKey)}}", "{{text.split(' ')[:-1]|join(' ')}}"), evaluated over one
// document (a JSON object) with Python's string semantics, so that a task file reads like its
// lm-eval YAML and gives the same strings.
//
// Language (tasks/README.md has the full list):
//  - text with {{ expression }} parts; a template that is exactly one {{ expression }} evaluates
//    to the expression's value (a list for doc_to_choice, a number for doc_to_target);
//  - a template without "{{" that names a field of the document is that field (lm-eval's rule
//    for doc_to_text: question_stem);
//  - literals ('str', "str", 12, 1.5, true/false/none, [a, b], {'k': v}), field names, .attr,
//    [index] (negative from the end), [a:b:c] slices (strings by code point, as Python),
//    + - * // % ~ (string concatenation), == != < > <= >=, in, not in, and, or, not,
//    "x if c else y", "x is defined", "x is not none";
//  - methods: str.strip/lstrip/rstrip([chars]), split([sep[, max]]), lower, upper, capitalize,
//    title, replace, startswith, endswith, find, index, join; list.index; dict.get;
//  - filters: int, float, string, trim, lower, upper, capitalize, title, length, list, first,
//    last, join(sep), replace(a, b), default(v), map(attribute='x') or map('filter'),
//    regex_replace(pattern, repl) (Python re.sub), regex_group(pattern, group) (re.search; an
//    error when nothing matches), and the named preprocessors of lm-eval tasks:
//    hellaswag_preprocess, wikitext_detokenize, capitalize_last_sentence.
// Differences from Jinja, on purpose: an undefined field is an error (lm-eval runs Jinja with
// StrictUndefined too); |int of a non-number is an error instead of a silent 0.
//
// Every error is a qs::Error with a one-line message (the caller adds file, line and field).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace qs::eval {

class Template {
 public:
  Template();
  // Parses `text`; errors name `where` (file and field) and the offending position.
  static Template compile(std::string_view text, const std::string& where);
  // The value: a single {{ expression }}'s value, a named field, or the rendered text.
  nlohmann::json evaluate(const nlohmann::json& doc) const;
  // The rendered text (values converted as Python's str() does).
  std::string render(const nlohmann::json& doc) const;
  const std::string& source() const;
  bool empty() const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

// Python's str() of a JSON value: strings as they are, 1.0 as "1.0", true as "True", lists as
// "['a', 1]".
std::string python_str(const nlohmann::json& v);

}  // namespace qs::eval
