"""The private cluster: created, found running, stopped and restarted — also from a checkout
the postgres user cannot enter (a clone inside a 0700 temp dir, as CI makes)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import psycopg
import pytest

from geo_api.pg_local import LocalCluster


@pytest.mark.skipif(os.geteuid() != 0, reason="the fallback only exists for root")
def test_cluster_lifecycle_in_a_private_directory() -> None:
    with tempfile.TemporaryDirectory() as tmp:  # mode 0700, owned by root
        data_dir = Path(tmp) / ".data"
        cluster = LocalCluster(data_dir)
        try:
            port = cluster.up(("georisk",))
            assert cluster.pgdata.is_symlink()  # the server lives outside the checkout
            assert cluster.running()
            with psycopg.connect(cluster.url("georisk")) as conn:
                row = conn.execute("SELECT postgis_lib_version()").fetchone()
            assert row is not None and row[0].startswith("3.")
            # A second `up` finds it running on the same port instead of starting another.
            assert LocalCluster(data_dir).up(("georisk",)) == port
            cluster.stop()
            assert not cluster.running()
            assert cluster.up(("georisk",)) > 0  # restarts from the same data
            assert cluster.running()
        finally:
            real = cluster.pgdata.resolve()
            cluster.stop()
            if real != cluster.pgdata and real.exists():
                import shutil

                shutil.rmtree(real.parent)
