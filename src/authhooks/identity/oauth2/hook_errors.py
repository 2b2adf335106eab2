"""How a refusing hook flow becomes an OAuth 2.0 error at the token endpoint."""

from __future__ import annotations

from authhooks.identity.oauth2.errors import (
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    ServerError,
)
from authhooks.points.flow import Refusal
from authhooks.runtime.outcome import HookRaised

_ON_PURPOSE: dict[str, type[OAuth2Error]] = {
    "InvalidScopeError": InvalidScopeError,
    "InvalidRequestError": InvalidRequestError,
    "ServerError": ServerError,
}


def refusal_error(refusal: Refusal) -> OAuth2Error:
    """The hook's own error when it raised one on purpose, described by its user_message
    (else its message); otherwise a server_error naming the hook and what went wrong,
    never a traceback or a path."""
    failure = refusal.failure
    if isinstance(failure, HookRaised) and failure.is_hook_error and failure.type in _ON_PURPOSE:
        description = failure.user_message or failure.message
        return _ON_PURPOSE[failure.type](description or f"refused by hook {refusal.hook.name!r}")
    return ServerError(f"hook {refusal.hook.name!r} failed: {failure.kind.replace('_', ' ')}")
