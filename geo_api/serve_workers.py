"""``georisk serve --workers N``: N processes, each listening on a socket of its own.

Why not uvicorn's one shared socket: every worker's event loop is woken when a connection
waits, and the first to run accepts everything in the queue (up to the backlog). A burst of
keep-alive connections — a map's six, a reverse proxy's upstream pool, a benchmark's 32 — then
lands on one worker while the other idles for as long as those connections live (measured: one
of three two-worker runs served like one worker, scripts/bench_workers.py). With SO_REUSEPORT
each worker binds a listening socket of its own on the same port, and the kernel spreads new
connections over them by a hash of the client's address and port.

uvicorn's supervisor still starts, health-checks and replaces the workers; it is only given no
socket, so each worker's server binds one itself, through an event loop whose ``create_server``
asks for SO_REUSEPORT. A worker binds once its app has started, so no connection is queued on
a worker that cannot answer it yet; and one that dies takes its socket with it.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable
from typing import Any

import uvloop
from uvicorn import Config
from uvicorn.supervisors import Multiprocess


class CannotListen(RuntimeError):
    """The port is already served by someone else, or cannot be bound here at all."""


class ReusePortLoop(uvloop.Loop):
    """uvloop's loop (what uvicorn picks by default), except that a server bound to the
    ``shared`` host and port shares it with the other workers' (SO_REUSEPORT). Only that one:
    the JT/T 808 gateway's port stays exclusive unless its own setting says otherwise."""

    shared: tuple[str, int] | None = None

    # Passes everything through to uvloop's overloads; only reuse_port gets a default.
    async def create_server(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> asyncio.AbstractServer:
        host = args[1] if len(args) > 1 else kwargs.get("host")
        port = args[2] if len(args) > 2 else kwargs.get("port")
        if (host, port) == self.shared and kwargs.get("reuse_port") is None:
            kwargs["reuse_port"] = True
        return await super().create_server(*args, **kwargs)


class WorkerConfig(Config):
    """uvicorn's settings, with each worker's event loop sharing the served port."""

    def get_loop_factory(self) -> Callable[[], asyncio.AbstractEventLoop]:
        shared = (self.host, self.port)

        def new_event_loop() -> asyncio.AbstractEventLoop:
            loop = ReusePortLoop()
            loop.shared = shared
            return loop

        return new_event_loop


def supported() -> bool:
    """SO_REUSEPORT spreads connections on Linux; elsewhere the shared socket is kept."""
    return hasattr(socket, "SO_REUSEPORT")


def check_port_free(host: str, port: int) -> None:
    """Fail before any worker starts if ``host:port`` cannot be listened on, above all if
    something already listens there: the workers' own SO_REUSEPORT sockets would join a
    listener of the same user that also set it and split its traffic silently. A plain bind
    fails against any listener. Every address ``host`` names is tried, as the workers bind."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CannotListen(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no user
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise CannotListen(f"port {port} on {host} is already in use") from exc
                why = exc.strerror or exc
                raise CannotListen(f"cannot listen on {host}:{port}: {why}") from exc


def run(app: str, *, workers: int, **options: Any) -> None:
    """Serve the import string ``app`` (a factory) from ``workers`` processes, each on its own
    SO_REUSEPORT socket; ``options`` are uvicorn's (host, port, log level …). Call
    ``check_port_free`` first: a worker that cannot bind only logs it."""
    config = WorkerConfig(app, factory=True, workers=workers, **options)
    # No socket: each worker's server binds its own through ReusePortLoop (module docstring).
    Multiprocess(config, sockets=None).run()  # type: ignore[arg-type]
