// The parser follows jinja2/parser.py 3.1 production by production, so that precedence and
// the odd corners (filters bind tighter than `+`, `is` takes one bare argument, adjacent
// string literals concatenate, `for ... if` filters before `loop` counts) come out the same.
#include <algorithm>
#include <initializer_list>

#include "core/error.h"
#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/lexer.h"

namespace qs::jinja {

namespace {

constexpr int kMaxDepth = 200;  // nesting of expressions and blocks (CPython's recursion limit is lower)

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, Program& program) : t_(tokens), p_(program) {
    p_.loop_symbol = p_.intern("loop");
    p_.varargs_symbol = p_.intern("varargs");
    p_.kwargs_symbol = p_.intern("kwargs");
    p_.caller_symbol = p_.intern("caller");
  }

  Body parse_template() {
    Body body = subparse({});
    if (cur().type != Tok::kEof) fail(cat("unexpected ", describe(cur())), cur().pos);
    return body;
  }

 private:
  // --- Token stream ---
  const Token& cur() const { return t_[i_]; }
  const Token& look() const { return t_[std::min(i_ + 1, t_.size() - 1)]; }
  void next() {
    if (i_ + 1 < t_.size()) ++i_;
  }
  bool is_op(std::string_view op) const { return cur().type == Tok::kOperator && cur().text == op; }
  bool is_name(std::string_view n) const { return cur().type == Tok::kName && cur().text == n; }
  bool skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(std::string_view n) {
    if (!is_name(n)) return false;
    next();
    return true;
  }
  static std::string describe(const Token& t) {
    switch (t.type) {
      case Tok::kData: return "template data";
      case Tok::kVarBegin: return "'{{'";
      case Tok::kVarEnd: return "'}}'";
      case Tok::kBlockBegin: return "'{%'";
      case Tok::kBlockEnd: return "'%}'";
      case Tok::kName: return cat("name '", t.text, "'");
      case Tok::kString: return "string literal";
      case Tok::kInteger:
      case Tok::kFloat: return cat("number ", t.text);
      case Tok::kOperator: return cat("'", t.text, "'");
      case Tok::kEof: return "end of template";
    }
    return "token";
  }
  [[noreturn]] static void fail(std::string message, uint32_t pos) { throw_error(std::move(message), pos); }
  void expect(Tok type, const char* what) {
    if (cur().type != type) fail(cat("expected ", what, ", got ", describe(cur())), cur().pos);
    next();
  }
  void expect_op(std::string_view op) {
    if (!is_op(op)) fail(cat("expected '", op, "', got ", describe(cur())), cur().pos);
    next();
  }
  const Token& expect_name() {
    if (cur().type != Tok::kName) fail(cat("expected a name, got ", describe(cur())), cur().pos);
    const Token& t = cur();
    next();
    return t;
  }

  struct DepthGuard {
    explicit DepthGuard(Parser& p) : p(p) {
      if (++p.depth_ > kMaxDepth) fail(cat("template nested deeper than ", kMaxDepth, " levels"), p.cur().pos);
    }
    ~DepthGuard() { --p.depth_; }
    Parser& p;
  };

  static ExprPtr node(ExprKind k, uint32_t pos) { return std::make_unique<Expr>(k, pos); }
  static StmtPtr stmt(StmtKind k, uint32_t pos) { return std::make_unique<Stmt>(k, pos); }

  // --- Statements ---
  Body subparse(std::initializer_list<std::string_view> end_tokens) {
    Body body;
    while (cur().type != Tok::kEof) {
      const Token& t = cur();
      if (t.type == Tok::kData) {
        auto s = stmt(StmtKind::kData, t.pos);
        s->text = t.text;
        body.push_back(std::move(s));
        next();
      } else if (t.type == Tok::kVarBegin) {
        next();
        auto s = stmt(StmtKind::kOutput, t.pos);
        s->exprs.push_back(parse_tuple(false, true, {}, false));
        expect(Tok::kVarEnd, "'}}'");
        body.push_back(std::move(s));
      } else if (t.type == Tok::kBlockBegin) {
        next();
        if (cur().type == Tok::kName &&
            std::find(end_tokens.begin(), end_tokens.end(), cur().text) != end_tokens.end())
          return body;
        body.push_back(parse_statement());
        expect(Tok::kBlockEnd, "'%}'");
      } else {
        fail(cat("unexpected ", describe(t)), t.pos);
      }
    }
    return body;
  }

  // Body of a block up to one of end_tokens; leaves the end name current (or drops it).
  Body parse_statements(std::initializer_list<std::string_view> end_tokens, const char* block, uint32_t block_pos,
                        bool drop_needle) {
    skip_op(":");
    expect(Tok::kBlockEnd, "'%}'");
    Body body = subparse(end_tokens);
    if (cur().type == Tok::kEof) {
      std::string wanted;
      for (std::string_view e : end_tokens) wanted += cat(wanted.empty() ? "'" : " or '", e, "'");
      fail(cat("unexpected end of template: the '", block, "' block is never closed (expected ", wanted, ")"),
           block_pos);
    }
    if (drop_needle) next();
    return body;
  }

  StmtPtr parse_statement() {
    DepthGuard guard(*this);
    const Token& t = cur();
    if (t.type != Tok::kName) fail(cat("expected a tag name, got ", describe(t)), t.pos);
    const std::string& n = t.text;
    if (n == "if") return parse_if();
    if (n == "for") return parse_for();
    if (n == "set") return parse_set();
    if (n == "macro") return parse_macro();
    if (n == "call") return parse_call_block();
    if (n == "filter") return parse_filter_block();
    if (n == "with") return parse_with();
    if (n == "print") return parse_print();
    if (n == "generation") return parse_generation();
    if (n == "break" || n == "continue") {
      if (loop_depth_ == 0) fail(cat("'", n, "' outside of a loop"), t.pos);
      auto s = stmt(n == "break" ? StmtKind::kBreak : StmtKind::kContinue, t.pos);
      next();
      return s;
    }
    if (n == "block" || n == "extends" || n == "include" || n == "import" || n == "from" || n == "autoescape" ||
        n == "do")
      fail(cat("the '{% ", n, " %}' tag is not supported in chat templates"), t.pos);
    fail(cat("unknown tag '", n, "'"), t.pos);
  }

  StmtPtr parse_if() {
    auto s = stmt(StmtKind::kIf, cur().pos);
    uint32_t pos = cur().pos;
    next();
    for (;;) {
      s->exprs.push_back(parse_tuple(false, false, {}, false));
      s->branches.push_back(parse_statements({"elif", "else", "endif"}, "if", pos, false));
      std::string which = cur().text;
      next();
      if (which == "elif") continue;
      if (which == "else") s->else_body = parse_statements({"endif"}, "if", pos, true);
      break;
    }
    return s;
  }

  StmtPtr parse_for() {
    auto s = stmt(StmtKind::kFor, cur().pos);
    next();
    s->target = parse_assign_target(true, false, {"in"});
    for (int sym : s->target.symbols)
      if (sym == p_.loop_symbol) fail("cannot assign to the special 'loop' variable in a for-loop target", s->target.pos);
    if (!skip_name("in")) fail(cat("expected 'in', got ", describe(cur())), cur().pos);
    s->expr = parse_tuple(false, false, {"recursive"}, false);
    if (skip_name("if")) s->cond = parse_expression(true);
    if (is_name("recursive")) fail("recursive for-loops are not supported", cur().pos);
    ++loop_depth_;
    s->body = parse_statements({"endfor", "else"}, "for", s->pos, false);
    --loop_depth_;
    std::string which = cur().text;
    next();
    if (which == "else") s->else_body = parse_statements({"endfor"}, "for", s->pos, true);
    return s;
  }

  StmtPtr parse_set() {
    uint32_t pos = cur().pos;
    next();
    Target target = parse_assign_target(true, true, {});
    if (skip_op("=")) {
      auto s = stmt(StmtKind::kSet, pos);
      s->target = std::move(target);
      s->expr = parse_tuple(false, true, {}, false);
      return s;
    }
    auto s = stmt(StmtKind::kSetBlock, pos);
    s->target = std::move(target);
    if (is_op("|")) s->expr = parse_filter(node(ExprKind::kHole, cur().pos), false);
    s->body = parse_statements({"endset"}, "set", pos, true);
    return s;
  }

  StmtPtr parse_macro() {
    auto s = stmt(StmtKind::kMacro, cur().pos);
    next();
    s->macro = std::make_unique<MacroDef>();
    const Token& name = expect_name();
    s->macro->name = name.text;
    s->macro->symbol = p_.intern(name.text);
    parse_signature(*s->macro);
    parse_macro_body(*s->macro, "endmacro", "macro", s->pos);
    return s;
  }

  void parse_signature(MacroDef& m) {
    expect_op("(");
    while (!is_op(")")) {
      if (!m.params.empty()) expect_op(",");
      const Token& arg = expect_name();
      m.params.push_back(p_.intern(arg.text));
      m.param_names.push_back(arg.text);
      if (skip_op("=")) m.defaults.push_back(parse_expression(true));
      else if (!m.defaults.empty()) fail("non-default argument follows default argument", arg.pos);
    }
    expect_op(")");
  }

  void parse_macro_body(MacroDef& m, const char* end, const char* block, uint32_t pos) {
    macros_.push_back(&m);
    int saved_loops = loop_depth_;
    loop_depth_ = 0;
    m.body = parse_statements({end}, block, pos, true);
    loop_depth_ = saved_loops;
    macros_.pop_back();
    for (int param : m.params) {
      if (param == p_.caller_symbol) m.uses_caller = false;
      if (param == p_.varargs_symbol) m.uses_varargs = false;
      if (param == p_.kwargs_symbol) m.uses_kwargs = false;
    }
  }

  StmtPtr parse_call_block() {
    auto s = stmt(StmtKind::kCallBlock, cur().pos);
    next();
    s->macro = std::make_unique<MacroDef>();
    s->macro->name = "caller";
    if (is_op("(")) parse_signature(*s->macro);
    s->expr = parse_expression(true);
    if (s->expr->kind != ExprKind::kCall) fail("expected a call after '{% call %}'", s->pos);
    parse_macro_body(*s->macro, "endcall", "call", s->pos);
    return s;
  }

  StmtPtr parse_filter_block() {
    auto s = stmt(StmtKind::kFilterBlock, cur().pos);
    next();
    s->expr = parse_filter(node(ExprKind::kHole, cur().pos), true);
    s->body = parse_statements({"endfilter"}, "filter", s->pos, true);
    return s;
  }

  StmtPtr parse_with() {
    auto s = stmt(StmtKind::kWith, cur().pos);
    next();
    while (cur().type != Tok::kBlockEnd) {
      if (!s->targets.empty()) expect_op(",");
      s->targets.push_back(parse_assign_target(true, false, {}));
      expect_op("=");
      s->exprs.push_back(parse_expression(true));
    }
    s->body = parse_statements({"endwith"}, "with", s->pos, true);
    return s;
  }

  StmtPtr parse_print() {
    auto s = stmt(StmtKind::kOutput, cur().pos);
    next();
    while (cur().type != Tok::kBlockEnd) {
      if (!s->exprs.empty()) expect_op(",");
      s->exprs.push_back(parse_expression(true));
    }
    return s;
  }

  StmtPtr parse_generation() {
    auto s = stmt(StmtKind::kScope, cur().pos);
    next();
    s->body = parse_statements({"endgeneration"}, "generation", s->pos, true);
    return s;
  }

  // name | name, name, ... (| ns.attr when with_namespace)
  Target parse_assign_target(bool with_tuple, bool with_namespace, std::initializer_list<std::string_view> extra_end) {
    Target target;
    target.pos = cur().pos;
    if (with_namespace && cur().type == Tok::kName && look().type == Tok::kOperator && look().text == ".") {
      target.kind = Target::Kind::kNsAttr;
      target.symbols.push_back(p_.intern(cur().text));
      next();
      next();
      target.attr = expect_name().text;
      return target;
    }
    bool parens = false;
    if (with_tuple && is_op("(")) {
      parens = true;
      next();
    }
    for (;;) {
      if (!target.symbols.empty()) {
        if (!skip_op(",")) break;
        target.kind = Target::Kind::kTuple;
      }
      if (cur().type == Tok::kName &&
          std::find(extra_end.begin(), extra_end.end(), cur().text) != extra_end.end())
        break;
      if (parens && is_op(")")) break;
      if (cur().type != Tok::kName || is_constant_name(cur().text))
        fail(cat("cannot assign to ", describe(cur())), cur().pos);
      target.symbols.push_back(p_.intern(cur().text));
      next();
      if (!with_tuple) break;
    }
    if (parens) {
      expect_op(")");
      if (target.symbols.size() > 1 || target.kind == Target::Kind::kTuple) target.kind = Target::Kind::kTuple;
    }
    if (target.symbols.empty()) fail(cat("expected an assignment target, got ", describe(cur())), cur().pos);
    return target;
  }

  static bool is_constant_name(const std::string& n) {
    return n == "true" || n == "false" || n == "True" || n == "False" || n == "none" || n == "None";
  }

  // --- Expressions ---
  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard guard(*this);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    uint32_t pos = cur().pos;
    ExprPtr expr1 = parse_or();
    while (skip_name("if")) {
      auto n = node(ExprKind::kCondExpr, pos);
      n->args.push_back(parse_or());
      n->args.push_back(std::move(expr1));
      n->args.push_back(skip_name("else") ? parse_condexpr() : nullptr);
      expr1 = std::move(n);
      pos = cur().pos;
    }
    return expr1;
  }

  ExprPtr binary_chain(ExprKind kind, const char* keyword, ExprPtr (Parser::*sub)()) {
    uint32_t pos = cur().pos;
    ExprPtr left = (this->*sub)();
    while (skip_name(keyword)) {
      auto n = node(kind, pos);
      n->args.push_back(std::move(left));
      n->args.push_back((this->*sub)());
      left = std::move(n);
      pos = cur().pos;
    }
    return left;
  }
  ExprPtr parse_or() { return binary_chain(ExprKind::kOr, "or", &Parser::parse_and); }
  ExprPtr parse_and() { return binary_chain(ExprKind::kAnd, "and", &Parser::parse_not); }

  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard guard(*this);
      auto n = node(ExprKind::kNot, cur().pos);
      next();
      n->args.push_back(parse_not());
      return n;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    uint32_t pos = cur().pos;
    ExprPtr expr = parse_math1();
    ExprPtr cmp;
    for (;;) {
      CmpOp op;
      if (cur().type == Tok::kOperator && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                           cur().text == "<=" || cur().text == ">" || cur().text == ">=")) {
        const std::string& t = cur().text;
        op = t == "==" ? CmpOp::kEq : t == "!=" ? CmpOp::kNe : t == "<" ? CmpOp::kLt
           : t == "<=" ? CmpOp::kLe : t == ">" ? CmpOp::kGt : CmpOp::kGe;
        next();
      } else if (skip_name("in")) {
        op = CmpOp::kIn;
      } else if (is_name("not") && look().type == Tok::kName && look().text == "in") {
        next();
        next();
        op = CmpOp::kNotIn;
      } else {
        break;
      }
      if (!cmp) {
        cmp = node(ExprKind::kCompare, pos);
        cmp->args.push_back(std::move(expr));
      }
      cmp->cmp_ops.push_back(op);
      cmp->args.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(expr);
  }

  ExprPtr binary(BinOp op, uint32_t pos, ExprPtr left, ExprPtr right) {
    auto n = node(ExprKind::kBinary, pos);
    n->bin_op = op;
    n->args.push_back(std::move(left));
    n->args.push_back(std::move(right));
    return n;
  }

  ExprPtr parse_math1() {
    uint32_t pos = cur().pos;
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      BinOp op = is_op("+") ? BinOp::kAdd : BinOp::kSub;
      next();
      left = binary(op, pos, std::move(left), parse_concat());
      pos = cur().pos;
    }
    return left;
  }

  ExprPtr parse_concat() {
    uint32_t pos = cur().pos;
    ExprPtr first = parse_math2();
    if (!is_op("~")) return first;
    auto n = node(ExprKind::kConcat, pos);
    n->args.push_back(std::move(first));
    while (skip_op("~")) n->args.push_back(parse_math2());
    return n;
  }

  ExprPtr parse_math2() {
    uint32_t pos = cur().pos;
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string& t = cur().text;
      BinOp op = t == "*" ? BinOp::kMul : t == "/" ? BinOp::kDiv : t == "//" ? BinOp::kFloorDiv : BinOp::kMod;
      next();
      left = binary(op, pos, std::move(left), parse_pow());
      pos = cur().pos;
    }
    return left;
  }

  ExprPtr parse_pow() {
    uint32_t pos = cur().pos;
    ExprPtr left = parse_unary(true);
    while (skip_op("**")) {
      left = binary(BinOp::kPow, pos, std::move(left), parse_unary(true));
      pos = cur().pos;
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    ExprPtr n;
    if (is_op("-") || is_op("+")) {
      n = node(is_op("-") ? ExprKind::kNeg : ExprKind::kPos, cur().pos);
      next();
      n->args.push_back(parse_unary(false));
    } else {
      n = parse_primary();
    }
    n = parse_postfix(std::move(n));
    if (with_filter) n = parse_filter_expr(std::move(n));
    return n;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    switch (t.type) {
      case Tok::kName: {
        ExprPtr n;
        if (t.text == "true" || t.text == "True" || t.text == "false" || t.text == "False") {
          n = node(ExprKind::kConst, t.pos);
          n->constant = Value::boolean(t.text[0] == 't' || t.text[0] == 'T');
        } else if (t.text == "none" || t.text == "None") {
          n = node(ExprKind::kConst, t.pos);
          n->constant = Value::none();
        } else {
          n = node(ExprKind::kName, t.pos);
          n->symbol = p_.intern(t.text);
          mark_special_use(n->symbol);
        }
        next();
        return n;
      }
      case Tok::kString: {
        auto n = node(ExprKind::kConst, t.pos);
        std::string s = t.text;
        next();
        while (cur().type == Tok::kString) {
          s += cur().text;
          next();
        }
        n->constant = Value::string(std::move(s));
        return n;
      }
      case Tok::kInteger:
      case Tok::kFloat: {
        auto n = node(ExprKind::kConst, t.pos);
        n->constant = t.type == Tok::kInteger ? Value::integer(t.integer) : Value::floating(t.number);
        next();
        return n;
      }
      case Tok::kOperator:
        if (t.text == "(") {
          next();
          ExprPtr n = parse_tuple(false, true, {}, true);
          expect_op(")");
          return n;
        }
        if (t.text == "[") return parse_list();
        if (t.text == "{") return parse_dict();
        break;
      default: break;
    }
    fail(cat("unexpected ", describe(t)), t.pos);
  }

  // Marks macros that read `caller`, `varargs` or `kwargs` (Jinja2's find_undeclared).
  void mark_special_use(int symbol) {
    for (MacroDef* m : macros_) {
      if (symbol == p_.caller_symbol) m->uses_caller = true;
      if (symbol == p_.varargs_symbol) m->uses_varargs = true;
      if (symbol == p_.kwargs_symbol) m->uses_kwargs = true;
    }
  }

  ExprPtr parse_tuple(bool simplified, bool with_condexpr, std::initializer_list<std::string_view> extra_end,
                      bool explicit_parentheses) {
    uint32_t pos = cur().pos;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    for (;;) {
      if (!items.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      items.push_back(simplified ? parse_primary() : parse_expression(with_condexpr));
      if (is_op(",")) is_tuple = true;
      else break;
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parentheses) fail(cat("expected an expression, got ", describe(cur())), cur().pos);
    }
    auto n = node(ExprKind::kTuple, pos);
    n->args = std::move(items);
    return n;
  }

  bool is_tuple_end(std::initializer_list<std::string_view> extra_end) const {
    if (cur().type == Tok::kVarEnd || cur().type == Tok::kBlockEnd || is_op(")")) return true;
    return cur().type == Tok::kName && std::find(extra_end.begin(), extra_end.end(), cur().text) != extra_end.end();
  }

  ExprPtr parse_list() {
    auto n = node(ExprKind::kList, cur().pos);
    expect_op("[");
    while (!is_op("]")) {
      if (!n->args.empty()) expect_op(",");
      if (is_op("]")) break;
      n->args.push_back(parse_expression(true));
    }
    expect_op("]");
    return n;
  }

  ExprPtr parse_dict() {
    auto n = node(ExprKind::kDict, cur().pos);
    expect_op("{");
    while (!is_op("}")) {
      if (!n->args.empty()) expect_op(",");
      if (is_op("}")) break;
      n->args.push_back(parse_expression(true));
      expect_op(":");
      n->args.push_back(parse_expression(true));
    }
    expect_op("}");
    return n;
  }

  ExprPtr parse_postfix(ExprPtr n) {
    for (;;) {
      if (is_op(".") || is_op("[")) n = parse_subscript(std::move(n));
      else if (is_op("(")) n = parse_call(std::move(n));
      else return n;
    }
  }

  ExprPtr parse_filter_expr(ExprPtr n) {
    for (;;) {
      if (is_op("|")) n = parse_filter(std::move(n), false);
      else if (is_name("is")) n = parse_test(std::move(n));
      else if (is_op("(")) n = parse_call(std::move(n));
      else return n;
    }
  }

  // Postfix, filter and test nodes carry the position where their whole expression starts.
  ExprPtr parse_subscript(ExprPtr obj) {
    const Token& t = cur();
    uint32_t pos = obj->pos;
    if (t.type == Tok::kOperator && t.text == ".") {
      next();
      const Token& attr = cur();
      next();
      if (attr.type == Tok::kName) {
        auto n = node(ExprKind::kGetAttr, pos);
        n->name = attr.text;
        n->args.push_back(std::move(obj));
        return n;
      }
      if (attr.type != Tok::kInteger) fail("expected a name or a number after '.'", attr.pos);
      auto n = node(ExprKind::kGetItem, pos);
      auto index = node(ExprKind::kConst, attr.pos);
      index->constant = Value::integer(attr.integer);
      n->args.push_back(std::move(obj));
      n->args.push_back(std::move(index));
      return n;
    }
    next();  // '['
    std::vector<ExprPtr> subs;
    while (!is_op("]")) {
      if (!subs.empty()) expect_op(",");
      subs.push_back(parse_subscribed());
    }
    expect_op("]");
    if (subs.size() == 1 && subs[0]->kind == ExprKind::kSlice) {
      subs[0]->args[0] = std::move(obj);
      return std::move(subs[0]);
    }
    for (const auto& s : subs)
      if (s->kind == ExprKind::kSlice) fail("multi-dimensional slices are not supported", s->pos);
    auto n = node(ExprKind::kGetItem, pos);
    n->args.push_back(std::move(obj));
    if (subs.size() == 1) {
      n->args.push_back(std::move(subs[0]));
    } else {
      auto tuple = node(ExprKind::kTuple, pos);
      tuple->args = std::move(subs);
      n->args.push_back(std::move(tuple));
    }
    return n;
  }

  // expr | [expr]:[expr][:[expr]]; a slice comes back as kSlice with args[0] left empty.
  ExprPtr parse_subscribed() {
    uint32_t pos = cur().pos;
    ExprPtr start;
    if (!skip_op(":")) {
      ExprPtr e = parse_expression(true);
      if (!skip_op(":")) return e;
      start = std::move(e);
    }
    auto n = node(ExprKind::kSlice, pos);
    n->args.push_back(nullptr);
    n->args.push_back(std::move(start));
    auto at_end = [&] { return is_op("]") || is_op(","); };
    n->args.push_back(is_op(":") || at_end() ? nullptr : parse_expression(true));
    if (skip_op(":")) n->args.push_back(at_end() ? nullptr : parse_expression(true));
    else n->args.push_back(nullptr);
    return n;
  }

  void parse_call_args(Expr& n) {
    uint32_t pos = cur().pos;
    expect_op("(");
    bool require_comma = false;
    while (!is_op(")")) {
      if (require_comma) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (is_op("*") || is_op("**")) fail("*args and **kwargs in calls are not supported", cur().pos);
      if (cur().type == Tok::kName && look().type == Tok::kOperator && look().text == "=") {
        std::string key = cur().text;
        next();
        next();
        n.kwargs.emplace_back(std::move(key), parse_expression(true));
      } else {
        if (!n.kwargs.empty()) fail("invalid syntax for function call expression", pos);
        n.args.push_back(parse_expression(true));
      }
      require_comma = true;
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto n = node(ExprKind::kCall, callee->pos);
    n->args.push_back(std::move(callee));
    parse_call_args(*n);
    return n;
  }

  ExprPtr parse_filter(ExprPtr subject, bool start_inline) {
    while (is_op("|") || start_inline) {
      if (!start_inline) next();
      start_inline = false;
      const Token& name = expect_name();
      auto n = node(ExprKind::kFilter, subject->kind == ExprKind::kHole ? name.pos : subject->pos);
      n->name = name.text;
      while (skip_op(".")) n->name += "." + expect_name().text;
      n->builtin = filter_id(n->name);
      n->args.push_back(std::move(subject));
      if (is_op("(")) parse_call_args(*n);
      subject = std::move(n);
    }
    return subject;
  }

  ExprPtr parse_test(ExprPtr subject) {
    uint32_t pos = subject->pos;
    next();  // 'is'
    bool negated = skip_name("not");
    const Token& name = expect_name();
    auto n = node(ExprKind::kTest, pos);
    n->name = name.text;
    while (skip_op(".")) n->name += "." + expect_name().text;
    n->builtin = test_id(n->name);
    n->args.push_back(std::move(subject));
    const Token& c = cur();
    bool arg_start = c.type == Tok::kName || c.type == Tok::kString || c.type == Tok::kInteger ||
                     c.type == Tok::kFloat || (c.type == Tok::kOperator && (c.text == "[" || c.text == "{"));
    if (is_op("(")) {
      parse_call_args(*n);
    } else if (arg_start && !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail("cannot chain multiple tests with 'is'", c.pos);
      n->args.push_back(parse_postfix(parse_primary()));
    }
    if (!negated) return n;
    auto neg = node(ExprKind::kNot, pos);
    neg->args.push_back(std::move(n));
    return neg;
  }

  const std::vector<Token>& t_;
  Program& p_;
  size_t i_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
  std::vector<MacroDef*> macros_;
};

}  // namespace

Program parse(const std::vector<Token>& tokens) {
  Program program;
  Parser parser(tokens, program);
  program.body = parser.parse_template();
  analyze_scopes(program);
  return program;
}

}  // namespace qs::jinja
