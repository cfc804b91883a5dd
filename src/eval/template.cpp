#include "eval/template.h"

#include <stdexcept>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "eval/text_ops.h"

namespace qs::eval {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Values

namespace {

std::string repr(const json& v);

std::string float_str(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  // Python repr: the shortest string that round-trips, with ".0" for whole numbers.
  char buf[32];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  std::string s = buf;
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::string repr(const json& v) {
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    const bool dq = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
    const char q = dq ? '"' : '\'';
    std::string out(1, q);
    for (char c : s) {
      if (c == '\\') out += "\\\\";
      else if (c == '\n') out += "\\n";
      else if (c == '\t') out += "\\t";
      else if (c == '\r') out += "\\r";
      else if (c == q) out += std::string("\\") + q;
      else out += c;
    }
    return out + q;
  }
  return python_str(v);
}

bool truthy(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return false;
    case json::value_t::boolean: return v.get<bool>();
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return v.get<int64_t>() != 0;
    case json::value_t::number_float: return v.get<double>() != 0.0;
    case json::value_t::string: return !v.get_ref<const std::string&>().empty();
    case json::value_t::array:
    case json::value_t::object: return !v.empty();
    default: return false;
  }
}

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "none";
    case json::value_t::boolean: return "bool";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "int";
    case json::value_t::number_float: return "float";
    case json::value_t::string: return "str";
    case json::value_t::array: return "list";
    case json::value_t::object: return "dict";
    default: return "value";
  }
}

bool is_int(const json& v) { return v.is_number_integer() || v.is_boolean(); }
int64_t as_int(const json& v) { return v.is_boolean() ? (v.get<bool>() ? 1 : 0) : v.get<int64_t>(); }

const std::string& as_str(const json& v, const char* what) {
  if (!v.is_string()) fail(what, " expects a string, got ", type_name(v), " ", quote(repr(v)));
  return v.get_ref<const std::string&>();
}

int64_t to_int(const json& v) {
  if (is_int(v)) return as_int(v);
  if (v.is_number_float()) return static_cast<int64_t>(std::trunc(v.get<double>()));
  if (v.is_string()) {
    const std::string s = py_strip(v.get_ref<const std::string&>());
    size_t pos = 0;
    try {
      int64_t r = std::stoll(s, &pos, 10);
      if (pos == s.size() && !s.empty()) return r;
    } catch (const std::exception&) {
    }
    fail("int: cannot convert ", quote(repr(v)), " to an integer");
  }
  fail("int: cannot convert ", type_name(v), " to an integer");
}

double to_float(const json& v) {
  if (is_int(v)) return static_cast<double>(as_int(v));
  if (v.is_number_float()) return v.get<double>();
  if (v.is_string()) {
    const std::string s = py_strip(v.get_ref<const std::string&>());
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size()) return d;
    fail("float: cannot convert ", quote(repr(v)), " to a number");
  }
  fail("float: cannot convert ", type_name(v), " to a number");
}

bool values_equal(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) return to_float(a) == to_float(b);
  return a == b;
}

// Python index normalisation: negative counts from the end; out of range is an error.
size_t norm_index(int64_t i, size_t n, const char* what) {
  const int64_t j = i < 0 ? i + static_cast<int64_t>(n) : i;
  if (j < 0 || j >= static_cast<int64_t>(n)) fail(what, " index ", i, " out of range (length ", n, ")");
  return static_cast<size_t>(j);
}

// Python slice [a:b:c] over n items: the list of picked positions.
std::vector<size_t> slice_positions(size_t n, const std::optional<int64_t>& a, const std::optional<int64_t>& b,
                                    const std::optional<int64_t>& c) {
  const int64_t step = c.value_or(1);
  require(step != 0, "slice step cannot be zero");
  const int64_t len = static_cast<int64_t>(n);
  auto adjust = [&](std::optional<int64_t> v, int64_t dflt, bool is_stop) {
    if (!v) return dflt;
    int64_t x = *v < 0 ? *v + len : *v;
    if (step > 0) return std::clamp<int64_t>(x, 0, len);
    (void)is_stop;
    return std::clamp<int64_t>(x, -1, len - 1);
  };
  std::vector<size_t> out;
  if (step > 0) {
    for (int64_t i = adjust(a, 0, false), e = adjust(b, len, true); i < e; i += step) out.push_back(static_cast<size_t>(i));
  } else {
    for (int64_t i = adjust(a, len - 1, false), e = adjust(b, -1, true); i > e; i += step)
      out.push_back(static_cast<size_t>(i));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Syntax tree

struct Node;
using NodePtr = std::shared_ptr<const Node>;

enum class Kind { Literal, Name, Attr, Index, Slice, Method, Filter, Unary, Binary, Ternary, List, Dict, Test };

struct Node {
  Kind kind;
  json literal;                      // Literal
  std::string name;                  // Name, Attr, Method, Filter, op for Unary/Binary, test name
  std::vector<NodePtr> kids;         // operands / arguments
  std::vector<std::string> kw;       // keyword names of trailing arguments (Filter/Method), "" for positional
  std::vector<bool> has_part;        // Slice: which of a, b, c are present
  bool negate = false;               // Test
};

NodePtr make(Kind k, std::string name = {}, std::vector<NodePtr> kids = {}) {
  auto n = std::make_shared<Node>();
  n->kind = k;
  n->name = std::move(name);
  n->kids = std::move(kids);
  return n;
}

// ---------------------------------------------------------------------------------------------
// Lexer + parser

struct Token {
  enum Type { End, Ident, Number, String, Op } type = End;
  std::string text;
  json value;
  size_t pos = 0;
};

class Parser {
 public:
  Parser(std::string_view src, const std::string& where, size_t base) : src_(src), where_(where), base_(base) {
    next();
  }

  NodePtr parse_all() {
    NodePtr e = expr();
    if (tok_.type != Token::End) error("unexpected ", quote(tok_.text));
    return e;
  }

 private:
  [[noreturn]] void error(const char* a, const std::string& b = {}) {
    fail(where_, ": template expression at offset ", base_ + tok_.pos, ": ", a, b);
  }

  void next() {
    size_t& i = i_;
    while (i < src_.size() && (src_[i] == ' ' || src_[i] == '\t' || src_[i] == '\n' || src_[i] == '\r')) ++i;
    tok_ = Token{};
    tok_.pos = i;
    if (i >= src_.size()) return;
    const char c = src_[i];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[j])) || src_[j] == '_')) ++j;
      tok_.type = Token::Ident;
      tok_.text = std::string(src_.substr(i, j - i));
      i = j;
      return;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t j = i;
      bool is_float = false;
      while (j < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[j])) || src_[j] == '.')) {
        if (src_[j] == '.') {
          if (is_float || j + 1 >= src_.size() || !std::isdigit(static_cast<unsigned char>(src_[j + 1]))) break;
          is_float = true;
        }
        ++j;
      }
      tok_.type = Token::Number;
      tok_.text = std::string(src_.substr(i, j - i));
      try {
        tok_.value = is_float ? json(std::stod(tok_.text)) : json(std::stoll(tok_.text));
      } catch (const std::out_of_range&) {
        error("number out of range: ", tok_.text.substr(0, 40));
      }
      i = j;
      return;
    }
    if (c == '\'' || c == '"') {
      std::string s;
      size_t j = i + 1;
      while (true) {
        if (j >= src_.size()) error("unterminated string literal");
        const char d = src_[j];
        if (d == c) break;
        if (d == '\\' && j + 1 < src_.size()) {
          const char e = src_[++j];
          switch (e) {
            case 'n': s += '\n'; break;
            case 't': s += '\t'; break;
            case 'r': s += '\r'; break;
            case '\\': s += '\\'; break;
            case '\'': s += '\''; break;
            case '"': s += '"'; break;
            default: s += '\\'; s += e;  // regex escapes like \s stay as written
          }
          ++j;
          continue;
        }
        s += d;
        ++j;
      }
      tok_.type = Token::String;
      tok_.value = s;
      tok_.text = std::string(src_.substr(i, j + 1 - i));
      i = j + 1;
      return;
    }
    static const char* two[] = {"==", "!=", "<=", ">=", "//"};
    for (const char* op : two)
      if (src_.substr(i, 2) == op) {
        tok_.type = Token::Op;
        tok_.text = op;
        i += 2;
        return;
      }
    if (std::string_view("+-*/%~|.,:()[]{}<>=").find(c) != std::string_view::npos) {
      tok_.type = Token::Op;
      tok_.text = std::string(1, c);
      ++i;
      return;
    }
    error("unexpected character ", quote(std::string(1, c)));
  }

  bool is_op(const char* op) const { return tok_.type == Token::Op && tok_.text == op; }
  bool is_kw(const char* kw) const { return tok_.type == Token::Ident && tok_.text == kw; }
  void expect(const char* op) {
    if (!is_op(op)) error("expected ", quote(op) + (tok_.type == Token::End ? " at the end" : ", got " + quote(tok_.text)));
    next();
  }

  NodePtr expr() {
    NodePtr value = or_expr();
    if (is_kw("if")) {
      next();
      NodePtr cond = or_expr();
      NodePtr other = make(Kind::Literal);
      if (is_kw("else")) {
        next();
        other = expr();
      }
      return make(Kind::Ternary, "", {cond, value, other});
    }
    return value;
  }
  NodePtr or_expr() {
    NodePtr l = and_expr();
    while (is_kw("or")) {
      next();
      l = make(Kind::Binary, "or", {l, and_expr()});
    }
    return l;
  }
  NodePtr and_expr() {
    NodePtr l = not_expr();
    while (is_kw("and")) {
      next();
      l = make(Kind::Binary, "and", {l, not_expr()});
    }
    return l;
  }
  NodePtr not_expr() {
    if (is_kw("not")) {
      next();
      return make(Kind::Unary, "not", {not_expr()});
    }
    return comparison();
  }
  NodePtr comparison() {
    NodePtr l = concat();
    while (true) {
      for (const char* op : {"==", "!=", "<=", ">=", "<", ">"})
        if (is_op(op)) {
          next();
          l = make(Kind::Binary, op, {l, concat()});
          goto again;
        }
      if (is_kw("in")) {
        next();
        l = make(Kind::Binary, "in", {l, concat()});
        continue;
      }
      if (is_kw("not")) {
        next();
        if (!is_kw("in")) error("expected 'in' after 'not'");
        next();
        l = make(Kind::Binary, "not in", {l, concat()});
        continue;
      }
      if (is_kw("is")) {
        next();
        auto t = make(Kind::Test);
        auto* tn = const_cast<Node*>(t.get());
        if (is_kw("not")) {
          tn->negate = true;
          next();
        }
        if (tok_.type != Token::Ident) error("expected a test name after 'is'");
        tn->name = tok_.text;
        next();
        tn->kids = {l};
        l = t;
        continue;
      }
      return l;
    again:;
    }
  }
  NodePtr concat() {
    NodePtr l = additive();
    while (is_op("~")) {
      next();
      l = make(Kind::Binary, "~", {l, additive()});
    }
    return l;
  }
  NodePtr additive() {
    NodePtr l = multiplicative();
    while (is_op("+") || is_op("-")) {
      std::string op = tok_.text;
      next();
      l = make(Kind::Binary, op, {l, multiplicative()});
    }
    return l;
  }
  NodePtr multiplicative() {
    NodePtr l = unary();
    while (is_op("*") || is_op("//") || is_op("%") || is_op("/")) {
      std::string op = tok_.text;
      next();
      l = make(Kind::Binary, op, {l, unary()});
    }
    return l;
  }
  NodePtr unary() {
    if (is_op("-")) {
      next();
      return make(Kind::Unary, "-", {unary()});
    }
    return filtered();
  }
  // Arguments of a call: positional and keyword (name=value).
  void arguments(Node& n) {
    expect("(");
    while (!is_op(")")) {
      std::string kw;
      if (tok_.type == Token::Ident) {
        // Look ahead for "name=" without consuming on failure.
        const size_t save_i = i_;
        const Token save = tok_;
        next();
        if (is_op("=")) {
          kw = save.text;
          next();
        } else {
          i_ = save_i;
          tok_ = save;
        }
      }
      n.kids.push_back(expr());
      n.kw.push_back(kw);
      if (!is_op(")")) expect(",");
    }
    next();
  }
  NodePtr filtered() {
    NodePtr l = postfix();
    while (is_op("|")) {
      next();
      if (tok_.type != Token::Ident) error("expected a filter name after '|'");
      auto f = std::make_shared<Node>();
      f->kind = Kind::Filter;
      f->name = tok_.text;
      f->kids.push_back(l);
      f->kw.push_back("");
      next();
      if (is_op("(")) arguments(*f);
      l = f;
    }
    return l;
  }
  NodePtr postfix() {
    NodePtr l = primary();
    while (true) {
      if (is_op(".")) {
        next();
        if (tok_.type != Token::Ident) error("expected a name after '.'");
        std::string name = tok_.text;
        next();
        if (is_op("(")) {
          auto m = std::make_shared<Node>();
          m->kind = Kind::Method;
          m->name = name;
          m->kids.push_back(l);
          m->kw.push_back("");
          arguments(*m);
          l = m;
        } else {
          l = make(Kind::Attr, name, {l});
        }
      } else if (is_op("[")) {
        next();
        NodePtr parts[3];
        bool present[3] = {false, false, false};
        bool is_slice = false;
        for (int k = 0; k < 3; ++k) {
          if (!is_op(":") && !is_op("]")) {
            parts[k] = expr();
            present[k] = true;
          }
          if (is_op(":") && k < 2) {
            is_slice = true;
            next();
            continue;
          }
          break;
        }
        expect("]");
        if (!is_slice) {
          if (!present[0]) error("empty index");
          l = make(Kind::Index, "", {l, parts[0]});
        } else {
          auto s = std::make_shared<Node>();
          s->kind = Kind::Slice;
          s->kids = {l};
          for (int k = 0; k < 3; ++k) {
            s->has_part.push_back(present[k]);
            if (present[k]) s->kids.push_back(parts[k]);
          }
          l = s;
        }
      } else {
        return l;
      }
    }
  }
  NodePtr primary() {
    if (tok_.type == Token::Number || tok_.type == Token::String) {
      auto n = make(Kind::Literal);
      const_cast<Node*>(n.get())->literal = tok_.value;
      next();
      return n;
    }
    if (tok_.type == Token::Ident) {
      const std::string id = tok_.text;
      next();
      auto lit = [&](json v) {
        auto n = make(Kind::Literal);
        const_cast<Node*>(n.get())->literal = std::move(v);
        return n;
      };
      if (id == "true" || id == "True") return lit(true);
      if (id == "false" || id == "False") return lit(false);
      if (id == "none" || id == "None") return lit(nullptr);
      return make(Kind::Name, id);
    }
    if (is_op("(")) {
      next();
      NodePtr e = expr();
      expect(")");
      return e;
    }
    if (is_op("[")) {
      next();
      std::vector<NodePtr> items;
      while (!is_op("]")) {
        items.push_back(expr());
        if (!is_op("]")) expect(",");
      }
      next();
      return make(Kind::List, "", std::move(items));
    }
    if (is_op("{")) {
      next();
      std::vector<NodePtr> items;
      while (!is_op("}")) {
        items.push_back(expr());
        expect(":");
        items.push_back(expr());
        if (!is_op("}")) expect(",");
      }
      next();
      return make(Kind::Dict, "", std::move(items));
    }
    if (tok_.type == Token::End) error("expression ends too early");
    error("unexpected ", quote(tok_.text));
  }

  std::string_view src_;
  const std::string& where_;
  size_t base_;
  size_t i_ = 0;
  Token tok_;
};

// ---------------------------------------------------------------------------------------------
// Evaluation

json eval_node(const Node& n, const json& doc);

std::shared_ptr<const PyRegex> cached_regex(const std::string& pattern) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const PyRegex>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(pattern);
  if (it != cache.end()) return it->second;
  auto re = PyRegex::compile(pattern, "template");
  cache.emplace(pattern, re);
  return re;
}

json apply_filter(const std::string& name, const json& v, const std::vector<json>& args,
                  const std::vector<std::string>& kw);

json index_value(const json& v, const json& idx) {
  if (v.is_array()) {
    if (!is_int(idx)) fail("list indices must be integers, got ", type_name(idx));
    return v[norm_index(as_int(idx), v.size(), "list")];
  }
  if (v.is_string()) {
    if (!is_int(idx)) fail("string indices must be integers, got ", type_name(idx));
    std::u32string u = to_u32(v.get_ref<const std::string&>());
    char32_t c = u[norm_index(as_int(idx), u.size(), "string")];
    return to_utf8(std::u32string_view(&c, 1));
  }
  if (v.is_object()) {
    const std::string key = idx.is_string() ? idx.get<std::string>() : python_str(idx);
    auto it = v.find(key);
    if (it == v.end()) fail("key ", quote(key), " is undefined");
    return *it;
  }
  fail("cannot index a ", type_name(v));
}

json call_method(const std::string& m, const json& self, const std::vector<json>& a) {
  auto arg_str = [&](size_t i) -> std::optional<std::string_view> {
    if (i >= a.size() || a[i].is_null()) return std::nullopt;
    return as_str(a[i], m.c_str());
  };
  if (self.is_string()) {
    const std::string& s = self.get_ref<const std::string&>();
    if (m == "strip") return py_strip(s, arg_str(0));
    if (m == "lstrip") return py_lstrip(s, arg_str(0));
    if (m == "rstrip") return py_rstrip(s, arg_str(0));
    if (m == "lower") return py_lower(s);
    if (m == "upper") return py_upper(s);
    if (m == "capitalize") return py_capitalize(s);
    if (m == "title") return py_title(s);
    if (m == "split") return py_split(s, arg_str(0), a.size() > 1 ? static_cast<int>(to_int(a[1])) : -1);
    if (m == "replace") {
      require(a.size() == 2, "replace() takes 2 arguments");
      return py_replace(s, as_str(a[0], "replace"), as_str(a[1], "replace"));
    }
    if (m == "startswith") return s.rfind(as_str(a.at(0), "startswith"), 0) == 0;
    if (m == "endswith") {
      const std::string& t = as_str(a.at(0), "endswith");
      return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
    }
    if (m == "find" || m == "index") {
      const size_t at = s.find(as_str(a.at(0), m.c_str()));
      if (at == std::string::npos) {
        if (m == "index") fail("substring ", quote(a[0].get<std::string>()), " not found");
        return -1;
      }
      return static_cast<int64_t>(code_point_count(std::string_view(s).substr(0, at)));
    }
    if (m == "join") {
      const json& items = a.at(0);
      require(items.is_array(), "join() expects a list");
      std::string out;
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += s;
        out += as_str(items[i], "join");
      }
      return out;
    }
  }
  if (self.is_array()) {
    if (m == "index") {
      for (size_t i = 0; i < self.size(); ++i)
        if (values_equal(self[i], a.at(0))) return static_cast<int64_t>(i);
      fail(quote(repr(a.at(0))), " is not in list ", quote(repr(self)));
    }
    if (m == "count") {
      int64_t n = 0;
      for (const auto& x : self) n += values_equal(x, a.at(0));
      return n;
    }
  }
  if (self.is_object() && m == "get") {
    auto it = self.find(as_str(a.at(0), "get"));
    return it != self.end() ? *it : (a.size() > 1 ? a[1] : json(nullptr));
  }
  fail(type_name(self), " has no method ", quote(m));
}

json binary(const std::string& op, const json& l, const json& r) {
  if (op == "~") return python_str(l) + python_str(r);
  if (op == "==") return values_equal(l, r);
  if (op == "!=") return !values_equal(l, r);
  if (op == "in" || op == "not in") {
    bool found = false;
    if (r.is_string()) found = r.get_ref<const std::string&>().find(as_str(l, "in")) != std::string::npos;
    else if (r.is_array()) {
      for (const auto& x : r) found = found || values_equal(x, l);
    } else if (r.is_object()) found = r.contains(as_str(l, "in"));
    else fail("'in' needs a string, list or dict on the right, got ", type_name(r));
    return op == "in" ? found : !found;
  }
  if (op == "+") {
    if (l.is_string() && r.is_string()) return l.get<std::string>() + r.get<std::string>();
    if (l.is_array() && r.is_array()) {
      json out = l;
      for (const auto& x : r) out.push_back(x);
      return out;
    }
  }
  if (op == "*" && l.is_string() && is_int(r)) {
    std::string out;
    for (int64_t i = 0; i < as_int(r); ++i) out += l.get<std::string>();
    return out;
  }
  if (op == "<" || op == ">" || op == "<=" || op == ">=") {
    int c;
    if (l.is_string() && r.is_string()) c = l.get<std::string>().compare(r.get<std::string>());
    else {
      double a = to_float(l), b = to_float(r);
      c = a < b ? -1 : a > b ? 1 : 0;
    }
    return op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0;
  }
  if (!l.is_number() || !r.is_number() || l.is_boolean() || r.is_boolean())
    fail("unsupported operand types for ", op, ": ", type_name(l), " and ", type_name(r));
  if (l.is_number_integer() && r.is_number_integer() && op != "/") {
    const int64_t a = l.get<int64_t>(), b = r.get<int64_t>();
    if (op == "+") return a + b;
    if (op == "-") return a - b;
    if (op == "*") return a * b;
    require(b != 0, "division by zero");
    const int64_t q = a / b - ((a % b != 0) && ((a < 0) != (b < 0)));  // Python floors
    if (op == "//") return q;
    return a - q * b;
  }
  const double a = to_float(l), b = to_float(r);
  if (op == "+") return a + b;
  if (op == "-") return a - b;
  if (op == "*") return a * b;
  require(b != 0, "division by zero");
  if (op == "/") return a / b;
  if (op == "//") return std::floor(a / b);
  return a - std::floor(a / b) * b;
}

json eval_node(const Node& n, const json& doc) {
  switch (n.kind) {
    case Kind::Literal: return n.literal;
    case Kind::Name: {
      auto it = doc.is_object() ? doc.find(n.name) : doc.end();
      if (!doc.is_object() || it == doc.end()) fail("field ", quote(n.name), " is undefined");
      return *it;
    }
    case Kind::Attr: {
      json v = eval_node(*n.kids[0], doc);
      if (v.is_object()) {
        auto it = v.find(n.name);
        if (it == v.end()) fail("field ", quote(n.name), " is undefined");
        return *it;
      }
      fail(type_name(v), " has no attribute ", quote(n.name));
    }
    case Kind::Index: return index_value(eval_node(*n.kids[0], doc), eval_node(*n.kids[1], doc));
    case Kind::Slice: {
      json v = eval_node(*n.kids[0], doc);
      std::optional<int64_t> part[3];
      size_t k = 1;
      for (int p = 0; p < 3; ++p)
        if (n.has_part[p]) {
          json x = eval_node(*n.kids[k++], doc);
          if (!x.is_null()) part[p] = to_int(x);
        }
      if (v.is_array()) {
        json out = json::array();
        for (size_t i : slice_positions(v.size(), part[0], part[1], part[2])) out.push_back(v[i]);
        return out;
      }
      if (v.is_string()) {
        std::u32string u = to_u32(v.get_ref<const std::string&>()), out;
        for (size_t i : slice_positions(u.size(), part[0], part[1], part[2])) out.push_back(u[i]);
        return to_utf8(out);
      }
      fail("cannot slice a ", type_name(v));
    }
    case Kind::Method: {
      json self = eval_node(*n.kids[0], doc);
      std::vector<json> args;
      for (size_t i = 1; i < n.kids.size(); ++i) args.push_back(eval_node(*n.kids[i], doc));
      return call_method(n.name, self, args);
    }
    case Kind::Filter: {
      json v = eval_node(*n.kids[0], doc);
      std::vector<json> args;
      std::vector<std::string> kw;
      for (size_t i = 1; i < n.kids.size(); ++i) {
        args.push_back(eval_node(*n.kids[i], doc));
        kw.push_back(n.kw[i]);
      }
      return apply_filter(n.name, v, args, kw);
    }
    case Kind::Unary: {
      json v = eval_node(*n.kids[0], doc);
      if (n.name == "not") return !truthy(v);
      if (v.is_number_integer()) return -v.get<int64_t>();
      return -to_float(v);
    }
    case Kind::Binary: {
      if (n.name == "and") {
        json l = eval_node(*n.kids[0], doc);
        return truthy(l) ? eval_node(*n.kids[1], doc) : l;
      }
      if (n.name == "or") {
        json l = eval_node(*n.kids[0], doc);
        return truthy(l) ? l : eval_node(*n.kids[1], doc);
      }
      return binary(n.name, eval_node(*n.kids[0], doc), eval_node(*n.kids[1], doc));
    }
    case Kind::Ternary:
      return truthy(eval_node(*n.kids[0], doc)) ? eval_node(*n.kids[1], doc) : eval_node(*n.kids[2], doc);
    case Kind::List: {
      json out = json::array();
      for (const auto& k : n.kids) out.push_back(eval_node(*k, doc));
      return out;
    }
    case Kind::Dict: {
      json out = json::object();
      for (size_t i = 0; i + 1 < n.kids.size(); i += 2) out[python_str(eval_node(*n.kids[i], doc))] = eval_node(*n.kids[i + 1], doc);
      return out;
    }
    case Kind::Test: {
      bool result;
      if (n.name == "defined") {
        try {
          eval_node(*n.kids[0], doc);
          result = true;
        } catch (const Error&) {
          result = false;
        }
      } else {
        json v = eval_node(*n.kids[0], doc);
        if (n.name == "none") result = v.is_null();
        else if (n.name == "string") result = v.is_string();
        else if (n.name == "number") result = v.is_number();
        else fail("unknown test ", quote(n.name));
      }
      return n.negate ? !result : result;
    }
  }
  return nullptr;
}

json apply_filter(const std::string& name, const json& v, const std::vector<json>& a, const std::vector<std::string>& kw) {
  auto str_arg = [&](size_t i, const char* what) -> const std::string& {
    if (i >= a.size()) fail(name, ": missing argument ", what);
    return as_str(a[i], name.c_str());
  };
  if (name == "int") return to_int(v);
  if (name == "float") return to_float(v);
  if (name == "string") return python_str(v);
  if (name == "trim") return py_strip(as_str(v, "trim"));
  if (name == "lower") return py_lower(as_str(v, "lower"));
  if (name == "upper") return py_upper(as_str(v, "upper"));
  if (name == "capitalize") return py_capitalize(as_str(v, "capitalize"));
  if (name == "title") return py_title(as_str(v, "title"));
  if (name == "length" || name == "count") {
    if (v.is_string()) return static_cast<int64_t>(code_point_count(v.get_ref<const std::string&>()));
    if (v.is_array() || v.is_object()) return static_cast<int64_t>(v.size());
    fail("length: expects a string, list or dict, got ", type_name(v));
  }
  if (name == "list") {
    if (v.is_array()) return v;
    if (v.is_string()) {
      json out = json::array();
      for (char32_t c : to_u32(v.get_ref<const std::string&>())) out.push_back(to_utf8(std::u32string_view(&c, 1)));
      return out;
    }
    fail("list: expects a list or string, got ", type_name(v));
  }
  if (name == "first" || name == "last") {
    if (!v.is_array() || v.empty()) fail(name, ": expects a non-empty list");
    return name == "first" ? v.front() : v.back();
  }
  if (name == "join") {
    if (!v.is_array()) fail("join: expects a list, got ", type_name(v));
    const std::string sep = a.empty() ? std::string() : str_arg(0, "separator");
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) {
      if (i) out += sep;
      out += python_str(v[i]);
    }
    return out;
  }
  if (name == "replace") return py_replace(as_str(v, "replace"), str_arg(0, "old"), str_arg(1, "new"));
  if (name == "default") return v.is_null() ? (a.empty() ? json("") : a[0]) : v;
  if (name == "map") {
    if (!v.is_array()) fail("map: expects a list, got ", type_name(v));
    json out = json::array();
    if (!kw.empty() && kw[0] == "attribute") {
      const std::string& attr = str_arg(0, "attribute");
      for (const auto& item : v) out.push_back(index_value(item, attr));
      return out;
    }
    const std::string& filter = str_arg(0, "filter name");
    std::vector<json> rest(a.begin() + 1, a.end());
    std::vector<std::string> rest_kw(kw.begin() + 1, kw.end());
    for (const auto& item : v) out.push_back(apply_filter(filter, item, rest, rest_kw));
    return out;
  }
  if (name == "regex_replace") return cached_regex(str_arg(0, "pattern"))->sub(as_str(v, name.c_str()), str_arg(1, "replacement"));
  if (name == "regex_group") {
    const std::string& text = as_str(v, name.c_str());
    auto re = cached_regex(str_arg(0, "pattern"));
    const int64_t g = a.size() > 1 ? to_int(a[1]) : 1;
    require(g >= 0 && g <= re->group_count(), "regex_group: the pattern has no group ", g);
    auto m = re->search(text);
    if (!m) fail("regex_group: ", quote(a[0].get<std::string>()), " does not match ", quote(text));
    if (g == 0) return text.substr(m->span.first, m->span.second - m->span.first);
    if (!m->groups[g]) return "";
    return text.substr(m->groups[g]->first, m->groups[g]->second - m->groups[g]->first);
  }
  if (name == "hellaswag_preprocess") return hellaswag_preprocess(as_str(v, name.c_str()));
  if (name == "wikitext_detokenize") return wikitext_detokenize(as_str(v, name.c_str()));
  if (name == "capitalize_last_sentence") return capitalize_last_sentence(as_str(v, name.c_str()));
  fail("unknown filter ", quote(name));
}

}  // namespace

std::string python_str(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "None";
    case json::value_t::boolean: return v.get<bool>() ? "True" : "False";
    case json::value_t::number_integer: return std::to_string(v.get<int64_t>());
    case json::value_t::number_unsigned: return std::to_string(v.get<uint64_t>());
    case json::value_t::number_float: return float_str(v.get<double>());
    case json::value_t::string: return v.get<std::string>();
    case json::value_t::array: {
      std::string out = "[";
      for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + repr(v[i]);
      return out + "]";
    }
    case json::value_t::object: {
      std::string out = "{";
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        out += (first ? "" : ", ") + repr(it.key()) + ": " + repr(it.value());
        first = false;
      }
      return out + "}";
    }
    default: return "";
  }
}

// ---------------------------------------------------------------------------------------------
// Template

struct Template::Impl {
  std::string source;
  // Alternating literal text and expressions; a part is either text (expr == nullptr) or an
  // expression.
  struct Part {
    std::string text;
    NodePtr expr;
  };
  std::vector<Part> parts;
  bool single_expression = false;
  bool field_name = false;  // no {{ }}: the text may name a field
};

Template::Template() : impl_(std::make_shared<Impl>()) {}

Template Template::compile(std::string_view text, const std::string& where) {
  auto impl = std::make_shared<Impl>();
  impl->source = std::string(text);
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t open = text.find("{{", pos);
    if (open == std::string_view::npos) {
      impl->parts.push_back({std::string(text.substr(pos)), nullptr});
      break;
    }
    if (open > pos) impl->parts.push_back({std::string(text.substr(pos, open - pos)), nullptr});
    const size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos) fail(where, ": template ", quote(text), ": '{{' at offset ", open, " is never closed");
    Parser p(text.substr(open + 2, close - open - 2), where, open + 2);
    impl->parts.push_back({{}, p.parse_all()});
    pos = close + 2;
  }
  impl->single_expression = impl->parts.size() == 1 && impl->parts[0].expr != nullptr;
  impl->field_name = text.find("{{") == std::string_view::npos && !text.empty();
  Template t;
  t.impl_ = impl;
  return t;
}

json Template::evaluate(const json& doc) const {
  if (impl_->single_expression) return eval_node(*impl_->parts[0].expr, doc);
  if (impl_->field_name && doc.is_object()) {
    auto it = doc.find(impl_->source);
    if (it != doc.end()) return *it;
  }
  return render(doc);
}

std::string Template::render(const json& doc) const {
  if (impl_->field_name && doc.is_object()) {
    auto it = doc.find(impl_->source);
    if (it != doc.end()) return python_str(*it);
  }
  std::string out;
  for (const auto& p : impl_->parts) out += p.expr ? python_str(eval_node(*p.expr, doc)) : p.text;
  return out;
}

const std::string& Template::source() const { return impl_->source; }
bool Template::empty() const { return impl_->parts.empty(); }

}  // namespace qs::eval
