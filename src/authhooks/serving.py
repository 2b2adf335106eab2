"""How the server's processes run under uvicorn, so that stopping or losing them
fails no request and leaves nothing behind.

- ``Supervisor`` (``--workers N``): on SIGTERM or SIGINT it closes its own copy
  of the listening socket before telling the workers to stop. Otherwise the port
  would stay open, with nobody accepting, until the last worker had finished:
  connections made meanwhile would wait, then be reset.
- ``follow_parent``: a server process started by the supervisor dies with it
  (SIGKILL of ``serve``, an OOM kill), and its sandboxes with it (bwrap
  ``--die-with-parent``), so that the port is free for a restart.
- ``DrainingProtocol``: uvicorn closes idle keep-alive connections the moment
  shutdown begins, racing clients that are sending their next request on them
  (which then read a reset). Here an idle connection is instead given a short
  grace: a request that arrives is served with ``Connection: close``, and only a
  connection that stays silent is closed.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import Multiprocess

PROTOCOL = "authhooks.serving:DrainingProtocol"
# How long a connection that is idle when shutdown begins may still bring a request.
IDLE_GRACE = 1.0
_SUPERVISOR_PID = "AUTHHOOKS_SUPERVISOR_PID"
_PR_SET_PDEATHSIG = 1


class Supervisor(Multiprocess):
    def run(self) -> None:
        # Read by each server process it starts (they inherit the environment).
        os.environ[_SUPERVISOR_PID] = str(os.getpid())
        super().run()

    def handle_term(self) -> None:
        self._stop_listening()
        super().handle_term()

    def handle_int(self) -> None:
        self._stop_listening()
        super().handle_int()

    def _stop_listening(self) -> None:
        # The workers hold their own copies: the port closes, and new connections
        # are refused rather than left waiting, once the last of them stops accepting.
        for sock in self.sockets:
            sock.close()


def follow_parent() -> None:
    """In a server process the supervisor started: be killed when it dies."""
    expected = os.environ.get(_SUPERVISOR_PID)
    if expected is None or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != int(expected):  # it died before the signal was armed
        os._exit(1)


class DrainingProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol (httptools), with the shutdown described above."""

    _draining = False

    def shutdown(self) -> None:
        self._draining = True
        if self.cycle is None or self.cycle.response_complete:
            self._unset_keepalive_if_required()
            self.timeout_keep_alive_task = self.loop.call_later(
                min(IDLE_GRACE, self.timeout_keep_alive), self.timeout_keep_alive_handler
            )
        else:
            self.cycle.keep_alive = False

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self._draining and self.cycle is not None:
            self.cycle.keep_alive = False  # answered with Connection: close, then closed
