"""Inside the sandbox: the one way out.

The sandbox has its own network namespace with nothing but loopback. Before
hook code loads, the worker opens a listening socket on that loopback and
hands it, as a descriptor, to the egress broker through its door: one end of
a socket pair the server made for this worker, inherited at start. Then it
closes both, its listener and its end of the door. From then on the broker
itself accepts every connection a hook makes to that address, in the hook's
network namespace, and no byte is copied inside the sandbox. The worker
points the standard proxy variables (``HTTP_PROXY``, ``HTTPS_PROXY``) at it,
so ordinary clients — ``urllib.request``, ``http.client`` through a proxy,
``httpx``, ``requests`` — work unchanged.

Hook code never holds the listener, nor any way to send the server a
descriptor: both are gone before it is loaded. The listener adds no security
of its own: everything is decided by the broker, which knows the hook by the
listener a connection came in on, never by what arrives through it. Runs
inside the sandbox; standard library only.
"""

from __future__ import annotations

import array
import socket

PORT = 3128


def hand_over(door: int, port: int = PORT) -> str:
    """Listen on the sandbox's loopback, give the listener to the broker through
    the ``door`` descriptor, close both, and return the proxy URL that reaches it."""
    with (
        socket.socket(fileno=door) as broker,
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener,
    ):
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(128)
        descriptors = array.array("i", [listener.fileno()])
        broker.sendmsg([b"L"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, descriptors)])
    return f"http://127.0.0.1:{port}"
