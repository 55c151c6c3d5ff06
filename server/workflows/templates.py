"""Templates of a workflow: Jinja2's sandbox with strict undefined names.

A value that is exactly one expression (`"{{ steps.chunks }}"`) evaluates to that object, so lists
and numbers pass between steps unchanged; any other template renders to a string.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

# Names a template may use at its top level.
ROOTS = frozenset({"inputs", "steps", "item", "index"})
_SOLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}).)*)\}\}\s*$", re.DOTALL)


# Bounds on what one template expression may build: `"x" * 10**10` would otherwise exhaust memory.
MAX_REPEAT = 1_000_000
MAX_EXPONENT = 1_000


class _Sandbox(SandboxedEnvironment):
    """Jinja2's sandbox, with `*` and `**` bounded."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent {right} is larger than {MAX_EXPONENT}")
        elif isinstance(left, str | list | tuple) or isinstance(right, str | list | tuple):
            sequence, count = (left, right) if isinstance(left, str | list | tuple) else (right, left)
            if isinstance(count, int) and len(sequence) * count > MAX_REPEAT:
                raise SecurityError(f"repetition would build more than {MAX_REPEAT} items")
        return super().call_binop(context, operator, left, right)


def environment() -> SandboxedEnvironment:
    """The sandbox every workflow template runs in."""
    env = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.filters["tojson"] = lambda value, indent=None: json.dumps(value, indent=indent, ensure_ascii=False)
    return env


def sole_expression(text: str) -> str | None:
    """The expression of a template that is nothing but `{{ expression }}`."""
    match = _SOLE_EXPRESSION.match(text)
    return match.group("expr").strip() if match else None


@dataclass(frozen=True)
class Reference:
    """A name a template reads: `inputs.x`, `steps.y`, `item` or `index`."""

    root: str
    name: str | None


def references(env: SandboxedEnvironment, text: str, expression: bool = False) -> list[Reference]:
    """Every top-level name and `inputs.*` / `steps.*` attribute a template reads; raises
    `jinja2.TemplateSyntaxError` for a template that does not parse."""
    source = "{{ " + text + " }}" if expression else text
    tree = env.parse(source)
    found: list[Reference] = []
    attributed: set[int] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)
        target = node.node
        if isinstance(target, nodes.Name) and target.name in ("inputs", "steps"):
            key = node.attr if isinstance(node, nodes.Getattr) else _const(node.arg)
            if key is not None:
                found.append(Reference(target.name, key))
                attributed.add(id(target))
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load" and id(name) not in attributed and name.name not in assigned:
            found.append(Reference(name.name, None))
    return found


def _const(node: nodes.Node) -> str | None:
    return node.value if isinstance(node, nodes.Const) and isinstance(node.value, str) else None


def render(env: SandboxedEnvironment, value: Any, context: dict[str, Any]) -> Any:
    """Evaluate a templated value: strings as templates (a sole expression keeps its type), lists
    and mappings item by item, anything else as it is."""
    if isinstance(value, str):
        expr = sole_expression(value)
        if expr is not None:
            return env.compile_expression(expr, undefined_to_none=False)(**context)
        return env.from_string(value).render(**context)
    if isinstance(value, list):
        return [render(env, v, context) for v in value]
    if isinstance(value, dict):
        return {k: render(env, v, context) for k, v in value.items()}
    return value


def render_text(env: SandboxedEnvironment, text: str, context: dict[str, Any]) -> str:
    """Render a template to a string (prompts are always text)."""
    return env.from_string(text).render(**context)
