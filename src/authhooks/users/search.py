"""User search: the query syntax of Auth0's user search (its v3 engine, Lucene's
syntax), parsed and checked before anything is read, then answered in two steps —
a SQL condition that narrows the candidates (``narrowing``; never drops a match)
and an exact test of each (``matches``).

What a query may say (docs/users.md, "Search"):

- ``field:value`` — equal; ``field:"a phrase"`` — equal to the phrase. The profile
  fields (email, name, nickname, given_name, family_name, username) and the
  address's domain (``email.domain``) compare in any case; others as written.
- ``*`` and ``?`` in a value — any characters, one character; not on
  user_metadata, and a value starting with ``*`` needs three characters more.
- ``field:[a TO b]`` (bounds included), ``{a TO b}`` (left out), ``*`` for an open
  end — numbers and times (ISO 8601), app_metadata values too.
- ``app_metadata.a.b:value`` / ``user_metadata.a.b:value`` — a value at that path;
  arrays on the way are looked through (``addresses.city`` finds any address's).
- ``_exists_:field`` — the field has a value.
- ``AND``, ``OR``, ``NOT`` (capitalised), ``-`` before a term, and parentheses.
  Terms side by side are joined by OR, as in Lucene, except a negated one (AND).
- A word without a field — part of the email, username or a name, as the
  dashboard's search box means it.

Anything else (an unknown field, a value of the wrong type, a bad range) is an
``InvalidInput`` that says what, never an empty answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy.sql.elements import ColumnElement

from authhooks.errors import InvalidInput
from authhooks.storage import models

MAX_QUERY_LENGTH = 1000
MAX_TERMS = 50

# Fields by how their values compare.
_FOLDED = frozenset(
    {"email", "name", "nickname", "given_name", "family_name", "username", "email.domain"}
)
_TEXT = frozenset(
    {
        "user_id",
        "phone_number",
        "picture",
        "identities.connection",
        "identities.provider",
        "identities.user_id",
    }
)
_BOOLEAN = frozenset({"email_verified", "blocked", "phone_verified"})
_NUMBER = frozenset({"logins_count"})
_TIME = frozenset({"created_at", "updated_at", "last_login", "last_password_reset"})
_METADATA = ("app_metadata", "user_metadata")
SEARCHABLE = [
    *sorted(_FOLDED | _TEXT | _BOOLEAN | _NUMBER | _TIME),
    "app_metadata.<path>",
    "user_metadata.<path>",
]
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_$-]+)*")
_BARE = "_bare_"  # a term without a field
_EXISTS = "_exists_"


# --- the query as parsed ------------------------------------------------------


@dataclass(frozen=True)
class Range:
    low: Any  # None: open
    high: Any
    low_included: bool
    high_included: bool


@dataclass(frozen=True)
class Term:
    field: str
    value: str  # as written (quotes and escapes removed)
    pattern: bool = False  # holds * or ? meant as wildcards
    range: Range | None = None


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class All:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Any_:
    operands: tuple[Node, ...]


Node = Term | Not | All | Any_


# --- reading the query ---------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # "(", ")", "AND", "OR", "NOT", "term"
    term: Term | None = None


def parse(query: str) -> Node:
    """The query as a tree of terms; InvalidInput saying what is wrong otherwise."""
    if len(query) > MAX_QUERY_LENGTH:
        raise InvalidInput(f"q must be at most {MAX_QUERY_LENGTH} characters")
    tokens = list(_tokens(query))
    if not tokens:
        raise InvalidInput("q is empty")
    if sum(token.kind == "term" for token in tokens) > MAX_TERMS:
        raise InvalidInput(f"q may hold at most {MAX_TERMS} terms")
    parser = _Parser(tokens)
    node = parser.any_of()
    if parser.position != len(tokens):
        raise InvalidInput(f"q: unexpected {tokens[parser.position].kind!r}")
    return node


def _tokens(query: str) -> Iterator[_Token]:
    position = 0
    while position < len(query):
        char = query[position]
        if char.isspace():
            position += 1
        elif char in "()":
            yield _Token(char)
            position += 1
        elif char == "-" and position + 1 < len(query) and not query[position + 1].isspace():
            yield _Token("NOT")
            position += 1
        else:
            term, position = _term(query, position)
            if term.field == _BARE and not term.pattern and term.value in ("AND", "OR", "NOT"):
                yield _Token(term.value)
            else:
                yield _Token("term", term)


def _term(query: str, start: int) -> tuple[Term, int]:
    field = _BARE
    matched = _FIELD.match(query, start)
    if matched and matched.end() < len(query) and query[matched.end()] == ":":
        field = matched.group()
        start = matched.end() + 1
        if start >= len(query) or query[start].isspace():
            raise InvalidInput(f"q: {field}: needs a value")
    if field == _EXISTS:
        value, end = _word(query, start)
        return Term(_EXISTS, value), end
    if query[start] == '"':
        value, end = _quoted(query, start)
        return Term(field, value), end
    if query[start] in "[{":
        found, end = _range(query, start)
        return Term(field, "", range=found), end
    value, end = _word(query, start)
    pattern = any(char in "*?" for char in _unescaped(value))
    return Term(field, _unescape(value) if not pattern else value, pattern), end


def _word(query: str, start: int) -> tuple[str, int]:
    end = start
    while end < len(query) and not query[end].isspace() and query[end] not in "()":
        end += 2 if query[end] == "\\" else 1
    word = query[start:end]
    if not word:
        raise InvalidInput("q: a term is missing")
    return word, min(end, len(query))


def _quoted(query: str, start: int) -> tuple[str, int]:
    end = start + 1
    chars: list[str] = []
    while end < len(query) and query[end] != '"':
        if query[end] == "\\" and end + 1 < len(query):
            end += 1
        chars.append(query[end])
        end += 1
    if end >= len(query):
        raise InvalidInput('q: a phrase has no closing "')
    return "".join(chars), end + 1


def _range(query: str, start: int) -> tuple[Range, int]:
    close = min((i for i in (query.find("]", start), query.find("}", start)) if i >= 0), default=-1)
    if close < 0:
        raise InvalidInput("q: a range has no closing ] or }")
    inside = query[start + 1 : close].split()
    if len(inside) != 3 or inside[1] != "TO":
        raise InvalidInput("q: a range is written [low TO high], with * for an open end")
    low, high = (None if bound == "*" else _unescape(bound.strip('"')) for bound in inside[::2])
    return Range(low, high, query[start] == "[", query[close] == "]"), close + 1


def _unescaped(value: str) -> str:
    """The characters of ``value`` that no backslash escapes."""
    return re.sub(r"\\.", "", value)


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


class _Parser:
    """or := and (["OR"] and)*;  and := unary ("AND" unary)*;  unary := "NOT" unary |
    "(" or ")" | term. Side by side is OR, except before a negated term (AND)."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.position = 0

    def _peek(self) -> str | None:
        return self.tokens[self.position].kind if self.position < len(self.tokens) else None

    def any_of(self) -> Node:
        operands = [self.all_of()]
        while self._peek() not in (None, ")"):
            if self._peek() == "OR":
                self.position += 1
            elif self._peek() == "NOT":  # "a -b": a, and not b
                operands[-1] = All((operands[-1], self.unary()))
                continue
            operands.append(self.all_of())
        return operands[0] if len(operands) == 1 else Any_(tuple(operands))

    def all_of(self) -> Node:
        operands = [self.unary()]
        while self._peek() == "AND":
            self.position += 1
            operands.append(self.unary())
        return operands[0] if len(operands) == 1 else All(tuple(operands))

    def unary(self) -> Node:
        kind = self._peek()
        if kind is None:
            raise InvalidInput("q ends where a term was expected")
        self.position += 1
        if kind == "NOT":
            return Not(self.unary())
        if kind == "(":
            node = self.any_of()
            if self._peek() != ")":
                raise InvalidInput("q: a ( is not closed")
            self.position += 1
            return node
        token = self.tokens[self.position - 1]
        if token.term is None:
            raise InvalidInput(f"q: unexpected {kind!r}")
        return _checked(token.term)


def _checked(term: Term) -> Term:
    """The term, if its field is searchable and its value fits the field."""
    field = term.field
    if field == _EXISTS:
        _kind(term.value)
        return term
    if field == _BARE:
        if term.range is not None:
            raise InvalidInput("q: a range needs a field")
        return term
    kind = _kind(field)
    if term.pattern:
        if kind in ("boolean", "number", "time") or field.startswith("user_metadata."):
            raise InvalidInput(f"q: {field} does not take wildcards")
        literal = term.value.replace("*", "").replace("?", "")
        if term.value.startswith(("*", "?")) and len(literal) < 3:
            raise InvalidInput(f"q: {field}:{term.value}: a leading wildcard needs 3 characters")
    if term.range is not None:
        if kind not in ("number", "time") and not field.startswith("app_metadata."):
            raise InvalidInput(f"q: {field} does not take ranges")
        for bound in (term.range.low, term.range.high):
            if bound is not None:
                _typed(field, kind, bound)
        return term
    if not term.pattern:
        _typed(field, kind, term.value)
    return term


def _kind(field: str) -> str:
    if field in _FOLDED:
        return "folded"
    if field in _TEXT:
        return "text"
    if field in _BOOLEAN:
        return "boolean"
    if field in _NUMBER:
        return "number"
    if field in _TIME:
        return "time"
    if field.split(".", 1)[0] in _METADATA and "." in field:
        return "metadata"
    raise InvalidInput(f"q: cannot search by {field!r}; searchable fields: {', '.join(SEARCHABLE)}")


def _typed(field: str, kind: str, value: str) -> Any:
    if kind == "boolean":
        if value not in ("true", "false"):
            raise InvalidInput(f"q: {field} is true or false")
        return value == "true"
    if kind == "number":
        try:
            return int(value)
        except ValueError:
            raise InvalidInput(f"q: {field} is a whole number") from None
    if kind == "time":
        return _time(field, value)
    return value


def _time(field: str, value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"q: {field} takes an ISO 8601 date or time") from None
    if parsed.tzinfo is None:  # a date, or a time without a zone: UTC's
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# --- narrowing in the database ----------------------------------------------------


def narrowing(node: Node, email_forms: Callable[[str], list[str]]) -> ColumnElement[bool] | None:
    """A SQL condition every match meets (None: no narrowing). ``email_forms`` gives
    the stored spellings an address stands for."""
    if isinstance(node, All):
        found = [n for n in (narrowing(o, email_forms) for o in node.operands) if n is not None]
        return and_(*found) if found else None
    if isinstance(node, Any_):
        each = [narrowing(o, email_forms) for o in node.operands]
        return None if any(n is None for n in each) else or_(*each)  # type: ignore[arg-type]
    if isinstance(node, Not) or node.pattern:
        return None
    user = models.User
    if node.range is not None:
        column = {"logins_count": user.logins_count, "created_at": user.created_at,
                  "updated_at": user.updated_at, "last_login": user.last_login,
                  "last_password_reset": user.last_password_reset}.get(node.field)  # fmt: skip
        if column is None:
            return None
        kind = _kind(node.field)
        bounds = []
        if node.range.low is not None:
            low = _typed(node.field, kind, node.range.low)
            bounds.append(column >= low if node.range.low_included else column > low)
        if node.range.high is not None:
            high = _typed(node.field, kind, node.range.high)
            bounds.append(column <= high if node.range.high_included else column < high)
        return and_(column.is_not(None), *bounds)
    if node.field == "user_id":
        return user.id == node.value
    if node.field == "email":
        return user.email.in_(email_forms(node.value))
    if node.field in _BOOLEAN:
        return getattr(user, node.field) == (node.value == "true")  # type: ignore[no-any-return]
    if node.field == "logins_count":
        return user.logins_count == int(node.value)
    return None


# --- the exact test -------------------------------------------------------------------


def matches(node: Node, user: dict[str, Any], email_forms: Callable[[str], list[str]]) -> bool:
    """Whether the user (as the API shows it) matches the query."""
    if isinstance(node, All):
        return all(matches(operand, user, email_forms) for operand in node.operands)
    if isinstance(node, Any_):
        return any(matches(operand, user, email_forms) for operand in node.operands)
    if isinstance(node, Not):
        return not matches(node.operand, user, email_forms)
    if node.field == _EXISTS:
        return any(_present(value) for value in _values(user, node.value))
    if node.field == _BARE:
        return _part_of(node, user, email_forms)
    if node.field == "email" and not node.pattern:
        return user["email"] in email_forms(node.value)
    return any(_value_matches(node, value) for value in _values(user, node.field))


def _values(user: dict[str, Any], field: str) -> list[Any]:
    """The values at a field's path: several when arrays are on the way."""
    if field == "email.domain":
        return [user["email"].rpartition("@")[2]]
    if field.startswith("identities."):
        key = field.split(".", 1)[1]
        return [identity.get(key) for identity in user["identities"]]
    found: list[Any] = [user]
    for key in field.split("."):
        found = [item.get(key) for item in _flat(found) if isinstance(item, dict)]
    return list(_flat(found))


def _flat(values: list[Any]) -> Iterator[Any]:
    for value in values:
        if isinstance(value, list):
            yield from _flat(value)
        else:
            yield value


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != {} and value != []


def _value_matches(term: Term, value: Any) -> bool:
    if value is None or isinstance(value, dict):
        return False
    if term.range is not None:
        return _in_range(term, value)
    if isinstance(value, bool):
        return term.value == ("true" if value else "false")
    if isinstance(value, int | float):
        try:
            return float(term.value) == value
        except ValueError:
            return False
    if isinstance(value, datetime):
        return _time(term.field, term.value) == value
    text, wanted = str(value), term.value
    if term.field in _FOLDED:
        text, wanted = text.casefold(), wanted.casefold()
    if term.pattern:
        return _glob(wanted).fullmatch(text) is not None
    return text == wanted


def _in_range(term: Term, value: Any) -> bool:
    assert term.range is not None
    bounds = term.range
    kind = _kind(term.field)
    if kind == "metadata":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return False

        def typed(bound: str) -> Any:
            if isinstance(value, str):
                return bound
            try:
                return float(bound)
            except ValueError:
                return None

    else:

        def typed(bound: str) -> Any:
            return _typed(term.field, kind, bound)

    if bounds.low is not None:
        low = typed(bounds.low)
        if low is None or (value < low if bounds.low_included else value <= low):
            return False
    if bounds.high is not None:
        high = typed(bounds.high)
        if high is None or (value > high if bounds.high_included else value >= high):
            return False
    return True


def _glob(pattern: str) -> re.Pattern[str]:
    """``*`` and ``?`` as wildcards, any other character (escaped ones too) as itself."""
    parts = re.split(r"(\\.|\*|\?)", pattern)
    regex = "".join(
        ".*" if part == "*" else "." if part == "?" else re.escape(_unescape(part))
        for part in parts
    )
    return re.compile(regex, re.DOTALL)


def _part_of(term: Term, user: dict[str, Any], email_forms: Callable[[str], list[str]]) -> bool:
    """A word without a field: part of the email or username (in every form an
    address takes), or of a name, in any case; with wildcards, a part they match."""
    texts = [user.get(key) or "" for key in ("name", "nickname", "given_name", "family_name")]
    if term.pattern:
        part = _glob(term.value.casefold())
        return any(part.search(text.casefold()) for text in [user["email"], *texts])
    for key in ("email", "username"):
        if user.get(key) and any(form in user[key] for form in email_forms(term.value)):
            return True
    folded = term.value.casefold()
    return any(folded in text.casefold() for text in texts)
