"""The database handle: engine, sessions, migrations and the change counter."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.util import asbool

from authhooks.storage.models import Generation

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets several server processes read while one writes; foreign keys are
    # off by default in SQLite and the schema relies on ON DELETE CASCADE.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite database URL, also one given as a ``file:`` URI
    (``sqlite:///file:data/a.db?mode=rwc&uri=true``); None for other databases
    and in-memory ones."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    name = parsed.database
    if name and name.startswith("file:") and asbool(parsed.query.get("uri", False)):
        # SQLite's URI (without uri=true, the name is a file's): percent-encoded,
        # with an authority that can only be local; its query (mode, vfs) is the URL's.
        if parsed.query.get("mode") == "memory" or parsed.query.get("vfs") == "memdb":
            return None
        name = unquote(urlsplit(name).path)
    if not name or name == ":memory:":
        return None
    return Path(name)


def _create_private(path: Path) -> None:
    """Create the database file 0600 if it does not exist, whatever the umask, and
    each directory made for it 0700: it holds users' personal data and password
    hashes. SQLite gives the -wal and -shm files it creates beside it the database
    file's own mode."""
    missing = []
    directory = path.parent
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for directory in reversed(missing):
        # One at a time: mkdir(parents=True) gives only the last one the mode.
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
    with contextlib.suppress(FileExistsError):
        # An empty file is an empty database to SQLite.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class Database:
    """One engine and session factory per server process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.path = sqlite_path(url) if self.is_sqlite else None
        if self.path is not None:
            _create_private(self.path)
        self.engine: Engine = create_engine(url, pool_pre_ping=not self.is_sqlite)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Hold a lock named ``name`` that every process using this database respects."""
        if self.is_sqlite:
            if self.path is None:
                yield
                return
            # Never through a link: whoever could plant one would have the server
            # create or lock a file of its choosing.
            descriptor = os.open(
                f"{self.path}.{name}.lock",
                os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
            )
            with open(descriptor, "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                yield
            return
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        with self.engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})

    def migrate(self) -> None:
        """Bring the schema to the newest migration."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def generation(self) -> int:
        """The current value of the change counter."""
        with self.engine.connect() as connection:
            value = connection.execute(select(Generation.value).where(Generation.id == 1))
            return int(value.scalar_one())

    def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def page(session: Session, query: Any, offset: int, limit: int) -> tuple[list[Any], int]:
    """One page of ``query``'s rows and the total number of rows it matches."""
    rows = list(session.scalars(query.offset(offset).limit(limit)))
    return rows, count(session, query)


def count(session: Session, query: Any) -> int:
    """How many rows ``query`` matches, whatever it selects and however it is ordered."""
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    return int(total or 0)


def bump_generation(session: Session) -> None:
    """Record, in the caller's transaction, that cached state must be reloaded."""
    session.execute(update(Generation).where(Generation.id == 1).values(value=Generation.value + 1))
