"""Domain errors shared by every layer; the HTTP adapters map each to a status once.
And the one error of starting up that an operator must settle (``StartupError``)."""

from __future__ import annotations


class DomainError(Exception):
    """Base class: ``str(error)`` is a message fit to show the caller."""


class NotFound(DomainError):
    """The named object does not exist."""


class Conflict(DomainError):
    """The change would break a uniqueness rule."""


class InvalidInput(DomainError):
    """The input is well-formed but not acceptable (names an unknown scope, say)."""


class NotSupported(DomainError):
    """The operation is refused for this object (a system API cannot be changed, say)."""


class StartupError(Exception):
    """The server cannot start until an operator changes something; ``str(error)``
    says what, in one line, which the CLI prints before it exits with status 2."""
