"""Upstreams that fail below HTTP, for the faults an HTTP fake cannot script.

    with RawFault("hangup") as url: ...     # reads the request, closes without answering
    with RawFault("garbage") as url: ...    # answers bytes that are not HTTP
    with RawFault("silent") as url: ...     # reads the request, never answers
    with refused_url() as url: ...          # nothing listens there
    with unaccepted_url() as url: ...       # a full listen queue: connecting times out

Each serves on 127.0.0.1 in a thread and counts the connections it took (`.connections`),
so a test can assert how many attempts the gateway made.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import TracebackType

GARBAGE = b"NOT HTTP AT ALL\r\n\r\n"


class RawFault:
    def __init__(self, mode: str) -> None:
        assert mode in ("hangup", "garbage", "silent")
        self.mode = mode
        self.connections = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/v1"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.settimeout(2)
            with suppress(OSError):
                conn.recv(65536)  # the request (small in these tests)
            if self.mode == "garbage":
                conn.sendall(GARBAGE)
            if self.mode == "silent":
                self._held.append(conn)  # kept open, never answered
                continue
            conn.close()

    def __enter__(self) -> RawFault:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for conn in self._held:
            conn.close()
        self._sock.close()


@contextmanager
def refused_url() -> Iterator[str]:
    """A port nothing listens on (bound, then closed: the kernel refuses connections)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    yield f"http://127.0.0.1:{port}/v1"


@contextmanager
def unaccepted_url() -> Iterator[str]:
    """A listener whose accept queue is full and never drained: on Linux further SYNs are
    dropped, so a connect hangs until the client's connect timeout (loopback only)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler.setblocking(False)
        with suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
