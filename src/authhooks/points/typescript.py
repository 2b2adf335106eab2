"""TypeScript declarations of what a JavaScript hook of a point receives, for
editors (``// @ts-check`` with a ``.d.ts`` beside the hook, or an editor's
completion): the arguments of Auth0's Hooks convention with its callback, the
``event`` and camelCase ``api`` of its Actions convention, and the error globals.

They are derived from the arguments a hook of the point really receives (built
from the point's sample event by its own conventions), as the completion hints
are, so they cannot drift from them. Values a sample leaves empty or null, and
metadata and claims (whatever their owners keep there), are typed loosely
(``unknown``), never wrongly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_INDENT = "  "

ERROR_GLOBALS = """\
/** Refuses the request: invalid_request at the token endpoint. */
declare class InvalidRequestError extends Error {
  constructor(message?: string);
}
/** Refuses the request: invalid_scope at the token endpoint. */
declare class InvalidScopeError extends Error {
  constructor(message?: string);
}
/** Fails the request: server_error at the token endpoint. */
declare class ServerError extends Error {
  constructor(message?: string);
}
/** Refuses a sign-up: the log's message, and what the person signing up is shown. */
declare class PreUserRegistrationError extends Error {
  constructor(logMessage?: string, userMessage?: string);
  userMessage: string | null;
}
/** Refuses a sign-in (post-login): access_denied at the application's callback. */
declare class UnauthorizedError extends Error {
  constructor(message?: string);
}
/** Refuses the call of a point declared from data, with what its caller is shown. */
declare class HookError extends Error {
  constructor(message?: string, userMessage?: string);
  userMessage: string | null;
}
"""


def type_of(value: Any, depth: int = 0, key: str = "") -> str:
    """The TypeScript type of a JSON value, as a hook receives it (``key``: its name)."""
    if key == "secrets":
        return "Readonly<Record<string, string>>"
    if key.endswith("metadata") or key.endswith("claims"):
        return "Record<string, unknown>"  # whatever the owner keeps there, not the sample's
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        kinds = sorted({type_of(item, depth + 1) for item in value})
        if not kinds or "unknown" in kinds:
            return "unknown[]"
        inner = kinds[0] if len(kinds) == 1 else "(" + " | ".join(kinds) + ")"
        return f"{inner}[]"
    if isinstance(value, Mapping):
        if not value:
            return "Record<string, unknown>"
        return _object(value, depth)
    return "unknown"


def _object(value: Mapping[str, Any], depth: int) -> str:
    pad = _INDENT * (depth + 1)
    lines = ["{"]
    for key, item in value.items():
        name = key if _IDENTIFIER.fullmatch(key) else json.dumps(key)
        lines.append(f"{pad}{name}: {type_of(item, depth + 1, key)};")
    lines.append(_INDENT * depth + "}")
    return "\n".join(lines)


def hooks_declarations(params: list[str], arguments: Mapping[str, Any]) -> str:
    """Auth0 Hooks: each argument's type, the callback, and the function's."""
    lines = [ERROR_GLOBALS]
    for name in params:
        lines.append(f"type {_type_name(name)} = {type_of(arguments.get(name))};\n")
    lines.append(
        "/** Call once: with an error to refuse or fail, or with the result. */\n"
        "type Callback = (error?: Error | null, result?: Record<string, unknown> | null) => void;\n"
    )
    typed = ", ".join(f"{name}: {_type_name(name)}" for name in params)
    lines.append(
        "/** module.exports = function (...) {...}: call cb, or return a promise (an\n"
        " * async function's result is the result; hence any, which both fit). */\n"
        f"type Hook = ({typed}, cb: Callback) => any;\n"
    )
    return "\n".join(lines)


def actions_declarations(
    function: str, event: Mapping[str, Any], api: Mapping[str, list[str]]
) -> str:
    """Auth0 Actions: the event, the ``api`` object (every method records a call and
    returns the api, as Auth0's do), and the handler's type."""
    methods = "\n".join(
        f"{_INDENT}{namespace}: {{\n"
        + "".join(f"{_INDENT * 2}{method}(...args: unknown[]): Api;\n" for method in names)
        + f"{_INDENT}}};"
        for namespace, names in api.items()
    )
    return "\n".join(
        [
            ERROR_GLOBALS,
            f"interface Event {type_of(event)}\n",
            f"interface Api {{\n{methods}\n}}\n" if methods else "interface Api {}\n",
            f"/** exports.{function} = async (event, api) => {{...}} */\n"
            "type Handler = (event: Event, api: Api) => Promise<void>;\n",
        ]
    )


def _type_name(param: str) -> str:
    """``client`` -> ``Client``; ``access_token`` -> ``AccessToken``."""
    return "".join(word.capitalize() for word in param.split("_"))
