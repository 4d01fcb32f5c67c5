"""A private PostgreSQL 15 + PostGIS cluster under ``.data/pg`` for ``make run`` and ``make test``.

PostgreSQL refuses to run as root, so when we are root every server command runs as the
``postgres`` user. If that user cannot reach the checkout (a clone inside a 0700 temp dir),
the cluster lives under /var/lib/georisk/<hash> and ``.data/pg`` is a symlink to it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PG_MAJOR = "15"
POSTGIS_PACKAGE = f"postgresql-{PG_MAJOR}-postgis-3"
SUPERUSER = "georisk"

#: Tuned for a 2-core/24 GiB developer machine: bulk COPY during seeding, short OLTP reads after.
SERVER_OPTIONS = {
    "listen_addresses": "127.0.0.1",
    "shared_buffers": "512MB",
    "work_mem": "32MB",
    "maintenance_work_mem": "512MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    # synchronous_commit stays on: a 2xx for a fix, reading or disposition promises it is on
    # disk, and that promise must survive a crash of PostgreSQL too, not only of the API.
    "random_page_cost": "1.1",
    "jit": "off",
    "max_connections": "120",
    "timezone": "UTC",
}


class PostgresUnavailable(RuntimeError):
    """PostgreSQL or PostGIS is missing; the message says what to run."""


def _is_root() -> bool:
    return os.geteuid() == 0


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if _is_root() else cmd


def _run_as_server(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    # cwd "/": the postgres user may not be allowed into the caller's working directory.
    return subprocess.run(_as_server_user(cmd), cwd="/", **kwargs)


def pg_bindir() -> Path:
    candidate = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
    if (candidate / "pg_ctl").exists():
        return candidate
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise PostgresUnavailable(
        f"PostgreSQL {PG_MAJOR} is not installed. On Debian run: "
        f"apt-get install -y postgresql-{PG_MAJOR} {POSTGIS_PACKAGE}"
    )


def postgis_installed() -> bool:
    return Path(f"/usr/share/postgresql/{PG_MAJOR}/extension/postgis.control").exists()


def ensure_postgis() -> None:
    """Install Debian's PostGIS package when missing and allowed; otherwise say how."""
    if postgis_installed():
        return
    command = f"apt-get install -y {POSTGIS_PACKAGE}"
    if _is_root() and shutil.which("apt-get"):
        print(f"PostGIS is missing: running `apt-get update && {command}` …", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-q", POSTGIS_PACKAGE], check=True, env=env)
        if postgis_installed():
            return
    raise PostgresUnavailable(f"PostGIS is not installed. Run as root: sudo {command}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        # As PostgreSQL binds: a port in TIME_WAIT after a stop is still ours to reuse (without
        # this a restart within a minute moved the cluster to another port under its clients).
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class LocalCluster:
    """The private cluster; its state is the data directory plus a recorded port."""

    def __init__(self, data_dir: Path, name: str = "pg") -> None:
        self.data_dir = data_dir.absolute()
        self.name = name
        self.pgdata = self.data_dir / name
        self.port_file = self.data_dir / f"{name}.port"
        self.log_file = self.data_dir / f"{name}.log"

    # -- state -------------------------------------------------------------------------
    def recorded_port(self) -> int | None:
        try:
            return int(self.port_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    @property
    def server_dir(self) -> Path:
        """The data directory as the server user must name it: through the symlink, the
        postgres user may be unable to enter the checkout (a clone in a 0700 temp dir)."""
        return self.pgdata.resolve()

    def running(self) -> bool:
        if not self.initialised():
            return False
        result = _run_as_server(
            [str(pg_bindir() / "pg_ctl"), "status", "-D", str(self.server_dir)],
            capture_output=True,
            text=True,
        )
        return result.returncode == 0

    def url(self, database: str = "georisk") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.recorded_port()}/{database}"

    # -- lifecycle ---------------------------------------------------------------------
    def _server_can_reach(self, path: Path) -> bool:
        if not _is_root():
            return True
        probe = subprocess.run(
            ["runuser", "-u", "postgres", "--", "test", "-x", str(path)], cwd="/"
        )
        return probe.returncode == 0

    def _prepare_directory(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.pgdata.is_symlink() or self.pgdata.exists():
            return
        if self._server_can_reach(self.data_dir):
            self.pgdata.mkdir(mode=0o700)
            target = self.pgdata
        else:
            digest = hashlib.sha1(str(self.data_dir).encode()).hexdigest()[:12]
            target = Path("/var/lib/georisk") / digest / self.name
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True, mode=0o700)
            for parent in (target.parent, target.parent.parent):
                parent.chmod(0o755)
            self.pgdata.symlink_to(target)
            print(
                f"note: the postgres user cannot enter {self.data_dir}; "
                f"the cluster lives in {target} (linked from {self.pgdata})",
                flush=True,
            )
        if _is_root():
            shutil.chown(target, "postgres", "postgres")

    def init(self) -> None:
        if self.initialised():
            return
        self._prepare_directory()
        print(f"Creating a PostgreSQL {PG_MAJOR} cluster in {self.pgdata} …", flush=True)
        _run_as_server(
            [
                str(pg_bindir() / "initdb"),
                "-D",
                str(self.pgdata.resolve()),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        conf = self.pgdata.resolve() / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write("\n# GeoRisk private cluster\n")
            for key, value in SERVER_OPTIONS.items():
                fh.write(f"{key} = '{value}'\n")

    def start(self) -> int:
        """Start (or find running) and return the port."""
        port = self.recorded_port()
        if self.running() and port is not None:
            return port
        if port is None or not _port_is_free(port):
            port = _free_port()
        real = self.pgdata.resolve()
        log = real.parent / f"{self.name}.log" if real != self.pgdata else self.log_file
        if _is_root() and not log.exists():
            log.touch()
            shutil.chown(log, "postgres", "postgres")
        cmd = [
            str(pg_bindir() / "pg_ctl"),
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(real),
            "-l",
            str(log),
            "-o",
            f"-p {port} -k {real}",
        ]
        result = _run_as_server(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise PostgresUnavailable(
                f"PostgreSQL did not start (pg_ctl said: {result.stdout}{result.stderr}). "
                f"Server log {log}:\n{tail}"
            )
        self.port_file.write_text(f"{port}\n")
        return port

    def stop(self) -> None:
        if self.running():
            _run_as_server(
                [str(pg_bindir() / "pg_ctl"), "stop", "-m", "fast", "-D", str(self.server_dir)],
                check=True,
                stdout=subprocess.DEVNULL,
            )

    def enable_replication(self) -> None:
        """Let standbys stream from this cluster. It was made with ``wal_level=minimal`` (the
        fastest bulk loads, no WAL for tables filled in the transaction that created them);
        a standby needs ``replica``, which takes a restart."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            row = conn.execute("SHOW wal_level").fetchone()
            if row and row[0] != "minimal":
                return
            print("Switching the primary to wal_level=replica (a restart) …", flush=True)
            conn.execute("ALTER SYSTEM SET wal_level = 'replica'")
            conn.execute("ALTER SYSTEM SET max_wal_senders = '10'")
        self.stop()
        self.start()

    def ensure_database(self, name: str) -> None:
        """Create ``name`` with PostGIS unless it exists."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
        with psycopg.connect(self.url(name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")

    def up(self, databases: tuple[str, ...] = ("georisk",)) -> int:
        ensure_postgis()
        self.init()
        started = time.monotonic()
        port = self.start()
        for name in databases:
            self.ensure_database(name)
        print(f"PostGIS is up on 127.0.0.1:{port} ({time.monotonic() - started:.1f} s)", flush=True)
        return port


class LocalReplica(LocalCluster):
    """A hot standby of the private cluster under ``.data/replica``, streaming from it.

    For tests and the demo of read replicas (``georisk db replica up``; docs/operations.md):
    ``pg_basebackup -R`` copies the primary and writes ``standby.signal`` and the
    ``primary_conninfo`` that makes it follow the primary's WAL.
    """

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, "replica")
        self.primary = LocalCluster(data_dir)

    def init(self) -> None:
        if self.initialised():
            return
        self.primary.enable_replication()
        self._prepare_directory()
        print(f"Copying the primary into {self.pgdata} (pg_basebackup) …", flush=True)
        real = self.pgdata.resolve()
        if any(real.iterdir()):  # a copy that failed half-way: start over
            for child in real.iterdir():
                _run_as_server(["rm", "-rf", str(child)], check=True)
        _run_as_server(
            [
                str(pg_bindir() / "pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.primary.recorded_port()),
                "-U",
                SUPERUSER,
                "-D",
                str(real),
                "--wal-method=stream",
                "--write-recovery-conf",
                "--checkpoint=fast",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def up(self, databases: tuple[str, ...] = ()) -> int:
        if not self.primary.running():
            self.primary.up()
        self.init()
        started = time.monotonic()
        port = self.start()
        print(
            f"Replica is up on 127.0.0.1:{port}, streaming from 127.0.0.1:"
            f"{self.primary.recorded_port()} ({time.monotonic() - started:.1f} s)",
            flush=True,
        )
        return port


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    cluster = LocalCluster(Path(os.environ.get("GEORISK_DATA_DIR", ".data")))
    action = args[0] if args else "status"
    with contextlib.suppress(KeyboardInterrupt):
        if action == "up":
            cluster.up()
        elif action == "down":
            cluster.stop()
        else:
            print("running" if cluster.running() else "stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
