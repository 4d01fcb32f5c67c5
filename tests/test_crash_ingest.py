"""Killing the server mid-ingest loses no acknowledged fix and duplicates no alert (issue 6).

The small version of ``scripts/fault_ingest.py``: a real ``georisk serve`` subprocess over the
test database, SIGKILLed while a batch is in flight, restarted, and the client resends every
unacknowledged batch plus some acknowledged ones; then SQL counts what was lost or doubled.
"""

from __future__ import annotations

from pathlib import Path

from scripts.fault_ingest import run


def test_sigkill_mid_ingest_loses_and_duplicates_nothing(database_url: str, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    out = run(database_url, vehicles=40, hours=1.5, batch_steps=6, kill_after=15, seed=61, log=log)
    assert out.acked_before_kill >= 15
    assert out.resent > 0
    assert (out.lost, out.duplicated_fixes, out.duplicated_alerts) == (0, 0, 0), out.line()
    # Every planted 12.5-minute roadside stop is exactly one alert, crash or no crash.
    assert out.alerts == out.expected_alerts
    assert out.alerts_without_webhook == 0  # alert and webhook rows commit together
    assert "Traceback" not in log.read_text(errors="replace")
