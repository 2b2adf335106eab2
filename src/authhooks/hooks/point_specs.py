"""Points that applications declare through the management API, as stored: one
row per point holding its spec (points/declared.py checks it whole), and this
process's catalogue of every declared point — those of the operator's points
file, fixed at start, and those stored, loaded again with the flows whenever
the database's change counter moves (flows/live.py). So a point declared in one
process serves in every other within the flows' reload interval, and a point
and the hooks on it always change together.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from authhooks.errors import Conflict, InvalidInput, NotFound
from authhooks.hooks import store
from authhooks.hooks.captures import captured_event
from authhooks.masterkey import MasterKey
from authhooks.points.contract import BadEvent, Point
from authhooks.points.declared import InvalidDeclaration, declare
from authhooks.points.registry import BUILT_IN, use_declared
from authhooks.storage import models
from authhooks.storage.database import bump_generation
from authhooks.storage.models import utcnow

log = logging.getLogger(__name__)

# What PATCH may change: not the id (hooks are named after it), nor whether the
# point blocks (its hooks' conventions and its callers' answers depend on it).
CHANGEABLE = (
    "description",
    "event_schema",
    "result_schema",
    "sample_event",
    "timeout_ms",
    "max_hooks",
)
MAX_CHECKED_CAPTURES = 200  # captured events checked against a changed event schema


class InexistentPoint(NotFound):
    code = "inexistent_point"


class PointTaken(Conflict):
    code = "point_exists"


class PointInUse(Conflict):
    code = "point_in_use"


class ReadOnlyPoint(InvalidInput):
    """A built-in point, or one of the operator's points file: not changed here."""

    code = "point_read_only"


@dataclass(frozen=True)
class Mismatch:
    """A captured event of a hook that a changed event schema no longer accepts."""

    invocation_id: str
    hook_id: str
    error: str


class PointCatalog:
    """This process's declared points: the points file's, and the stored ones."""

    def __init__(self, from_file: Sequence[Point[Any, Any]] = ()) -> None:
        self.from_file: dict[str, Point[Any, Any]] = {point.id: point for point in from_file}
        # Built points by (id, updated_at): a reload rebuilds only what changed.
        self._built: dict[tuple[str, Any], Point[Any, Any]] = {}

    def load(self, session: Session) -> list[Point[Any, Any]]:
        """The stored points, built (in a worker thread: checking schemas takes time)."""
        rows = session.scalars(select(models.DeclaredPoint).order_by(models.DeclaredPoint.id))
        built: dict[tuple[str, Any], Point[Any, Any]] = {}
        for row in rows:
            key = (row.id, row.updated_at)
            point = self._built.get(key)
            if point is None:
                try:
                    point = declare(row.spec)
                except InvalidDeclaration as error:  # checked when stored: a newer server's rules
                    log.warning("declared point %s no longer declares: %s", row.id, error)
                    continue
            built[key] = point
        self._built = built
        return list(built.values())

    def use(self, stored: Iterable[Point[Any, Any]]) -> None:
        """Make the points file's and ``stored`` this process's declared points (on
        the event loop, between requests). A stored point whose id the points file
        took since is left out, said in the log."""
        points = list(self.from_file.values())
        for point in stored:
            if point.id in self.from_file:
                log.warning("declared point %s is shadowed by the points file's", point.id)
            else:
                points.append(point)
        use_declared(points)

    def check_new_id(self, session: Session, point_id: str) -> None:
        if point_id in BUILT_IN:
            raise PointTaken(f"point {point_id!r} is built in: choose another id")
        if point_id in self.from_file:
            raise PointTaken(f"point {point_id!r} is declared in the server's points file")
        if session.get(models.DeclaredPoint, point_id) is not None:
            raise PointTaken(f"point {point_id!r} exists")

    def stored(self, session: Session, point_id: str) -> models.DeclaredPoint:
        """The stored point, for a change; ReadOnlyPoint when it is not stored here."""
        if point_id in BUILT_IN:
            raise ReadOnlyPoint(f"point {point_id!r} is built in: it cannot be changed or deleted")
        if point_id in self.from_file:
            raise ReadOnlyPoint(
                f"point {point_id!r} is declared in the server's points file: change it there"
            )
        row = session.get(models.DeclaredPoint, point_id, with_for_update=True)
        if row is None:
            raise InexistentPoint(f"no declared point {point_id!r}")
        return row


def create(session: Session, catalog: PointCatalog, spec: Mapping[str, Any]) -> Point[Any, Any]:
    """Store the point ``spec`` declares; InvalidInput saying what is wrong, PointTaken."""
    point = _declared(spec)
    catalog.check_new_id(session, point.id)
    now = utcnow()
    session.add(
        models.DeclaredPoint(id=point.id, spec=_plain(spec), created_at=now, updated_at=now)
    )
    session.flush()
    bump_generation(session)
    return point


def update(
    session: Session, catalog: PointCatalog, point_id: str, changes: Mapping[str, Any]
) -> tuple[Point[Any, Any], dict[str, Any]]:
    """Apply ``changes`` (CHANGEABLE keys; None removes an optional key) to the stored
    point; the point and its new spec."""
    row = catalog.stored(session, point_id)
    spec = dict(row.spec)
    for key, value in changes.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    point = _declared(spec)
    if point.max_hooks is not None:
        hooks = hook_count(session, point_id)
        if hooks > point.max_hooks:
            raise PointInUse(
                f"point {point_id!r} has {hooks} hooks: max_hooks cannot be lower; "
                "delete some first"
            )
    row.spec = _plain(spec)
    row.updated_at = utcnow()
    bump_generation(session)
    return point, spec


def delete_point(session: Session, catalog: PointCatalog, point_id: str, *, force: bool) -> None:
    """Delete the stored point; PointInUse while hooks are on it, unless ``force``
    (which deletes them with it, in the same transaction)."""
    catalog.stored(session, point_id)
    hooks = hook_count(session, point_id)
    if hooks and not force:
        raise PointInUse(
            f"point {point_id!r} has {hooks} hook(s): delete them first, or delete "
            "the point with ?force=true to delete them with it"
        )
    for hook in session.scalars(select(models.Hook).where(models.Hook.trigger_id == point_id)):
        store.check_editable(session, hook)  # a git source's hooks go with their source
        session.delete(hook)
    session.flush()
    session.execute(delete(models.DeclaredPoint).where(models.DeclaredPoint.id == point_id))
    bump_generation(session)


def hook_count(session: Session, point_id: str) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(models.Hook).where(models.Hook.trigger_id == point_id)
        )
        or 0
    )


def check_room(session: Session, point: Point[Any, Any]) -> None:
    """PointInUse when ``point`` already has as many hooks as it takes."""
    if point.max_hooks is not None and hook_count(session, point.id) >= point.max_hooks:
        raise PointInUse(
            f"point {point.id!r} takes at most {point.max_hooks} hook(s) (its max_hooks)"
        )


def mismatched_captures(
    session: Session, master_key: MasterKey, point: Point[Any, Any]
) -> list[Mismatch]:
    """The kept captured events of ``point``'s hooks that its event schema refuses:
    what a schema change leaves behind, for whoever changed it to see."""
    rows = session.scalars(
        select(models.HookInvocation.id)
        .where(
            models.HookInvocation.point == point.id,
            models.HookInvocation.captured_event.is_not(None),
            models.HookInvocation.capture_expires_at > utcnow(),
        )
        .order_by(models.HookInvocation.started_at.desc())
        .limit(MAX_CHECKED_CAPTURES)
    ).all()
    found: list[Mismatch] = []
    for invocation_id in rows:
        record, event = captured_event(session, master_key, invocation_id)
        try:
            point.parse_event(event)
        except BadEvent as error:
            found.append(Mismatch(invocation_id, record.hook_id, str(error)))
    return found


def _declared(spec: Mapping[str, Any]) -> Point[Any, Any]:
    try:
        return declare(spec)
    except InvalidDeclaration as error:
        raise InvalidInput(str(error)) from None


def _plain(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec as stored: plain JSON data, absent optional keys left out."""
    plain: dict[str, Any] = json.loads(json.dumps(dict(spec)))
    return {key: value for key, value in plain.items() if value is not None}
