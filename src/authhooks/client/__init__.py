"""The client applications use to invoke the points they declared on an authhooks
server (docs/extend.md)::

    from authhooks.client import Points, PointDenied

    with Points("https://id.example.com", CLIENT_ID, CLIENT_SECRET) as points:
        try:
            quote = points.invoke("price-quote", {"sku": "A-1", "quantity": 3}).result
        except PointDenied as denied:
            print("refused:", denied.reason)

It imports nothing of the server (httpx and the standard library only), so that
it can be shipped and installed alone; a test keeps it so.
"""

from authhooks.client.errors import (
    AuthenticationError,
    ConnectionFailed,
    EventError,
    InvalidEvent,
    PointDenied,
    PointError,
)
from authhooks.client.points import AsyncPoints, Points
from authhooks.client.wire import Invocation

__all__ = [
    "AsyncPoints",
    "AuthenticationError",
    "ConnectionFailed",
    "EventError",
    "InvalidEvent",
    "Invocation",
    "PointDenied",
    "PointError",
    "Points",
]
