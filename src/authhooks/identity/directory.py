"""The token path's in-memory view of clients, grants, APIs and signing keys
(each process's live flows of hooks are held apart, by flows/live.py).

A warm token request touches no database: it reads this cache, which keeps
what it did not find as well as what it found. Each process checks the change
counter at most every ``cache_ttl`` seconds and drops the cache when it moved,
which bounds how long a change made elsewhere (a rotated secret, a revoked
grant, a rotated key) can go unseen. A client whose cached entry refuses a
secret is read again before the refusal stands (``client_again``, rate-limited),
so a secret rotated in another process works at once. While the database
cannot be reached, what is cached keeps being served: nothing can change
without the database either.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from anyio.to_thread import run_sync
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from authhooks.identity.clients import PUBLIC_AUTH_METHOD, RefreshTokenSettings
from authhooks.identity.tokens import KeySet, load_key_set
from authhooks.masterkey import MasterKey
from authhooks.points import shapes
from authhooks.storage import models
from authhooks.storage.database import Database

log = logging.getLogger(__name__)

# Re-reads of a client its cached entry refused (see Directory.client_again).
_REREAD_EVERY = 0.05
_REREADS_PER_SECOND = 50
_REMEMBERED_REREADS = 10_000

_K = TypeVar("_K")
_V = TypeVar("_V")


@dataclass(frozen=True)
class KnownClient:
    client_id: str
    secret_hash: bytes
    grant_types: frozenset[str]
    name: str
    metadata: dict[str, str]
    # spa and native apps: no secret, so they authenticate with client_id alone.
    public: bool = False
    signup_enabled: bool = False
    # Browser sign-in: redirect URIs (exact match), logout return URLs, and the
    # origins allowed to call the token endpoint from a browser (CORS).
    callbacks: tuple[str, ...] = ()
    allowed_logout_urls: tuple[str, ...] = ()
    web_origins: frozenset[str] = frozenset()
    first_party: bool = True
    refresh: RefreshTokenSettings = field(default_factory=RefreshTokenSettings)

    def hook_view(self) -> shapes.Client:
        """The client as hooks see it."""
        return shapes.Client(id=self.client_id, name=self.name, metadata=dict(self.metadata))


@dataclass(frozen=True)
class Api:
    """A resource server as the token path needs it."""

    defined_scopes: frozenset[str]
    token_lifetime: int | None


@dataclass(frozen=True)
class Entitlement:
    """What a client may get for one audience: its granted scopes that the API defines."""

    scopes: tuple[str, ...]
    defined_scopes: frozenset[str]
    token_lifetime: int | None


class _Cache(Generic[_K, _V]):
    """Found entries and misses, kept apart: a flood of unknown keys evicts only misses."""

    def __init__(self, max_found: int, max_missing: int) -> None:
        self.found: dict[_K, _V] = {}
        self.missing: set[_K] = set()
        self._max_found = max_found
        self._max_missing = max_missing

    def store(self, key: _K, value: _V | None) -> None:
        if value is None:
            if len(self.missing) >= self._max_missing:
                self.missing.clear()
            self.missing.add(key)
        else:
            if len(self.found) >= self._max_found:
                self.found.clear()
            self.found[key] = value

    def clear(self) -> None:
        self.found.clear()
        self.missing.clear()


class Directory:
    def __init__(self, database: Database, master_key: MasterKey, ttl: float) -> None:
        self._db = database
        self._master_key = master_key
        self._ttl = ttl
        self._generation: int | None = None
        self._checked_at = float("-inf")
        self._check: asyncio.Future[int] | None = None
        self._stale = False
        self._epoch = 0
        self._clients: _Cache[str, KnownClient] = _Cache(100_000, 10_000)
        self._entitlements: _Cache[tuple[str, str], Entitlement] = _Cache(100_000, 10_000)
        self._apis: _Cache[str, Api] = _Cache(10_000, 10_000)
        self._keys: _Cache[None, KeySet] = _Cache(1, 1)
        self._origins: _Cache[None, frozenset[str]] = _Cache(1, 1)
        self._rereads: dict[str, float] = {}
        self._rereading: dict[str, asyncio.Future[KnownClient | None]] = {}
        self._reread_budget = float(_REREADS_PER_SECOND)
        self._reread_at = time.monotonic()

    def invalidate(self) -> None:
        """Drop everything before the next lookup; safe to call from any thread."""
        self._stale = True

    async def client(self, client_id: str) -> KnownClient | None:
        return await self._lookup(self._clients, client_id, self._load_client, client_id)

    async def client_again(self, client_id: str) -> KnownClient | None:
        """The client as the database holds it now, for a caller its cached entry
        just refused: a secret rotated, or a client created, by another process
        within ``cache_ttl``. Callers at the same moment share one read; each
        client is read again at most every ``_REREAD_EVERY`` seconds (later callers
        get what that read found) and the process reads at most
        ``_REREADS_PER_SECOND`` a second, so a guesser cannot turn wrong secrets
        into a flood of queries."""
        pending = self._rereading.get(client_id)
        if pending is not None:
            return await asyncio.shield(pending)
        now = time.monotonic()
        self._reread_budget = min(
            float(_REREADS_PER_SECOND),
            self._reread_budget + (now - self._reread_at) * _REREADS_PER_SECOND,
        )
        self._reread_at = now
        recent = now - self._rereads.get(client_id, float("-inf")) < _REREAD_EVERY
        if recent or self._reread_budget < 1:
            return self._clients.found.get(client_id)
        self._reread_budget -= 1
        if len(self._rereads) >= _REMEMBERED_REREADS:
            self._rereads.clear()
        self._rereads[client_id] = now
        epoch = self._epoch
        read = self._rereading[client_id] = asyncio.ensure_future(
            run_sync(self._load_client, client_id)
        )
        try:
            loaded = await asyncio.shield(read)
        finally:
            self._rereading.pop(client_id, None)
        if epoch == self._epoch:
            self._clients.missing.discard(client_id)
            self._clients.store(client_id, loaded)
        return loaded

    async def entitlement(self, client_id: str, audience: str) -> Entitlement | None:
        return await self._lookup(
            self._entitlements, (client_id, audience), self._load_entitlement, client_id, audience
        )

    async def api(self, audience: str) -> Api | None:
        """The resource server whose identifier is ``audience``."""
        return await self._lookup(self._apis, audience, self._load_api, audience)

    async def keys(self) -> KeySet:
        keys = await self._lookup(self._keys, None, self._load_keys)
        assert keys is not None
        if keys.valid_until is not None and time.time() >= keys.valid_until:
            # A retired key's window ended: publish and accept it no longer.
            self._keys.clear()
            return await self.keys()
        return keys

    async def web_origins(self) -> frozenset[str]:
        """Every origin some client allows to call it from a browser (CORS preflights
        name no client, so they are answered for the union)."""
        origins = await self._lookup(self._origins, None, self._load_origins)
        assert origins is not None
        return origins

    async def _lookup(
        self, cache: _Cache[_K, _V], key: _K, load: Callable[..., _V | None], *args: object
    ) -> _V | None:
        await self._revalidate()
        if key in cache.found:
            return cache.found[key]
        if key in cache.missing:
            return None
        epoch = self._epoch
        loaded = await run_sync(load, *args)
        # A load that overlapped a clear may have read the old state: use it, don't keep it.
        if epoch == self._epoch:
            cache.store(key, loaded)
        return loaded

    async def _revalidate(self) -> None:
        if self._stale:
            self._stale = False
            self._clear()
            self._checked_at = float("-inf")
        if time.monotonic() - self._checked_at < self._ttl:
            return
        if self._check is None:
            # One query answers every request that arrives while it runs.
            self._check = asyncio.ensure_future(run_sync(self._db.generation))
        check = self._check
        generation: int | None
        try:
            # Shielded: the check is shared, and one waiter cancelled (a stream that
            # ended) must not cancel it for every request waiting on it.
            generation = await asyncio.shield(check)
        except DBAPIError as error:
            log.warning(
                "cache check failed, serving cached entries (%s)", type(error.orig).__name__
            )
            generation = self._generation
        finally:
            if self._check is check:
                self._check = None
        self._checked_at = time.monotonic()
        if generation != self._generation:
            self._clear()
            self._generation = generation

    def _clear(self) -> None:
        self._epoch += 1
        self._clients.clear()
        self._entitlements.clear()
        self._apis.clear()
        self._keys.clear()
        self._origins.clear()

    def _load_origins(self) -> frozenset[str]:
        with self._db.session() as session:
            rows = session.execute(select(models.Client.web_origins, models.Client.allowed_origins))
            return frozenset(origin for row in rows for listed in row for origin in listed)

    def _load_client(self, client_id: str) -> KnownClient | None:
        with self._db.session() as session:
            row = session.get(models.Client, client_id)
            if row is None:
                return None
            return KnownClient(
                row.client_id,
                row.secret_hash,
                frozenset(row.grant_types),
                row.name,
                dict(row.client_metadata),
                public=row.token_endpoint_auth_method == PUBLIC_AUTH_METHOD,
                signup_enabled=row.signup_enabled,
                callbacks=tuple(row.callbacks),
                allowed_logout_urls=tuple(row.allowed_logout_urls),
                web_origins=frozenset([*row.web_origins, *row.allowed_origins]),
                first_party=row.is_first_party,
                refresh=RefreshTokenSettings.of(row.refresh_token),
            )

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

    def _load_api(self, audience: str) -> Api | None:
        with self._db.session() as session:
            server = session.scalar(
                select(models.ResourceServer).where(models.ResourceServer.identifier == audience)
            )
            if server is None:
                return None
            return Api(frozenset(scope["value"] for scope in server.scopes), server.token_lifetime)

    def _load_keys(self) -> KeySet:
        with self._db.session() as session:
            return load_key_set(session, self._master_key)
