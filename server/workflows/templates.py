"""Templates of a workflow: Jinja2's sandbox with strict undefined names.

A value that is exactly one expression (`"{{ steps.chunks }}"`) evaluates to that object, so lists
and numbers pass between steps unchanged; any other template renders to a string.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, StrictUndefined, nodes
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

# Names a template may use at its top level.
ROOTS = frozenset({"inputs", "steps", "item", "index"})
_SOLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}).)*)\}\}\s*$", re.DOTALL)


# Bounds on what one template expression may build: `"x" * 10**10` would otherwise exhaust memory.
MAX_REPEAT = 1_000_000
MAX_EXPONENT = 1_000
# Compiled templates a job process keeps (a map step renders the same prompt once per item).
_COMPILED = 256
# Methods and filters whose result can be far larger than their input, and how large it will be.
_GROWERS = frozenset({"replace", "center", "ljust", "rjust", "zfill", "expandtabs", "indent", "wordwrap", "join"})


def _grown_size(name: str, subject: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """An upper estimate of the length of `subject.name(*args)` (or of the filter `name`), before
    it is built; 0 where nothing is known."""
    if not isinstance(subject, str):
        if name == "join" and isinstance(subject, list | tuple):
            return sum(len(str(item)) for item in subject) + len(str(args[0] if args else "")) * len(subject)
        return 0
    if name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        count = subject.count(args[0]) if args[0] else len(subject) + 1
        return len(subject) + count * max(0, len(args[1]) - len(args[0]))
    if name in ("center", "ljust", "rjust", "zfill") and args and isinstance(args[0], int):
        return max(len(subject), args[0])
    if name == "expandtabs":
        size = args[0] if args and isinstance(args[0], int) else kwargs.get("tabsize", 8)
        return len(subject) + subject.count("\t") * max(0, int(size))
    if name == "indent":
        width = args[0] if args else kwargs.get("width", 4)
        per_line = len(width) if isinstance(width, str) else int(width) if isinstance(width, int) else 0
        return len(subject) + (subject.count("\n") + 1) * max(0, per_line)
    if name == "join" and args and isinstance(args[0], list | tuple):
        # The method: `subject` is the separator.
        return sum(len(str(item)) for item in args[0]) + len(subject) * len(args[0])
    if name == "join":
        # The filter over a text's characters.
        return len(subject) * (1 + len(str(args[0] if args else "")))
    return 0


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple | dict) else 0


class _Sandbox(SandboxedEnvironment):
    """Jinja2's sandbox, with `*` and `**` bounded, and (for rendering) range() counted and every
    call's and filter's result bounded in length."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, max_loop: int | None = None, max_chars: int | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.max_loop = max_loop
        self.max_chars = max_chars
        self.loop_left = max_loop or 0
        self.compiled: dict[tuple[str, bool], Any] = {}
        if max_loop is not None:
            self.globals["range"] = self._range
        if max_chars is not None:
            for name, function in list(self.filters.items()):
                self.filters[name] = self._bounded_filter(name, function)

    def begin(self) -> None:
        """Give the next render its whole loop budget."""
        self.loop_left = self.max_loop or 0

    def check_size(self, value: Any, what: str) -> Any:
        """`value`, or a SecurityError if it is longer than the template limit."""
        if self.max_chars is not None and _size(value) > self.max_chars:
            raise SecurityError(
                f"{what} would be {_size(value)} long; templates may build at most {self.max_chars}"
                " (setting `workflow_template_max_chars`)"
            )
        return value

    def check_growth(self, name: str, subject: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """A SecurityError before `name` builds a text longer than the template limit."""
        if self.max_chars is None:
            return
        estimate = _grown_size(name, subject, args, kwargs)
        if estimate > self.max_chars:
            raise SecurityError(
                f"`{name}` would build {estimate} characters; templates may build at most {self.max_chars}"
                " (setting `workflow_template_max_chars`)"
            )

    def _range(self, *args: int) -> range:
        items = range(*args)
        if len(items) > self.loop_left:
            raise SecurityError(
                f"range() would yield {len(items)} more items; a template may loop over at most {self.max_loop}"
                " in all (setting `workflow_template_max_loop`)"
            )
        self.loop_left -= len(items)
        return items

    def _bounded_filter(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def bounded(*args: Any, **kwargs: Any) -> Any:
            # Filters that take the environment or context get it first; the subject follows.
            subject_at = 1 if args and isinstance(args[0], Environment | Context | EvalContext) else 0
            if name in _GROWERS and len(args) > subject_at:
                self.check_growth(name, args[subject_at], args[subject_at + 1 :], kwargs)
            return self.check_size(function(*args, **kwargs), f"the result of `{name}`")

        return bounded

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        name = getattr(__obj, "__name__", "")
        if name in _GROWERS:
            __self.check_growth(name, getattr(__obj, "__self__", None), args, kwargs)
        return __self.check_size(super().call(__context, __obj, *args, **kwargs), f"the result of `{name}`")

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent {right} is larger than {MAX_EXPONENT}")
        elif isinstance(left, str | list | tuple) or isinstance(right, str | list | tuple):
            sequence, count = (left, right) if isinstance(left, str | list | tuple) else (right, left)
            limit = min(MAX_REPEAT, self.max_chars or MAX_REPEAT)
            if isinstance(count, int) and len(sequence) * count > limit:
                raise SecurityError(f"repetition would build more than {limit} items")
        return super().call_binop(context, operator, left, right)

    def compile_cached(self, text: str, expression: bool) -> Any:
        """A compiled template (or expression), from a small cache."""
        key = (text, expression)
        found = self.compiled.get(key)
        if found is None:
            found = self.compile_expression(text, undefined_to_none=False) if expression else self.from_string(text)
            if len(self.compiled) >= _COMPILED:
                self.compiled.pop(next(iter(self.compiled)))
            self.compiled[key] = found
        return found


def _tojson(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=False)


def environment() -> SandboxedEnvironment:
    """The sandbox every workflow template is checked in."""
    env = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.filters["tojson"] = _tojson
    return env


@functools.lru_cache(maxsize=4)
def bounded_environment(max_loop: int, max_chars: int) -> _Sandbox:
    """The sandbox templates render in (in a job process): range() items counted against
    `max_loop` per render, and no call, filter or repetition building more than `max_chars`."""
    env = _Sandbox(max_loop, max_chars, undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.filters["tojson"] = env._bounded_filter("tojson", _tojson)
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
    if isinstance(env, _Sandbox):
        env.begin()
    return _render(env, value, context)


def _render(env: SandboxedEnvironment, value: Any, context: dict[str, Any]) -> Any:
    if isinstance(value, str):
        expr = sole_expression(value)
        if expr is not None:
            return _compiled(env, expr, True)(**context)
        return _checked(env, _compiled(env, value, False).render(**context))
    if isinstance(value, list):
        return [_render(env, v, context) for v in value]
    if isinstance(value, dict):
        return {k: _render(env, v, context) for k, v in value.items()}
    return value


def render_text(env: SandboxedEnvironment, text: str, context: dict[str, Any]) -> str:
    """Render a template to a string (prompts are always text)."""
    if isinstance(env, _Sandbox):
        env.begin()
    rendered: str = _compiled(env, text, False).render(**context)
    return _checked(env, rendered)


def _compiled(env: SandboxedEnvironment, text: str, expression: bool) -> Any:
    if isinstance(env, _Sandbox):
        return env.compile_cached(text, expression)
    return env.compile_expression(text, undefined_to_none=False) if expression else env.from_string(text)


def _checked(env: SandboxedEnvironment, rendered: str) -> str:
    if isinstance(env, _Sandbox):
        env.check_size(rendered, "the rendered text")
    return rendered
