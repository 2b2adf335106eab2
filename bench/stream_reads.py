"""What a log stream pays to read stored records back, per read and per record.

A stream on one of several server processes reads back every record the other
processes stored (``logs/stream.py``). This stores ``--records`` invocation
records of one hook, each with one console line like the token bench's
printing hook, through the real ``InvocationLog`` into a fresh SQLite database
(or ``--database-url``, in a schema of its own), then times the stream's read
of the newest N records for a few N, as the stream runs it (``stream._page``:
the query, the rows, the events), each ``--repeat`` times.

    python bench/stream_reads.py [--records 2000] [--repeat 200]
                                 [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from authhooks.logs import records, stream
from authhooks.logs.records import Invocation
from authhooks.logs.writer import InvocationLog
from authhooks.storage import models
from authhooks.storage.database import Database
from authhooks.storage.models import utcnow
from log_stream import postgres_schema

PAGE_SIZES = (1, 10, 55, 500)


@contextmanager
def fresh_database(url: str | None) -> Iterator[Database]:
    """A migrated database: SQLite in a temporary directory, or a new schema of ``url``."""
    with tempfile.TemporaryDirectory() as directory:
        sqlite = nullcontext(f"sqlite:///{Path(directory) / 'reads.db'}")
        with postgres_schema(url) if url else sqlite as database_url:
            database = Database(database_url)
            try:
                database.migrate()
                yield database
            finally:
                database.dispose()


def store(database: Database, count: int) -> None:
    """``count`` records of one hook, each with one console line, stored as a server would."""
    with database.session() as session:
        session.add(
            models.Hook(
                id="hk_bench",
                name="bench",
                trigger_id="credentials-exchange",
                runtime="python",
                timeout_ms=1000,
                on_error="fail",
                version=1,
                last_version=1,
            )
        )
    log = InvocationLog(database, keep_per_hook=count)
    for n in range(count):
        log.record(
            Invocation(
                id=f"inv_{n:028x}",
                hook_id="hk_bench",
                version=1,
                point="credentials-exchange",
                started_at=utcnow(),
                duration_ms=10.7,
                outcome="ok",
                error=None,
                console=[{"at": time.time(), "stream": "stdout", "text": f"token for client {n}"}],
            )
        )
    asyncio.run(log.flush())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with fresh_database(args.database_url) as database:
        store(database, args.records)
        reads = records.StreamReads(records.RecordFilter())
        with database.engine.connect() as connection:
            newest = records.position(connection)
        kind = "sqlite" if database.is_sqlite else "postgresql"
        print(f"stream reads: {args.records} stored records ({kind}); each read {args.repeat}x")
        print(f"{'records read':>12} {'us per read':>12} {'us per record':>14}")
        for size in PAGE_SIZES:
            began = time.perf_counter()
            for _ in range(args.repeat):
                page, _, _ = stream._page(database, reads, newest - size, newest)
            elapsed = (time.perf_counter() - began) / args.repeat
            assert page.count(b"event: invocation\n") == size, "a read came back short"
            print(f"{size:>12} {elapsed * 1e6:>12.0f} {elapsed * 1e6 / size:>14.1f}")


if __name__ == "__main__":
    main()
