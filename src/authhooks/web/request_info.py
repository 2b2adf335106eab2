"""What hooks may know of the HTTP request behind a call (``context.request``),
read the same way by every surface that runs a point."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from authhooks.identity.oauth2.request import RequestInfo


def request_info(request: HTTPConnection) -> RequestInfo:
    language = request.headers.get("accept-language", "").split(",")[0].split(";")[0].strip()
    return RequestInfo(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        hostname=request.headers.get("host"),
        language=language or None,
    )
