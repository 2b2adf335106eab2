"""Small HTTP helpers shared by the identity routes and the management API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes")
        self.limit = limit


async def read_bounded(
    headers: Mapping[str, str], stream: AsyncIterator[bytes], limit: int
) -> bytes:
    """The whole body, refused as soon as it passes ``limit`` bytes (chunked or not)."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)
