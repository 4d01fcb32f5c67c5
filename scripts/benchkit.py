"""What the benchmark and fault scripts share: their own databases (URL, re-create, drop), a
``georisk serve`` subprocess on a free port, API keys, batches of pre-encoded JSON posted by
concurrent clients, a NOTIFY listener timing first sightings, and peak RSS."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg

from layers.core.changes import CHANGE_CHANNEL

ROOT = Path(__file__).resolve().parent.parent


def make_key(
    url: str,
    role: str = "admin",
    name: str = "benchmark",
    enterprise_id: int | None = None,
    districts: list[str] | None = None,
    carriers: list[str] | None = None,
) -> str:
    """A fresh API key in the database at ``url`` (scripts and tests call the API with it)."""
    from layers.access.keys import create_key

    async def work() -> str:
        conn = await psycopg.AsyncConnection.connect(url)
        async with conn:
            _, key = await create_key(conn, name, role, enterprise_id, districts, carriers=carriers)
            await conn.commit()
            return key

    # In a thread of its own: callers may already run an event loop (Playwright's sync API).
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(work())).result()


def key_headers(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _admin_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres")), parts.path.lstrip("/")


def drop_database(url: str) -> None:
    """Drop the database named in ``url`` (the caller's own), closing its sessions."""
    admin, name = _admin_url(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def recreate_database(url: str) -> None:
    """Drop and create the database named in ``url`` (the caller's own, never another)."""
    drop_database(url)
    admin, name = _admin_url(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def start_server(
    url: str,
    port: int,
    log: Path,
    extra_env: dict[str, str] | None = None,
    extra_args: Sequence[str] = (),
    timeout_s: float = 60.0,
) -> subprocess.Popen[bytes]:
    """``georisk serve`` as its own process group (a SIGKILL aimed at it spares the caller),
    over ``url`` on ``port``, ready once /healthz answers 200 (within ``timeout_s``: more for
    several workers on a loaded machine); its output goes to ``log``."""
    env = {**os.environ, "DATABASE_URL": url, "GEORISK_DATABASE_URL": url, **(extra_env or {})}
    env.pop("GEORISK_PORT", None)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "geo_api.cli", "serve", "--port", str(port), *extra_args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    # The whole group: with --workers N, killing the parent alone would orphan the workers.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")


def bench_url(name: str) -> str:
    """A database in the private cluster (the benchmarks create and own theirs)."""
    port = (Path(".data") / "pg.port").read_text().strip()
    return f"postgresql://georisk@127.0.0.1:{port}/{name}"


@dataclass
class Batch:
    body: bytes  # a JSON array, encoded once before the clock starts
    marks: list[int]  # the events whose latency starts when this batch is sent


async def _client(
    base: str,
    path: str,
    work: list[Batch],
    sent: dict[int, float],
    counts: list[int],
    headers: dict[str, str] | None = None,
) -> None:
    sent_headers = {**(headers or {}), "content-type": "application/json"}
    async with httpx.AsyncClient(base_url=base, timeout=300) as http:
        for b in work:
            now = time.perf_counter()
            for k in b.marks:
                sent[k] = now
            r = await http.post(path, content=b.body, headers=sent_headers)
            r.raise_for_status()
            body = r.json()
            counts[0] += body["accepted"]
            counts[1] += body["duplicates"] + len(body["rejected"])


async def post_all(
    base: str,
    path: str,
    work: list[list[Batch]],
    sent: dict[int, float],
    counts: list[int],
    headers: dict[str, str] | None = None,
) -> None:
    """One client per list of batches, all at once; ``counts`` gets accepted / not stored.
    ``headers`` go with every request (the API key: ``key_headers(make_key(url))``)."""
    await asyncio.gather(*(_client(base, path, w, sent, counts, headers) for w in work))


class NotifyListener(threading.Thread):
    """LISTEN georisk_changes; the first arrival time of each id of one layer."""

    def __init__(self, url: str, layer: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.layer = layer
        self.first: dict[int, float] = {}
        self.stop = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as c:
            c.execute(f"LISTEN {CHANGE_CHANNEL}")
            self.ready.set()
            while not self.stop.is_set():
                for n in c.notifies(timeout=0.2):
                    now = time.perf_counter()
                    payload = json.loads(n.payload)
                    if payload.get("layer") == self.layer:
                        for i in payload.get("ids", []):
                            self.first.setdefault(int(i), now)


def peak_rss_kb(pid: int) -> int:
    """Peak RSS of a process and its children (uvicorn workers), from /proc."""
    total = 0
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for q in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{q}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return total


def _pss_kb(pid: int) -> int:
    """Proportional set size: shared buffers count once across the processes sharing them
    (RSS would count PostgreSQL's shared memory once per backend)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def cluster_pids(data_dir: Path = ROOT / ".data" / "pg") -> list[int]:
    """The private cluster's postmaster and all its children (backends, walwriter, …)."""
    try:
        postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    pids = [postmaster]
    with contextlib.suppress(OSError):
        pids += [
            int(x)
            for x in Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
        ]
    return pids


class MemorySampler(threading.Thread):
    """Peak summed PSS of a set of processes (re-listed each tick), sampled every ``every`` s:
    what PostgreSQL holds while a client works, since its backends come and go."""

    def __init__(
        self,
        pids: Callable[[], list[int]] = cluster_pids,
        every: float = 0.5,
        measure: Callable[[int], int] = _pss_kb,
    ) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.every = every
        self.measure = measure
        self.peak_kb = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak_kb = max(self.peak_kb, sum(self.measure(p) for p in self.pids()))
            self._halt.wait(self.every)

    def __enter__(self) -> MemorySampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._halt.set()
        self.join()


def _hwm_kb(pid: int) -> int:
    """A process's own peak RSS so far (VmHWM), 0 once it is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def run_measured(cmd: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, int, int]:
    """Run ``cmd`` to completion (output passes through); answers (seconds, its own peak RSS
    in KiB, the private cluster's peak PSS in KiB meanwhile).

    The peak is the child's VmHWM sampled while it runs, not ``ru_maxrss``: Linux carries a
    forked child's high-water mark across exec, so under a big parent (pytest, a benchmark
    holding a day of fixes) ``ru_maxrss`` reports the parent's size instead of the child's."""
    started = time.perf_counter()
    with MemorySampler() as pg:
        proc = subprocess.Popen(list(cmd), cwd=ROOT, env={**os.environ, **(env or {})})
        with MemorySampler(lambda: [proc.pid], every=0.05, measure=_hwm_kb) as own:
            proc.wait()
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, list(cmd))
    return time.perf_counter() - started, own.peak_kb, pg.peak_kb
