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
from authhooks.flows.idempotency import Answer, Claim, Key
from authhooks.points.contract import BadEvent, Point
from authhooks.points.declared import DELIVERY_KEYS, DENIAL_CODE, DeclaredState
from authhooks.points.registry import BUILT_IN
from authhooks.storage.database import Database

# Checking an event of this many bytes (as sent) against a schema whose cost is
# bounded (points/bounded_schema.py) takes well under a millisecond.
INLINE_EVENT_BYTES = 16 * 1024


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
        self,
        point: Point[Any, Any],
        event: Any,
        *,
        caller: str,
        key: str | None,
        size: int = INLINE_EVENT_BYTES + 1,
    ) -> tuple[Answer, bool]:
        """The answer, and whether it is a kept one given again for a retried key."""
        if point.id in BUILT_IN:
            raise BuiltInPoint(
                f"point {point.id!r} is built in: it runs from its own endpoint "
                "(the token endpoint, signup, sign-in), not through invoke"
            )
        # A large event is checked in a thread, its cost its own; a small one costs
        # less than the thread's round trip would.
        if size <= INLINE_EVENT_BYTES:
            parsed = _parse(point, event)
        else:
            parsed = await run_sync(_parse, point, event)
        wanted = Key(caller, point.id, idempotency.check_key(key)) if key is not None else None
        if not point.blocking:
            return await self._queue(point, parsed, wanted, event)
        if wanted is None:
            return await self._run(point, parsed, None), False
        request = idempotency.fingerprint(event)
        held = await run_sync(self._in_transaction, idempotency.claim, wanted, request)
        if isinstance(held, Answer):
            return held, True
        try:
            answer = await self._run(point, parsed, held)
        except BaseException:
            await run_sync(self._in_transaction, idempotency.release, held)
            raise
        return answer, False

    async def _run(self, point: Point[Any, Any], event: Any, held: Claim | None) -> Answer:
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

    async def _queue(
        self, point: Point[Any, Any], event: Any, wanted: Key | None, sent: Any
    ) -> tuple[Answer, bool]:
        """Queue the event for each enabled hook; with a key, the claim, the queueing
        and the kept answer are one transaction: a crash leaves all or nothing."""
        hooks = await self._flows.hooks(point)

        def queue(session: Session) -> tuple[Answer, bool]:
            held = None
            if wanted is not None:
                found = idempotency.claim(session, wanted, idempotency.fingerprint(sent))
                if isinstance(found, Answer):
                    return found, True
                held = found
            event_id = enqueue(session, point, hooks, event) or "evt_" + secrets.token_hex(12)
            answer = Answer(202, {"event_id": event_id})
            if held is not None:
                idempotency.keep(session, held, answer)
            return answer, False

        answer, replayed = await run_sync(self._in_transaction, queue)
        if hooks and not replayed:
            self._deliverer.nudge()
        return answer, replayed

    def _in_transaction(self, work: Callable[..., Any], *args: Any) -> Any:
        with self._db.session() as session:
            return work(session, *args)


def _parse(point: Point[Any, Any], event: Any) -> Any:
    """The event as the point's hooks get it; InvalidEvent naming each place wrong."""
    if not point.blocking and isinstance(event, dict):
        # What a queued delivery adds is the server's to say, never the caller's.
        given = [key for key in DELIVERY_KEYS if key in event]
        if given:
            problem = f"{given[0]!r} is set by the server when the event is delivered"
            raise InvalidEvent(
                BadEvent(f"event at /{given[0]}: {problem}", [(f"/{given[0]}", problem)])
            )
    try:
        return point.parse_event(event)
    except BadEvent as error:
        raise InvalidEvent(error) from None
