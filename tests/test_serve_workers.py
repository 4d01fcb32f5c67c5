"""``georisk serve --workers N`` makes the token secret once, before the workers start.

On a fresh data directory each worker used to find no secret and write its own (``make run``
starts two): a session signed by one worker was then refused by the other. The command now
writes it first; every worker reads that one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from geo_api import cli


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
    result = CliRunner().invoke(cli.main, ["serve", "--workers", str(workers), "--port", "1"])
    assert result.exit_code == 0, result.output
    assert seen["secret"] and len(seen["secret"]) >= 48  # written before any worker started
    assert (secret.stat().st_mode & 0o777) == 0o600
    if workers > 1:
        assert seen["app"] == "geo_api.app:app_from_environment" and seen["workers"] == workers
