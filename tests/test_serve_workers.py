"""``georisk serve --workers N`` makes the token secret once, before the workers start.

On a fresh data directory each worker used to find no secret and write its own (``make run``
starts two): a session signed by one worker was then refused by the other. The command now
writes it first; every worker reads that one. And with two workers it refuses a port already
served before any starts (their own sockets would join a listener that allows it). The
workers' sockets themselves are checked on real processes in tests/test_many_processes.py.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from geo_api import cli
from scripts.benchkit import free_port


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_makes_the_secret_before_the_workers_start(
    workers: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setenv("GEORISK_DATABASE_URL", database_url)
    monkeypatch.setenv("GEORISK_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("GEORISK_AUTH_TOKEN_SECRET", raising=False)
    secret = tmp_path / "auth_secret"
    seen: dict[str, Any] = {}

    def run(app: Any, **kw: Any) -> None:  # instead of uvicorn: what would the workers find?
        seen.update(kw, app=app, secret=secret.read_text() if secret.exists() else None)

    monkeypatch.setattr("uvicorn.run", run)
    monkeypatch.setattr("geo_api.serve_workers.run", run)  # two workers: a socket each
    port = str(free_port())
    result = CliRunner().invoke(cli.main, ["serve", "--workers", str(workers), "--port", port])
    assert result.exit_code == 0, result.output
    assert seen["secret"] and len(seen["secret"]) >= 48  # written before any worker started
    assert (secret.stat().st_mode & 0o777) == 0o600
    if workers > 1:
        assert seen["app"] == "geo_api.app:app_from_environment" and seen["workers"] == workers


@pytest.fixture()
def workers_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> list[Any]:
    """``georisk serve --workers 2`` up to the point it would start the workers (recorded)."""
    monkeypatch.setenv("GEORISK_DATABASE_URL", database_url)
    monkeypatch.setenv("GEORISK_DATA_DIR", str(tmp_path))
    started: list[Any] = []
    monkeypatch.setattr("geo_api.serve_workers.run", lambda *a, **kw: started.append(a))
    return started


def test_two_workers_refuse_a_port_already_served(workers_started: list[Any]) -> None:
    """The workers' SO_REUSEPORT sockets must not quietly join someone else's listener."""
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # would let a worker join
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = CliRunner().invoke(cli.main, ["serve", "--workers", "2", "--port", str(port)])
    assert result.exit_code == 1 and not workers_started
    assert f"port {port} on 127.0.0.1 is already in use" in result.output


def test_two_workers_refuse_an_address_this_host_does_not_have(
    workers_started: list[Any],
) -> None:
    args = ["serve", "--workers", "2", "--host", "192.0.2.1", "--port", "8000"]  # TEST-NET-1
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 1 and not workers_started
    assert "cannot listen on 192.0.2.1:8000: Cannot assign requested address" in result.output


def test_only_the_served_port_is_shared_between_workers() -> None:
    """Each worker's loop asks for SO_REUSEPORT on the port it serves, and on no other: the
    JT/T 808 gateway's port, bound in the same loop, stays exclusive unless its setting asks."""
    import asyncio

    from geo_api.serve_workers import WorkerConfig

    served, gateway = free_port(), free_port()
    config = WorkerConfig("geo_api.app:app_from_environment", host="127.0.0.1", port=served)

    async def bind() -> tuple[int, int, int]:
        async def nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        loop = asyncio.get_running_loop()
        http = await loop.create_server(asyncio.Protocol, host="127.0.0.1", port=served)
        jt808 = await asyncio.start_server(nothing, "127.0.0.1", gateway, reuse_port=None)
        asked = await asyncio.start_server(nothing, "127.0.0.1", free_port(), reuse_port=True)
        try:
            return tuple(  # type: ignore[return-value]
                s.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
                for s in (http, jt808, asked)
            )
        finally:
            for s in (http, jt808, asked):
                s.close()

    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        http, jt808, asked = runner.run(bind())
    assert http and not jt808 and asked
