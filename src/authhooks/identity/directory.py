"""The token path's in-memory view of clients, grants, APIs and signing keys.

A warm token request touches no database: it reads this cache. Each process
checks the change counter at most every ``cache_ttl`` seconds and drops the
cache when it moved, which bounds how long a change made elsewhere (a rotated
secret, a revoked grant, a rotated key) can go unseen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from anyio.to_thread import run_sync
from sqlalchemy import select

from authhooks.identity.tokens import KeySet, load_key_set
from authhooks.masterkey import MasterKey
from authhooks.storage import models
from authhooks.storage.database import Database

# Bounds memory against lookups of many unknown client ids.
_MAX_ENTRIES = 50_000

_K = TypeVar("_K")
_V = TypeVar("_V")


@dataclass(frozen=True)
class KnownClient:
    client_id: str
    secret_hash: bytes
    grant_types: frozenset[str]


@dataclass(frozen=True)
class Entitlement:
    """What a client may get for one audience: its granted scopes that the API defines."""

    scopes: tuple[str, ...]
    defined_scopes: frozenset[str]
    token_lifetime: int | None


class Directory:
    def __init__(self, database: Database, master_key: MasterKey, ttl: float) -> None:
        self._db = database
        self._master_key = master_key
        self._ttl = ttl
        self._generation: int | None = None
        self._checked_at = float("-inf")
        self._clients: dict[str, KnownClient | None] = {}
        self._entitlements: dict[tuple[str, str], Entitlement | None] = {}
        self._keys: dict[None, KeySet] = {}
        self._epoch = 0

    def invalidate(self) -> None:
        """Drop everything now; called after a change made by this process."""
        self._checked_at = float("-inf")
        self._clear()

    async def client(self, client_id: str) -> KnownClient | None:
        return await self._lookup(self._clients, client_id, self._load_client, client_id)

    async def entitlement(self, client_id: str, audience: str) -> Entitlement | None:
        return await self._lookup(
            self._entitlements, (client_id, audience), self._load_entitlement, client_id, audience
        )

    async def keys(self) -> KeySet:
        return await self._lookup(self._keys, None, self._load_keys)

    async def _lookup(
        self, cache: dict[_K, _V], key: _K, load: Callable[..., _V], *args: object
    ) -> _V:
        await self._revalidate()
        if key in cache:
            return cache[key]
        epoch = self._epoch
        loaded = await run_sync(load, *args)
        # A load that overlapped a clear may have read the old state: use it, don't keep it.
        if epoch == self._epoch:
            if len(cache) >= _MAX_ENTRIES:
                cache.clear()
            cache[key] = loaded
        return loaded

    async def _revalidate(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < self._ttl:
            return
        generation = await run_sync(self._db.generation)
        self._checked_at = now
        if generation != self._generation:
            self._clear()
            self._generation = generation

    def _clear(self) -> None:
        self._epoch += 1
        self._clients.clear()
        self._entitlements.clear()
        self._keys.clear()

    def _load_client(self, client_id: str) -> KnownClient | None:
        with self._db.session() as session:
            row = session.get(models.Client, client_id)
            if row is None:
                return None
            return KnownClient(row.client_id, row.secret_hash, frozenset(row.grant_types))

    def _load_entitlement(self, client_id: str, audience: str) -> Entitlement | None:
        with self._db.session() as session:
            found = session.execute(
                select(models.ClientGrant, models.ResourceServer)
                .join(
                    models.ResourceServer,
                    models.ResourceServer.identifier == models.ClientGrant.audience,
                )
                .where(
                    models.ClientGrant.client_id == client_id,
                    models.ClientGrant.audience == audience,
                )
            ).first()
            if found is None:
                return None
            grant, server = found
            defined = frozenset(scope["value"] for scope in server.scopes)
            return Entitlement(
                scopes=tuple(value for value in grant.scope if value in defined),
                defined_scopes=defined,
                token_lifetime=server.token_lifetime,
            )

    def _load_keys(self) -> KeySet:
        with self._db.session() as session:
            return load_key_set(session, self._master_key)
