"""``georisk partitions``: maintenance, restore and listing of the time-series partitions
(docs/operations.md "Time-series lifecycle"; the work is layers/core/lifecycle.py)."""

from __future__ import annotations

import datetime as dt
import sys

import click

from geo_api.settings import Settings
from layers.core.partitions import PARTITIONED_TABLES


def _say(line: str) -> None:
    click.echo(line)


@click.group()
def partitions() -> None:
    """Daily partitions of positions and readings: made ahead, archived, restored."""


@partitions.command("maintain")
def maintain_cmd() -> None:
    """Make partitions ahead, archive expired days to GeoParquet and drop them (one round)."""
    from geo_api.lifecycle_task import run_maintenance

    report = run_maintenance(Settings(), _say)
    click.echo(
        f"archived {len(report.archived)} days, kept {len(report.skipped)},"
        f" {report.remaining} left for later rounds"
    )
    if report.skipped:
        sys.exit(1)


@partitions.command("restore")
@click.argument("table", type=click.Choice(PARTITIONED_TABLES))
@click.argument("day", type=click.DateTime(formats=["%Y-%m-%d"]))
def restore_cmd(table: str, day: dt.datetime) -> None:
    """Attach DAY (YYYY-MM-DD, UTC) of TABLE again from its archive file."""
    import psycopg

    from layers.core.lifecycle import LifecycleError, restore_day

    settings = Settings()
    archive = settings.lifecycle.resolved_archive_dir(settings.db.data_dir)
    with psycopg.connect(settings.db.resolved_url(), autocommit=True) as conn:
        try:
            restore_day(conn, archive, table, day.date(), _say)
        except LifecycleError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(1)


@partitions.command("list")
def list_cmd() -> None:
    """Live partitions (restored ones marked) and archived days, per table."""
    import psycopg

    from layers.core.lifecycle import archive_listing

    settings = Settings()
    archive = settings.lifecycle.resolved_archive_dir(settings.db.data_dir)
    with psycopg.connect(settings.db.resolved_url(), autocommit=True) as conn:
        listing = archive_listing(conn, archive)
    for table, parts in listing.items():
        live = parts["live"]
        click.echo(f"{table}: {len(live)} live partitions, {len(parts['archived'])} archived days")
        for p in live:
            mark = f"  (restored {p.restored_at:%Y-%m-%d %H:%M}Z)" if p.restored_at else ""
            click.echo(f"  live      {p.day}  {p.name}{mark}")
        for day in parts["archived"]:
            click.echo(f"  archived  {day}  {archive / table / f'{day}.parquet'}")
