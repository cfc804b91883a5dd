#!/usr/bin/python3
"""Random Jinja2 templates for differential testing of qstudy's chat-template engine.

Writes {"cases": [{"template", "variables"}, ...]} for chat_template_ref.py: templates built
from the constructs chat templates use (statements, whitespace control, expressions of every
type, filters, tests, string methods, loops, macros, namespaces), mostly well typed so that
they render, with a share of ill-typed expressions, raise_exception calls and syntax errors
so that error paths are compared too. Deterministic for a given seed.

Usage: random_templates.py SEED COUNT OUT.json
"""
import json
import random
import sys

TEXT = ["", " ", "  ", "\n", "\n\n", "  \n", "\n  ", "\t", " \t\n ", "x", "a b", "Hello", "line\n  ",
        "é", "東京", "🙂", "\u00a0", "\r\n", "\r", " - ", "%", "#", "'", '"', "\\", "} "]
TRICKY_TEXT = ["{", "}", "{#", "{%", "{{"]  # rare: they may merge with the next tag
WORDS = ["", " ", "a", "abc", "Hello World", "  padded  ", "x\ny", "tab\there", "ünï", "ΣΑΣ", "ß", "ǆ",
         "Ǳ", "İ", "東京", "🙂!", "<think>\nr\n</think>\n\nans", "\u00a0nb\u00a0", "a,b,,c", "1_0",
         "42", " 7 ", "3.5", "-2", "0x1f", "inf", "nan", "1e3", "None", "it's", 'say "hi"', "back\\slash",
         "\x1c", "\u2028", "mIxEd CaSe", "don't-stop", "(paren)word", "<tool_response>x</tool_response>"]
ROLES = ["system", "user", "assistant", "tool"]
STR_ESCAPES = ["\\n", "\\t", "\\\\", "\\'", '\\"', "\\x41", "\\u00e9", "\\U0001F600", "\\101", "\\q", "\\r"]


class Gen:
    def __init__(self, rng):
        self.r = rng
        self.loop_vars = []  # (name, kind) of enclosing loop variables
        self.in_loop = 0
        self.macros = []

    def pick(self, xs):
        return self.r.choice(xs)

    def chance(self, p):
        return self.r.random() < p

    # --- literals ---
    def str_lit(self):
        q = self.pick(["'", '"'])
        parts = []
        for _ in range(self.r.randint(0, 3)):
            if self.chance(0.25):
                parts.append(self.pick(STR_ESCAPES))
            else:
                w = self.pick(WORDS).replace("\\", "\\\\").replace(q, "\\" + q)
                parts.append(w)
        return q + "".join(parts) + q

    def int_lit(self):
        return str(self.pick([0, 1, 2, 3, 5, 7, 10, 42, 100, 255, 1000, -1, -3]))

    def float_lit(self):
        return self.pick(["0.5", "1.0", "2.5", "0.1", "3.14", "1e3", "1.5e-7", "100.0", "1e16", "1e17", "0.0001", "0.00001", "-2.0", "123456.789"])

    # --- typed expressions ---
    def s(self, d=0):
        if d > 3:
            return self.pick([self.str_lit(), "s", "s2"])
        r = self.r.randint(0, 30)
        if r <= 3: return self.str_lit()
        if r == 4: return self.pick(["s", "s2", "messages[0].content", "messages[-1]['role']", "d.name", "d['name']"])
        if r == 5: return "(%s)|%s" % (self.s(d + 1), self.pick(["trim", "upper", "lower", "title", "capitalize", "string", "reverse"]))
        if r == 6: return "%s.%s()" % (self.atom_s(d), self.pick(["strip", "lstrip", "rstrip", "upper", "lower", "title", "capitalize", "swapcase"]))
        if r == 7: return "%s.%s(%s)" % (self.atom_s(d), self.pick(["strip", "lstrip", "rstrip"]), self.pick(["'ab '", "'\\n'", "' '", "none", "'é'"]))
        if r == 8: return "%s.replace(%s, %s%s)" % (self.atom_s(d), self.str_lit(), self.str_lit(), self.pick(["", ", 1", ", 0", ", -1"]))
        if r == 9: return "%s.split(%s)[%s]" % (self.atom_s(d), self.pick(["", "','", "' '", "'\\n'", "none", "'b', 1"]), self.pick(["0", "-1", "1"]))
        if r == 10: return "%s ~ %s" % (self.atom_any(d), self.atom_any(d))
        if r == 11: return "%s + %s" % (self.atom_s(d), self.atom_s(d))
        if r == 12: return "(%s if %s else %s)" % (self.s(d + 1), self.b(d + 1), self.s(d + 1))
        if r == 13: return "%s[%s:%s]" % (self.atom_s(d), self.pick(["", "1", "-2", "0"]), self.pick(["", "3", "-1", "100"]))
        if r == 14: return "%s[::-1]" % self.atom_s(d)
        if r == 15: return "%s|tojson%s" % (self.atom_any(d), self.pick(["", "(indent=2)", "(indent='\\t')", "(sort_keys=true)", "(ensure_ascii=true)", "(separators=(',', ':'))", "(indent=0)"]))
        if r == 16: return "%s|join(%s)" % (self.l(d + 1), self.pick(["", "', '", "'-'"]))
        if r == 17: return "%s|indent(%s)" % (self.atom_s(d), self.pick(["", "2", "2, true", "width=1, blank=true", "'> '", "first=true"]))
        if r == 18: return "%s|replace(%s, %s)" % (self.atom_s(d), self.str_lit(), self.str_lit())
        if r == 19: return "%s|default(%s)" % (self.pick(["undefined_var", "d.missing", "s", "none_v"]), self.str_lit())
        if r == 20: return "%s|trim(%s)" % (self.atom_s(d), self.pick(["'a'", "' x'", "none"]))
        if r == 21: return "%s|first" % self.pick([self.atom_s(d), "lst|map('string')", "['x', 'y']"])
        if r == 22: return "%s|last" % self.pick([self.atom_s(d), "['x', 'y']", "messages|map(attribute='role')|list"])
        if r == 23 and self.loop_vars: return self.loop_expr_s()
        if r == 24: return "%s|string" % self.atom_any(d)
        if r == 25: return "%s.join(%s)" % (self.str_lit(), self.pick(["['a', 'b']", "s.split()", "messages|map(attribute='role')", "'xyz'"]))
        if r == 26: return "%s|center(9)" % self.atom_s(d) if False else "%s.center(%s)" % (self.atom_s(d), self.pick(["9", "10, '*'", "2"]))
        if r == 27: return "%s.removeprefix(%s)" % (self.atom_s(d), self.str_lit())
        if r == 28: return self.pick(["%s|max" % self.pick(["['b', 'A', 'c']", "s.split()"]), "%s|min" % self.pick(["['b', 'A', 'c']", "'hello'"])])
        if r == 29 and self.macros: return "%s(%s)" % (self.pick(self.macros), self.pick(["", self.s(d + 1), "1, 2", "x=" + self.s(d + 1)]))
        return self.pick(["s", "s2", "messages[1].content"])

    def atom_s(self, d):
        return self.pick(["s", "s2", self.str_lit(), "(%s)" % self.s(d + 1), "messages[0].content", "d.name"])

    def loop_expr_s(self):
        if self.chance(0.3):
            return self.pick(["loop.cycle('odd', 'even')", "loop.previtem|string", "loop.nextitem|default('end')", "loop.cycle(s, 1)"])
        name, kind = self.pick(self.loop_vars)
        if kind == "msg":
            return self.pick(["%s.role" % name, "%s['content']" % name, "%s.content|trim" % name, "%s.get('role')" % name])
        if kind == "str":
            return name
        return "%s|string" % name

    def i(self, d=0):
        if d > 3:
            return self.pick([self.int_lit(), "n", "n2"])
        r = self.r.randint(0, 20)
        if r <= 3: return self.int_lit()
        if r == 4: return self.pick(["n", "n2", "lst|length", "messages|length", "s|length", "d|length"])
        if r == 5: return "(%s %s %s)" % (self.i(d + 1), self.pick(["+", "-", "*", "//", "%"]), self.pick([self.int_lit(), "n"]))
        if r == 6: return "%s|int%s" % (self.pick([self.str_lit(), "s", "f", "'12'", "' 3 '", "'4.7'", "'0x1f'", "'x'", "none_v", "'1_000'", "'-5'"]), self.pick(["", "(7)", "(0, 16)", "(base=8)", "(0, 0)"]))
        if r == 7: return "%s|abs" % self.pick(["-3", "n", "(0 - n2)"])
        if r == 8: return "%s.count(%s)" % (self.atom_s(d), self.pick(["'a'", "''", "'l'"]))
        if r == 9: return "%s.find(%s)" % (self.atom_s(d), self.pick(["'a'", "''", "'é'", "'z'"]))
        if r == 10: return "%s|sum%s" % (self.pick(["[1, 2, 3]", "lst_i", "range(5)"]), self.pick(["", "(start=10)"]))
        if r == 11 and self.in_loop: return self.pick(["loop.index", "loop.index0", "loop.revindex", "loop.revindex0", "loop.length", "loop.depth"])
        if r == 12: return "%s ** %s" % (self.pick(["2", "3", "n2"]), self.pick(["0", "2", "5"]))
        if r == 13: return "%s|round" % self.pick(["3", "n"])
        if r == 14: return "%s|%s" % (self.pick(["lst_i", "[3, 1, 2]"]), self.pick(["max", "min", "first", "last"]))
        if r == 15: return "(%s if %s else %s)" % (self.i(d + 1), self.b(d + 1), self.i(d + 1))
        if r == 16: return "-%s" % self.pick(["n", "(n2)", "3"])
        return self.pick(["n", "n2", self.int_lit()])

    def f(self, d=0):
        r = self.r.randint(0, 9)
        if r <= 2: return self.float_lit()
        if r == 3: return "f"
        if r == 4: return "(%s / %s)" % (self.pick([self.int_lit(), "n", "f"]), self.pick(["3", "7", "n2", "2.5", "f"]))
        if r == 5: return "%s|float%s" % (self.pick(["s", "'3.25'", "' 1e3 '", "'x'", "n", "s2", "'1_5.5'", "'-0'"]), self.pick(["", "(2.5)"]))
        if r == 6: return "%s|round%s" % (self.pick(["f", "2.675", "0.5", "1.5", "-2.5", "(n / 7)"]), self.pick(["", "(1)", "(2)", "(1, 'floor')", "(0, 'ceil')"]))
        if r == 7: return "(%s %s %s)" % (self.f(d + 1), self.pick(["+", "-", "*", "//", "%"]), self.pick(["0.3", "2", "f", "-1.5"]))
        if r == 8: return self.pick(["2 ** -1", "f ** 2", "0.5 ** 0.5", "2 ** 0.5", "f ** -1", "n2 ** 0.5"])
        return "f"

    def b(self, d=0):
        if d > 3:
            return self.pick(["true", "false", "b"])
        r = self.r.randint(0, 22)
        if r <= 1: return self.pick(["true", "false", "True", "False", "b", "not b"])
        if r == 2: return "%s %s %s" % (self.i(d + 1), self.pick(["==", "!=", "<", "<=", ">", ">="]), self.i(d + 1))
        if r == 3: return "%s %s %s" % (self.s(d + 1), self.pick(["==", "!=", "<", ">="]), self.s(d + 1))
        if r == 4: return "%s %s %s" % (self.s(d + 1), self.pick(["in", "not in"]), self.s(d + 1))
        if r == 5: return "%s %s %s" % (self.any(d + 1), self.pick(["in", "not in"]), self.pick(["lst", "d", "messages[0]", "['a', 1, none]", "(1, 2)"]))
        if r == 6: return "(%s %s %s)" % (self.b(d + 1), self.pick(["and", "or"]), self.b(d + 1))
        if r == 7: return "not %s" % self.b(d + 1)
        if r == 8: return "%s is %s%s" % (self.any_or_missing(d), self.pick(["", "not "]), self.pick(["defined", "undefined", "none", "string", "number", "integer", "float", "mapping", "iterable", "sequence", "boolean", "true", "false", "callable", "sameas none", "sameas true", "sameas false", "escaped"]))
        if r == 9: return "%s is %s%s" % (self.i(d + 1), self.pick(["", "not "]), self.pick(["odd", "even", "divisibleby 3", "divisibleby(2)", "eq 3", "lt 5", "ge(2)", "in [1, 2, 3]"]))
        if r == 10: return "%s.%s(%s)" % (self.atom_s(d), self.pick(["startswith", "endswith"]), self.pick(["'a'", "''", "('a', 'H')", "'<tool_response>'", "'</tool_response>'"]))
        if r == 11: return "%s.%s()" % (self.atom_s(d), self.pick(["isdigit", "isalpha", "isspace", "islower", "isupper", "isalnum"]))
        if r == 12 and self.in_loop: return self.pick(["loop.first", "loop.last", "loop.index is even", "loop.changed(loop.index // 2)"])
        if r == 13: return "%s == %s" % (self.any(d + 1), self.any(d + 1))
        if r == 14: return "%s is %s" % (self.s(d + 1), self.pick(["lower", "upper", "equalto 'a'", "ne s2"]))
        if r == 15: return "%s < %s < %s" % (self.i(d + 1), self.i(d + 1), self.i(d + 1))
        if r == 16: return "%s|length > %s" % (self.pick(["messages", "s", "lst", "d"]), self.int_lit())
        if r == 17: return "%s" % self.pick(["s", "lst", "d", "none_v", "n", "f", "''", "[]", "{}", "0", "0.0", "undefined_var", "messages|selectattr('role')"])
        return self.pick(["b", "true", "n > 1"])

    def l(self, d=0):
        if d > 3:
            return self.pick(["lst", "[1, 2]", "messages"])
        r = self.r.randint(0, 20)
        if r <= 1: return "[%s]" % ", ".join(self.any(d + 1) for _ in range(self.r.randint(0, 3)))
        if r == 2: return self.pick(["lst", "lst_i", "messages", "words", "nested.items_list"])
        if r == 3: return "%s.split(%s)" % (self.atom_s(d), self.pick(["", "','", "' '", "none, 1"]))
        if r == 4: return "%s|list" % self.pick(["s", "d", "lst", "'abc'", "messages|map(attribute='role')"])
        if r == 5: return "%s|sort%s" % (self.pick(["words", "lst_i", "[3, 1, 2]", "['b', 'A', 'a', 'C']"]), self.pick(["", "(reverse=true)", "(case_sensitive=true)", "(true, true)"]))
        if r == 6: return "messages|sort(attribute='role')|map(attribute='content')|list"
        if r == 7: return "%s|unique|list" % self.pick(["['a', 'A', 'b', 'a']", "lst_i", "words"])
        if r == 8: return "messages|%s('role', %s)|list" % (self.pick(["selectattr", "rejectattr"]), self.pick(["'equalto', 'user'", "'eq', 'assistant'", "'in', ['user', 'system']", "'ne', 'tool'"]))
        if r == 9: return "%s|%s(%s)|list" % (self.pick(["lst_i", "[0, 1, 2, 3]", "words"]), self.pick(["select", "reject"]), self.pick(["", "'odd'", "'even'", "'string'", "'number'", "'none'", "'defined'", "'ge', 2"]))
        if r == 10: return "%s|map(%s)|list" % (self.pick(["words", "lst_i", "['a', 'b']"]), self.pick(["'upper'", "'string'", "'length'", "'trim'", "'default', 'x'", "'int'", "'round'"]))
        if r == 11: return "%s[%s]" % (self.pick(["lst", "messages", "words"]), self.pick(["1:", ":2", "::-1", "::2", "-2:", "1:-1"]))
        if r == 12: return "range(%s)" % self.pick(["3", "0", "1, 4", "5, 0, -2", "n2"])
        if r == 13: return "d.items()|list" if self.chance(0.5) else "d|dictsort%s" % self.pick(["", "(by='value')", "(reverse=true)"])
        if r == 14: return "%s + %s" % (self.l(d + 1), self.l(d + 1))
        if r == 15: return "%s|reverse|list" % self.pick(["lst", "'abc'", "d", "messages|map(attribute='role')"])
        if r == 16: return "d|items|list"
        if r == 17: return "%s.splitlines(%s)" % (self.str_lit(), self.pick(["", "true"]))
        return self.pick(["lst", "words", "messages"])

    def dct(self, d=0):
        r = self.r.randint(0, 5)
        if r <= 1: return "{%s}" % ", ".join("%s: %s" % (self.pick(["'k'", "'name'", "1", "'a'", "true"]), self.any(d + 1)) for _ in range(self.r.randint(0, 3)))
        if r == 2: return self.pick(["d", "messages[0]", "nested"])
        if r == 3: return "dict(a=1, b=%s)" % self.s(d + 1)
        return "d"

    def any(self, d=0):
        k = self.r.randint(0, 9)
        if d > 3: k = self.r.randint(0, 3)
        return [self.s, self.i, self.b, self.f, self.s, self.i, self.l, self.dct, self.s, self.l][k](d + 1)

    def atom_any(self, d):
        return "(%s)" % self.any(d + 1)

    def any_or_missing(self, d):
        if self.chance(0.3):
            return self.pick(["undefined_var", "d.missing", "messages[0].tool_calls", "d['x']", "lst[10]", "none_v", "ns.count", "caller"])
        return self.atom_any(d)

    def bad(self):
        # ill-typed or failing expressions: both engines must fail
        return self.pick(["1 + 'a'", "undefined_var.attr", "undefined_var()", "s()", "n.x.y", "[1] + 'a'", "1 / 0", "n // 0",
                          "undefined_var + 1", "d['x'].y", "none_v.a.b", "lst|length + s", "{} < []", "'a' < 1",
                          "s|tojson(indent=1.5)", "x|int(base='x')", "range(1, 2, 0)", "undefined_var|tojson", "(1, 2)|tojson|int|abs + 'x'",
                          "messages|selectattr('role')|length", "s.nonexistent()", "raise_exception('boom: ' ~ s)",
                          "lst|map|list", "lst.append(1)", "d.update({})", "'abc'[::0]", "n < none_v"])

    # --- statements ---
    def ws_open(self, var=False):
        return ("{{" if var else "{%") + self.pick(["", "", "", "-", "+" if not var else ""]) + self.pick([" ", " ", "", "  "])

    def ws_close(self, var=False):
        return self.pick([" ", " ", ""]) + self.pick(["", "", "", "-", "+" if not var else ""]) + ("}}" if var else "%}")

    def tag(self, body):
        return self.ws_open() + body + self.ws_close()

    def out(self, expr):
        return self.ws_open(True) + expr + self.ws_close(True)

    def text(self):
        if self.chance(0.003):
            return self.pick(TRICKY_TEXT)
        return "".join(self.pick(TEXT) for _ in range(self.r.randint(0, 2)))

    def block(self, depth):
        parts = []
        for _ in range(self.r.randint(1, 4 if depth < 2 else 2)):
            parts.append(self.text())
            parts.append(self.stmt(depth))
        parts.append(self.text())
        return "".join(parts)

    def stmt(self, depth):
        r = self.r.randint(0, 30 if depth < 3 else 8)
        if r <= 5: return self.out(self.any())
        if r == 6: return self.out(self.s())
        if r == 7: return self.pick(["{# c #}", "{#- c -#}", "{# multi\nline #}\n", "  {# indented #}\n", "{#+ x +#}"])
        if r == 8 and self.chance(0.3): return self.out(self.bad())
        if r <= 11:
            parts = [self.tag("if " + self.b()), self.block(depth + 1)]
            for _ in range(self.r.randint(0, 2)):
                parts += [self.tag("elif " + self.b()), self.block(depth + 1)]
            if self.chance(0.5):
                parts += [self.tag("else"), self.block(depth + 1)]
            parts.append(self.tag("endif"))
            return "".join(parts)
        if r <= 15:
            kind, src = self.pick([("msg", "messages"), ("msg", "messages[::-1]"), ("str", "words"), ("int", "lst_i"), ("any", "lst"),
                                   ("str", "d"), ("str", "s"), ("int", "range(3)"), ("msg", "messages|selectattr('role', 'ne', 'system')"),
                                   ("str", "'ab'"), ("any", "undefined_var"), ("any", "[]"), ("pair", "d.items()"), ("pair", "d|dictsort")])
            name = self.pick(["x", "item", "m", "message"])
            if kind == "pair":
                target, kind = self.pick(["k, v", "(k, v)"]), "str"
                name = "k"
            else:
                target = name
            cond = " if " + self.b(2) if self.chance(0.2) else ""
            self.loop_vars.append((name, kind))
            self.in_loop += 1
            body = self.block(depth + 1)
            if self.chance(0.15):
                body += self.tag(self.pick(["break", "continue"])) + self.text()
            if self.chance(0.15):
                body = self.tag("if " + self.b(2)) + self.tag(self.pick(["break", "continue"])) + self.tag("endif") + body
            self.in_loop -= 1
            self.loop_vars.pop()
            else_part = self.tag("else") + self.block(depth + 1) if self.chance(0.25) else ""
            return self.tag("for %s in %s%s" % (target, src, cond)) + body + else_part + self.tag("endfor")
        if r <= 18:
            var = self.pick(["v", "w", "s", "n", "content"])
            return self.tag("set %s = %s" % (var, self.any()))
        if r == 19:
            return self.tag("set ns = namespace(count=0, text='')") + self.text() + self.tag("set ns.count = ns.count + 1") + self.out("ns.count")
        if r == 20:
            return self.tag("set blk%s" % self.pick(["", " | trim", " | upper | replace('A', 'x')"])) + self.block(depth + 1) + self.tag("endset") + self.out("blk")
        if r == 21:
            name = "mac%d" % len(self.macros)
            params = self.pick(["", "a", "a, b='dflt'", "a=1, b=2"])
            body = self.block(depth + 1) + self.out(self.pick(["a", "b", "varargs", "kwargs", "caller is defined"]) if params else "'m'")
            self.macros.append(name)
            return self.tag("macro %s(%s)" % (name, params)) + body + self.tag("endmacro") + self.out("%s(%s)" % (name, self.pick(["", "1", "'x', 'y'", "b=3", "1, 2, 3"])))
        if r == 22:
            # {% raw %} takes "-%}" or "%}" (not "+%}") as its end
            raw_open = "{%" + self.pick(["", "-", "+"]) + self.pick([" ", ""]) + "raw" + self.pick([" ", ""]) + self.pick(["%}", "-%}"])
            return raw_open + self.pick(["{{ not parsed }}", "{% if %}", " plain \n", "\n  x{#"]) + self.tag("endraw")
        if r == 23:
            return self.tag("filter %s" % self.pick(["upper", "trim", "replace('a', 'b')", "indent(2)"])) + self.block(depth + 1) + self.tag("endfilter")
        if r == 24:
            return self.tag("with %s" % self.pick(["a = 1", "a = s, b = n"])) + self.block(depth + 1) + self.out("a") + self.tag("endwith")
        if r == 25 and self.chance(0.5):
            return self.tag("if %s" % self.b()) + self.out("raise_exception(%s)" % self.str_lit()) + self.tag("endif")
        if r == 26:
            return self.tag("generation") + self.block(depth + 1) + self.tag("endgeneration")
        if r == 28:
            return self.tag("macro wrap%d(x='w')" % len(self.macros)) + "[" + self.out("caller(x)") + "]" + self.tag("endmacro") + \
                self.tag("call(y) wrap%d(%s)" % (len(self.macros), self.pick(["", "1", "s"]))) + self.block(depth + 1) + self.out("y") + self.tag("endcall")
        if r == 29:
            return self.tag("set p, q = %s" % self.pick(["1, 2", "'ab'", "[s, n]", "d.items()|first", "(1,)"])) + self.out("p ~ q")
        if r == 30:
            return self.tag("print %s" % self.any())
        if r == 28:
            return self.tag("macro wrap%d(x='w')" % len(self.macros)) + "[" + self.out("caller(x)") + "]" + self.tag("endmacro") + \
                self.tag("call(y) wrap%d(%s)" % (len(self.macros), self.pick(["", "1", "s"]))) + self.block(depth + 1) + self.out("y") + self.tag("endcall")
        if r == 29:
            return self.tag("set p, q = %s" % self.pick(["1, 2", "'ab'", "[s, n]", "d.items()|first", "(1,)"])) + self.out("p ~ q")
        if r == 30:
            return self.tag("print %s" % self.any())
        if r == 27:
            return self.tag("set m_count = namespace(n=0)") + self.tag("for m in messages") + self.tag("if m.role == 'user'") + \
                self.tag("set m_count.n = m_count.n + 1") + self.tag("endif") + self.tag("endfor") + self.out("m_count.n")
        return self.out(self.any())

    def template(self):
        self.macros = []
        t = self.block(0)
        if self.chance(0.04):
            # a syntax error: an unclosed block, a stray end tag or a bad token
            t += self.pick(["{% if true %}", "{% endfor %}", "{{ 1 + }}", "{{ 'abc }}", "{% for x in %}{% endfor %}",
                            "{% set %}", "{{ x | }}", "{% macro m( %}", "{{ (1, 2 }}", "{% unknowntag %}", "{#", "{% raw %}x"])
        return t


def variables(rng):
    msgs = []
    for k in range(rng.randint(1, 4)):
        role = rng.choice(ROLES) if k else rng.choice(["system", "user"])
        msgs.append({"role": role, "content": rng.choice(WORDS)})
    return {
        "messages": msgs,
        "s": rng.choice(WORDS), "s2": rng.choice(WORDS),
        "n": rng.choice([0, 1, 3, 7, -2, 12]), "n2": rng.choice([1, 2, 4, 10]),
        "f": rng.choice([0.5, 2.0, -1.25, 3.14159, 1e-5, 12345678.9, 0.1]),
        "b": rng.choice([True, False]), "none_v": None,
        "lst": [1, "two", 3.0, None, True, [1, 2], {"k": "v"}][: rng.randint(0, 7)],
        "lst_i": rng.sample([5, 3, 8, 1, 9, 2], rng.randint(0, 6)),
        "words": rng.sample(["beta", "Alpha", "gamma", "alpha", "Beta", "délta", "Zeta"], rng.randint(0, 5)),
        "d": {"name": rng.choice(WORDS), "b": 2, "a": [1, 2], "z": None},
        "nested": {"items_list": [{"name": "x", "v": 1}, {"name": "y", "v": 2}], "k": {"deep": "yes"}},
        "add_generation_prompt": rng.choice([True, False]),
    }


def main():
    seed, count, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    rng = random.Random(seed)
    gen = Gen(rng)
    cases = [{"template": gen.template(), "variables": variables(rng)} for _ in range(count)]
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"cases": cases}, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
