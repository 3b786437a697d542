"""The Quickbase query language of ``where`` (runQuery, deleteRecords), parsed with a lark grammar.

A query is a tree of clauses ``{fid.OPERATOR.value}`` joined with ``AND`` / ``OR`` and grouped with
parentheses, e.g. ``({'6'.EX.'Smith'}AND{7.GT.10})OR{20.SW.'des_'}``:

* the field id may be quoted (``'6'``) or not (``6``);
* the value may be quoted (``'x'``, a quote inside written ``''`` or ``\\'``), bare (``{3.GT.0}``,
  ``{231.EX.true}``) or empty (``{534.TV.}``);
* operators must be upper case: the real service does not reject ``{6.ex.'x'}``, it silently matches
  nothing, and so does this emulator;
* ``AND`` binds tighter than ``OR``;
* an empty value (``{7.EX.''}``) matches records with no value in the field; ``XEX`` the others;
* dates and timestamps compare chronologically and may be written ISO 8601 (``2024-05-01``,
  ``2024-05-01T10:00:00.000Z``), ``MM-DD-YYYY`` or as epoch milliseconds, so
  ``{2.AF.'2024-05-01T10:00:00.000Z'}`` selects what was modified after that moment.

:func:`compile_where` turns a query (or a list of record ids, the other form ``where`` takes) into a
predicate over stored records (``{fid: value}``). Values compare according to the field's type:
numbers numerically, dates and timestamps chronologically, text case-insensitively.
"""

from __future__ import annotations

import operator
import re
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Callable, Mapping, Optional, Sequence

from lark import Lark, Token, Transformer, Tree
from lark.exceptions import UnexpectedInput, VisitError

from ...api_facts import QUICKBASE_NUMERIC_FIELD_TYPES, QUICKBASE_RECORD_ID_FIELD, QUICKBASE_TIME_FIELD_TYPES

Record = Mapping[int, Any]
Predicate = Callable[[Record], bool]

RECORD_ID_FIELD = QUICKBASE_RECORD_ID_FIELD
MAX_RECORD_IDS = 50_000  # the spec's maxItems for a record-id list

NUMERIC_TYPES = QUICKBASE_NUMERIC_FIELD_TYPES | {"recordid"}
DATE_TYPES = QUICKBASE_TIME_FIELD_TYPES

GRAMMAR = r"""
?start: disjunction
?disjunction: conjunction ("OR" conjunction)*
?conjunction: _operand ("AND" _operand)*
_operand: clause | "(" disjunction ")"
clause: "{" FIELD_ID "." OPERATOR "." VALUE? "}"

FIELD_ID: /\d+/ | /'\d+'/
OPERATOR: /[A-Za-z]+/
VALUE: QUOTED | BARE
QUOTED: /'(?:[^'\\]|''|\\.)*'/
BARE: /[^'}\s][^}]*/

%import common.WS
%ignore WS
"""

_PARSER = Lark(GRAMMAR, parser="lalr")


class QueryError(ValueError):
    """A ``where`` the service would refuse (the app answers 400 with this message)."""


def plain(field_type: str, value: Any) -> Any:
    """A stored value as queries see it: a file attachment by the name of its newest version."""
    if field_type == "file":
        return getattr(value[-1], "file_name", None) if value else None
    return value


def comparable(field_type: str, value: Any) -> Any:
    """A stored or queried value in the form it compares and sorts in for ``field_type``:
    numbers as floats, dates and timestamps as aware datetimes, text case-folded, empty as None
    (an unset checkbox is false)."""
    if field_type == "checkbox" and (value is None or value == ""):
        return False
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, list):
        return [comparable(field_type, item) for item in value]
    if isinstance(value, dict):  # user fields: {"email", "id", "name", "userName"}
        return _casefold(value.get("email") or value.get("id"))
    if field_type in NUMERIC_TYPES:
        return float(value)
    if field_type in DATE_TYPES:
        return _parse_date(str(value))
    if field_type == "checkbox":
        return value if isinstance(value, bool) else _casefold(value) in {"true", "1", "yes"}
    return _casefold(value)


def _parse_date(text: str) -> datetime:
    """Dates as Quickbase accepts them in queries: ISO 8601, ``MM-DD-YYYY`` or epoch milliseconds."""
    if text.isdigit() and len(text) > 8:
        return datetime.fromtimestamp(int(text) / 1000, tz=timezone.utc)
    match = re.fullmatch(r"(\d{1,2})[-/](\d{1,2})[-/](\d{4})", text)
    if match:
        month, day, year = map(int, match.groups())
        return datetime(year, month, day, tzinfo=timezone.utc)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _casefold(value: Any) -> str:
    return "" if value is None else str(value).casefold()


def _text_items(field_type: str, value: Any) -> list[str]:
    """Case-folded text of a value, one item per element of a multi-select value."""
    items = value if isinstance(value, list) else [value]
    return [_casefold(item) for item in items if item is not None]


def _choices(field_type: str, value: Any) -> set[str]:
    """The selected choices: list elements, or the parts of a ``'a; b'`` string."""
    return {part.strip() for item in _text_items(field_type, value) for part in item.split(";")}


def _true_value(field_type: str, value: Any) -> str:
    """The underlying value, compared exactly (TV): a user's id, otherwise the text as stored."""
    if isinstance(value, dict):
        return str(value.get("id") or value.get("email") or "")
    return "" if value is None else str(value)


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    """An ordering test: never true when either side is empty or the two do not compare
    (a multi-select value against a single one)."""

    def test(stored: Any, wanted: Any) -> bool:
        try:
            return stored is not None and wanted is not None and compare(stored, wanted)
        except TypeError:
            return False

    return test


def _any_pair(test: Callable[[str, str], bool]) -> Callable[[Any, Any], bool]:
    return lambda stored, wanted: any(test(s, w) for s in stored for w in wanted)


Convert = Callable[[str, Any], Any]
Test = Callable[[Any, Any], bool]

# operator -> (how both sides are converted for the field type, the test on the converted values)
_OPERATORS: dict[str, tuple[Convert, Test]] = {
    "EX": (comparable, operator.eq),
    "TV": (_true_value, operator.eq),
    "CT": (_text_items, _any_pair(operator.contains)),
    "SW": (_text_items, _any_pair(str.startswith)),
    "HAS": (_choices, _any_pair(operator.eq)),
    "LT": (comparable, _ordered(operator.lt)),
    "LTE": (comparable, _ordered(operator.le)),
    "GT": (comparable, _ordered(operator.gt)),
    "GTE": (comparable, _ordered(operator.ge)),
    "BF": (comparable, _ordered(operator.lt)),
    "OBF": (comparable, _ordered(operator.le)),
    "AF": (comparable, _ordered(operator.gt)),
    "OAF": (comparable, _ordered(operator.ge)),
}
_NEGATIONS = {"XEX": "EX", "XTV": "TV", "XCT": "CT", "XSW": "SW", "XHAS": "HAS"}
OPERATORS = frozenset(_OPERATORS) | frozenset(_NEGATIONS)


def _unquote(token: Optional[Token]) -> str:
    if token is None:
        return ""
    text = str(token).strip()
    if text.startswith("'"):
        return re.sub(r"\\(.)|''", lambda m: m.group(1) or "'", text[1:-1])
    return text


class _Compiler(Transformer):
    """Turns a parse tree into a predicate, checking field ids and values against the table."""

    def __init__(self, field_types: Mapping[int, str]) -> None:
        super().__init__()
        self.field_types = field_types

    def clause(self, children: list[Token]) -> Predicate:
        fid_token, op_token, *value = children
        fid = int(fid_token.strip("'"))
        field_type = self.field_types.get(fid)
        if field_type is None:
            raise QueryError(f'Unknown field with Id "{fid}" in query.')
        op = str(op_token)
        if op.upper() not in OPERATORS:
            raise QueryError(f"Unknown query operator '{op}'.")
        if op != op.upper():
            return lambda record: False  # the real service silently matches nothing
        convert, test = _OPERATORS[_NEGATIONS.get(op, op)]
        negate = op in _NEGATIONS
        text = _unquote(value[0] if value else None)
        try:
            wanted = convert(field_type, text)
        except ValueError as exc:
            raise QueryError(f"Invalid value '{text}' for field {fid} ({field_type}) in query.") from exc
        return lambda record: test(convert(field_type, plain(field_type, record.get(fid))), wanted) != negate

    def conjunction(self, predicates: list[Predicate]) -> Predicate:
        return lambda record: all(p(record) for p in predicates)

    def disjunction(self, predicates: list[Predicate]) -> Predicate:
        return lambda record: any(p(record) for p in predicates)


@lru_cache(maxsize=256)
def parse(query: str) -> Tree:
    """Parse a query string; raises :class:`QueryError` on bad syntax."""
    try:
        return _PARSER.parse(query)
    except UnexpectedInput as exc:
        where = f"position {exc.column}" if exc.column and exc.column > 0 else "the end"
        raise QueryError(f"Invalid query {query!r}: unexpected input at {where}.") from exc


def compile_where(where: Any, field_types: Mapping[int, str]) -> Predicate:
    """A predicate for ``where`` as runQuery/deleteRecords take it: a query string, a list of
    record ids, or nothing (every record). ``field_types`` maps the table's field ids to types."""
    if where is None or where == "":
        return lambda record: True
    if isinstance(where, str):
        try:
            return _Compiler(field_types).transform(parse(where))
        except VisitError as exc:
            raise exc.orig_exc from None
    if isinstance(where, list):
        return _record_id_predicate(where)
    raise QueryError("'where' should be a query string or an array of record ids.")


def _record_id_predicate(record_ids: Sequence[Any]) -> Predicate:
    if not 1 <= len(record_ids) <= MAX_RECORD_IDS:
        raise QueryError(f"'where' should have between 1 and {MAX_RECORD_IDS} record ids.")
    if not all(isinstance(rid, int) and not isinstance(rid, bool) for rid in record_ids):
        raise QueryError("'where' should be a query string or an array of record ids.")
    wanted = frozenset(record_ids)
    return lambda record: record.get(RECORD_ID_FIELD) in wanted
