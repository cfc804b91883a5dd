// Jinja2's compile-time scope analysis (jinja2/idtracking.py), reduced to what changes a
// render: which names a scope starts as undefined.
//
// Jinja2 compiles each scope (the template, a loop body, a macro...) to a Python function with
// one local per name it uses. A name the scope reads before assigning starts from the enclosing
// scope or the context; a name it assigns first starts as the enclosing scope's variable when an
// enclosing scope uses the name at all, and otherwise as "missing", so that a read from a nested
// scope (a loop body, a macro called early) before the assignment sees Undefined, not the
// context. A name assigned in only some branches of an {% if %} starts from outside instead.
// The interpreter walks scopes at run time; binding the "missing" names to Undefined when a
// scope is entered gives it the same answers.
#include <functional>
#include <map>
#include <set>
#include <vector>

#include "tokenizer/jinja/ast.h"

namespace qs::jinja {

namespace {

enum class Load : uint8_t { kParam, kResolve, kAlias, kUndefined };

struct Symbols {
  const Symbols* parent = nullptr;
  std::map<int, Load> refs;
  std::set<int> stores;

  bool find_ref(int name) const {
    for (const Symbols* s = this; s; s = s->parent)
      if (s->refs.count(name)) return true;
    return false;
  }
  void load(int name) {
    if (!find_ref(name)) refs[name] = Load::kResolve;
  }
  void store(int name) {
    stores.insert(name);
    if (refs.count(name)) return;
    refs[name] = parent && parent->find_ref(name) ? Load::kAlias : Load::kUndefined;
  }
  void param(int name) {
    stores.insert(name);
    refs[name] = Load::kParam;
  }
  void branch_update(const std::vector<Symbols>& branches) {
    std::map<int, size_t> counts;
    for (const Symbols& b : branches)
      for (int t : b.stores)
        if (!stores.count(t)) ++counts[t];
    for (const Symbols& b : branches) {
      for (const auto& [k, v] : b.refs) refs[k] = v;
      stores.insert(b.stores.begin(), b.stores.end());
    }
    for (const auto& [name, count] : counts) {
      if (count == branches.size()) continue;
      refs[name] = parent && parent->find_ref(name) ? Load::kAlias : Load::kResolve;
    }
  }
  std::vector<int> undefined() const {
    std::vector<int> out;
    for (const auto& [k, v] : refs)
      if (v == Load::kUndefined) out.push_back(k);
    return out;
  }
};

// FrameSymbolVisitor: the names one scope uses, not descending into nested scopes.
class FrameVisitor {
 public:
  explicit FrameVisitor(Symbols& s) : sym_(&s) {}

  void expr(const Expr* e) {
    if (!e) return;
    if (e->kind == ExprKind::kName) sym_->load(e->symbol);
    for (const ExprPtr& a : e->args) expr(a.get());
    for (const auto& kw : e->kwargs) expr(kw.second.get());
  }

  void target(const Target& t) {
    if (t.kind == Target::Kind::kNsAttr) sym_->load(t.symbols[0]);
    else
      for (int n : t.symbols) sym_->store(n);
  }

  void body(const Body& b) {
    for (const StmtPtr& s : b) stmt(*s);
  }

  void stmt(const Stmt& s) {
    switch (s.kind) {
      case StmtKind::kOutput:
        for (const ExprPtr& e : s.exprs) expr(e.get());
        break;
      case StmtKind::kIf: if_chain(s); break;
      case StmtKind::kFor: expr(s.expr.get()); break;
      case StmtKind::kSet:
        expr(s.expr.get());
        target(s.target);
        break;
      case StmtKind::kSetBlock: target(s.target); break;
      case StmtKind::kMacro: sym_->store(s.macro->symbol); break;
      case StmtKind::kCallBlock:
      case StmtKind::kFilterBlock: expr(s.expr.get()); break;
      case StmtKind::kWith:
        for (const ExprPtr& e : s.exprs) expr(e.get());
        break;
      default: break;
    }
  }

 private:
  Symbols branch(const std::function<void()>& visit) {
    Symbols* original = sym_;
    Symbols copy = *original;
    sym_ = &copy;
    visit();
    sym_ = original;
    return copy;
  }

  // Jinja2 parses `if a / elif b / elif c / else` as If(a, elif_=[If(b), If(c)], else_): the
  // elif nodes are visited in sequence within one branch, each with its own branch update.
  void if_chain(const Stmt& s) {
    expr(s.exprs[0].get());
    std::vector<Symbols> branches;
    branches.push_back(branch([&] { body(s.branches[0]); }));
    branches.push_back(branch([&] {
      for (size_t i = 1; i < s.exprs.size(); ++i) {
        expr(s.exprs[i].get());
        std::vector<Symbols> inner;
        inner.push_back(branch([&] { body(s.branches[i]); }));
        inner.push_back(branch([] {}));
        inner.push_back(branch([] {}));
        sym_->branch_update(inner);
      }
    }));
    branches.push_back(branch([&] { body(s.else_body); }));
    sym_->branch_update(branches);
  }

  Symbols* sym_;
};

void analyze_frames(const Body& body, const Symbols& parent);

void analyze_macro(MacroDef& m, const Symbols& parent) {
  Symbols s;
  s.parent = &parent;
  FrameVisitor v(s);
  for (int p : m.params) s.param(p);
  for (const ExprPtr& d : m.defaults) v.expr(d.get());
  v.body(m.body);
  m.undefined_on_entry = s.undefined();
  analyze_frames(m.body, s);
}

// Analyzes the scopes nested in `body` (whose own scope is `parent`), recursively.
void analyze_frames(const Body& body, const Symbols& parent) {
  for (const StmtPtr& sp : body) {
    Stmt& st = *sp;
    auto nested = [&](const Body& b, const std::vector<int>& params, std::vector<int>& out,
                      const Expr* header = nullptr) {
      Symbols s;
      s.parent = &parent;
      FrameVisitor v(s);
      for (int p : params) s.param(p);
      v.expr(header);
      v.body(b);
      out = s.undefined();
      analyze_frames(b, s);
    };
    switch (st.kind) {
      case StmtKind::kIf:
        for (const Body& b : st.branches) analyze_frames(b, parent);
        analyze_frames(st.else_body, parent);
        break;
      case StmtKind::kFor:
        nested(st.body, st.target.symbols, st.undefined_on_entry);
        nested(st.else_body, {}, st.else_undefined_on_entry);
        break;
      case StmtKind::kSetBlock:
      case StmtKind::kScope: nested(st.body, {}, st.undefined_on_entry); break;
      case StmtKind::kFilterBlock: nested(st.body, {}, st.undefined_on_entry, st.expr.get()); break;
      case StmtKind::kWith: {
        std::vector<int> params;
        for (const Target& t : st.targets) params.insert(params.end(), t.symbols.begin(), t.symbols.end());
        nested(st.body, params, st.undefined_on_entry);
        break;
      }
      case StmtKind::kMacro:
      case StmtKind::kCallBlock: analyze_macro(*st.macro, parent); break;
      default: break;
    }
  }
}

}  // namespace

void analyze_scopes(Program& program) {
  Symbols root;
  FrameVisitor v(root);
  v.body(program.body);
  program.undefined_on_entry = root.undefined();
  analyze_frames(program.body, root);
}

}  // namespace qs::jinja
