// Jinja2's filters and tests (jinja2/filters.py, jinja2/tests.py 3.1) as chat templates use
// them, plus transformers' tojson. Filters that Python implements as generators (map, select,
// reject, unique, items, reverse of a list) return a Generator value: iterable once, always
// true, without len().
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/pystr.h"

namespace qs::jinja {

namespace {

struct Name {
  std::string_view name;
  int id;
};

constexpr Name kFilters[] = {
    {"abs", int(Filter::kAbs)},         {"attr", int(Filter::kAttr)},
    {"capitalize", int(Filter::kCapitalize)}, {"count", int(Filter::kCount)},
    {"d", int(Filter::kDefault)},       {"default", int(Filter::kDefault)},
    {"dictsort", int(Filter::kDictsort)}, {"first", int(Filter::kFirst)},
    {"float", int(Filter::kFloat)},     {"indent", int(Filter::kIndent)},
    {"int", int(Filter::kInt)},         {"items", int(Filter::kItems)},
    {"join", int(Filter::kJoin)},       {"last", int(Filter::kLast)},
    {"length", int(Filter::kLength)},   {"list", int(Filter::kList)},
    {"lower", int(Filter::kLower)},     {"map", int(Filter::kMap)},
    {"max", int(Filter::kMax)},         {"min", int(Filter::kMin)},
    {"reject", int(Filter::kReject)},   {"rejectattr", int(Filter::kRejectattr)},
    {"replace", int(Filter::kReplace)}, {"reverse", int(Filter::kReverse)},
    {"round", int(Filter::kRound)},     {"select", int(Filter::kSelect)},
    {"selectattr", int(Filter::kSelectattr)}, {"sort", int(Filter::kSort)},
    {"string", int(Filter::kString)},   {"sum", int(Filter::kSum)},
    {"title", int(Filter::kTitle)},     {"tojson", int(Filter::kTojson)},
    {"trim", int(Filter::kTrim)},       {"unique", int(Filter::kUnique)},
    {"upper", int(Filter::kUpper)},
};

constexpr Name kTests[] = {
    {"defined", int(Test::kDefined)},   {"undefined", int(Test::kUndefined)},
    {"none", int(Test::kNone)},         {"boolean", int(Test::kBoolean)},
    {"false", int(Test::kFalse)},       {"true", int(Test::kTrue)},
    {"integer", int(Test::kInteger)},   {"float", int(Test::kFloat)},
    {"number", int(Test::kNumber)},     {"string", int(Test::kString)},
    {"mapping", int(Test::kMapping)},   {"iterable", int(Test::kIterable)},
    {"sequence", int(Test::kSequence)}, {"callable", int(Test::kCallable)},
    {"sameas", int(Test::kSameas)},     {"escaped", int(Test::kEscaped)},
    {"eq", int(Test::kEq)},             {"equalto", int(Test::kEq)},
    {"==", int(Test::kEq)},             {"ne", int(Test::kNe)},
    {"!=", int(Test::kNe)},             {"lt", int(Test::kLt)},
    {"lessthan", int(Test::kLt)},       {"<", int(Test::kLt)},
    {"le", int(Test::kLe)},             {"<=", int(Test::kLe)},
    {"gt", int(Test::kGt)},             {"greaterthan", int(Test::kGt)},
    {">", int(Test::kGt)},              {"ge", int(Test::kGe)},
    {">=", int(Test::kGe)},             {"in", int(Test::kIn)},
    {"odd", int(Test::kOdd)},           {"even", int(Test::kEven)},
    {"divisibleby", int(Test::kDivisibleby)}, {"lower", int(Test::kLower)},
    {"upper", int(Test::kUpper)},
};

template <size_t N>
int lookup(const Name (&table)[N], std::string_view name) {
  for (const Name& n : table)
    if (n.name == name) return n.id;
  return -1;
}

bool is_true(const Value* v) { return v && truthy(*v); }

// Jinja2's ignore_case: strings compare lower-cased unless case_sensitive.
Value ignore_case(const Value& v) { return v.is_string() ? Value::string(py::lower(v.str())) : v; }

// Jinja2's _prepare_attribute_parts: "a.0.b" -> ["a", 0, "b"].
ValueList attribute_parts(const Value& attribute) {
  if (attribute.is_none()) return {};
  if (!attribute.is_string()) return {attribute};
  ValueList parts;
  for (std::string& p : py::split(attribute.str(), std::string("."), -1)) {
    if (py::test_chars(p, py::CharTest::kDigit) && p.size() <= 18 &&
        std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; }))
      parts.push_back(Value::integer(std::stoll(p)));
    else
      parts.push_back(Value::string(std::move(p)));
  }
  return parts;
}

// Python's int(str, base) for ASCII digits; nullopt where Python raises ValueError.
std::optional<int64_t> parse_int(std::string_view s, int64_t base) {
  std::string t = py::strip(s, std::nullopt, true, true);
  size_t i = 0;
  bool negative = false;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) negative = t[i++] == '-';
  auto prefix_base = [&](char c) { c = static_cast<char>(c | 0x20); return c == 'x' ? 16 : c == 'o' ? 8 : c == 'b' ? 2 : 0; };
  if (i + 1 < t.size() && t[i] == '0' && prefix_base(t[i + 1]) && (base == 0 || base == prefix_base(t[i + 1]))) {
    base = prefix_base(t[i + 1]);
    i += 2;
    if (i < t.size() && t[i] == '_') ++i;
  } else if (base == 0) {
    base = 10;
    if (i + 1 < t.size() && t[i] == '0')
      for (size_t k = i; k < t.size(); ++k)
        if (t[k] != '0' && t[k] != '_') return std::nullopt;
  }
  if (base < 2 || base > 36) return std::nullopt;  // Python's ValueError, which do_int catches
  std::string digits;
  for (size_t k = i; k < t.size(); ++k) {
    if (t[k] == '_') {
      if (k == i || k + 1 >= t.size() || t[k + 1] == '_') return std::nullopt;
      continue;
    }
    digits += t[k];
  }
  if (digits.empty()) return std::nullopt;
  uint64_t v = 0;
  auto res = std::from_chars(digits.data(), digits.data() + digits.size(), v, static_cast<int>(base));
  if (res.ptr != digits.data() + digits.size()) return std::nullopt;
  if (res.ec != std::errc() || v > static_cast<uint64_t>(INT64_MAX) + negative)
    throw_error("integer overflow (templates are evaluated with 64-bit integers)");
  return negative ? static_cast<int64_t>(0 - v) : static_cast<int64_t>(v);
}

// Python's float(str); nullopt where Python raises ValueError.
std::optional<double> parse_float(std::string_view s) {
  std::string t = py::lower(py::strip(s, std::nullopt, true, true));
  size_t i = 0;
  bool negative = false;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) negative = t[i++] == '-';
  std::string_view rest = std::string_view(t).substr(i);
  if (rest == "inf" || rest == "infinity") return negative ? -HUGE_VAL : HUGE_VAL;
  if (rest == "nan") return std::nan("");
  std::string clean;
  bool digits_before = false;
  for (size_t k = 0; k < rest.size(); ++k) {
    char c = rest[k];
    if (c == '_') {
      bool ok = k > 0 && k + 1 < rest.size() && std::isdigit(static_cast<unsigned char>(rest[k - 1])) &&
                std::isdigit(static_cast<unsigned char>(rest[k + 1]));
      if (!ok) return std::nullopt;
      continue;
    }
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == 'e' || c == '+' || c == '-'))
      return std::nullopt;
    digits_before |= std::isdigit(static_cast<unsigned char>(c)) != 0;
    clean += c;
  }
  if (!digits_before) return std::nullopt;
  double d = 0;
  auto res = std::from_chars(clean.data(), clean.data() + clean.size(), d);
  if (res.ptr != clean.data() + clean.size()) return std::nullopt;
  if (res.ec == std::errc::result_out_of_range) {
    size_t e = clean.find('e');
    d = e != std::string::npos && e + 1 < clean.size() && clean[e + 1] == '-' ? 0.0 : HUGE_VAL;
  }
  return negative ? -d : d;
}

std::optional<double> to_float(const Value& v) {
  if (v.is_undefined()) throw_undefined(v);
  if (v.is_number()) return v.as_double();
  if (v.is_string()) return parse_float(v.str());
  return std::nullopt;
}

// Python's round(x, ndigits) for ndigits >= 0: correctly rounded, ties to even.
double round_float(double x, int64_t ndigits) {
  if (!std::isfinite(x) || ndigits > 300) return x;
  if (ndigits < 0) throw_error("round() with a negative precision is not supported");
  std::vector<char> buf(400);
  std::snprintf(buf.data(), buf.size(), "%.*f", static_cast<int>(ndigits), x);
  double r = std::strtod(buf.data(), nullptr);
  return r == 0 ? std::copysign(0.0, x) : r;
}

std::string jinja_title(std::string_view s) {
  auto is_separator = [](char32_t c) { return py::is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<'; };
  std::u32string cps = py::decode(s);
  std::string out;
  size_t i = 0;
  while (i < cps.size()) {
    size_t j = i;
    if (is_separator(cps[i])) {
      while (j < cps.size() && is_separator(cps[j])) ++j;
      out += py::encode(std::u32string_view(cps).substr(i, j - i));
    } else {
      while (j < cps.size() && !is_separator(cps[j])) ++j;
      out += py::upper(py::encode(std::u32string_view(cps).substr(i, 1)));
      out += py::lower(py::encode(std::u32string_view(cps).substr(i + 1, j - i - 1)));
    }
    i = j;
  }
  return out;
}

// " " * n for an indentation, refused when it alone would exceed the string limit.
std::string spaces(int64_t n) {
  if (n > static_cast<int64_t>(Interpreter::kMaxStringBytes)) throw_error(cat("indentation of ", n, " spaces is too large"));
  return std::string(static_cast<size_t>(std::max<int64_t>(0, n)), ' ');
}

std::string indent(const std::string& s, const Value& width, bool first, bool blank) {
  std::string indention;
  if (width.is_string()) indention = width.str();
  else if (width.is_integral()) indention = spaces(width.as_int());
  else throw_error(cat("can't multiply sequence by non-int of type '", type_name(width), "'"));
  size_t lines_count = static_cast<size_t>(py::count(s, "\n")) + 1;
  if (!indention.empty() && lines_count > (Interpreter::kMaxStringBytes - std::min(s.size(), Interpreter::kMaxStringBytes)) / indention.size())
    throw_error(cat("indent() result longer than ", Interpreter::kMaxStringBytes, " bytes"));
  std::vector<std::string> lines = py::splitlines(s + "\n", false);
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + indention : "") + lines[i];
  } else {
    rv = lines[0];
    for (size_t i = 1; i < lines.size(); ++i) rv += "\n" + (lines[i].empty() ? "" : indention) + lines[i];
  }
  return first ? indention + rv : rv;
}

JsonOptions json_options(const Bound& a) {
  JsonOptions o;
  o.ensure_ascii = is_true(a[0]);
  if (a[1] && !a[1]->is_none()) {
    const Value& ind = *a[1];
    o.has_indent = true;
    if (ind.is_string()) o.indent = ind.str();
    else if (ind.is_integral()) o.indent = spaces(ind.as_int());
    else throw_error(cat("tojson: indent must be an int or a string, not ", type_name(ind)));
    o.item_separator = ",";
  }
  if (a[2] && !a[2]->is_none()) {
    const Value& sep = *a[2];
    if (!sep.is_sequence() || sep.items().size() != 2 || !sep.items()[0].is_string() || !sep.items()[1].is_string())
      throw_error("tojson: separators must be a pair of strings");
    o.item_separator = sep.items()[0].str();
    o.key_separator = sep.items()[1].str();
  }
  o.sort_keys = is_true(a[3]);
  o.max_bytes = Interpreter::kMaxStringBytes;
  return o;
}

}  // namespace

int filter_id(std::string_view name) { return lookup(kFilters, name); }
int test_id(std::string_view name) { return lookup(kTests, name); }

Bound bind_args(const Args& a, std::string_view what, std::initializer_list<std::string_view> names,
                size_t required) {
  Bound out{};
  if (a.positional.size() > names.size())
    throw_error(cat(what, "() takes at most ", names.size(), " argument(s) (", a.positional.size(), " given)"));
  for (size_t i = 0; i < a.positional.size(); ++i) out[i] = &a.positional[i];
  for (const auto& [k, v] : a.keywords) {
    auto it = std::find(names.begin(), names.end(), k);
    if (it == names.end()) throw_error(cat(what, "() got an unexpected keyword argument '", k, "'"));
    size_t idx = static_cast<size_t>(it - names.begin());
    if (out[idx]) throw_error(cat(what, "() got multiple values for argument '", k, "'"));
    out[idx] = &v;
  }
  for (size_t i = 0; i < required; ++i)
    if (!out[i]) throw_error(cat(what, "() missing required argument '", *(names.begin() + i), "'"));
  return out;
}

Value Interpreter::apply_filter(int id, const std::string& name, const Value& value, const Args& args) {
  if (id < 0) throw_error(cat("the filter '", name, "' is not supported"));
  // Jinja2's make_attrgetter: items first (environment.getitem), for each dotted part.
  auto attrgetter = [this](const Value& attribute, const Value* dflt, bool lower) {
    ValueList parts = attribute_parts(attribute);
    return [this, parts, dflt, lower](const Value& item) {
      Value v = item;
      for (const Value& p : parts) {
        v = getitem(v, p);
        if (dflt && !dflt->is_none() && v.is_undefined()) v = *dflt;
      }
      return lower ? ignore_case(v) : v;
    };
  };
  switch (static_cast<Filter>(id)) {
    case Filter::kAbs: {
      bind_args(args, name, {});
      if (value.is_integral()) {
        if (value.as_int() == INT64_MIN) throw_error("integer overflow (templates are evaluated with 64-bit integers)");
        return Value::integer(std::llabs(value.as_int()));
      }
      if (value.is(Kind::kFloat)) return Value::floating(std::fabs(value.as_double()));
      throw_error(cat("bad operand type for abs(): '", type_name(value), "'"));
    }
    case Filter::kAttr: {
      Bound a = bind_args(args, name, {"name"}, 1);
      std::string attr = to_str(*a[0]);
      if (value.is_undefined()) throw_undefined(value);
      if (is_method_name(value, attr) || value.is(Kind::kNamespace) || value.is(Kind::kLoop)) return getattr(value, attr);
      return Value::undefined(cat("'", type_name(value), " object' has no attribute '", attr, "'"));
    }
    case Filter::kCapitalize: bind_args(args, name, {}); return Value::string(py::capitalize(to_str(value)));
    case Filter::kCount:
    case Filter::kLength: bind_args(args, name, {}); return Value::integer(length(value));
    case Filter::kDefault: {
      Bound a = bind_args(args, name, {"default_value", "boolean"});
      if (value.is_undefined() || (is_true(a[1]) && !truthy(value))) return a[0] ? *a[0] : Value::string("");
      return value;
    }
    case Filter::kDictsort: {
      Bound a = bind_args(args, name, {"case_sensitive", "by", "reverse"});
      if (!value.is(Kind::kDict)) throw_error(cat("'", type_name(value), "' object has no attribute 'items'"));
      std::string by = a[1] ? to_str(*a[1]) : "key";
      if (by != "key" && by != "value") throw_error("You can only sort by either \"key\" or \"value\"");
      size_t pos = by == "key" ? 0 : 1;
      bool lower = !is_true(a[0]), reverse = is_true(a[2]);
      std::vector<std::pair<Value, Value>> items = value.dict().entries;
      std::stable_sort(items.begin(), items.end(), [&](const auto& x, const auto& y) {
        Value kx = pos ? x.second : x.first, ky = pos ? y.second : y.first;
        if (lower) kx = ignore_case(kx), ky = ignore_case(ky);
        return reverse ? less(ky, kx) : less(kx, ky);
      });
      ValueList out;
      for (auto& [k, v] : items) out.push_back(Value::tuple({k, v}));
      return Value::list(std::move(out));
    }
    case Filter::kFirst: {
      bind_args(args, name, {});
      if (value.is(Kind::kGenerator)) {
        Generator& g = value.gen();
        if (g.next < g.items.size()) return g.items[g.next++];
      } else {
        ValueList items = iterate(value);
        if (!items.empty()) return items.front();
      }
      return Value::undefined("No first item, sequence was empty.");
    }
    case Filter::kLast: {
      bind_args(args, name, {});
      if (value.is(Kind::kGenerator)) throw_error("'generator' object is not reversible");
      ValueList items = iterate(value);
      if (!items.empty()) return items.back();
      return Value::undefined("No last item, sequence was empty.");
    }
    case Filter::kFloat: {
      Bound a = bind_args(args, name, {"default"});
      if (std::optional<double> d = to_float(value)) return Value::floating(*d);
      return a[0] ? *a[0] : Value::floating(0.0);
    }
    case Filter::kInt: {
      Bound a = bind_args(args, name, {"default", "base"});
      Value dflt = a[0] ? *a[0] : Value::integer(0);
      if (value.is_undefined()) throw_undefined(value);
      if (value.is_integral()) return Value::integer(value.as_int());
      std::optional<double> d;
      if (value.is_string()) {
        // A base that is not an int is Python's TypeError, which do_int catches like a bad digit.
        int64_t base = a[1] ? (a[1]->is_integral() ? a[1]->as_int() : -1) : 10;
        if (base == 0 || (base >= 2 && base <= 36))
          if (std::optional<int64_t> i = parse_int(value.str(), base)) return Value::integer(*i);
        d = parse_float(value.str());
      } else if (value.is(Kind::kFloat)) {
        d = value.as_double();
      }
      if (!d || std::isnan(*d)) return dflt;
      if (std::isinf(*d)) throw_error("cannot convert float infinity to integer");
      if (std::fabs(*d) >= 9.2e18) throw_error("integer overflow (templates are evaluated with 64-bit integers)");
      return Value::integer(static_cast<int64_t>(std::trunc(*d)));
    }
    case Filter::kIndent: {
      Bound a = bind_args(args, name, {"width", "first", "blank"});
      if (value.is_undefined()) throw_undefined(value);
      if (!value.is_string()) throw_error(cat("unsupported operand type(s) for +=: '", type_name(value), "' and 'str'"));
      return Value::string(indent(value.str(), a[0] ? *a[0] : Value::integer(4), is_true(a[1]), is_true(a[2])));
    }
    case Filter::kItems: {
      bind_args(args, name, {});
      if (value.is_undefined()) return Value::generator({});
      if (!value.is(Kind::kDict)) throw_error("Can only get item pairs from a mapping.");
      ValueList out;
      for (const auto& [k, v] : value.dict().entries) out.push_back(Value::tuple({k, v}));
      return Value::generator(std::move(out));
    }
    case Filter::kJoin: {
      Bound a = bind_args(args, name, {"d", "attribute"});
      ValueList items = iterate(value);
      std::string sep = a[0] ? to_str(*a[0]) : "";
      std::string out;
      auto get = attrgetter(a[1] ? *a[1] : Value::none(), nullptr, false);
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += sep;
        append_str(out, a[1] && !a[1]->is_none() ? get(items[i]) : items[i]);
        if (out.size() > kMaxStringBytes) throw_error(cat("string longer than ", kMaxStringBytes, " bytes"));
      }
      return Value::string(std::move(out));
    }
    case Filter::kList: bind_args(args, name, {}); return Value::list(iterate(value));
    case Filter::kLower: bind_args(args, name, {}); return Value::string(py::lower(to_str(value)));
    case Filter::kUpper: bind_args(args, name, {}); return Value::string(py::upper(to_str(value)));
    case Filter::kMap: {
      if (!truthy(value)) return Value::generator({});
      ValueList items = iterate(value);
      ValueList out;
      const Value* attribute = nullptr;
      const Value* dflt = nullptr;
      for (const auto& [k, v] : args.keywords) {
        if (k == "attribute") attribute = &v;
        else if (k == "default") dflt = &v;
      }
      if (args.positional.empty() && attribute) {
        for (const auto& [k, v] : args.keywords)
          if (k != "attribute" && k != "default") throw_error(cat("Unexpected keyword argument '", k, "'"));
        auto get = attrgetter(*attribute, dflt, false);
        for (const Value& item : items) out.push_back(get(item));
        return Value::generator(std::move(out));
      }
      if (args.positional.empty()) throw_error("map requires a filter argument");
      std::string filter_name = to_str(args.positional[0]);
      Args rest{ValueList(args.positional.begin() + 1, args.positional.end()), args.keywords};
      int fid = filter_id(filter_name);
      for (const Value& item : items) out.push_back(apply_filter(fid, filter_name, item, rest));
      return Value::generator(std::move(out));
    }
    case Filter::kMax:
    case Filter::kMin: {
      Bound a = bind_args(args, name, {"case_sensitive", "attribute"});
      ValueList items = iterate(value);
      if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
      auto key = attrgetter(a[1] ? *a[1] : Value::none(), nullptr, !is_true(a[0]));
      size_t best = 0;
      Value best_key = key(items[0]);
      bool is_max = static_cast<Filter>(id) == Filter::kMax;
      for (size_t i = 1; i < items.size(); ++i) {
        Value k = key(items[i]);
        if (is_max ? less(best_key, k) : less(k, best_key)) best = i, best_key = std::move(k);
      }
      return items[best];
    }
    case Filter::kSelect:
    case Filter::kReject:
    case Filter::kSelectattr:
    case Filter::kRejectattr: {
      Filter f = static_cast<Filter>(id);
      if (!truthy(value)) return Value::generator({});
      ValueList items = iterate(value);
      bool lookup_attr = f == Filter::kSelectattr || f == Filter::kRejectattr;
      bool reject = f == Filter::kReject || f == Filter::kRejectattr;
      size_t off = lookup_attr ? 1 : 0;
      if (lookup_attr && args.positional.empty()) throw_error("Missing parameter for attribute name");
      auto get = attrgetter(lookup_attr ? args.positional[0] : Value::none(), nullptr, false);
      bool has_test = args.positional.size() > off;
      std::string test_name = has_test ? to_str(args.positional[off]) : "";
      int tid = test_id(test_name);
      Args test_args{has_test ? ValueList(args.positional.begin() + static_cast<std::ptrdiff_t>(off) + 1,
                                          args.positional.end())
                              : ValueList{},
                     args.keywords};
      ValueList out;
      for (Value& item : items) {
        Value v = get(item);
        bool ok = has_test ? apply_test(tid, test_name, v, test_args) : truthy(v);
        if (ok != reject) out.push_back(std::move(item));
      }
      return Value::generator(std::move(out));
    }
    case Filter::kReplace: {
      Bound a = bind_args(args, name, {"old", "new", "count"}, 2);
      int64_t count = -1;
      if (a[2] && !a[2]->is_none()) {
        if (!a[2]->is_integral()) throw_error(cat("'", type_name(*a[2]), "' object cannot be interpreted as an integer"));
        count = a[2]->as_int();
      }
      return Value::string(replace(to_str(value), to_str(*a[0]), to_str(*a[1]), count));
    }
    case Filter::kReverse: {
      bind_args(args, name, {});
      if (value.is_string()) {
        std::u32string cps = py::decode(value.str());
        std::reverse(cps.begin(), cps.end());
        return Value::string(py::encode(cps));
      }
      if (value.is(Kind::kGenerator)) {
        ValueList items = iterate(value);
        std::reverse(items.begin(), items.end());
        return Value::list(std::move(items));
      }
      if (!value.is_sequence() && !value.is(Kind::kDict) && !value.is_undefined())
        throw_error("argument must be iterable");
      ValueList items = iterate(value);
      std::reverse(items.begin(), items.end());
      return Value::generator(std::move(items));
    }
    case Filter::kRound: {
      Bound a = bind_args(args, name, {"precision", "method"});
      int64_t precision = 0;
      if (a[0]) {
        if (!a[0]->is_integral()) throw_error(cat("'", type_name(*a[0]), "' object cannot be interpreted as an integer"));
        precision = a[0]->as_int();
      }
      std::string method = a[1] ? to_str(*a[1]) : "common";
      if (method != "common" && method != "ceil" && method != "floor")
        throw_error("method must be common, ceil or floor");
      if (value.is_undefined()) throw_undefined(value);
      if (!value.is_number()) throw_error(cat("type ", type_name(value), " doesn't define __round__ method"));
      if (method == "common") {
        if (value.is_integral()) {
          if (precision < 0) throw_error("round() with a negative precision is not supported");
          return Value::integer(value.as_int());
        }
        return Value::floating(round_float(value.as_double(), precision));
      }
      if (precision < 0 || precision > 18) throw_error("round() precision out of the supported range");
      double scale = std::pow(10.0, static_cast<double>(precision));
      double scaled = value.as_double() * scale;
      // math.ceil/floor return an int, so a result of zero is +0.0 after the division.
      double r = (method == "ceil" ? std::ceil(scaled) : std::floor(scaled)) + 0.0;
      return Value::floating(r / scale);
    }
    case Filter::kSort: {
      Bound a = bind_args(args, name, {"reverse", "case_sensitive", "attribute"});
      ValueList items = iterate(value);
      bool reverse = is_true(a[0]), lower = !is_true(a[1]);
      std::vector<ValueList> keys;
      std::vector<ValueList> attr_paths;
      std::vector<Value> attrs;
      if (a[2] && a[2]->is_string()) {
        for (std::string& part : py::split(a[2]->str(), std::string(","), -1)) attrs.push_back(Value::string(part));
      } else {
        attrs.push_back(a[2] ? *a[2] : Value::none());
      }
      std::vector<std::pair<ValueList, size_t>> order;
      for (size_t i = 0; i < items.size(); ++i) {
        ValueList key;
        for (const Value& attr : attrs) key.push_back(attrgetter(attr, nullptr, lower)(items[i]));
        order.emplace_back(std::move(key), i);
      }
      std::stable_sort(order.begin(), order.end(), [&](const auto& x, const auto& y) {
        Value kx = Value::list(x.first), ky = Value::list(y.first);
        return reverse ? less(ky, kx) : less(kx, ky);
      });
      ValueList out;
      for (const auto& o : order) out.push_back(items[o.second]);
      return Value::list(std::move(out));
    }
    case Filter::kString: bind_args(args, name, {}); return Value::string(to_str(value));
    case Filter::kSum: {
      Bound a = bind_args(args, name, {"attribute", "start"});
      ValueList items = iterate(value);
      Value total = a[1] ? *a[1] : Value::integer(0);
      if (total.is_string()) throw_error("sum() can't sum strings [use ''.join(seq) instead]");
      auto get = attrgetter(a[0] ? *a[0] : Value::none(), nullptr, false);
      for (const Value& item : items) total = binary(BinOp::kAdd, total, get(item));
      return total;
    }
    case Filter::kTitle: bind_args(args, name, {}); return Value::string(jinja_title(to_str(value)));
    case Filter::kTojson: {
      Bound a = bind_args(args, name, {"ensure_ascii", "indent", "separators", "sort_keys"});
      std::string out;
      // json.dumps encodes a str directly, before it looks at indent or separators.
      if (value.is_string()) py::append_json_string(out, value.str(), is_true(a[0]));
      else append_json(out, value, json_options(a));
      return Value::string(std::move(out));
    }
    case Filter::kTrim: {
      Bound a = bind_args(args, name, {"chars"});
      std::optional<std::string> chars;
      if (a[0] && !a[0]->is_none()) {
        if (!a[0]->is_string()) throw_error(cat("strip arg must be None or str"));
        chars = a[0]->str();
      }
      return Value::string(py::strip(to_str(value), chars, true, true));
    }
    case Filter::kUnique: {
      Bound a = bind_args(args, name, {"case_sensitive", "attribute"});
      ValueList items = iterate(value);
      auto key = attrgetter(a[1] ? *a[1] : Value::none(), nullptr, !is_true(a[0]));
      ValueList seen, out;
      for (Value& item : items) {
        Value k = key(item);
        if (!hashable(k)) throw_error(cat("unhashable type: '", type_name(k), "'"));
        if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return equal(s, k); })) continue;
        seen.push_back(std::move(k));
        out.push_back(std::move(item));
      }
      return Value::generator(std::move(out));
    }
  }
  throw_error(cat("the filter '", name, "' is not supported"));
}

bool Interpreter::apply_test(int id, const std::string& name, const Value& value, const Args& args) {
  if (id < 0) throw_error(cat("the test '", name, "' is not supported"));
  auto one_arg = [&]() -> const Value& { return *bind_args(args, name, {"other"}, 1)[0]; };
  auto modulo = [&](const Value& divisor) {
    if (value.is_undefined()) throw_undefined(value);
    if (!value.is_number() || !divisor.is_number())
      throw_error(cat("unsupported operand type(s) for %: '", type_name(value), "' and '", type_name(divisor), "'"));
    return binary(BinOp::kMod, value, divisor);
  };
  switch (static_cast<Test>(id)) {
    case Test::kDefined: bind_args(args, name, {}); return !value.is_undefined();
    case Test::kUndefined: bind_args(args, name, {}); return value.is_undefined();
    case Test::kNone: bind_args(args, name, {}); return value.is_none();
    case Test::kBoolean: bind_args(args, name, {}); return value.is(Kind::kBool);
    case Test::kFalse: bind_args(args, name, {}); return value.is(Kind::kBool) && !value.as_bool();
    case Test::kTrue: bind_args(args, name, {}); return value.is(Kind::kBool) && value.as_bool();
    case Test::kInteger: bind_args(args, name, {}); return value.is(Kind::kInt);
    case Test::kFloat: bind_args(args, name, {}); return value.is(Kind::kFloat);
    case Test::kNumber: bind_args(args, name, {}); return value.is_number();
    case Test::kString: bind_args(args, name, {}); return value.is_string();
    case Test::kMapping: bind_args(args, name, {}); return value.is(Kind::kDict);
    case Test::kIterable:
      bind_args(args, name, {});
      return value.is_undefined() || value.is_string() || value.is_sequence() || value.is(Kind::kDict) ||
             value.is(Kind::kGenerator) || value.is(Kind::kLoop);
    case Test::kSequence:
      bind_args(args, name, {});
      return value.is_undefined() || value.is_string() || value.is_sequence() || value.is(Kind::kDict);
    case Test::kCallable:
      bind_args(args, name, {});
      return value.is(Kind::kCallable) || value.is_undefined() || value.is(Kind::kLoop);
    case Test::kSameas: {
      const Value& other = one_arg();
      if (value.kind() != other.kind()) return false;
      switch (value.kind()) {
        case Kind::kNone: return true;
        case Kind::kBool: return value.as_bool() == other.as_bool();
        case Kind::kInt:
          // CPython shares the objects of small ints only.
          if (value.as_int() >= -5 && value.as_int() <= 256) return value.as_int() == other.as_int();
          throw_error("'sameas' on ints outside -5..256 is not supported (CPython object identity)");
        case Kind::kFloat:
        case Kind::kString:
          throw_error(cat("'sameas' on ", type_name(value), " values is not supported (CPython object identity)"));
        default: return value.identity() == other.identity();
      }
    }
    case Test::kEscaped: bind_args(args, name, {}); return false;
    case Test::kEq: return equal(value, one_arg());
    case Test::kNe: return !equal(value, one_arg());
    case Test::kLt: return compare(CmpOp::kLt, value, one_arg());
    case Test::kLe: return compare(CmpOp::kLe, value, one_arg());
    case Test::kGt: return compare(CmpOp::kGt, value, one_arg());
    case Test::kGe: return compare(CmpOp::kGe, value, one_arg());
    case Test::kIn: return contains(*bind_args(args, name, {"seq"}, 1)[0], value);
    case Test::kOdd: bind_args(args, name, {}); return equal(modulo(Value::integer(2)), Value::integer(1));
    case Test::kEven: bind_args(args, name, {}); return equal(modulo(Value::integer(2)), Value::integer(0));
    case Test::kDivisibleby: {
      const Value& num = *bind_args(args, name, {"num"}, 1)[0];
      return equal(modulo(num), Value::integer(0));
    }
    case Test::kLower: bind_args(args, name, {}); return py::test_chars(to_str(value), py::CharTest::kLower);
    case Test::kUpper: bind_args(args, name, {}); return py::test_chars(to_str(value), py::CharTest::kUpper);
  }
  throw_error(cat("the test '", name, "' is not supported"));
}

}  // namespace qs::jinja
