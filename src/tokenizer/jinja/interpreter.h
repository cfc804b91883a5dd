// Renders a parsed chat template (internal to the chat-template engine).
//
// Semantics are those of Jinja2 3.1 in transformers' ImmutableSandboxedEnvironment:
//  - Scopes: a {% for %} iteration, a macro call, {% set %}...{% endset %}, {% filter %} and
//    {% with %} bodies get a child scope (assignments there do not leak out; that is what
//    namespace() is for); {% if %} does not. Reads walk out to the enclosing scopes, and a
//    macro's closure is the live scope it was defined in.
//  - Undefined is Jinja2's default Undefined: prints as "", is false, iterates as empty, has
//    length 0, and raises when an attribute, item, call or arithmetic is asked of it.
//  - Attribute access tries Python attributes first (str/dict methods, namespace attributes,
//    loop fields), then items; subscription tries items first, then attributes.
//  - Errors are TemplateError with the position of the innermost expression or statement.
// Limits keep hostile templates finite: macro recursion depth, total loop iterations, string
// sizes, range() length (100000, as the sandbox).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/value.h"

namespace qs::jinja {

struct Scope : std::enable_shared_from_this<Scope> {
  explicit Scope(std::shared_ptr<Scope> parent) : parent(std::move(parent)) {}
  std::shared_ptr<Scope> parent;
  std::vector<std::pair<int, Value>> vars;

  const Value* find(int symbol) const {
    for (const Scope* s = this; s; s = s->parent.get())
      for (const auto& [k, v] : s->vars)
        if (k == symbol) return &v;
    return nullptr;
  }
  void set(int symbol, Value v) {
    for (auto& [k, x] : vars) {
      if (k == symbol) {
        x = std::move(v);
        return;
      }
    }
    vars.emplace_back(symbol, std::move(v));
  }
};

enum class Global : uint8_t { kNamespace, kRange, kDict, kRaiseException, kStrftimeNow, kUnsupported };

struct Callable {
  enum class Type : uint8_t { kMacro, kMethod, kGlobal, kLoopCycle, kLoopChanged };
  Type type = Type::kMacro;
  const MacroDef* macro = nullptr;  // kMacro
  std::shared_ptr<Scope> closure;   // kMacro
  Value self;                       // kMethod receiver; the loop for kLoopCycle / kLoopChanged
  std::string name;
  Global global = Global::kUnsupported;
};

struct Loop {
  std::shared_ptr<const ValueList> items;
  size_t index0 = 0;
  bool changed_called = false;
  Value last_changed;
};

struct Args {
  ValueList positional;
  std::vector<std::pair<std::string, Value>> keywords;
};

// Pointers to the arguments bound to each parameter name (null: not given), Python-style.
using Bound = std::array<const Value*, 6>;
Bound bind_args(const Args& args, std::string_view what, std::initializer_list<std::string_view> names,
                size_t required = 0);

class Interpreter {
 public:
  static constexpr int kMaxCallDepth = 100;
  static constexpr uint64_t kMaxLoopIterations = 5'000'000;
  static constexpr size_t kMaxStringBytes = size_t{16} << 20;
  static constexpr size_t kMaxOutputBytes = size_t{64} << 20;
  static constexpr int64_t kMaxRange = 100000;

  explicit Interpreter(const Program& program) : program_(program) {}
  // Renders the template with these top-level variables, appending to out.
  void render(const std::vector<std::pair<std::string, Value>>& context, std::string& out);

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  // --- Statements (interpreter.cpp) ---
  Flow exec_body(const Body& body, Scope& scope, std::string& out);
  Flow exec(const Stmt& s, Scope& scope, std::string& out);
  Flow exec_node(const Stmt& s, Scope& scope, std::string& out);
  void exec_for(const Stmt& s, Scope& scope, std::string& out);
  void assign(const Target& target, Value value, Scope& scope);
  std::string render_child(const Body& body, const std::vector<int>& undefined, Scope& scope);
  // A new scope inside `parent` with Jinja2's undefined-on-entry names bound to Undefined.
  std::shared_ptr<Scope> child_scope(Scope& parent, const std::vector<int>& undefined);
  void mark_undefined(Scope& scope, const std::vector<int>& undefined);

  // --- Expressions (interpreter.cpp) ---
  Value eval(const Expr& e, Scope& scope);
  Value eval_node(const Expr& e, Scope& scope);
  Args eval_args(const Expr& e, Scope& scope);
  Value eval_call(const Expr& e, Scope& scope);
  Value binary(BinOp op, const Value& a, const Value& b);
  bool compare(CmpOp op, const Value& a, const Value& b);
  Value call(const Value& callee, Args args);
  Value call_macro(const Callable& c, Args args);

 public:
  // --- Object protocol, shared with the builtins ---
  Value getattr(const Value& obj, const std::string& name);
  Value getitem(const Value& obj, const Value& key);
  Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
  static bool contains(const Value& container, const Value& item);
  static int64_t length(const Value& v);  // len(); throws a TypeError for numbers and the like
  Value loop_attribute(const Value& loop, const std::string& name);

  // --- Builtins (filters.cpp, methods.cpp) ---
  Value apply_filter(int id, const std::string& name, const Value& value, const Args& args);
  bool apply_test(int id, const std::string& name, const Value& value, const Args& args);
  Value call_method(const Value& self, const std::string& name, const Args& args);
  Value call_global(Global g, const std::string& name, const Args& args);
  static bool is_method_name(const Value& self, const std::string& name);

  // str.replace with the result size checked first (an empty `old` multiplies the length).
  static std::string replace(const std::string& s, const std::string& old, const std::string& with, int64_t count);
  // Counts loop iterations against the limit.
  void count_iterations(uint64_t n);

 private:
  Value hole_;  // the body output a {% filter %} / {% set | f %} chain applies to
  const Program& program_;
  // Reference cycles a render can create (a macro stored in the scope it closes over, a
  // namespace holding itself), broken when the render ends.
  std::vector<std::shared_ptr<Scope>> closures_;
  std::vector<std::shared_ptr<Namespace>> namespaces_;
  int call_depth_ = 0;
  uint64_t iterations_ = 0;
};

}  // namespace qs::jinja
