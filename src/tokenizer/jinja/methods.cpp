// Methods of str, dict, list and tuple that chat templates call, and the globals of
// transformers' environment (namespace, range, dict, raise_exception, strftime_now).
// A method Python has but the engine does not implement is refused by name; a method that
// mutates (list.append, dict.update...) is refused as the ImmutableSandboxedEnvironment does.
#include <algorithm>
#include <chrono>
#include <ctime>

#include "core/error.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/pystr.h"

namespace qs::jinja {

namespace {

constexpr std::string_view kStrAttrs[] = {
    "capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find", "format",
    "format_map", "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier", "islower",
    "isnumeric", "isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip", "maketrans",
    "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit",
    "rstrip", "split", "splitlines", "startswith", "strip", "swapcase", "title", "translate", "upper", "zfill"};
constexpr std::string_view kDictAttrs[] = {"clear", "copy",    "fromkeys", "get",    "items", "keys",
                                           "pop",   "popitem", "setdefault", "update", "values"};
constexpr std::string_view kListAttrs[] = {"append", "clear", "copy",    "count",   "extend", "index",
                                           "insert", "pop",   "remove", "reverse", "sort"};
constexpr std::string_view kTupleAttrs[] = {"count", "index"};
constexpr std::string_view kIntAttrs[] = {"as_integer_ratio", "bit_count", "bit_length", "conjugate", "denominator",
                                          "from_bytes", "imag", "numerator", "real", "to_bytes"};
constexpr std::string_view kFloatAttrs[] = {"as_integer_ratio", "conjugate", "fromhex", "hex", "imag", "is_integer",
                                            "real"};

template <size_t N>
bool in(const std::string_view (&names)[N], std::string_view name) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

std::optional<std::string> optional_str(const Value* v, const char* what) {
  if (!v || v->is_none()) return std::nullopt;
  if (!v->is_string()) throw_error(cat(what, " arg must be None or str"));
  return v->str();
}

int64_t int_arg(const Value* v, int64_t dflt) {
  if (!v) return dflt;
  if (!v->is_integral()) throw_error(cat("'", type_name(*v), "' object cannot be interpreted as an integer"));
  return v->as_int();
}

const std::string& str_arg(const Value& v, const char* method) {
  if (!v.is_string()) throw_error(cat(method, "() argument must be str, not ", type_name(v)));
  return v.str();
}

ValueList strings(std::vector<std::string> parts) {
  ValueList out;
  out.reserve(parts.size());
  for (std::string& p : parts) out.push_back(Value::string(std::move(p)));
  return out;
}

// startswith / endswith: a str or a tuple of str.
bool affix_test(const std::string& s, const Value& affix, bool prefix) {
  auto one = [&](const Value& v) {
    const std::string& a = v.str();
    return a.size() <= s.size() && s.compare(prefix ? 0 : s.size() - a.size(), a.size(), a) == 0;
  };
  const char* method = prefix ? "startswith" : "endswith";
  if (affix.is_string()) return one(affix);
  if (affix.is(Kind::kTuple)) {
    for (const Value& v : affix.items()) {
      if (!v.is_string())
        throw_error(cat("tuple for ", method, " must only contain str, not ", type_name(v)));
      if (one(v)) return true;
    }
    return false;
  }
  throw_error(cat(method, " first arg must be str or a tuple of str, not ", type_name(affix)));
}

std::string pad(const std::string& s, int64_t width, const Value* fill, int where /*-1 left, 0 center, 1 right*/) {
  std::string fillchar = " ";
  if (fill) {
    if (!fill->is_string() || py::length(fill->str()) != 1)
      throw_error("The fill character must be exactly one character long");
    fillchar = fill->str();
  }
  int64_t len = static_cast<int64_t>(py::length(s));
  if (width <= len) return s;
  if (width > static_cast<int64_t>(Interpreter::kMaxStringBytes)) throw_error("padding width too large");
  int64_t marg = width - len, left;
  if (where < 0) left = 0;
  else if (where > 0) left = marg;
  else left = marg / 2 + (marg & width & 1);
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += fillchar;
  out += s;
  for (int64_t i = 0; i < marg - left; ++i) out += fillchar;
  return out;
}

Value str_method(const Value& self, const std::string& name, const Args& args) {
  const std::string& s = self.str();
  std::string what = "str." + name;
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    Bound a = bind_args(args, what, {"chars"});
    return Value::string(py::strip(s, optional_str(a[0], name.c_str()), name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    Bound a = bind_args(args, what, {"sep", "maxsplit"});
    std::optional<std::string> sep = optional_str(a[0], "sep");
    if (sep && sep->empty()) throw_error("empty separator");
    int64_t maxsplit = int_arg(a[1], -1);
    return Value::list(strings(name == "split" ? py::split(s, sep, maxsplit) : py::rsplit(s, sep, maxsplit)));
  }
  if (name == "splitlines") {
    Bound a = bind_args(args, what, {"keepends"});
    return Value::list(strings(py::splitlines(s, a[0] && truthy(*a[0]))));
  }
  if (name == "startswith" || name == "endswith") {
    Bound a = bind_args(args, what, {"prefix"}, 1);
    return Value::boolean(affix_test(s, *a[0], name == "startswith"));
  }
  if (name == "replace") {
    Bound a = bind_args(args, what, {"old", "new", "count"}, 2);
    return Value::string(
        Interpreter::replace(s, str_arg(*a[0], "replace"), str_arg(*a[1], "replace"), int_arg(a[2], -1)));
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize" || name == "swapcase") {
    bind_args(args, what, {});
    if (name == "upper") return Value::string(py::upper(s));
    if (name == "lower") return Value::string(py::lower(s));
    if (name == "title") return Value::string(py::title(s));
    if (name == "capitalize") return Value::string(py::capitalize(s));
    return Value::string(py::swapcase(s));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    Bound a = bind_args(args, what, {"sub"}, 1);
    const std::string& sub = str_arg(*a[0], name.c_str());
    if (name == "count") return Value::integer(py::count(s, sub));
    int64_t at = (name == "find" || name == "index") ? py::find(s, sub) : py::rfind(s, sub);
    if (at < 0 && (name == "index" || name == "rindex")) throw_error("substring not found");
    return Value::integer(at);
  }
  if (name == "join") {
    Bound a = bind_args(args, what, {"iterable"}, 1);
    ValueList items = iterate(*a[0]);
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].is_string())
        throw_error(cat("sequence item ", i, ": expected str instance, ", type_name(items[i]), " found"));
      if (i) out += s;
      out += items[i].str();
      if (out.size() > Interpreter::kMaxStringBytes) throw_error("string too long");
    }
    return Value::string(std::move(out));
  }
  if (name == "removeprefix" || name == "removesuffix") {
    Bound a = bind_args(args, what, {"affix"}, 1);
    const std::string& x = str_arg(*a[0], name.c_str());
    bool prefix = name == "removeprefix";
    if (x.size() <= s.size() && s.compare(prefix ? 0 : s.size() - x.size(), x.size(), x) == 0)
      return Value::string(prefix ? s.substr(x.size()) : s.substr(0, s.size() - x.size()));
    return self;
  }
  if (name == "partition" || name == "rpartition") {
    Bound a = bind_args(args, what, {"sep"}, 1);
    const std::string& sep = str_arg(*a[0], name.c_str());
    if (sep.empty()) throw_error("empty separator");
    size_t at = name == "partition" ? s.find(sep) : s.rfind(sep);
    if (at == std::string::npos) {
      return name == "partition" ? Value::tuple({self, Value::string(""), Value::string("")})
                                 : Value::tuple({Value::string(""), Value::string(""), self});
    }
    return Value::tuple({Value::string(s.substr(0, at)), Value::string(sep), Value::string(s.substr(at + sep.size()))});
  }
  if (name == "center" || name == "ljust" || name == "rjust") {
    Bound a = bind_args(args, what, {"width", "fillchar"}, 1);
    int where = name == "ljust" ? -1 : name == "rjust" ? 1 : 0;
    return Value::string(pad(s, int_arg(a[0], 0), a[1], where));
  }
  static const std::pair<const char*, py::CharTest> kTests[] = {
      {"isdigit", py::CharTest::kDigit}, {"isdecimal", py::CharTest::kDecimal}, {"isnumeric", py::CharTest::kNumeric},
      {"isalpha", py::CharTest::kAlpha}, {"isalnum", py::CharTest::kAlnum},     {"isspace", py::CharTest::kSpace},
      {"islower", py::CharTest::kLower}, {"isupper", py::CharTest::kUpper}};
  for (const auto& [n, test] : kTests) {
    if (name == n) {
      bind_args(args, what, {});
      return Value::boolean(py::test_chars(s, test));
    }
  }
  if (name == "isascii") {
    bind_args(args, what, {});
    return Value::boolean(std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }));
  }
  throw_error(cat("the string method ", name, "() is not supported"));
}

Value dict_method(const Value& self, const std::string& name, const Args& args) {
  const Dict& d = self.dict();
  std::string what = "dict." + name;
  if (name == "get") {
    Bound a = bind_args(args, what, {"key", "default"}, 1);
    if (!hashable(*a[0])) throw_error(cat("unhashable type: '", type_name(*a[0]), "'"));
    if (const Value* v = d.find(*a[0])) return *v;
    return a[1] ? *a[1] : Value::none();
  }
  if (name == "items" || name == "keys" || name == "values") {
    bind_args(args, what, {});
    ValueList out;
    for (const auto& [k, v] : d.entries)
      out.push_back(name == "items" ? Value::tuple({k, v}) : name == "keys" ? k : v);
    return Value::list(std::move(out));
  }
  if (name == "copy") {
    bind_args(args, what, {});
    return Value::dict(std::make_shared<const Dict>(d));
  }
  if (name == "fromkeys") throw_error("the method dict.fromkeys() is not supported");
  throw_error(cat("access to attribute '", name, "' of 'dict' object is unsafe (the sandbox is immutable)"));
}

Value sequence_method(const Value& self, const std::string& name, const Args& args) {
  const char* type = type_name(self);
  std::string what = cat(type, ".", name);
  if (name == "count" || name == "index") {
    Bound a = bind_args(args, what, {"value"}, 1);
    const ValueList& items = self.items();
    int64_t n = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!equal(items[i], *a[0])) continue;
      if (name == "index") return Value::integer(static_cast<int64_t>(i));
      ++n;
    }
    if (name == "index") throw_error(cat(type, ".index(x): x not in ", type));
    return Value::integer(n);
  }
  if (name == "copy") {
    bind_args(args, what, {});
    return Value::list(self.items());
  }
  throw_error(cat("access to attribute '", name, "' of '", type, "' object is unsafe (the sandbox is immutable)"));
}

std::string strftime_now(const std::string& format) {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  std::tm tm{};
  localtime_r(&t, &tm);
  // datetime.strftime handles %f itself, and %z / %Z are empty for a naive datetime.
  std::string f;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] == '%' && i + 1 < format.size()) {
      char c = format[++i];
      if (c == 'f') f += cat(std::string(6 - std::to_string(micros).size(), '0'), micros);
      else if (c != 'z' && c != 'Z') f += std::string("%") + c;
      continue;
    }
    f += format[i];
  }
  f += '\x01';  // strftime returns 0 both for "" and for a short buffer
  std::string buf(256 + f.size() * 8, '\0');
  size_t n = std::strftime(buf.data(), buf.size(), f.c_str(), &tm);
  if (n == 0) throw_error("strftime_now(): the formatted date is too long");
  return buf.substr(0, n - 1);
}

// dict(mapping or pairs, **kwargs), as namespace() and dict() accept.
std::shared_ptr<Dict> dict_from(const Args& args, const char* what) {
  auto d = std::make_shared<Dict>();
  if (args.positional.size() > 1) throw_error(cat(what, "() expected at most 1 positional argument"));
  if (!args.positional.empty()) {
    const Value& src = args.positional[0];
    if (src.is(Kind::kDict)) {
      *d = src.dict();
    } else {
      for (const Value& pair : iterate(src)) {
        if (!pair.is_sequence() || pair.items().size() != 2)
          throw_error(cat(what, "(): each element must be a pair"));
        if (!hashable(pair.items()[0])) throw_error(cat("unhashable type: '", type_name(pair.items()[0]), "'"));
        d->set(pair.items()[0], pair.items()[1]);
      }
    }
  }
  for (const auto& [k, v] : args.keywords) d->set(Value::string(k), v);
  return d;
}

}  // namespace

bool Interpreter::is_method_name(const Value& self, const std::string& name) {
  switch (self.kind()) {
    case Kind::kString: return in(kStrAttrs, name);
    case Kind::kDict: return in(kDictAttrs, name);
    case Kind::kList: return in(kListAttrs, name);
    case Kind::kTuple: return in(kTupleAttrs, name);
    case Kind::kInt:
    case Kind::kBool: return in(kIntAttrs, name);
    case Kind::kFloat: return in(kFloatAttrs, name);
    default: return false;
  }
}

Value Interpreter::call_method(const Value& self, const std::string& name, const Args& args) {
  switch (self.kind()) {
    case Kind::kString: return str_method(self, name, args);
    case Kind::kDict: return dict_method(self, name, args);
    case Kind::kList:
    case Kind::kTuple: return sequence_method(self, name, args);
    default: throw_error(cat("the method ", type_name(self), ".", name, "() is not supported"));
  }
}

Value Interpreter::call_global(Global g, const std::string& name, const Args& args) {
  switch (g) {
    case Global::kNamespace: {
      auto ns = std::make_shared<Namespace>();
      ns->attrs = std::move(*dict_from(args, "namespace"));
      namespaces_.push_back(ns);
      return Value::ns(std::move(ns));
    }
    case Global::kDict: return Value::dict(dict_from(args, "dict"));
    case Global::kRange: {
      if (!args.keywords.empty()) throw_error("range() takes no keyword arguments");
      const ValueList& p = args.positional;
      if (p.empty() || p.size() > 3) throw_error(cat("range expected 1 to 3 arguments, got ", p.size()));
      for (const Value& v : p)
        if (!v.is_integral()) throw_error(cat("'", type_name(v), "' object cannot be interpreted as an integer"));
      int64_t start = p.size() == 1 ? 0 : p[0].as_int();
      int64_t stop = p.size() == 1 ? p[0].as_int() : p[1].as_int();
      int64_t step = p.size() == 3 ? p[2].as_int() : 1;
      if (step == 0) throw_error("range() arg 3 must not be zero");
      ValueList out;
      for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        if (static_cast<int64_t>(out.size()) >= kMaxRange)
          throw_error(cat("Range too big. The sandbox blocks ranges larger than MAX_RANGE (", kMaxRange, ")."));
        out.push_back(Value::integer(i));
        if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step)) break;
      }
      return Value::range(std::move(out), {start, stop, step});
    }
    case Global::kRaiseException: {
      Bound a = bind_args(args, "raise_exception", {"message"}, 1);
      throw TemplateError(to_str(*a[0]), kNoPos, true);
    }
    case Global::kStrftimeNow: {
      Bound a = bind_args(args, "strftime_now", {"format"}, 1);
      if (!a[0]->is_string()) throw_error(cat("strftime() argument 1 must be str, not ", type_name(*a[0])));
      return Value::string(strftime_now(a[0]->str()));
    }
    case Global::kUnsupported: break;
  }
  throw_error(cat("the global function ", name, "() is not supported"));
}

}  // namespace qs::jinja
