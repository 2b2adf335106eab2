"""Domain errors shared by every layer; the HTTP adapters map each to a status once.
And the one error of starting up that an operator must settle (``StartupError``)."""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """Base class: ``str(error)`` is a message fit to show the caller; ``status`` and
    ``code`` are how the management API answers it (Auth0's ``errorCode``)."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "invalid_request"


class NotFound(DomainError):
    """The named object does not exist."""

    status = 404
    code = "inexistent_resource"


class Conflict(DomainError):
    """The change would break a uniqueness rule."""

    status = 409
    code = "conflict"


class InvalidInput(DomainError):
    """The input is well-formed but not acceptable (names an unknown scope, say)."""

    code = "invalid_body"


class NotSupported(DomainError):
    """The operation is refused for this object (a system API cannot be changed, say)."""

    code = "operation_not_supported"


class StartupError(Exception):
    """The server cannot start until an operator changes something; ``str(error)``
    says what, in one line, which the CLI prints before it exits with status 2."""
