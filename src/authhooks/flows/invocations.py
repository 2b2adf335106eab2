"""Applications invoking the points they declared (``POST /api/v2/points/{id}/invoke``).

The event is checked against the point's schema before any hook runs. A
blocking point runs its flow in the request and answers with the result its
hooks built (checked against the result schema after each hook, so a hook that
breaks the point's promise is that hook's failure, handled by its ``on_error``),
or with a hook's deliberate refusal. A non-blocking point queues one delivery
per enabled hook in the durable queue (flows/deliveries.py: at least once,
retried, surviving a killed process) and answers at once with the event's id.

With an idempotency key (flows/idempotency.py), an answer is given once per key:
the async queueing and the kept answer are one transaction, so a retry after a
crash neither loses the event nor queues it twice.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from anyio.to_thread import run_sync
from sqlalchemy.orm import Session

from authhooks.errors import InvalidInput
from authhooks.flows import idempotency
from authhooks.flows.deliveries import Deliverer, enqueue
from authhooks.flows.engine import FlowRunner
from authhooks.flows.idempotency import Answer, Claim
from authhooks.points.contract import BadEvent, Point
from authhooks.points.declared import DENIAL_CODE, DeclaredState
from authhooks.points.registry import BUILT_IN
from authhooks.storage.database import Database


class BuiltInPoint(InvalidInput):
    code = "built_in_point"


class InvalidEvent(InvalidInput):
    """The event does not fit the point's schema: each place, by JSON pointer."""

    code = "invalid_event"

    def __init__(self, error: BadEvent) -> None:
        super().__init__(str(error))
        self.errors = [
            {"pointer": pointer, "message": message} for pointer, message in error.errors
        ]


class PointInvoker:
    def __init__(self, database: Database, flows: FlowRunner, deliverer: Deliverer) -> None:
        self._db = database
        self._flows = flows
        self._deliverer = deliverer

    async def invoke(
        self, point: Point[Any, Any], event: Any, *, caller: str, key: str | None
    ) -> tuple[Answer, bool]:
        """The answer, and whether it is a kept one given again for a retried key."""
        if point.id in BUILT_IN:
            raise BuiltInPoint(
                f"point {point.id!r} is built in: it runs from its own endpoint "
                "(the token endpoint, signup, sign-in), not through invoke"
            )
        try:
            parsed = point.parse_event(event)
        except BadEvent as error:
            raise InvalidEvent(error) from None
        if key is None:
            return await self._answer(point, parsed, None), False
        held = Claim(caller, point.id, idempotency.check_key(key))
        request = idempotency.fingerprint(event)
        kept = await run_sync(self._in_transaction, idempotency.claim, held, request)
        if kept is not None:
            return kept, True
        try:
            answer = await self._answer(point, parsed, held)
        except BaseException:
            await run_sync(self._in_transaction, idempotency.release, held)
            raise
        return answer, False

    async def _answer(self, point: Point[Any, Any], event: Any, held: Claim | None) -> Answer:
        if not point.blocking:
            return await self._queue(point, event, held)
        result = await self._flows.run(point, lambda: event)
        if result is None:  # no enabled hooks: the empty result
            answer = Answer(200, {"result": {}})
        elif result.stop is None:
            state: DeclaredState = result.state
            answer = Answer(200, {"result": dict(state.result)})
        else:
            refusal = result.stop.refusal
            status = 403 if refusal.error == DENIAL_CODE else 500
            answer = Answer(
                status, {"error": refusal.error, "error_description": refusal.description}
            )
        if held is not None:
            # A hook's decision is kept; a failure is not, so that a retry runs again.
            if answer.status < 500:
                await run_sync(self._in_transaction, idempotency.keep, held, answer)
            else:
                await run_sync(self._in_transaction, idempotency.release, held)
        return answer

    async def _queue(self, point: Point[Any, Any], event: Any, held: Claim | None) -> Answer:
        hooks = await self._flows.hooks(point)

        def queue(session: Session) -> Answer:
            event_id = enqueue(session, point, hooks, event) or "evt_" + secrets.token_hex(12)
            answer = Answer(202, {"event_id": event_id})
            if held is not None:
                idempotency.keep(session, held, answer)
            return answer

        answer: Answer = await run_sync(self._in_transaction, queue)
        if hooks:
            self._deliverer.nudge()
        return answer

    def _in_transaction(self, work: Callable[..., Any], *args: Any) -> Any:
        with self._db.session() as session:
            return work(session, *args)
