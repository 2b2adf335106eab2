"""Password hashing with argon2id (argon2-cffi)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from anyio import CapacityLimiter
from anyio.to_thread import run_sync
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


@dataclass(frozen=True)
class Argon2Parameters:
    time_cost: int = 3
    memory_cost: int = 65536  # KiB
    parallelism: int = 4


class Passwords:
    """Hash and verify passwords; tells when a stored hash used older parameters.

    Each hash takes ``memory_cost`` KiB while it runs, so at most one per CPU
    runs at a time and the rest wait their turn: a burst of logins or signups
    queues instead of taking the server's memory.
    """

    def __init__(self, parameters: Argon2Parameters) -> None:
        self.parameters = parameters
        self._hasher = PasswordHasher(
            time_cost=parameters.time_cost,
            memory_cost=parameters.memory_cost,
            parallelism=parameters.parallelism,
            type=Type.ID,
        )
        self._limiter = CapacityLimiter(len(os.sched_getaffinity(0)))
        # Verified against when the user does not exist, so that an unknown user and
        # a wrong password cost the same time.
        self._decoy = self._hasher.hash("decoy password, never matches a login")

    async def hash(self, password: str) -> str:
        return await run_sync(self._hasher.hash, password, limiter=self._limiter)

    async def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored``; a missing or corrupt hash never matches."""
        return await run_sync(self._verify, stored, password, limiter=self._limiter)

    def needs_rehash(self, stored: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored)
        except (InvalidHashError, ValueError):
            return True

    def _verify(self, stored: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored or self._decoy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
