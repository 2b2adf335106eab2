"""What hook code imports: the errors a hook raises to refuse or fail a flow.

    from authhooks.hook import PreUserRegistrationError

This module runs inside the sandbox; it uses the standard library only.
"""

from __future__ import annotations


class HookError(Exception):
    """Base of the errors a hook raises on purpose.

    ``message`` goes to the hook's log; ``user_message``, when a point shows
    one, is what the end user sees. ``code`` is the refusal's wire code, which
    each point maps to its caller's error (a token point to an OAuth 2.0 error
    of that name, when it is one the point allows).
    """

    code = "access_denied"

    def __init__(self, message: str = "", user_message: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.user_message = user_message


class InvalidRequestError(HookError):
    """Refuse a token request as ``invalid_request`` (400)."""

    code = "invalid_request"


class InvalidScopeError(HookError):
    """Refuse a token request as ``invalid_scope`` (400)."""

    code = "invalid_scope"


class ServerError(HookError):
    """Fail a token request as ``server_error`` (500)."""

    code = "server_error"


class UnauthorizedError(HookError):
    """Refuse a sign-in (post-login), as Auth0 Rules did: the application's callback
    gets ``error=access_denied`` with ``message`` as its ``error_description``.
    Only post-login honours it; another point treats it as any ``HookError``."""

    code = "access_denied"

    def __init__(self, message: str = "") -> None:
        super().__init__(message)


class PreUserRegistrationError(HookError):
    """Refuse a signup: ``log_message`` is logged, ``user_message`` is shown to the user."""

    def __init__(self, log_message: str = "", user_message: str | None = None) -> None:
        super().__init__(log_message, user_message)
