"""The server's own log lines: one JSON object per line (or plain text, for a
terminal), each carrying the id of the request it belongs to.

Every HTTP request gets an id: the caller's ``X-Request-Id`` when it is a sane
token, else a new one. It is echoed in the response and added to every line
logged while the request runs. One access line per request gives its method,
path (never the query string, which may hold an email), status and duration,
plus what the handler learnt on the way (``note``): the client id, the grant
type, the outcome. Nothing here ever logs a body, a header value other than
the request id, a secret or a password.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("authhooks.access")

# The request being served, and what its handlers noted about it.
_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_notes: ContextVar[dict[str, Any] | None] = ContextVar("request_notes", default=None)
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# What a line may carry besides its message: the fields of docs/operations.md.
FIELDS = (
    "request_id",
    "method",
    "path",
    "status",
    "duration_ms",
    "client_id",
    "grant_type",
    "hook_id",
    "point",
    "outcome",
    "admin_id",
)


def note(**fields: Any) -> None:
    """Add ``fields`` (client_id=..., outcome=...) to the current request's access line."""
    notes = _notes.get()
    if notes is not None:
        notes.update(fields)


class RequestIds:
    """ASGI middleware: a request id for each HTTP request, and its access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = _header(scope, b"x-request-id")
        request_id = sent if sent and _SANE_ID.fullmatch(sent) else secrets.token_hex(8)
        id_token = _request_id.set(request_id)
        notes: dict[str, Any] = {}
        notes_token = _notes.set(notes)
        began = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if log.isEnabledFor(logging.INFO):
                # As sent (percent-encoded): a decoded %0A would start a forged line.
                path = scope.get("raw_path", b"").decode("latin-1") or scope["path"]
                log.info(
                    "%s %s %d",
                    scope["method"],
                    path,
                    status,
                    extra={
                        "method": scope["method"],
                        "path": path,
                        "status": status,
                        "duration_ms": round((time.perf_counter() - began) * 1000, 2),
                        **notes,
                    },
                )
            _notes.reset(notes_token)
            _request_id.reset(id_token)


class _WithRequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get()
        return True


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the known fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def logging_config(level: str, fmt: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` document for the server and uvicorn's own loggers."""
    formatter = (
        {"()": JsonLines}
        if fmt == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}
    )
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "default",
        "filters": ["request_id"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": _WithRequestId}},
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "loggers": {
            "authhooks": {"handlers": ["default"], "level": level.upper(), "propagate": False},
            "uvicorn": {"handlers": ["default"], "level": level.upper(), "propagate": False},
            # uvicorn's access lines would repeat ours, without the request id.
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            try:
                return str(value.decode("latin-1"))
            except UnicodeDecodeError:
                return None
    return None
