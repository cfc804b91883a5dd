// Syntax tree of a chat template (internal to the chat-template engine).
//
// The shapes follow jinja2/nodes.py; names are interned to small integers (symbols) so that
// variable lookups compare integers. Filters and tests are resolved to builtin ids when
// parsed; an id of -1 (not supported) is refused when it is evaluated, as Jinja2 itself defers
// unknown filters inside {% if %} to run time.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace qs::jinja {

enum class ExprKind : uint8_t {
  kConst,
  kName,
  kHole,  // the body's output in {% filter %} / {% set x | f %}
  kList,
  kTuple,
  kDict,     // args: key0, value0, key1, value1, ...
  kGetAttr,  // args[0].name
  kGetItem,  // args[0][args[1]]
  kSlice,    // args[0][args[1]:args[2]:args[3]] (null: omitted)
  kCall,     // args[0](args[1:], kwargs)
  kFilter,   // args[0] | name(args[1:], kwargs); args[0] may be a kHole
  kTest,     // args[0] is name(args[1:], kwargs)
  kNot,
  kNeg,
  kPos,
  kBinary,   // args[0] op args[1]
  kConcat,   // args[0] ~ args[1] ~ ...
  kCompare,  // args[0] cmp_ops[0] args[1] cmp_ops[1] args[2] ...
  kAnd,
  kOr,
  kCondExpr,  // args[1] if args[0] else args[2] (null: undefined)
};

enum class BinOp : uint8_t { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow };
enum class CmpOp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind;
  uint32_t pos;
  Value constant;     // kConst
  int symbol = -1;    // kName
  std::string name;   // kGetAttr attribute; kFilter / kTest name
  int builtin = -1;   // kFilter / kTest: builtin id, -1 when not supported
  BinOp bin_op = BinOp::kAdd;
  std::vector<CmpOp> cmp_ops;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;

  Expr(ExprKind k, uint32_t p) : kind(k), pos(p) {}
};

// An assignment target: a name, a tuple of names (unpacking) or namespace.attribute.
struct Target {
  enum class Kind : uint8_t { kName, kTuple, kNsAttr };
  Kind kind = Kind::kName;
  std::vector<int> symbols;  // one for kName / kNsAttr, several for kTuple
  std::string attr;          // kNsAttr
  uint32_t pos = 0;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

// A macro, or the body of a {% call %} block (the `caller` macro).
struct MacroDef {
  std::string name;
  int symbol = -1;
  std::vector<int> params;
  std::vector<std::string> param_names;
  std::vector<ExprPtr> defaults;  // for the last defaults.size() params
  bool uses_caller = false, uses_varargs = false, uses_kwargs = false;
  Body body;
  std::vector<int> undefined_on_entry;  // see Stmt::undefined_on_entry
};

enum class StmtKind : uint8_t {
  kData,
  kOutput,  // {{ expr }} / {% print %}
  kIf,
  kFor,
  kSet,
  kSetBlock,
  kMacro,
  kCallBlock,
  kFilterBlock,
  kWith,
  kBreak,
  kContinue,
  kScope,  // {% generation %}: renders its body
};

struct Stmt {
  StmtKind kind;
  uint32_t pos;
  std::string text;              // kData
  std::vector<ExprPtr> exprs;    // kOutput values; kIf tests; kWith values
  std::vector<Body> branches;    // kIf: the body of each test
  ExprPtr expr;                  // kFor iterable, kSet value, kCallBlock call, kSetBlock/kFilterBlock filters
  ExprPtr cond;                  // kFor: `if` filter
  Target target;                 // kFor, kSet, kSetBlock
  std::vector<Target> targets;   // kWith
  Body body, else_body;          // else_body: kIf else, kFor else
  std::unique_ptr<MacroDef> macro;  // kMacro, kCallBlock (the caller)
  // Names Jinja2's compiler starts as undefined in the scope of `body` / `else_body` (they are
  // assigned there before anything reads them, and no enclosing scope knows them), so that
  // reads from nested scopes before the assignment do not reach outer values.
  std::vector<int> undefined_on_entry, else_undefined_on_entry;

  Stmt(StmtKind k, uint32_t p) : kind(k), pos(p) {}
};

struct Program {
  Body body;
  std::vector<int> undefined_on_entry;  // for the top-level scope
  std::vector<std::string> symbol_names;
  std::unordered_map<std::string, int> symbol_ids;
  int loop_symbol = -1, varargs_symbol = -1, kwargs_symbol = -1, caller_symbol = -1;

  int intern(const std::string& name) {
    auto [it, inserted] = symbol_ids.emplace(name, static_cast<int>(symbol_names.size()));
    if (inserted) symbol_names.push_back(name);
    return it->second;
  }
  int find(const std::string& name) const {
    auto it = symbol_ids.find(name);
    return it == symbol_ids.end() ? -1 : it->second;
  }
};

struct Token;
// Parses tokens into a program; syntax errors and unsupported statements are TemplateError.
// Ends with analyze_scopes().
Program parse(const std::vector<Token>& tokens);

// Jinja2's compile-time scoping (jinja2/idtracking.py): fills the undefined_on_entry lists.
void analyze_scopes(Program& program);

}  // namespace qs::jinja
