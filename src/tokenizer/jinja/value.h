// Values of the chat-template engine and the Python semantics Jinja2 gives them (internal).
//
// A Value is what a Python object is to Jinja2 in a chat template: Undefined, None, bool,
// int, float, str, list, tuple, dict, plus the engine's own objects (namespace(), macros and
// bound methods, the `loop` variable, generators returned by filters such as map/select).
// Lists, tuples and dicts are immutable and shared (transformers renders in an
// ImmutableSandboxedEnvironment: templates cannot mutate them); a namespace is mutable and
// shared, as in Python. Equality, ordering, truth, str(), repr() and json.dumps() follow
// CPython 3.11.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace qs::jinja {

inline constexpr uint32_t kNoPos = UINT32_MAX;

// A template error: syntax (from the lexer or parser) or runtime (a Python exception Jinja2
// would raise). `pos` is a byte offset in the template source, set by the innermost node that
// knows it. raise_exception() sets `raised`; the message is then the template's own text.
class TemplateError : public std::exception {
 public:
  explicit TemplateError(std::string message, uint32_t pos = kNoPos, bool raised = false)
      : message(std::move(message)), pos(pos), raised(raised) {}
  const char* what() const noexcept override { return message.c_str(); }
  std::string message;
  uint32_t pos;
  bool raised;
};

[[noreturn]] void throw_error(std::string message, uint32_t pos = kNoPos);

class Value;
using ValueList = std::vector<Value>;
struct Dict;
struct Namespace;
struct Generator;
struct Callable;  // defined by the interpreter
struct Loop;      // defined by the interpreter

enum class Kind : uint8_t {
  kUndefined,
  kNone,
  kBool,
  kInt,
  kFloat,
  kString,
  kList,
  kTuple,
  kDict,
  kNamespace,
  kGenerator,
  kCallable,
  kLoop,
};

class Value {
 public:
  Value() : v_(UndefinedV{}) {}
  // `hint` says why it is undefined ("'x' is undefined"), for the error when it is used.
  static Value undefined(std::string hint) { return Value(Tag{}, UndefinedV{std::move(hint)}); }
  static Value none() { return Value(Tag{}, std::monostate{}); }
  static Value boolean(bool b) { return Value(Tag{}, b); }
  static Value integer(int64_t i) { return Value(Tag{}, i); }
  static Value floating(double d) { return Value(Tag{}, d); }
  static Value string(std::string s) { return Value(Tag{}, std::move(s)); }
  static Value list(ValueList items);
  // What range() returns: a list that prints as range(start, stop[, step]) and that Python
  // would not serialize, concatenate or order.
  struct RangeInfo {
    int64_t start, stop, step;
  };
  static Value range(ValueList items, RangeInfo info);
  const RangeInfo* range_info() const;
  static Value tuple(ValueList items);
  static Value dict(std::shared_ptr<const Dict> d) { return Value(Tag{}, std::move(d)); }
  static Value ns(std::shared_ptr<Namespace> n) { return Value(Tag{}, std::move(n)); }
  static Value generator(ValueList items);
  static Value callable(std::shared_ptr<const Callable> c) { return Value(Tag{}, std::move(c)); }
  static Value loop(std::shared_ptr<Loop> l) { return Value(Tag{}, std::move(l)); }

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is(Kind k) const { return kind() == k; }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_sequence() const { return kind() == Kind::kList || kind() == Kind::kTuple; }
  // int or bool (Python's bool is an int)
  bool is_integral() const { return kind() == Kind::kInt || kind() == Kind::kBool; }
  bool is_number() const { return is_integral() || kind() == Kind::kFloat; }
  bool is_range() const { return range_info() != nullptr; }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return kind() == Kind::kBool ? std::get<bool>(v_) : std::get<int64_t>(v_); }
  double as_double() const { return kind() == Kind::kFloat ? std::get<double>(v_) : static_cast<double>(as_int()); }
  const std::string& str() const { return std::get<std::string>(v_); }
  const std::string& undefined_hint() const { return std::get<UndefinedV>(v_).hint; }
  const ValueList& items() const;  // list or tuple
  const std::shared_ptr<const ValueList>& items_ptr() const;
  const Dict& dict() const { return *std::get<std::shared_ptr<const Dict>>(v_); }
  Namespace& ns() const { return *std::get<std::shared_ptr<Namespace>>(v_); }
  Generator& gen() const { return *std::get<std::shared_ptr<Generator>>(v_); }
  const Callable& callable() const { return *std::get<std::shared_ptr<const Callable>>(v_); }
  Loop& loop() const { return *std::get<std::shared_ptr<Loop>>(v_); }
  const void* identity() const;  // the shared object, for Python's `is` on containers

 private:
  struct UndefinedV {
    std::string hint;
  };
  struct ListV {
    std::shared_ptr<const ValueList> items;
    std::shared_ptr<const RangeInfo> range;
  };
  struct TupleV {
    std::shared_ptr<const ValueList> items;
  };
  using Storage = std::variant<UndefinedV, std::monostate, bool, int64_t, double, std::string, ListV, TupleV,
                               std::shared_ptr<const Dict>, std::shared_ptr<Namespace>, std::shared_ptr<Generator>,
                               std::shared_ptr<const Callable>, std::shared_ptr<Loop>>;
  struct Tag {};
  template <class T>
  Value(Tag, T&& x) : v_(std::forward<T>(x)) {}
  Storage v_;
};

// A dict in insertion order (what json.loads and dict literals give). Lookups are linear:
// chat messages and tool schemas have a handful of keys.
struct Dict {
  std::vector<std::pair<Value, Value>> entries;
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  void set(Value key, Value value);  // replaces an equal key in place, else appends
};

struct Namespace {
  Dict attrs;
};

// The result of a Jinja2 filter that is a Python generator or iterator (map, select, unique,
// reverse, items...): iterable once, always true, without len().
struct Generator {
  ValueList items;
  size_t next = 0;
};

// --- Python semantics ---
const char* type_name(const Value& v);        // Python's type(v).__name__
bool truthy(const Value& v);                  // bool(v)
void append_str(std::string& out, const Value& v);  // str(v) (Undefined prints as "")
std::string to_str(const Value& v);
void append_repr(std::string& out, const Value& v);
bool equal(const Value& a, const Value& b);   // a == b
// Python's ordering (<): numbers, strings, lists and tuples; anything else throws a TypeError.
bool less(const Value& a, const Value& b);
// Whether Python could hash it (dict keys, `in` on a dict, unique).
bool hashable(const Value& v);
// Implemented by the interpreter, which defines Callable and Loop: repr() of a macro, of the
// loop variable; bound methods and builtins throw (CPython would print an address).
void append_callable_repr(std::string& out, const Callable& c);
void append_loop_repr(std::string& out, const Loop& l);
// Throws the UndefinedError that using this Undefined raises.
[[noreturn]] void throw_undefined(const Value& v);

struct JsonOptions {
  bool ensure_ascii = false;
  bool sort_keys = false;
  bool has_indent = false;
  std::string indent;                          // one level of indentation
  std::string item_separator = ", ";           // json.dumps defaults (", " or "," with indent)
  std::string key_separator = ": ";
  size_t max_bytes = SIZE_MAX;  // the output may not grow beyond this
};
// json.dumps(v, ...) as transformers' tojson filter calls it.
void append_json(std::string& out, const Value& v, const JsonOptions& options);

// The items a `for` loop sees: list/tuple items, dict keys, string characters, the rest of a
// generator; Undefined iterates as empty. Anything else is a TypeError.
ValueList iterate(const Value& v);

}  // namespace qs::jinja
