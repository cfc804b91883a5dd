#include "tokenizer/jinja/interpreter.h"

#include <cmath>

#include "core/error.h"
#include "tokenizer/jinja/pystr.h"

namespace qs::jinja {

namespace {

// The object part of Jinja2's undefined messages ("'dict object' has no attribute 'x'").
std::string object_repr(const Value& v) { return v.is_none() ? "None" : cat(type_name(v), " object"); }

Value no_attribute(const Value& obj, const std::string& name) {
  return Value::undefined(cat("'", object_repr(obj), "' has no attribute '", name, "'"));
}

Value no_element(const Value& obj, const Value& key) {
  std::string k;
  append_repr(k, key);
  return Value::undefined(cat(object_repr(obj), " has no element ", k));
}

[[noreturn]] void overflow() { throw_error("integer overflow (templates are evaluated with 64-bit integers)"); }

// Guards a __builtin_*_overflow result: checked(__builtin_add_overflow(x, y, &r)) then use r.
void checked(bool overflowed) {
  if (overflowed) overflow();
}

const char* op_symbol(BinOp op) {
  switch (op) {
    case BinOp::kAdd: return "+";
    case BinOp::kSub: return "-";
    case BinOp::kMul: return "*";
    case BinOp::kDiv: return "/";
    case BinOp::kFloorDiv: return "//";
    case BinOp::kMod: return "%";
    case BinOp::kPow: return "** or pow()";
  }
  return "?";
}

// Python's float // and %.
double float_mod(double a, double b) {
  double mod = std::fmod(a, b);
  if (mod != 0) {
    if ((b < 0) != (mod < 0)) mod += b;
  } else {
    mod = std::copysign(0.0, b);
  }
  return mod;
}

double float_floordiv(double a, double b) {
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0 && (b < 0) != (mod < 0)) div -= 1.0;
  if (div == 0) return std::copysign(0.0, a / b);
  double floordiv = std::floor(div);
  if (div - floordiv > 0.5) floordiv += 1.0;
  return floordiv;
}

Value arithmetic(BinOp op, const Value& a, const Value& b) {
  if (a.is_integral() && b.is_integral()) {
    int64_t x = a.as_int(), y = b.as_int(), r = 0;
    switch (op) {
      case BinOp::kAdd: checked(__builtin_add_overflow(x, y, &r)); return Value::integer(r);
      case BinOp::kSub: checked(__builtin_sub_overflow(x, y, &r)); return Value::integer(r);
      case BinOp::kMul: checked(__builtin_mul_overflow(x, y, &r)); return Value::integer(r);
      case BinOp::kDiv:
        if (y == 0) throw_error("division by zero");
        return Value::floating(static_cast<double>(x) / static_cast<double>(y));
      case BinOp::kFloorDiv:
      case BinOp::kMod: {
        if (y == 0) throw_error("integer division or modulo by zero");
        if (x == INT64_MIN && y == -1) {
          if (op == BinOp::kMod) return Value::integer(0);
          overflow();
        }
        int64_t q = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) {
          --q;
          m += y;
        }
        return Value::integer(op == BinOp::kMod ? m : q);
      }
      case BinOp::kPow: {
        if (y < 0) {
          if (x == 0) throw_error("0.0 cannot be raised to a negative power");
          return Value::floating(std::pow(static_cast<double>(x), static_cast<double>(y)));
        }
        int64_t result = 1, base = x;
        while (y > 0) {
          if (y & 1) checked(__builtin_mul_overflow(result, base, &result));
          y >>= 1;
          if (y > 0) checked(__builtin_mul_overflow(base, base, &base));
        }
        return Value::integer(result);
      }
    }
  }
  double x = a.as_double(), y = b.as_double();
  switch (op) {
    case BinOp::kAdd: return Value::floating(x + y);
    case BinOp::kSub: return Value::floating(x - y);
    case BinOp::kMul: return Value::floating(x * y);
    case BinOp::kDiv:
      if (y == 0) throw_error("float division by zero");
      return Value::floating(x / y);
    case BinOp::kFloorDiv:
      if (y == 0) throw_error("float floor division by zero");
      return Value::floating(float_floordiv(x, y));
    case BinOp::kMod:
      if (y == 0) throw_error("float modulo");
      return Value::floating(float_mod(x, y));
    case BinOp::kPow:
      if (x == 0 && y < 0) throw_error("0.0 cannot be raised to a negative power");
      if (x < 0 && std::isfinite(y) && y != std::floor(y))
        throw_error("a negative number raised to a fractional power is complex (not supported)");
      return Value::floating(std::pow(x, y));
  }
  return Value::none();
}

Value repeat(const Value& seq, int64_t times) {
  if (times <= 0) return seq.is_string() ? Value::string("") : seq.is(Kind::kList) ? Value::list({}) : Value::tuple({});
  size_t unit = seq.is_string() ? seq.str().size() : seq.items().size();
  if (unit != 0 && static_cast<uint64_t>(times) > Interpreter::kMaxStringBytes / unit)
    throw_error(cat("repetition result larger than ", Interpreter::kMaxStringBytes, " elements"));
  if (seq.is_string()) {
    std::string out;
    out.reserve(unit * static_cast<size_t>(times));
    for (int64_t i = 0; i < times; ++i) out += seq.str();
    return Value::string(std::move(out));
  }
  ValueList out;
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), seq.items().begin(), seq.items().end());
  return seq.is(Kind::kList) ? Value::list(std::move(out)) : Value::tuple(std::move(out));
}

// Python's slice.indices() and the selected positions.
std::vector<size_t> slice_positions(int64_t length, const Value& start, const Value& stop, const Value& step) {
  int64_t st = step.is_none() ? 1 : step.as_int();
  if (st == 0) throw_error("slice step cannot be zero");
  auto adjust = [&](const Value& v, int64_t dflt) {
    if (v.is_none()) return dflt;
    int64_t x = v.as_int();
    if (x < 0) {
      x += length;
      if (x < 0) x = st < 0 ? -1 : 0;
    } else if (x >= length) {
      x = st < 0 ? length - 1 : length;
    }
    return x;
  };
  int64_t b = adjust(start, st < 0 ? length - 1 : 0);
  int64_t e = adjust(stop, st < 0 ? -1 : length);
  std::vector<size_t> out;
  if (st > 0)
    for (int64_t i = b; i < e; i += st) out.push_back(static_cast<size_t>(i));
  else
    for (int64_t i = b; i > e; i += st) out.push_back(static_cast<size_t>(i));
  return out;
}

}  // namespace

void append_callable_repr(std::string& out, const Callable& c) {
  if (c.type != Callable::Type::kMacro)
    throw_error(cat("printing the function '", c.name, "' is not supported (Python prints its address)"));
  out += "<Macro ";
  py::append_repr(out, c.name);
  out += '>';
}

void append_loop_repr(std::string& out, const Loop& l) {
  out += cat("<LoopContext ", l.index0 + 1, "/", l.items->size(), ">");
}

void Interpreter::render(const std::vector<std::pair<std::string, Value>>& context, std::string& out) {
  static const std::pair<const char*, Global> kGlobals[] = {
      {"namespace", Global::kNamespace},         {"range", Global::kRange},
      {"dict", Global::kDict},                   {"raise_exception", Global::kRaiseException},
      {"strftime_now", Global::kStrftimeNow},    {"lipsum", Global::kUnsupported},
      {"cycler", Global::kUnsupported},          {"joiner", Global::kUnsupported},
  };
  auto root = std::make_shared<Scope>(nullptr);
  for (const auto& [name, g] : kGlobals) {
    int sym = program_.find(name);
    if (sym < 0) continue;
    auto c = std::make_shared<Callable>();
    c->type = Callable::Type::kGlobal;
    c->global = g;
    c->name = name;
    root->set(sym, Value::callable(std::move(c)));
  }
  for (const auto& [name, v] : context) {
    int sym = program_.find(name);
    if (sym >= 0) root->set(sym, v);
  }
  mark_undefined(*root, program_.undefined_on_entry);
  call_depth_ = 0;
  iterations_ = 0;
  struct CycleBreaker {
    Interpreter& self;
    ~CycleBreaker() {
      for (auto& scope : self.closures_) {
        scope->vars.clear();
        scope->parent.reset();
      }
      for (auto& ns : self.namespaces_) ns->attrs.entries.clear();
      self.closures_.clear();
      self.namespaces_.clear();
    }
  } breaker{*this};
  closures_.push_back(root);
  exec_body(program_.body, *root, out);
}

void Interpreter::mark_undefined(Scope& scope, const std::vector<int>& undefined) {
  for (int sym : undefined)
    scope.set(sym, Value::undefined(cat("'", program_.symbol_names[static_cast<size_t>(sym)], "' is undefined")));
}

std::shared_ptr<Scope> Interpreter::child_scope(Scope& parent, const std::vector<int>& undefined) {
  auto child = std::make_shared<Scope>(parent.shared_from_this());
  mark_undefined(*child, undefined);
  return child;
}

std::string Interpreter::replace(const std::string& s, const std::string& old, const std::string& with,
                                 int64_t count) {
  uint64_t n = static_cast<uint64_t>(py::count(s, old));
  if (count >= 0) n = std::min(n, static_cast<uint64_t>(count));
  if (with.size() > old.size() && n > (kMaxStringBytes - std::min(s.size(), kMaxStringBytes)) / (with.size() - old.size()))
    throw_error(cat("str.replace() result longer than ", kMaxStringBytes, " bytes"));
  return py::replace(s, old, with, count);
}

void Interpreter::count_iterations(uint64_t n) {
  iterations_ += n;
  if (iterations_ > kMaxLoopIterations)
    throw_error(cat("the template ran more than ", kMaxLoopIterations, " loop iterations"));
}

// --- Statements ---

Interpreter::Flow Interpreter::exec_body(const Body& body, Scope& scope, std::string& out) {
  for (const StmtPtr& s : body) {
    Flow f = exec(*s, scope, out);
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::exec(const Stmt& s, Scope& scope, std::string& out) {
  try {
    Flow f = exec_node(s, scope, out);
    if (out.size() > Interpreter::kMaxOutputBytes) throw_error(cat("the output grew beyond ", Interpreter::kMaxOutputBytes, " bytes"));
    return f;
  } catch (TemplateError& e) {
    if (e.pos == kNoPos) e.pos = s.pos;
    throw;
  }
}

std::string Interpreter::render_child(const Body& body, const std::vector<int>& undefined, Scope& scope) {
  auto child = child_scope(scope, undefined);
  std::string buf;
  exec_body(body, *child, buf);
  return buf;
}

Interpreter::Flow Interpreter::exec_node(const Stmt& s, Scope& scope, std::string& out) {
  switch (s.kind) {
    case StmtKind::kData: out += s.text; return Flow::kNormal;
    case StmtKind::kOutput:
      for (const ExprPtr& e : s.exprs) append_str(out, eval(*e, scope));
      return Flow::kNormal;
    case StmtKind::kIf:
      for (size_t i = 0; i < s.exprs.size(); ++i)
        if (truthy(eval(*s.exprs[i], scope))) return exec_body(s.branches[i], scope, out);
      return exec_body(s.else_body, scope, out);
    case StmtKind::kFor: exec_for(s, scope, out); return Flow::kNormal;
    case StmtKind::kSet: assign(s.target, eval(*s.expr, scope), scope); return Flow::kNormal;
    case StmtKind::kSetBlock: {
      Value v = Value::string(render_child(s.body, s.undefined_on_entry, scope));
      if (s.expr) {
        hole_ = std::move(v);
        v = eval(*s.expr, scope);
      }
      assign(s.target, std::move(v), scope);
      return Flow::kNormal;
    }
    case StmtKind::kFilterBlock:
      hole_ = Value::string(render_child(s.body, s.undefined_on_entry, scope));
      append_str(out, eval(*s.expr, scope));
      return Flow::kNormal;
    case StmtKind::kMacro: {
      auto c = std::make_shared<Callable>();
      c->type = Callable::Type::kMacro;
      c->macro = s.macro.get();
      c->closure = scope.shared_from_this();
      c->name = s.macro->name;
      if (closures_.back() != c->closure) closures_.push_back(c->closure);
      scope.set(s.macro->symbol, Value::callable(std::move(c)));
      return Flow::kNormal;
    }
    case StmtKind::kCallBlock: {
      auto caller = std::make_shared<Callable>();
      caller->type = Callable::Type::kMacro;
      caller->macro = s.macro.get();
      caller->closure = scope.shared_from_this();
      caller->name = "caller";
      if (closures_.back() != caller->closure) closures_.push_back(caller->closure);
      const Expr& call_expr = *s.expr;
      Value callee = eval(*call_expr.args[0], scope);
      Args args = eval_args(call_expr, scope);
      args.keywords.emplace_back("caller", Value::callable(std::move(caller)));
      append_str(out, call(callee, std::move(args)));
      return Flow::kNormal;
    }
    case StmtKind::kWith: {
      ValueList values;
      for (const ExprPtr& e : s.exprs) values.push_back(eval(*e, scope));
      auto child = child_scope(scope, s.undefined_on_entry);
      for (size_t i = 0; i < s.targets.size(); ++i) assign(s.targets[i], std::move(values[i]), *child);
      return exec_body(s.body, *child, out);
    }
    case StmtKind::kScope: {
      auto child = child_scope(scope, s.undefined_on_entry);
      return exec_body(s.body, *child, out);
    }
    case StmtKind::kBreak: return Flow::kBreak;
    case StmtKind::kContinue: return Flow::kContinue;
  }
  return Flow::kNormal;
}

void Interpreter::exec_for(const Stmt& s, Scope& scope, std::string& out) {
  ValueList items = iterate(eval(*s.expr, scope));
  if (s.cond) {
    ValueList kept;
    for (Value& item : items) {
      count_iterations(1);
      auto probe = std::make_shared<Scope>(scope.shared_from_this());
      assign(s.target, item, *probe);
      if (truthy(eval(*s.cond, *probe))) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  // Jinja2 clears its "no iteration" flag at the end of the loop body, so the else block also
  // runs when every iteration ended in {% break %} or {% continue %}.
  bool completed_one = false;
  if (!items.empty()) {
    auto loop = std::make_shared<Loop>();
    loop->items = std::make_shared<const ValueList>(std::move(items));
    Value loop_value = Value::loop(loop);
    const ValueList& list = *loop->items;
    for (size_t i = 0; i < list.size(); ++i) {
      count_iterations(1);
      loop->index0 = i;
      auto child = child_scope(scope, s.undefined_on_entry);
      assign(s.target, list[i], *child);
      child->set(program_.loop_symbol, loop_value);
      Flow f = exec_body(s.body, *child, out);
      if (f == Flow::kBreak) break;
      if (f == Flow::kNormal) completed_one = true;
    }
  }
  if (!completed_one && !s.else_body.empty()) {
    auto child = child_scope(scope, s.else_undefined_on_entry);
    exec_body(s.else_body, *child, out);
  }
}

void Interpreter::assign(const Target& target, Value value, Scope& scope) {
  switch (target.kind) {
    case Target::Kind::kName: scope.set(target.symbols[0], std::move(value)); return;
    case Target::Kind::kTuple: {
      if (!value.is_undefined() && !value.is_string() && !value.is_sequence() && !value.is(Kind::kDict) &&
          !value.is(Kind::kGenerator))
        throw_error(cat("cannot unpack non-iterable ", type_name(value), " object"), target.pos);
      ValueList parts = iterate(value);
      size_t n = target.symbols.size();
      if (parts.size() > n) throw_error(cat("too many values to unpack (expected ", n, ")"), target.pos);
      if (parts.size() < n)
        throw_error(cat("not enough values to unpack (expected ", n, ", got ", parts.size(), ")"), target.pos);
      for (size_t i = 0; i < n; ++i) scope.set(target.symbols[i], std::move(parts[i]));
      return;
    }
    case Target::Kind::kNsAttr: {
      const Value* ns = scope.find(target.symbols[0]);
      if (!ns || !ns->is(Kind::kNamespace))
        throw_error("cannot assign attribute on non-namespace object", target.pos);
      ns->ns().attrs.set(Value::string(target.attr), std::move(value));
      return;
    }
  }
}

// --- Expressions ---

Value Interpreter::eval(const Expr& e, Scope& scope) {
  try {
    return eval_node(e, scope);
  } catch (TemplateError& err) {
    if (err.pos == kNoPos) err.pos = e.pos;
    throw;
  }
}

Args Interpreter::eval_args(const Expr& e, Scope& scope) {
  Args a;
  a.positional.reserve(e.args.size() - 1);
  for (size_t i = 1; i < e.args.size(); ++i) a.positional.push_back(eval(*e.args[i], scope));
  for (const auto& [name, expr] : e.kwargs) a.keywords.emplace_back(name, eval(*expr, scope));
  return a;
}

Value Interpreter::eval_node(const Expr& e, Scope& scope) {
  switch (e.kind) {
    case ExprKind::kConst: return e.constant;
    case ExprKind::kName: {
      if (const Value* v = scope.find(e.symbol)) return *v;
      return Value::undefined(cat("'", program_.symbol_names[static_cast<size_t>(e.symbol)], "' is undefined"));
    }
    case ExprKind::kHole: return hole_;
    case ExprKind::kList:
    case ExprKind::kTuple: {
      ValueList items;
      items.reserve(e.args.size());
      for (const ExprPtr& a : e.args) items.push_back(eval(*a, scope));
      return e.kind == ExprKind::kList ? Value::list(std::move(items)) : Value::tuple(std::move(items));
    }
    case ExprKind::kDict: {
      auto d = std::make_shared<Dict>();
      for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
        Value k = eval(*e.args[i], scope);
        if (!hashable(k)) throw_error(cat("unhashable type: '", type_name(k), "'"), e.args[i]->pos);
        d->set(std::move(k), eval(*e.args[i + 1], scope));
      }
      return Value::dict(std::move(d));
    }
    case ExprKind::kGetAttr: return getattr(eval(*e.args[0], scope), e.name);
    case ExprKind::kGetItem: {
      Value obj = eval(*e.args[0], scope);
      return getitem(obj, eval(*e.args[1], scope));
    }
    case ExprKind::kSlice: {
      Value obj = eval(*e.args[0], scope);
      Value parts[3];
      for (int i = 0; i < 3; ++i) parts[i] = e.args[1 + i] ? eval(*e.args[1 + i], scope) : Value::none();
      return slice(obj, parts[0], parts[1], parts[2]);
    }
    case ExprKind::kCall: return eval_call(e, scope);
    case ExprKind::kFilter: {
      Value subject = eval(*e.args[0], scope);
      return apply_filter(e.builtin, e.name, subject, eval_args(e, scope));
    }
    case ExprKind::kTest: {
      Value subject = eval(*e.args[0], scope);
      return Value::boolean(apply_test(e.builtin, e.name, subject, eval_args(e, scope)));
    }
    case ExprKind::kNot: return Value::boolean(!truthy(eval(*e.args[0], scope)));
    case ExprKind::kNeg:
    case ExprKind::kPos: {
      Value v = eval(*e.args[0], scope);
      if (v.is_undefined()) throw_undefined(v);
      bool neg = e.kind == ExprKind::kNeg;
      if (v.is_integral()) {
        if (neg && v.as_int() == INT64_MIN) overflow();
        return Value::integer(neg ? -v.as_int() : v.as_int());
      }
      if (v.is(Kind::kFloat)) return Value::floating(neg ? -v.as_double() : v.as_double());
      throw_error(cat("bad operand type for unary ", neg ? "-" : "+", ": '", type_name(v), "'"));
    }
    case ExprKind::kBinary: {
      Value a = eval(*e.args[0], scope);
      return binary(e.bin_op, a, eval(*e.args[1], scope));
    }
    case ExprKind::kConcat: {
      std::string s;
      for (const ExprPtr& a : e.args) {
        append_str(s, eval(*a, scope));
        if (s.size() > kMaxStringBytes) throw_error(cat("string longer than ", kMaxStringBytes, " bytes"));
      }
      return Value::string(std::move(s));
    }
    case ExprKind::kCompare: {
      Value left = eval(*e.args[0], scope);
      for (size_t i = 0; i < e.cmp_ops.size(); ++i) {
        Value right = eval(*e.args[i + 1], scope);
        if (!compare(e.cmp_ops[i], left, right)) return Value::boolean(false);
        left = std::move(right);
      }
      return Value::boolean(true);
    }
    case ExprKind::kAnd: {
      Value a = eval(*e.args[0], scope);
      return truthy(a) ? eval(*e.args[1], scope) : a;
    }
    case ExprKind::kOr: {
      Value a = eval(*e.args[0], scope);
      return truthy(a) ? a : eval(*e.args[1], scope);
    }
    case ExprKind::kCondExpr:
      if (truthy(eval(*e.args[0], scope))) return eval(*e.args[1], scope);
      if (e.args[2]) return eval(*e.args[2], scope);
      return Value::undefined("the inline if-expression evaluated to false and no else section was defined");
  }
  return Value();
}

Value Interpreter::binary(BinOp op, const Value& a, const Value& b) {
  if (a.is_undefined()) throw_undefined(a);
  if (b.is_undefined()) throw_undefined(b);
  if (a.is_number() && b.is_number()) return arithmetic(op, a, b);
  if (op == BinOp::kAdd) {
    if (a.is_string() && b.is_string()) {
      if (a.str().size() + b.str().size() > kMaxStringBytes)
        throw_error(cat("string longer than ", kMaxStringBytes, " bytes"));
      return Value::string(a.str() + b.str());
    }
    if (((a.is(Kind::kList) && b.is(Kind::kList)) || (a.is(Kind::kTuple) && b.is(Kind::kTuple))) && !a.is_range() &&
        !b.is_range()) {
      ValueList out = a.items();
      out.insert(out.end(), b.items().begin(), b.items().end());
      return a.is(Kind::kList) ? Value::list(std::move(out)) : Value::tuple(std::move(out));
    }
    if (a.is_string() || (a.is_sequence() && !a.is_range()))
      throw_error(cat("can only concatenate ", type_name(a), " (not \"", type_name(b), "\") to ", type_name(a)));
  } else if (op == BinOp::kMul) {
    if ((a.is_string() || a.is_sequence()) && !a.is_range() && b.is_integral()) return repeat(a, b.as_int());
    if (a.is_integral() && (b.is_string() || b.is_sequence()) && !b.is_range()) return repeat(b, a.as_int());
  } else if (op == BinOp::kMod && a.is_string()) {
    throw_error("printf-style string formatting ('%') is not supported");
  }
  throw_error(cat("unsupported operand type(s) for ", op_symbol(op), ": '", type_name(a), "' and '", type_name(b), "'"));
}

bool Interpreter::compare(CmpOp op, const Value& a, const Value& b) {
  switch (op) {
    case CmpOp::kEq: return equal(a, b);
    case CmpOp::kNe: return !equal(a, b);
    case CmpOp::kIn: return contains(b, a);
    case CmpOp::kNotIn: return !contains(b, a);
    default: break;
  }
  if (a.is_undefined()) throw_undefined(a);
  if (b.is_undefined()) throw_undefined(b);
  switch (op) {
    case CmpOp::kLt: return less(a, b);
    case CmpOp::kGt: return less(b, a);
    case CmpOp::kLe: return less(a, b) || equal(a, b);
    case CmpOp::kGe: return less(b, a) || equal(a, b);
    default: return false;
  }
}

Value Interpreter::eval_call(const Expr& e, Scope& scope) {
  const Expr& callee = *e.args[0];
  if (callee.kind == ExprKind::kGetAttr) {
    Value self = eval(*callee.args[0], scope);
    if (is_method_name(self, callee.name)) return call_method(self, callee.name, eval_args(e, scope));
    Value f = getattr(self, callee.name);
    return call(f, eval_args(e, scope));
  }
  Value f = eval(callee, scope);
  return call(f, eval_args(e, scope));
}

Value Interpreter::call(const Value& callee, Args args) {
  if (callee.is_undefined()) throw_undefined(callee);
  if (!callee.is(Kind::kCallable)) throw_error(cat("'", type_name(callee), "' object is not callable"));
  const Callable& c = callee.callable();
  switch (c.type) {
    case Callable::Type::kMacro: return call_macro(c, std::move(args));
    case Callable::Type::kMethod: return call_method(c.self, c.name, args);
    case Callable::Type::kGlobal: return call_global(c.global, c.name, args);
    case Callable::Type::kLoopCycle: {
      if (!args.keywords.empty()) throw_error("loop.cycle() takes no keyword arguments");
      if (args.positional.empty()) throw_error("no items for cycling given");
      return args.positional[c.self.loop().index0 % args.positional.size()];
    }
    case Callable::Type::kLoopChanged: {
      Loop& l = c.self.loop();
      Value current = Value::tuple(std::move(args.positional));
      if (l.changed_called && equal(l.last_changed, current)) return Value::boolean(false);
      l.changed_called = true;
      l.last_changed = std::move(current);
      return Value::boolean(true);
    }
  }
  return Value();
}

Value Interpreter::call_macro(const Callable& c, Args args) {
  const MacroDef& m = *c.macro;
  if (call_depth_ >= kMaxCallDepth)
    throw_error(cat("maximum recursion depth exceeded calling macro '", m.name, "'"));
  auto scope = std::make_shared<Scope>(c.closure);
  mark_undefined(*scope, m.undefined_on_entry);
  const size_t n = m.params.size();
  std::vector<bool> given(n, false);
  size_t npos = std::min(args.positional.size(), n);
  for (size_t i = 0; i < npos; ++i) {
    scope->set(m.params[i], args.positional[i]);
    given[i] = true;
  }
  bool found_caller = false;
  for (size_t i = npos; i < n; ++i) {
    if (m.param_names[i] == "caller") found_caller = true;
    for (auto it = args.keywords.begin(); it != args.keywords.end(); ++it) {
      if (it->first == m.param_names[i]) {
        scope->set(m.params[i], std::move(it->second));
        given[i] = true;
        args.keywords.erase(it);
        break;
      }
    }
  }
  const size_t first_default = n - m.defaults.size();
  for (size_t i = 0; i < n; ++i) {
    if (given[i]) continue;
    if (i >= first_default) scope->set(m.params[i], eval(*m.defaults[i - first_default], *scope));
    else scope->set(m.params[i], Value::undefined(cat("parameter '", m.param_names[i], "' was not provided")));
  }
  if (m.uses_caller && !found_caller) {
    Value caller = Value::undefined("No caller defined");
    for (auto it = args.keywords.begin(); it != args.keywords.end(); ++it) {
      if (it->first == "caller") {
        caller = std::move(it->second);
        args.keywords.erase(it);
        break;
      }
    }
    scope->set(program_.caller_symbol, std::move(caller));
  }
  if (m.uses_kwargs) {
    auto d = std::make_shared<Dict>();
    for (auto& [k, v] : args.keywords) d->set(Value::string(k), std::move(v));
    scope->set(program_.kwargs_symbol, Value::dict(std::move(d)));
  } else if (!args.keywords.empty()) {
    throw_error(cat("macro '", m.name, "' takes no keyword argument '", args.keywords[0].first, "'"));
  }
  if (m.uses_varargs) {
    ValueList rest(args.positional.begin() + static_cast<std::ptrdiff_t>(npos), args.positional.end());
    scope->set(program_.varargs_symbol, Value::tuple(std::move(rest)));
  } else if (args.positional.size() > n) {
    throw_error(cat("macro '", m.name, "' takes not more than ", n, " argument(s)"));
  }
  struct DepthGuard {
    int& d;
    ~DepthGuard() { --d; }
  } guard{++call_depth_};
  std::string out;
  exec_body(m.body, *scope, out);
  return Value::string(std::move(out));
}

// --- Object protocol ---

Value Interpreter::getattr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) throw_undefined(obj);
  if (is_method_name(obj, name)) {
    auto c = std::make_shared<Callable>();
    c->type = Callable::Type::kMethod;
    c->self = obj;
    c->name = name;
    return Value::callable(std::move(c));
  }
  switch (obj.kind()) {
    case Kind::kDict:
      if (const Value* v = obj.dict().find(std::string_view(name))) return *v;
      break;
    case Kind::kNamespace:
      if (const Value* v = obj.ns().attrs.find(std::string_view(name))) return *v;
      break;
    case Kind::kLoop: return loop_attribute(obj, name);
    default: break;
  }
  return no_attribute(obj, name);
}

Value Interpreter::getitem(const Value& obj, const Value& key) {
  switch (obj.kind()) {
    case Kind::kUndefined: throw_undefined(obj);
    case Kind::kList:
    case Kind::kTuple:
      if (key.is_integral()) {
        const ValueList& items = obj.items();
        int64_t i = key.as_int(), n = static_cast<int64_t>(items.size());
        if (i < 0) i += n;
        if (i >= 0 && i < n) return items[static_cast<size_t>(i)];
        return no_element(obj, key);
      }
      break;
    case Kind::kString:
      if (key.is_integral()) {
        const std::string& s = obj.str();
        int64_t i = key.as_int(), n = static_cast<int64_t>(py::length(s));
        if (i < 0) i += n;
        if (i < 0 || i >= n) return no_element(obj, key);
        size_t at = py::byte_offset(s, static_cast<size_t>(i));
        size_t end = py::byte_offset(s, static_cast<size_t>(i) + 1);
        return Value::string(s.substr(at, end - at));
      }
      break;
    case Kind::kDict:
      if (hashable(key)) {
        if (const Value* v = obj.dict().find(key)) return *v;
      }
      break;
    default: break;
  }
  if (key.is_string()) {
    if (is_method_name(obj, key.str()) || obj.is(Kind::kNamespace) || obj.is(Kind::kLoop))
      return getattr(obj, key.str());
    return no_attribute(obj, key.str());
  }
  return no_element(obj, key);
}

// Jinja2 compiles x[a:b] to a plain Python subscript (not environment.getitem), so a failure
// raises instead of giving Undefined.
Value Interpreter::slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.is_undefined()) throw_undefined(obj);
  if (obj.is(Kind::kDict)) throw_error("unhashable type: 'slice'");
  if (!obj.is_string() && !obj.is_sequence()) throw_error(cat("'", type_name(obj), "' object is not subscriptable"));
  for (const Value* v : {&start, &stop, &step})
    if (!v->is_none() && !v->is_integral())
      throw_error("slice indices must be integers or None or have an __index__ method");
  if (obj.is_string()) {
    std::u32string cps = py::decode(obj.str());
    std::u32string out;
    for (size_t i : slice_positions(static_cast<int64_t>(cps.size()), start, stop, step)) out += cps[i];
    return Value::string(py::encode(out));
  }
  if (obj.is_sequence()) {
    const ValueList& items = obj.items();
    ValueList out;
    for (size_t i : slice_positions(static_cast<int64_t>(items.size()), start, stop, step)) out.push_back(items[i]);
    if (const Value::RangeInfo* r = obj.range_info()) {
      // Python slices a range into a range: start + i*step for the slice's adjusted indices.
      int64_t n = static_cast<int64_t>(items.size()), sub = step.is_none() ? 1 : step.as_int();
      auto bound = [&](const Value& v, int64_t dflt) {
        if (v.is_none()) return dflt;
        int64_t x = v.as_int();
        if (x < 0) return std::max<int64_t>(x + n, sub < 0 ? -1 : 0);
        return std::min<int64_t>(x, sub < 0 ? n - 1 : n);
      };
      int64_t b = bound(start, sub < 0 ? n - 1 : 0), e = bound(stop, sub < 0 ? -1 : n);
      return Value::range(std::move(out), {r->start + b * r->step, r->start + e * r->step, r->step * sub});
    }
    return obj.is(Kind::kList) ? Value::list(std::move(out)) : Value::tuple(std::move(out));
  }
  return Value();
}

bool Interpreter::contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Kind::kString:
      if (!item.is_string())
        throw_error(cat("'in <string>' requires string as left operand, not ", type_name(item)));
      return container.str().find(item.str()) != std::string::npos;
    case Kind::kList:
    case Kind::kTuple:
      for (const Value& v : container.items())
        if (equal(v, item)) return true;
      return false;
    case Kind::kDict:
      if (!hashable(item)) throw_error(cat("unhashable type: '", type_name(item), "'"));
      return container.dict().find(item) != nullptr;
    case Kind::kUndefined: return false;
    case Kind::kGenerator: {
      Generator& g = container.gen();
      while (g.next < g.items.size())
        if (equal(g.items[g.next++], item)) return true;
      return false;
    }
    default: throw_error(cat("argument of type '", type_name(container), "' is not iterable"));
  }
}

int64_t Interpreter::length(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined: return 0;
    case Kind::kString: return static_cast<int64_t>(py::length(v.str()));
    case Kind::kList:
    case Kind::kTuple: return static_cast<int64_t>(v.items().size());
    case Kind::kDict: return static_cast<int64_t>(v.dict().entries.size());
    case Kind::kLoop: return static_cast<int64_t>(v.loop().items->size());
    default: throw_error(cat("object of type '", type_name(v), "' has no len()"));
  }
}

Value Interpreter::loop_attribute(const Value& lv, const std::string& name) {
  const Loop& l = lv.loop();
  const ValueList& items = *l.items;
  size_t n = items.size(), i = l.index0;
  auto num = [](size_t x) { return Value::integer(static_cast<int64_t>(x)); };
  if (name == "index") return num(i + 1);
  if (name == "index0") return num(i);
  if (name == "revindex") return num(n - i);
  if (name == "revindex0") return num(n - i - 1);
  if (name == "first") return Value::boolean(i == 0);
  if (name == "last") return Value::boolean(i + 1 == n);
  if (name == "length") return num(n);
  if (name == "depth") return num(1);
  if (name == "depth0") return num(0);
  if (name == "previtem") return i > 0 ? items[i - 1] : Value::undefined("there is no previous item");
  if (name == "nextitem") return i + 1 < n ? items[i + 1] : Value::undefined("there is no next item");
  if (name == "cycle" || name == "changed") {
    auto c = std::make_shared<Callable>();
    c->type = name == "cycle" ? Callable::Type::kLoopCycle : Callable::Type::kLoopChanged;
    c->self = lv;
    c->name = "loop." + name;
    return Value::callable(std::move(c));
  }
  return no_attribute(lv, name);
}

}  // namespace qs::jinja
