"""Killing the server mid-ingest loses no acknowledged fix or reading and duplicates no alert
or alarm (issues 6 and 8).

The small version of ``scripts/fault_ingest.py``: a real ``georisk serve`` subprocess over the
test database, two clients (tanker fixes and sensor readings) each with a batch in flight when
it is SIGKILLed, restarted, and both clients resend every unacknowledged batch plus some
acknowledged ones; then SQL counts what was lost or doubled.
"""

from __future__ import annotations

from pathlib import Path

from scripts.fault_ingest import run


def test_sigkill_mid_ingest_loses_and_duplicates_nothing(database_url: str, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    out = run(
        database_url,
        vehicles=40,
        points=40,
        hours=1.5,
        batch_steps=6,
        kill_after=15,
        seed=61,
        log=log,
    )
    assert out.acked_before_kill >= 15 and out.readings_batches_before_kill >= 15
    assert out.resent > 0 and out.readings_resent > 0
    assert (out.lost, out.duplicated_fixes, out.duplicated_alerts) == (0, 0, 0), out.line()
    # Every planted 12.5-minute roadside stop is exactly one alert, crash or no crash.
    assert out.alerts == out.expected_alerts
    assert out.alerts_without_webhook == 0  # alert and webhook rows commit together
    # Every acknowledged reading is stored once; every planted episode is exactly one alarm.
    assert out.readings_acked > 0 and out.expected_alarms > 0
    assert (out.readings_lost, out.duplicated_readings, out.readings_missing) == (0, 0, 0)
    assert (out.duplicated_alarms, out.missing_alarms) == (0, 0), out.line()
    assert out.alarms == out.expected_alarms
    assert not out.failed(), out.report()
    assert "Traceback" not in log.read_text(errors="replace")
