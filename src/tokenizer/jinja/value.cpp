#include "tokenizer/jinja/value.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "tokenizer/jinja/pystr.h"

namespace qs::jinja {

void throw_error(std::string message, uint32_t pos) { throw TemplateError(std::move(message), pos); }

Value Value::list(ValueList items) {
  return Value(Tag{}, ListV{std::make_shared<const ValueList>(std::move(items)), nullptr});
}

Value Value::range(ValueList items, RangeInfo info) {
  return Value(Tag{}, ListV{std::make_shared<const ValueList>(std::move(items)), std::make_shared<const RangeInfo>(info)});
}

const Value::RangeInfo* Value::range_info() const {
  const auto* l = std::get_if<ListV>(&v_);
  return l ? l->range.get() : nullptr;
}

Value Value::tuple(ValueList items) {
  return Value(Tag{}, TupleV{std::make_shared<const ValueList>(std::move(items))});
}

Value Value::generator(ValueList items) {
  auto g = std::make_shared<Generator>();
  g->items = std::move(items);
  return Value(Tag{}, std::move(g));
}

const std::shared_ptr<const ValueList>& Value::items_ptr() const {
  if (const auto* l = std::get_if<ListV>(&v_)) return l->items;
  return std::get<TupleV>(v_).items;
}

const ValueList& Value::items() const { return *items_ptr(); }

const void* Value::identity() const {
  switch (kind()) {
    case Kind::kList:
    case Kind::kTuple: return items_ptr().get();
    case Kind::kDict: return std::get<std::shared_ptr<const Dict>>(v_).get();
    case Kind::kNamespace: return std::get<std::shared_ptr<Namespace>>(v_).get();
    case Kind::kGenerator: return std::get<std::shared_ptr<Generator>>(v_).get();
    case Kind::kCallable: return std::get<std::shared_ptr<const Callable>>(v_).get();
    case Kind::kLoop: return std::get<std::shared_ptr<Loop>>(v_).get();
    default: return nullptr;
  }
}

const Value* Dict::find(const Value& key) const {
  if (key.is_string()) return find(std::string_view(key.str()));
  for (const auto& [k, v] : entries)
    if (equal(k, key)) return &v;
  return nullptr;
}

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : entries)
    if (k.is_string() && k.str() == key) return &v;
  return nullptr;
}

void Dict::set(Value key, Value value) {
  for (auto& [k, v] : entries) {
    if (equal(k, key)) {
      v = std::move(value);
      return;
    }
  }
  entries.emplace_back(std::move(key), std::move(value));
}

const char* type_name(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined: return "Undefined";
    case Kind::kNone: return "NoneType";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "str";
    case Kind::kList: return v.is_range() ? "range" : "list";
    case Kind::kTuple: return "tuple";
    case Kind::kDict: return "dict";
    case Kind::kNamespace: return "Namespace";
    case Kind::kGenerator: return "generator";
    case Kind::kCallable: return "function";
    case Kind::kLoop: return "LoopContext";
  }
  return "object";
}

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined:
    case Kind::kNone: return false;
    case Kind::kBool: return v.as_bool();
    case Kind::kInt: return v.as_int() != 0;
    case Kind::kFloat: return v.as_double() != 0.0;
    case Kind::kString: return !v.str().empty();
    case Kind::kList:
    case Kind::kTuple: return !v.items().empty();
    case Kind::kDict: return !v.dict().entries.empty();
    default: return true;
  }
}

namespace {

void append_container(std::string& out, const Value& v) {
  if (const Value::RangeInfo* r = v.range_info()) {
    out += cat("range(", r->start, ", ", r->stop);
    if (r->step != 1) out += cat(", ", r->step);
    out += ')';
    return;
  }
  if (v.is_sequence()) {
    const ValueList& items = v.items();
    bool tuple = v.is(Kind::kTuple);
    out += tuple ? '(' : '[';
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) out += ", ";
      append_repr(out, items[i]);
    }
    if (tuple && items.size() == 1) out += ',';
    out += tuple ? ')' : ']';
    return;
  }
  const Dict& d = v.is(Kind::kDict) ? v.dict() : v.ns().attrs;
  out += '{';
  bool first = true;
  for (const auto& [k, val] : d.entries) {
    if (!first) out += ", ";
    first = false;
    append_repr(out, k);
    out += ": ";
    append_repr(out, val);
  }
  out += '}';
}

}  // namespace

void append_str(std::string& out, const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined: return;
    case Kind::kNone: out += "None"; return;
    case Kind::kBool: out += v.as_bool() ? "True" : "False"; return;
    case Kind::kInt: out += std::to_string(v.as_int()); return;
    case Kind::kFloat: out += py::float_repr(v.as_double()); return;
    case Kind::kString: out += v.str(); return;
    default: append_repr(out, v); return;
  }
}

std::string to_str(const Value& v) {
  if (v.is_string()) return v.str();
  std::string out;
  append_str(out, v);
  return out;
}

void append_repr(std::string& out, const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined: out += "Undefined"; return;
    case Kind::kString: py::append_repr(out, v.str()); return;
    case Kind::kList:
    case Kind::kTuple:
    case Kind::kDict: append_container(out, v); return;
    case Kind::kNamespace:
      out += "<Namespace ";
      append_container(out, v);
      out += '>';
      return;
    case Kind::kGenerator: throw_error("printing a generator is not supported (Python prints its address)");
    case Kind::kCallable: append_callable_repr(out, v.callable()); return;
    case Kind::kLoop: append_loop_repr(out, v.loop()); return;
    default: append_str(out, v); return;
  }
}

namespace {

// Python compares int and float exactly.
int compare_numbers(const Value& a, const Value& b) {
  if (a.is_integral() && b.is_integral()) {
    int64_t x = a.as_int(), y = b.as_int();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (!a.is_integral() && !b.is_integral()) {
    double x = a.as_double(), y = b.as_double();
    if (std::isnan(x) || std::isnan(y)) return 2;  // unordered
    return x < y ? -1 : x > y ? 1 : 0;
  }
  bool flip = a.is_integral();
  double d = flip ? b.as_double() : a.as_double();
  int64_t i = flip ? a.as_int() : b.as_int();
  int r;
  if (std::isnan(d)) return 2;
  if (d >= 9223372036854775808.0) r = 1;
  else if (d < -9223372036854775808.0) r = -1;
  else {
    double t = std::trunc(d);
    auto ti = static_cast<int64_t>(t);
    if (ti != i) r = ti < i ? -1 : 1;
    else r = d > t ? 1 : d < t ? -1 : 0;
  }
  return flip ? -r : r;
}

[[noreturn]] void unorderable(const Value& a, const Value& b) {
  throw_error(cat("'<' not supported between instances of '", type_name(a), "' and '", type_name(b), "'"));
}

}  // namespace

bool equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return compare_numbers(a, b) == 0;
  if (a.kind() != b.kind() || a.is_range() != b.is_range()) return false;
  switch (a.kind()) {
    case Kind::kUndefined:
    case Kind::kNone: return true;
    case Kind::kString: return a.str() == b.str();
    case Kind::kList:
    case Kind::kTuple: {
      const ValueList &x = a.items(), &y = b.items();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i)
        if (!equal(x[i], y[i])) return false;
      return true;
    }
    case Kind::kDict: {
      const Dict &x = a.dict(), &y = b.dict();
      if (x.entries.size() != y.entries.size()) return false;
      for (const auto& [k, v] : x.entries) {
        const Value* other = y.find(k);
        if (!other || !equal(v, *other)) return false;
      }
      return true;
    }
    default: return a.identity() == b.identity();
  }
}

bool less(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return compare_numbers(a, b) == -1;
  if (a.kind() != b.kind() || a.is_range() || b.is_range()) unorderable(a, b);
  switch (a.kind()) {
    case Kind::kString: return a.str() < b.str();
    case Kind::kList:
    case Kind::kTuple: {
      const ValueList &x = a.items(), &y = b.items();
      for (size_t i = 0; i < x.size() && i < y.size(); ++i)
        if (!equal(x[i], y[i])) return less(x[i], y[i]);
      return x.size() < y.size();
    }
    default: unorderable(a, b);
  }
}

bool hashable(const Value& v) {
  switch (v.kind()) {
    case Kind::kList: return v.is_range();
    case Kind::kDict: return false;
    case Kind::kTuple:
      for (const Value& x : v.items())
        if (!hashable(x)) return false;
      return true;
    default: return true;
  }
}

void throw_undefined(const Value& v) {
  const std::string& hint = v.undefined_hint();
  throw_error(hint.empty() ? "undefined value" : hint);
}

namespace {

void append_json_float(std::string& out, double d) {
  if (std::isnan(d)) out += "NaN";
  else if (std::isinf(d)) out += d < 0 ? "-Infinity" : "Infinity";
  else out += py::float_repr(d);
}

std::string json_key(const Value& k) {
  switch (k.kind()) {
    case Kind::kString: return k.str();
    case Kind::kBool: return k.as_bool() ? "true" : "false";
    case Kind::kNone: return "null";
    case Kind::kInt: return std::to_string(k.as_int());
    case Kind::kFloat: {
      std::string s;
      append_json_float(s, k.as_double());
      return s;
    }
    default: throw_error(cat("keys must be str, int, float, bool or None, not ", type_name(k)));
  }
}

void append_json_at(std::string& out, const Value& v, const JsonOptions& o, int level) {
  auto newline = [&](int lvl) {
    out += '\n';
    for (int i = 0; i < lvl; ++i) out += o.indent;
    if (out.size() > o.max_bytes) throw_error(cat("tojson result longer than ", o.max_bytes, " bytes"));
  };
  switch (v.kind()) {
    case Kind::kNone: out += "null"; return;
    case Kind::kBool: out += v.as_bool() ? "true" : "false"; return;
    case Kind::kInt: out += std::to_string(v.as_int()); return;
    case Kind::kFloat: append_json_float(out, v.as_double()); return;
    case Kind::kString: py::append_json_string(out, v.str(), o.ensure_ascii); return;
    case Kind::kList:
    case Kind::kTuple: {
      if (v.is_range()) throw_error("Object of type range is not JSON serializable");
      const ValueList& items = v.items();
      if (items.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      if (o.has_indent) newline(level + 1);
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) {
          out += o.item_separator;
          if (o.has_indent) newline(level + 1);
        }
        append_json_at(out, items[i], o, level + 1);
      }
      if (o.has_indent) newline(level);
      out += ']';
      return;
    }
    case Kind::kDict: {
      const Dict& d = v.dict();
      if (d.entries.empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<Value, Value>*> order;
      for (const auto& e : d.entries) order.push_back(&e);
      if (o.sort_keys)
        std::stable_sort(order.begin(), order.end(), [](auto* x, auto* y) { return less(x->first, y->first); });
      out += '{';
      if (o.has_indent) newline(level + 1);
      bool first = true;
      for (const auto* e : order) {
        if (!first) {
          out += o.item_separator;
          if (o.has_indent) newline(level + 1);
        }
        first = false;
        py::append_json_string(out, json_key(e->first), o.ensure_ascii);
        out += o.key_separator;
        append_json_at(out, e->second, o, level + 1);
      }
      if (o.has_indent) newline(level);
      out += '}';
      return;
    }
    default: throw_error(cat("Object of type ", type_name(v), " is not JSON serializable"));
  }
}

}  // namespace

void append_json(std::string& out, const Value& v, const JsonOptions& options) { append_json_at(out, v, options, 0); }

ValueList iterate(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined: return {};
    case Kind::kList:
    case Kind::kTuple: return v.items();
    case Kind::kDict: {
      ValueList keys;
      keys.reserve(v.dict().entries.size());
      for (const auto& e : v.dict().entries) keys.push_back(e.first);
      return keys;
    }
    case Kind::kString: {
      ValueList chars;
      const std::string& s = v.str();
      for (size_t i = 0; i < s.size();) {
        size_t n = std::min(s.size() - i, static_cast<size_t>(1 + ((static_cast<unsigned char>(s[i]) >= 0xC0) +
                                                                  (static_cast<unsigned char>(s[i]) >= 0xE0) +
                                                                  (static_cast<unsigned char>(s[i]) >= 0xF0))));
        chars.push_back(Value::string(s.substr(i, n)));
        i += n;
      }
      return chars;
    }
    case Kind::kGenerator: {
      Generator& g = v.gen();
      ValueList rest(g.items.begin() + static_cast<std::ptrdiff_t>(g.next), g.items.end());
      g.next = g.items.size();
      return rest;
    }
    default: throw_error(cat("'", type_name(v), "' object is not iterable"));
  }
}

}  // namespace qs::jinja
