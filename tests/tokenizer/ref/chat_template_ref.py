#!/usr/bin/python3
"""Reference renderer for qstudy's chat-template tests: Python's jinja2 (Debian python3-jinja2
3.1) set up the way transformers renders chat templates, without importing transformers.

transformers (utils/chat_template_utils.py, _cached_compile_jinja_template and
render_jinja_template; tokenization_utils_base.py, apply_chat_template):
  env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                      extensions=[AssistantTracker, jinja2.ext.loopcontrols])
  env.filters["tojson"] = json.dumps(x, ensure_ascii=False, indent=None, separators=None,
                                     sort_keys=False) with those keyword arguments
  env.globals["raise_exception"] raises TemplateError(message)
  env.globals["strftime_now"] = datetime.now().strftime(format)
  template.render(messages=chat, tools=tools, documents=documents,
                  add_generation_prompt=add_generation_prompt,
                  **{**special_tokens_map, **kwargs})
where special_tokens_map holds bos_token / eos_token when they are not None.

Usage: chat_template_ref.py IN.json OUT.json
IN is {"cases": [...]}; each case is either
  {"template", "messages", "add_generation_prompt", "bos_token", "eos_token",
   "enable_thinking" (optional), "extra" (object, optional)}   -- apply_chat_template inputs
or
  {"template", "variables"}                                      -- render(**variables)
OUT is a list with, per case, {"output": str} or {"error": str, "raised": bool, "kind": str}
("raised": the template called raise_exception; "kind": "syntax" or "runtime").
"""
import functools
import json
import sys
from datetime import datetime

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.exceptions import TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment


class RaisedByTemplate(TemplateError):
    """What raise_exception raises (transformers raises a plain TemplateError)."""


class GenerationTag(jinja2.ext.Extension):
    """transformers' AssistantTracker as rendering sees it: {% generation %} renders its body."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def raise_exception(message):
    raise RaisedByTemplate(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return datetime.now().strftime(format)


def make_environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def chat_variables(case):
    """The keyword arguments transformers' apply_chat_template passes to render()."""
    extra = dict(case.get("extra") or {})
    kwargs = {}
    if case.get("enable_thinking") is not None:
        kwargs["enable_thinking"] = case["enable_thinking"]
    tools = extra.pop("tools", None)
    documents = extra.pop("documents", None)
    kwargs.update(extra)
    special = {}
    for key in ("bos_token", "eos_token"):
        if case.get(key):
            special[key] = case[key]
    template_kwargs = {**special, **kwargs}
    return dict(messages=case["messages"], tools=tools, documents=documents,
                add_generation_prompt=case.get("add_generation_prompt", False), **template_kwargs)


@functools.lru_cache(maxsize=64)
def compile_template(env, source):
    """Compiled once per distinct text, as transformers' lru_cache'd _compile_jinja_template."""
    return env.from_string(source)


def render_case(env, case):
    try:
        template = compile_template(env, case["template"])
    except TemplateSyntaxError as e:
        return {"error": str(e), "raised": False, "kind": "syntax"}
    except Exception as e:  # noqa: BLE001 -- any failure to compile is an error the C++ side must report too
        return {"error": f"{type(e).__name__}: {e}", "raised": False, "kind": "syntax"}
    variables = case["variables"] if "variables" in case else chat_variables(case)
    try:
        out = template.render(**variables)
    except RaisedByTemplate as e:
        return {"error": str(e), "raised": True, "kind": "runtime"}
    except RecursionError:
        return {"error": "RecursionError", "raised": False, "kind": "runtime"}
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}", "raised": False, "kind": "runtime"}
    try:
        out.encode("utf-8")
    except UnicodeEncodeError as e:
        return {"error": f"UnicodeEncodeError: {e}", "raised": False, "kind": "runtime"}
    return {"output": out}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    env = make_environment()
    results = [render_case(env, case) for case in cases]
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(results, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
