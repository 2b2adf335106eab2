"""The outbox: mails queued in the transaction that made their ticket, sent at
least once by a background task of whichever server process claims them.

As hook deliveries do (``flows/deliveries.py``), a process claims due rows with
a lease and a token — a conditional UPDATE, after ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL — sends them, and marks each sent, or schedules a retry with
exponential backoff, or after the last attempt gives it up. Every attempt is
logged with the mail's id, kind and user, never its address or content: the
link a mail carries is a secret, so the content is stored sealed with the
master key (bound to the mail's id) and erased once the mail is sent or given
up.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from anyio.to_thread import run_sync
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from authhooks.identity.mail.messages import compose
from authhooks.identity.mail.sender import MailNotSent, MailOff, SmtpSender, SmtpSettings
from authhooks.masterkey import MasterKey
from authhooks.storage import models
from authhooks.storage.database import Database
from authhooks.storage.models import utcnow

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=1)
# A claim outlives the longest attempt (sender.SEND_TIMEOUT) several times over, so
# it needs no renewal; a process that died holds its mails this long.
LEASE = timedelta(minutes=2)
_CONCURRENCY = 4
_PRUNE_EVERY = 600.0  # seconds
# Sent and given-up mails are kept this long (without their content), then deleted.
KEEP_FINISHED = timedelta(days=7)


@dataclass(frozen=True)
class MailPolicy:
    max_attempts: int = 10
    backoff: float = 30.0  # seconds before the second attempt; doubles each time
    poll_interval: float = 1.0

    def retry_delay(self, attempts: int) -> timedelta:
        """How long to wait after failed attempt number ``attempts`` (1-based), ±10%."""
        delay = timedelta(seconds=self.backoff * 2 ** (attempts - 1))
        return min(delay, MAX_BACKOFF) * random.uniform(0.9, 1.1)  # noqa: S311 - jitter only


@dataclass(frozen=True)
class _Claimed:
    id: str
    claim: str
    kind: str
    user_id: str
    recipient: str
    content: dict[str, Any]
    attempt: int


class MailOutbox:
    """Queues mails (in the caller's transaction) and sends them from this process."""

    def __init__(
        self,
        database: Database,
        master_key: MasterKey,
        smtp: SmtpSettings | None,
        policy: MailPolicy,
    ) -> None:
        self._db = database
        self._master_key = master_key
        self._sender = SmtpSender(smtp) if smtp is not None else None
        self.policy = policy
        self._wake = asyncio.Event()
        self._running: dict[str, tuple[_Claimed, asyncio.Task[None]]] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._database_down = False
        self._pruned_at = time.monotonic()

    @property
    def enabled(self) -> bool:
        """Whether this server sends mail at all (an SMTP server is configured)."""
        return self._sender is not None

    def queue(
        self,
        session: Session,
        kind: str,
        user_id: str,
        recipient: str,
        content: Mapping[str, Any],
    ) -> str:
        """Queue a mail of ``kind`` in the caller's transaction (then ``nudge`` after
        the commit); its id. MailOff when mail is off."""
        if self._sender is None:
            raise MailOff()
        mail_id = "mail_" + secrets.token_hex(12)
        now = utcnow()
        session.add(
            models.OutgoingMail(
                id=mail_id,
                kind=kind,
                user_id=user_id,
                recipient=recipient,
                sealed_content=seal(self._master_key, mail_id, content),
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
        return mail_id

    def start(self) -> None:
        if self._sender is not None:
            self._loop_task = asyncio.create_task(self._send_forever())

    def nudge(self) -> None:
        """Look for due mails now (called after this process queued one)."""
        self._wake.set()

    async def close(self) -> None:
        """Stop; mails being sent are cancelled and handed back at once."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        running = list(self._running.values())
        for _, task in running:
            task.cancel()
        await asyncio.gather(*(task for _, task in running), return_exceptions=True)
        if running:
            try:
                await run_sync(self._release, [claimed for claimed, _ in running])
            except Exception:  # their leases lapse instead
                log.exception("mail: could not hand back %d mails", len(running))

    async def _send_forever(self) -> None:
        while True:
            try:
                claimed = await self._claim_some()
            except Exception:  # a bug or an odd database error must not end sending
                log.exception("mail: claiming failed")
                claimed = []
            if claimed and len(self._running) < _CONCURRENCY:
                continue  # there may be more waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.policy.poll_interval)
            self._wake.clear()

    async def _claim_some(self) -> list[_Claimed]:
        now = time.monotonic()
        if now - self._pruned_at >= _PRUNE_EVERY:
            self._pruned_at = now
            await self._guarded(self._prune)
        free = _CONCURRENCY - len(self._running)
        if free <= 0:
            return []
        claimed: list[_Claimed] = await self._guarded(self._claim, free, set(self._running)) or []
        for mail in claimed:
            task = asyncio.create_task(self._send_logged(mail))
            self._running[mail.id] = (mail, task)
            task.add_done_callback(functools.partial(self._finished, mail.id))
        return claimed

    async def _guarded(self, work: Callable[..., Any], *args: Any) -> Any:
        """Run database work in a thread; while the database is down, say so once."""
        try:
            result = await run_sync(work, *args)
        except DBAPIError as error:
            if not self._database_down:
                log.warning("mail: database unavailable (%s)", type(error.orig).__name__)
            self._database_down = True
            return None
        if self._database_down:
            log.warning("mail: database available again")
        self._database_down = False
        return result

    def _finished(self, key: str, _: asyncio.Task[None]) -> None:
        self._running.pop(key, None)
        self._wake.set()  # a slot is free

    def _claim(self, limit: int, running: set[str]) -> list[_Claimed]:
        now = utcnow()
        table = models.OutgoingMail
        due = (
            (table.status == "pending")
            & (table.next_attempt_at <= now)
            & (table.lease_until.is_(None) | (table.lease_until < now))
        )
        claimed: list[_Claimed] = []
        with self._db.session() as session:
            rows = session.scalars(
                select(table)
                .where(due)
                .order_by(table.next_attempt_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                if row.id in running:
                    continue
                if row.attempts >= self.policy.max_attempts or row.sealed_content is None:
                    # Every attempt ended with its process: give up rather than loop.
                    session.execute(
                        update(table)
                        .where(table.id == row.id, due)
                        .values(**_finished(now, "failed"))
                    )
                    log.warning(
                        "mail %s (%s, user %s): given up: no attempt finished",
                        row.id,
                        row.kind,
                        row.user_id,
                    )
                    continue
                token = secrets.token_hex(8)
                # Conditional, so that of two processes that read the same row one wins.
                taken = session.execute(
                    update(table)
                    .where(table.id == row.id, due)
                    .values(lease_until=now + LEASE, claim=token, attempts=table.attempts + 1)
                    .execution_options(synchronize_session=False)
                )
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(
                        _Claimed(
                            row.id,
                            token,
                            row.kind,
                            row.user_id,
                            row.recipient,
                            unseal(self._master_key, row.id, row.sealed_content),
                            row.attempts + 1,
                        )
                    )
        return claimed

    async def _send_logged(self, mail: _Claimed) -> None:
        try:
            reason = await self._send(mail)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            # Counted as a failed attempt, so that a mail that always breaks the
            # server's own code ends as failed instead of looping.
            log.exception("mail %s (%s): failed unexpectedly", mail.id, mail.kind)
            reason = f"internal error ({type(error).__name__}): the server log has details"
        try:
            await self._record(mail, reason)
        except Exception:  # its lease lapses, and it is sent again
            log.exception("mail %s (%s): its outcome could not be stored", mail.id, mail.kind)

    async def _record(self, mail: _Claimed, reason: str | None) -> None:
        """Log the attempt and store its outcome: sent, a retry, or given up."""
        where = f"mail {mail.id} ({mail.kind}, user {mail.user_id})"
        attempt = f"attempt {mail.attempt} of {self.policy.max_attempts}"
        if reason is None:
            log.info("%s: sent (%s)", where, attempt)
            await self._guarded(self._finish, mail, "sent", None)
        elif mail.attempt >= self.policy.max_attempts:
            log.error("%s: not sent (%s): %s; given up", where, attempt, reason)
            await self._guarded(self._finish, mail, "failed", reason)
        else:
            delay = self.policy.retry_delay(mail.attempt)
            log.warning(
                "%s: not sent (%s): %s; next attempt in %.0f s",
                where,
                attempt,
                reason,
                delay.total_seconds(),
            )
            await self._guarded(self._retry, mail, reason, delay)

    async def _send(self, mail: _Claimed) -> str | None:
        """Send ``mail``; None when the SMTP server took it, else why not."""
        assert self._sender is not None  # the loop runs only with a sender
        smtp = self._sender.smtp
        message = compose(
            mail.kind,
            from_header=smtp.from_header,
            sender=smtp.sender,
            recipient=mail.recipient,
            context=mail.content,
        )
        try:
            await self._sender.send(message, mail.recipient)
        except MailNotSent as error:
            return str(error)
        return None

    def _finish(self, mail: _Claimed, status: str, error: str | None) -> None:
        with self._db.session() as session:
            session.execute(
                update(models.OutgoingMail)
                .where(self._held(mail))
                .values(**_finished(utcnow(), status), last_error=error)
            )

    def _retry(self, mail: _Claimed, error: str, delay: timedelta) -> None:
        with self._db.session() as session:
            session.execute(
                update(models.OutgoingMail)
                .where(self._held(mail))
                .values(
                    next_attempt_at=utcnow() + delay, claim=None, lease_until=None, last_error=error
                )
            )

    def _release(self, running: list[_Claimed]) -> None:
        """Hand back mails this process will not finish: due again at once."""
        with self._db.session() as session:
            for mail in running:
                session.execute(
                    update(models.OutgoingMail)
                    .where(self._held(mail))
                    .values(claim=None, lease_until=None, attempts=models.OutgoingMail.attempts - 1)
                )

    def _prune(self) -> None:
        cutoff = utcnow() - KEEP_FINISHED
        with self._db.session() as session:
            session.execute(
                delete(models.OutgoingMail).where(
                    models.OutgoingMail.status != "pending",
                    models.OutgoingMail.finished_at < cutoff,
                )
            )

    @staticmethod
    def _held(mail: _Claimed) -> Any:
        return (
            (models.OutgoingMail.id == mail.id)
            & (models.OutgoingMail.claim == mail.claim)
            & (models.OutgoingMail.status == "pending")
        )


def _finished(now: Any, status: str) -> dict[str, Any]:
    """The columns of a mail that is done with: its content (its link) erased."""
    return {
        "status": status,
        "claim": None,
        "lease_until": None,
        "finished_at": now,
        "sealed_content": None,
    }


def seal(master_key: MasterKey, mail_id: str, content: Mapping[str, Any]) -> bytes:
    return master_key.encrypt(json.dumps(dict(content)).encode(), _context(mail_id))


def unseal(master_key: MasterKey, mail_id: str, sealed: bytes) -> dict[str, Any]:
    content: dict[str, Any] = json.loads(master_key.decrypt(sealed, _context(mail_id)))
    return content


def reseal(session: Session, old: MasterKey, new: MasterKey) -> int:
    """Seal every waiting mail's content with ``new`` instead of ``old`` (master key
    rotation)."""
    count = 0
    table = models.OutgoingMail
    waiting = session.execute(
        select(table.id, table.sealed_content).where(table.sealed_content.is_not(None))
    ).all()
    for mail_id, sealed in waiting:
        assert sealed is not None  # selected so
        context = _context(mail_id)
        session.execute(
            update(table)
            .where(table.id == mail_id)
            .values(sealed_content=new.encrypt(old.decrypt(sealed, context), context))
        )
        count += 1
    return count


def _context(mail_id: str) -> bytes:
    return b"mail:" + mail_id.encode()
