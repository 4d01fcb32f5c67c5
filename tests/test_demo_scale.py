"""What must hold when the demo city grows (``georisk seed --scale 4``): identifiers that are
unique at scale 1 stay unique with four times the people, and the bench helpers that measure
the seed report real memory figures."""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

import pytest

from layers.catalog.props import id_card_check_char
from layers.demo_city.chain import _id_card
from layers.demo_city.config import Counts
from scripts.benchkit import MemorySampler, cluster_pids, run_measured


def test_crew_id_cards_stay_unique_at_scale_4_and_beyond() -> None:
    # A scale-4 fleet has ≈ 13,700 tankers: drivers (one a vehicle and a spare per five) plus
    # escorts (one a vehicle) ≈ 30,000 people, all numbered in one sequence; take 3× that.
    vehicles = Counts.for_scale(4).vehicles
    crew = vehicles + (vehicles + 4) // 5 + vehicles
    assert crew > 12_000  # past where the old numbering repeated
    cards = [_id_card("330206", i) for i in range(3 * crew)]
    assert len(set(cards)) == len(cards)
    for card in cards[:: len(cards) // 50]:
        assert len(card) == 18 and card[:6] == "330206"
        birth = dt.datetime.strptime(card[6:14], "%Y%m%d").date()
        assert dt.date(1965, 1, 1) <= birth < dt.date(1998, 1, 1)
        assert card[17] == id_card_check_char(card[:17])


def test_scale_1_crew_id_cards_are_unchanged() -> None:
    # The first 12,000 numbers (every scale-1 crew member) are what they were before the fix,
    # so existing scale-1 databases and their ground truth stay valid.
    for i in (0, 1, 999, 5_000, 11_999):
        birth = dt.date(1965, 1, 1) + dt.timedelta(days=(i * 7919) % 12000)
        first17 = f"330206{birth:%Y%m%d}{i % 1000:03d}"
        assert _id_card("330206", i) == first17 + id_card_check_char(first17)
    assert _id_card("330206", 12_000) != _id_card("330206", 0)


def test_run_measured_reports_the_child_peak() -> None:
    # A child that touches ≈ 200 MiB: its peak RSS (what /usr/bin/time -v reports) says so.
    # It holds the memory a moment, as a seed does for minutes, so the sampler sees it; the
    # figure must be the child's own, not this (larger) test process's.
    code = (
        "import time; b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]);"
        " time.sleep(0.5)"
    )
    seconds, rss_kb, _ = run_measured([sys.executable, "-c", code])
    assert seconds > 0
    assert 200 * 1024 <= rss_kb < 600 * 1024


def test_cluster_pids_are_the_private_postmaster_and_its_children() -> None:
    pids = cluster_pids()
    if not pids:
        pytest.skip("the private cluster is not running here (GEORISK_TEST_DATABASE_URL)")
    assert "postgres" in Path(f"/proc/{pids[0]}/cmdline").read_bytes().decode(errors="replace")
    assert len(pids) >= 4  # checkpointer, background writer, walwriter, … at least


def test_memory_sampler_sums_the_processes_given() -> None:
    with MemorySampler(lambda: [os.getpid()], every=0.05) as sampler:
        block = bytearray(64 * 2**20)
        block[::4096] = b"y" * len(block[::4096])
        time.sleep(0.3)
    assert sampler.peak_kb >= 64 * 1024
