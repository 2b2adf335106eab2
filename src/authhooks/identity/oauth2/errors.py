"""OAuth 2.0 error responses (RFC 6749 §5.2): one class per error code.

Each class carries its wire code and HTTP status, so one handler renders all
of them and a grant raises the error it means without knowing HTTP.
"""

from __future__ import annotations

import re
from typing import ClassVar

# RFC 6749 §5.2: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
_NOT_ALLOWED_IN_DESCRIPTION = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


class OAuth2Error(Exception):
    error: ClassVar[str] = "server_error"
    status_code: ClassVar[int] = 400

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description

    def headers(self) -> dict[str, str]:
        return {}

    def body(self) -> dict[str, str]:
        # Descriptions may quote the request; anything outside the allowed set becomes "?".
        description = _NOT_ALLOWED_IN_DESCRIPTION.sub("?", self.description)
        return {"error": self.error, "error_description": description}


class InvalidRequestError(OAuth2Error):
    """A parameter is missing, repeated, malformed or unsupported."""

    error = "invalid_request"


class InvalidClientError(OAuth2Error):
    """Client authentication failed (RFC 6749 §5.2): always 401."""

    error = "invalid_client"
    status_code = 401

    def __init__(self, description: str, *, used_basic: bool = False) -> None:
        super().__init__(description)
        self.used_basic = used_basic

    def headers(self) -> dict[str, str]:
        # RFC 6749 §5.2: a client that tried HTTP Basic is answered with a challenge.
        return {"WWW-Authenticate": 'Basic realm="authhooks"'} if self.used_basic else {}


class InvalidGrantError(OAuth2Error):
    """The resource owner's credentials are wrong, or the user may not log in."""

    error = "invalid_grant"


class TooManyAttemptsError(OAuth2Error):
    """Failed logins were throttled: 429 with Retry-After (RFC 6585), Auth0's error code."""

    error = "too_many_attempts"
    status_code = 429

    def __init__(self, description: str, retry_after: int) -> None:
        super().__init__(description)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class UnauthorizedClientError(OAuth2Error):
    """The client is not allowed to use this grant type."""

    error = "unauthorized_client"


class UnsupportedGrantTypeError(OAuth2Error):
    error = "unsupported_grant_type"


class InvalidScopeError(OAuth2Error):
    error = "invalid_scope"


class AccessDeniedError(OAuth2Error):
    """The client has no grant for the audience (Auth0's answer, with Auth0's 403)."""

    error = "access_denied"
    status_code = 403


class InvalidTargetError(OAuth2Error):
    """RFC 8707 §2: the ``resource`` is malformed, unknown, or not granted to the client."""

    error = "invalid_target"


class UnsupportedResponseTypeError(OAuth2Error):
    """RFC 6749 §4.1.2.1: only ``code`` is served (OAuth 2.1 drops the implicit flow)."""

    error = "unsupported_response_type"


class LoginRequiredError(OAuth2Error):
    """OIDC Core §3.1.2.6: ``prompt=none``, and nobody is signed in (or not recently enough)."""

    error = "login_required"


class ConsentRequiredError(OAuth2Error):
    """OIDC Core §3.1.2.6: ``prompt=none``, and the person has not consented yet."""

    error = "consent_required"


class RequestNotSupportedError(OAuth2Error):
    """OIDC Core §6: request objects are not supported."""

    error = "request_not_supported"


class RequestUriNotSupportedError(OAuth2Error):
    error = "request_uri_not_supported"


class UnsupportedTokenTypeError(OAuth2Error):
    """RFC 7009 §2.2.1: the server cannot revoke tokens of this type hint."""

    error = "unsupported_token_type"


class ServerError(OAuth2Error):
    error = "server_error"
    status_code = 500


class TemporarilyUnavailableError(OAuth2Error):
    error = "temporarily_unavailable"
    status_code = 503


# The errors a token point's refusal may name (points/token.py, DENIAL_CODES and
# server_error for failures): each is raised as the class of that wire code.
_REFUSALS: dict[str, type[OAuth2Error]] = {
    error.error: error
    for error in (InvalidRequestError, InvalidScopeError, ServerError, AccessDeniedError)
}


def refused(error: str, description: str) -> OAuth2Error:
    """The OAuth 2.0 error a refusing flow answers with (server_error for any other code)."""
    return _REFUSALS.get(error, ServerError)(description)
