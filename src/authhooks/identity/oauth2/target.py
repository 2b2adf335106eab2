"""Which API a token request is for: Auth0's ``audience``, or RFC 8707's ``resource``
(the same identifier; a request may send both only when they agree)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from authhooks.identity.oauth2.errors import (
    AccessDeniedError,
    InvalidRequestError,
    InvalidTargetError,
)


@dataclass(frozen=True)
class Target:
    audience: str
    by_resource: bool  # named by ``resource``: refusals are RFC 8707's invalid_target

    def denied(self, message: str) -> AccessDeniedError | InvalidTargetError:
        """A refusal in the standard of the parameter the client used. Neither answer
        says whether the API exists."""
        return InvalidTargetError(message) if self.by_resource else AccessDeniedError(message)


def requested_target(params: dict[str, str], default_audience: str) -> Target:
    audience, resource = params.get("audience"), params.get("resource")
    if audience and resource and audience != resource:
        raise InvalidRequestError("audience and resource name different APIs: send one")
    if resource and not audience:
        parts = urlsplit(resource)
        if not parts.scheme or parts.fragment or "#" in resource:
            raise InvalidTargetError("resource must be an absolute URI without a fragment")
        return Target(resource, True)
    chosen = audience or default_audience
    if not chosen:
        raise InvalidRequestError("audience is required: name the API the token is for")
    return Target(chosen, False)
