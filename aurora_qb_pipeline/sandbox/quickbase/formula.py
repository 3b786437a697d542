"""A subset of Quickbase's formula language, enough for formula-URL buttons and simple numbers.

Formula fields (``mode: "formula"``) are computed when read and are read-only. The sandbox
evaluates (sandbox subset; other formulas are refused when created through the API):

* text literals ``"..."``, numbers, field references by label ``[Record ID#]``;
* ``&`` (text concatenation; a blank is ``""``), ``+ - * /`` (a blank operand or a division by
  zero gives a blank), parentheses;
* ``ToText(x)``, ``URLEncode(x)``, ``Nz(x[, default])``, ``URLRoot()`` (``https://<realm>/``),
  ``Dbid()`` (the table id) and ``AppID()``.

For example ``URLRoot() & "db/" & Dbid() & "?a=dr&rid=" & ToText([Record ID#])`` or
``"https://hooks.example/create?rid=" & URLEncode(ToText([Record ID#]))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Mapping, Optional
from urllib.parse import quote

from lark import Lark, Token, Transformer, Tree
from lark.exceptions import LarkError, VisitError

GRAMMAR = r"""
?start: concat
?concat: additive | concat "&" additive -> cat
?additive: term | additive "+" term -> add | additive "-" term -> sub
?term: unary | term "*" unary -> mul | term "/" unary -> div
?unary: atom | "-" unary -> neg
?atom: STRING -> string
     | SIGNED_NUMBER -> number
     | FIELD -> field
     | NAME "(" [concat ("," concat)*] ")" -> call
     | "(" concat ")"

STRING: /"(?:[^"\\]|\\.)*"/
FIELD: /\[[^\]]+\]/
NAME: /[A-Za-z][A-Za-z0-9]*/

%import common.SIGNED_NUMBER
%import common.WS
%ignore WS
"""

_PARSER = Lark(GRAMMAR, parser="lalr")


class FormulaError(ValueError):
    """A formula the sandbox cannot evaluate (bad syntax, unknown field or function)."""


@dataclass(frozen=True)
class FormulaContext:
    """What a formula sees when evaluated for one record."""

    values: Mapping[int, Any]  # the record, derived fields included
    table_id: str
    app_id: str
    realm: str


Evaluator = Callable[[FormulaContext], Any]


def to_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _arithmetic(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def apply(left: Any, right: Any) -> Any:
        if left is None or right is None:
            return None
        try:
            return op(float(left), float(right))
        except (ZeroDivisionError, TypeError, ValueError):
            return None

    return apply


_OPERATORS = {
    "cat": lambda left, right: to_text(left) + to_text(right),
    "add": _arithmetic(lambda a, b: a + b),
    "sub": _arithmetic(lambda a, b: a - b),
    "mul": _arithmetic(lambda a, b: a * b),
    "div": _arithmetic(lambda a, b: a / b),
}
_FUNCTIONS: dict[str, tuple[range, Callable[..., Any]]] = {
    "totext": (range(1, 2), lambda ctx, x: to_text(x)),
    "urlencode": (range(1, 2), lambda ctx, x: quote(to_text(x), safe="")),
    "nz": (range(1, 3), lambda ctx, x, default=0: default if x is None or x == "" else x),
    "urlroot": (range(0, 1), lambda ctx: f"https://{ctx.realm}/"),
    "dbid": (range(0, 1), lambda ctx: ctx.table_id),
    "appid": (range(0, 1), lambda ctx: ctx.app_id),
}


class _Compiler(Transformer):
    def __init__(self, field_ids: Mapping[str, int]) -> None:
        super().__init__()
        self.field_ids = {label.casefold(): fid for label, fid in field_ids.items()}

    def string(self, children: list[Token]) -> Evaluator:
        text = bytes(str(children[0])[1:-1], "utf-8").decode("unicode_escape")
        return lambda ctx: text

    def number(self, children: list[Token]) -> Evaluator:
        value = float(children[0])
        return lambda ctx: value

    def field(self, children: list[Token]) -> Evaluator:
        label = str(children[0])[1:-1]
        fid = self.field_ids.get(label.casefold())
        if fid is None:
            raise FormulaError(f"The formula refers to an unknown field [{label}].")
        return lambda ctx: ctx.values.get(fid)

    def neg(self, children: list[Evaluator]) -> Evaluator:
        inner = children[0]
        return lambda ctx: None if (value := inner(ctx)) is None else -float(value)

    def call(self, children: list[Any]) -> Evaluator:
        name, *args = children
        args = [arg for arg in args if arg is not None]
        arity, function = _FUNCTIONS.get(str(name).casefold(), (None, None))
        if function is None:
            raise FormulaError(f"The sandbox does not evaluate the formula function {name}().")
        if len(args) not in arity:
            raise FormulaError(f"Wrong number of arguments for {name}().")
        return lambda ctx: function(ctx, *(arg(ctx) for arg in args))

    def __default__(self, data: str, children: list[Any], meta: Any) -> Any:
        operator = _OPERATORS.get(data)
        if operator is None:
            return Tree(data, children, meta)
        left, right = children
        return lambda ctx: operator(left(ctx), right(ctx))


@lru_cache(maxsize=256)
def _parse(text: str) -> Tree:
    try:
        return _PARSER.parse(text)
    except LarkError as exc:
        raise FormulaError(f"The formula cannot be parsed: {text!r}.") from exc


def compile_formula(text: str, field_ids: Mapping[str, int]) -> Evaluator:
    """An evaluator for ``text``; ``field_ids`` maps the table's field labels to ids.
    Raises :class:`FormulaError` for what the sandbox cannot evaluate."""
    try:
        return _Compiler(field_ids).transform(_parse(text))
    except VisitError as exc:
        raise exc.orig_exc from None


def evaluate(text: str, field_ids: Mapping[str, int], context: FormulaContext) -> Optional[Any]:
    """The value of a formula for one record; blank (None) when it cannot be evaluated."""
    try:
        value = compile_formula(text, field_ids)(context)
    except FormulaError:
        return None
    return None if value == "" else value
