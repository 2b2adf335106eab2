"""POST /git/webhooks/{source_id}: a git host's push webhook (docs/git.md).

Outside /api/v2 and authenticated only by its signature (gitsync/webhooks.py),
checked in constant time before anything is parsed; a bad or missing one is
401 and nothing is fetched. An unknown source is answered exactly as a bad
signature is (its delivery is checked against a random secret), so that the
webhook tells nobody which source ids exist. A push to the source's branch queues one
deployment (a second delivery of the same delivery id or commit queues
nothing) and is answered 202 at once: the deployment runs in the
background, in whichever server process claims it first.
"""

from __future__ import annotations

from typing import Any

from anyio.to_thread import run_sync
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from authhooks.errors import Conflict, NotFound
from authhooks.gitsync import sources, webhooks
from authhooks.http import BodyTooLarge, read_bounded
from authhooks.storage import models


def _answer(code: int, **body: Any) -> JSONResponse:
    return JSONResponse(body, status_code=code)


async def receive(request: Request) -> JSONResponse:
    services = request.app.state.services
    source_id = request.path_params["source_id"]
    try:
        body = await read_bounded(request.headers, request.stream(), webhooks.MAX_BODY_BYTES)
    except BodyTooLarge:
        return _answer(
            413, error="too_large", message=f"the body exceeds {webhooks.MAX_BODY_BYTES} bytes"
        )

    def load() -> tuple[models.GitSource | None, str]:
        with services.database.session() as session:
            try:
                source = sources.get(session, source_id)
            except NotFound:
                # Checked against a secret nobody knows: refused as any forgery is.
                return None, sources.generate_webhook_secret()
            return source, sources.webhook_secret(services.master_key, source)

    source, secret = await run_sync(load)
    headers = {name.lower(): value for name, value in request.headers.items()}
    try:
        webhooks.verify(headers, body, secret)
    except webhooks.BadSignature as error:
        return _bad_signature(str(error))
    if source is None:  # a random secret matched: it cannot, but never deploy nothing
        return _bad_signature("the signature does not match")
    try:
        delivery = webhooks.read(headers, body)
    except webhooks.BadPayload as error:
        return _answer(400, error="bad_payload", message=str(error))
    if isinstance(delivery, webhooks.Ping):
        return _answer(200, status="pong")
    if isinstance(delivery, webhooks.Other):
        return _answer(202, status="ignored", reason=f"event {delivery.event!r} is not a push")
    wanted = f"refs/heads/{source.branch}"
    if delivery.ref != wanted:
        return _answer(202, status="ignored", reason=f"{delivery.ref} is not {wanted}")
    if delivery.commit is None:
        return _answer(202, status="ignored", reason="the branch was deleted")

    def queue() -> tuple[str, bool]:
        with services.database.session() as session:
            row, new = sources.queue(
                session,
                sources.get(session, source_id),
                trigger="webhook",
                commit=delivery.commit,
                delivery_id=delivery.delivery_id,
                author=delivery.author,
                message=delivery.message,
            )
            return row.id, new

    try:
        deployment_id, new = await run_sync(queue)
    except NotFound:  # deleted since: as unknown as any other id
        return _bad_signature("the signature does not match")
    except Conflict as error:
        return _answer(202, status="duplicate", reason=str(error))
    if not new:
        return _answer(202, status="duplicate", deployment_id=deployment_id)
    services.git_worker.nudge()
    return _answer(202, status="queued", deployment_id=deployment_id)


def _bad_signature(message: str) -> JSONResponse:
    return _answer(401, error="bad_signature", message=message)


def routes() -> list[BaseRoute]:
    return [Route("/git/webhooks/{source_id}", receive, methods=["POST"])]
