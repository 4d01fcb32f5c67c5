"""``georisk``: the command line that ``make run`` and operators use.

Every command builds ``Settings()`` from the environment at call time, never at import.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from geo_api.cli_partitions import partitions
from geo_api.settings import Settings
from layers.core.vocab import ROLES

if TYPE_CHECKING:
    from layers.access.packages import PackageView


def vocab_roles() -> list[str]:
    return list(ROLES)


def _settings() -> Settings:
    return Settings()


def _as_cli_actor() -> None:
    """Writes of this command appear in the audit log as ``cli:<user>`` (not ``system``):
    every connection it opens starts with ``georisk.actor`` set (libpq reads PGOPTIONS)."""
    import getpass
    import os
    import re

    user = re.sub(r"[^A-Za-z0-9_.-]", "_", getpass.getuser())
    option = f"-c georisk.actor=cli:{user}"
    os.environ["PGOPTIONS"] = f"{os.environ.get('PGOPTIONS', '')} {option}".strip()


def _fail(message: str) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(1)


@click.group()
def main() -> None:
    """GeoRisk — hazardous-chemical risk maps over PostGIS."""


# -- db ---------------------------------------------------------------------------------
@main.group()
def db() -> None:
    """The private PostgreSQL + PostGIS cluster under .data/pg (unused when DATABASE_URL is set)."""


@db.command("up")
@click.option(
    "--database",
    "databases",
    multiple=True,
    help="databases to create (default: the configured one)",
)
def db_up(databases: tuple[str, ...]) -> None:
    """Install PostGIS if needed (root on Debian), start the cluster, create the database."""
    from geo_api.pg_local import LocalCluster, PostgresUnavailable

    settings = _settings()
    if settings.db.url:
        _check_external(settings.db.url)
        return
    try:
        LocalCluster(settings.db.data_dir).up(databases or (settings.db.name,))
    except PostgresUnavailable as exc:
        _fail(str(exc))


def _check_external(url: str) -> None:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            row = conn.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'postgis'"
            ).fetchone()
    except psycopg.Error as exc:
        _fail(
            f"cannot reach DATABASE_URL ({exc.__class__.__name__}); "
            "check host, port and credentials"
        )
        return
    if row is None:
        click.echo("DATABASE_URL reachable; PostGIS will be enabled by `georisk migrate`.")
    else:
        click.echo(f"DATABASE_URL reachable, PostGIS {row[0]}.")


@db.command("packages")
def db_packages() -> None:
    """Install the Debian packages of PostGIS and pg_partman when missing (root, apt)."""
    from geo_api.pg_local import PostgresUnavailable, ensure_partman, ensure_postgis

    try:
        ensure_postgis()
        ensure_partman()
    except PostgresUnavailable as exc:
        _fail(str(exc))
    click.echo("PostGIS and pg_partman packages are installed")


@db.command("down")
def db_down() -> None:
    """Stop the private cluster (data stays in .data/pg)."""
    from geo_api.pg_local import LocalCluster

    LocalCluster(_settings().db.data_dir).stop()
    click.echo("stopped")


@db.group("replica")
def db_replica() -> None:
    """A local hot standby of the private cluster (.data/replica), for read replicas."""


@db_replica.command("up")
def db_replica_up() -> None:
    """Copy the private cluster with pg_basebackup and start it as a streaming standby."""
    from geo_api.pg_local import LocalReplica, PostgresUnavailable

    settings = _settings()
    if settings.db.url:
        _fail("DATABASE_URL is set: make replicas of that server with its own tools")
    replica = LocalReplica(settings.db.data_dir)
    try:
        replica.up()
    except PostgresUnavailable as exc:
        _fail(str(exc))
    click.echo(
        f"read from it: GEORISK_READ_DATABASE_URL={replica.url(settings.db.name)}"
        " (docs/operations.md, Read replicas)"
    )


@db_replica.command("down")
def db_replica_down() -> None:
    """Stop the local standby (its copy stays in .data/replica)."""
    from geo_api.pg_local import LocalReplica

    LocalReplica(_settings().db.data_dir).stop()
    click.echo("stopped")


@db.command("status")
def db_status() -> None:
    from geo_api.pg_local import LocalCluster

    settings = _settings()
    if settings.db.url:
        click.echo("using DATABASE_URL")
        _check_external(settings.db.url)
        return
    cluster = LocalCluster(settings.db.data_dir)
    if cluster.running():
        click.echo(f"running on 127.0.0.1:{cluster.recorded_port()} ({cluster.pgdata})")
    else:
        click.echo("stopped" if cluster.initialised() else "not created (run `georisk db up`)")
        sys.exit(3)


@db.command("citus-sql")
@click.option("--coordinator", default="coordinator", show_default=True, help="its host name")
@click.option("--port", type=int, default=5432, show_default=True)
@click.option("--check", is_flag=True, help="first hold the database to Citus's key rules")
def db_citus_sql(coordinator: str, port: int, check: bool) -> None:
    """Print the SQL that distributes a migrated database on a Citus coordinator
    (layers/core/distribution.py; docs/operations.md, "Moving to Citus")."""
    from layers.core.distribution import citus_sql

    if check:
        import psycopg

        from layers.core.citus_rules import violations

        with psycopg.connect(_settings().db.resolved_url()) as conn:
            found = violations(conn)
        if found:
            _fail("not Citus-ready:\n" + "\n".join(found))
    for line in citus_sql(coordinator=coordinator, port=port):
        click.echo(line)


@main.command()
def fonts() -> None:
    """Install the enterprise book's CJK font if needed (root on Debian)."""
    from geo_api.fonts import ensure_cjk_font
    from layers.risk.fonts import CjkFontMissing

    try:
        click.echo(f"book font: {ensure_cjk_font()}")
    except CjkFontMissing as exc:
        _fail(str(exc))


# -- schema and data ----------------------------------------------------------------------
@main.command()
def migrate() -> None:
    """Apply every pending Alembic migration."""
    from geo_api.migrate import upgrade

    started = time.monotonic()
    upgrade(_settings().db.resolved_url())
    click.echo(f"schema at head ({time.monotonic() - started:.1f} s)")


@main.command()
@click.option("--scale", type=float, default=1.0, show_default=True, help="multiplies every count")
@click.option("--seed", "seed_value", type=int, default=20221, show_default=True)
@click.option("--if-empty", is_flag=True, help="do nothing when enterprises already exist")
@click.option("--replace", is_flag=True, help="delete existing demo data first")
def seed(scale: float, seed_value: int, if_empty: bool, replace: bool) -> None:
    """Generate and load the demo city (deterministic for a seed)."""
    _as_cli_actor()
    from layers.demo_city import database_is_empty, seed_demo_city

    settings = _settings()
    url = settings.db.resolved_url()
    if if_empty and not database_is_empty(url):
        click.echo("demo city already loaded; skipping seed")
        return
    if scale <= 0:
        _fail("--scale must be > 0")
    seed_demo_city(
        url, scale=scale, seed=seed_value, out_dir=settings.db.data_dir / "demo", replace=replace
    )


@main.command()
@click.option("--enterprise", "enterprise_ids", type=int, multiple=True, help="only these ids")
def recompute(enterprise_ids: tuple[int, ...]) -> None:
    """Recompute hazard-source grades and enterprise colours (all, or the given enterprises)."""
    _as_cli_actor()
    import asyncio

    import psycopg

    from geo_api.rerate import Rerater

    settings = _settings()
    rerate = Rerater(settings)

    async def run() -> str:
        conn = await psycopg.AsyncConnection.connect(settings.db.resolved_url())
        async with conn:
            report = await rerate(conn, enterprise_ids or None)
        return report.summary()

    click.echo(asyncio.run(run()))


# -- keys --------------------------------------------------------------------------------
@main.group()
def keys() -> None:
    """API keys: create, list, revoke, and the demo key per role."""
    _as_cli_actor()


def _run_db(work: Any) -> Any:
    """Run ``work(conn)`` on an async connection to the configured database."""
    import asyncio

    import psycopg

    settings = _settings()

    async def run() -> Any:
        conn = await psycopg.AsyncConnection.connect(settings.db.resolved_url())
        async with conn:
            return await work(conn)

    return asyncio.run(run())


def _listed(values: tuple[str, ...]) -> list[str] | None:
    """Repeated options and comma lists alike (``--district A --district B``, ``--districts
    A,B``)."""
    out = [v.strip() for value in values for v in value.split(",") if v.strip()]
    return out or None


@keys.command("create")
@click.option("--name", required=True, help="whose key (a person or a system: its user)")
@click.option("--role", required=True, type=click.Choice(vocab_roles()))
@click.option("--enterprise", "enterprise_id", type=int, default=None, help="enterprise role")
@click.option(
    "--district",
    "--districts",
    "districts",
    multiple=True,
    help="regulator/officer/ingest; repeatable or a comma list",
)
@click.option(
    "--carrier",
    "--carriers",
    "carriers",
    multiple=True,
    help="ingest: a carrier whose tankers it posts (a terminal gateway); repeatable",
)
def keys_create(
    name: str,
    role: str,
    enterprise_id: int | None,
    districts: tuple[str, ...],
    carriers: tuple[str, ...],
) -> None:
    """Make a key and print it (it is shown only this once)."""
    from layers.access.keys import KeyProblem, create_key

    async def work(conn: Any) -> str:
        _, key = await create_key(
            conn,
            name,
            role,
            enterprise_id,
            _listed(districts),
            carriers=[c.strip() for c in carriers if c.strip()] or None,
        )
        await conn.commit()
        return key

    try:
        click.echo(_run_db(work))
    except KeyProblem as exc:
        _fail(str(exc))


@keys.command("list")
def keys_list() -> None:
    """Every key: id, prefix, role, scope, state."""
    from layers.access.keys import list_keys

    for row in _run_db(list_keys):
        places = ",".join((row["districts"] or []) + (row["carriers"] or []))
        scope = row["enterprise_id"] or places or "-"
        state = "active" if row["active"] else "revoked/expired"
        head = f"{row['id']:>5}  {row['prefix']}…  {row['role']:<12}"
        click.echo(f"{head} {scope:<20} {state}  {row['name']}")


@keys.command("revoke")
@click.argument("key_id", type=int, required=False)
@click.option("--user", default=None, help="revoke every key of this user (the keys' name)")
def keys_revoke(key_id: int | None, user: str | None) -> None:
    """Revoke a key by id, or every key of a user (signing them out everywhere): servers
    refuse it, its sessions and tokens within 30 s (GEORISK_AUTH_*_TTL_S)."""
    from layers.access.keys import revoke, revoke_user

    if (key_id is None) == (user is None):
        _fail("give a key id or --user NAME")

    async def work(conn: Any) -> list[int]:
        if user is not None:
            done = await revoke_user(conn, user)
        else:
            assert key_id is not None
            done = [key_id] if await revoke(conn, key_id) else []
        await conn.commit()
        return done

    revoked = _run_db(work)
    if not revoked:
        _fail(f"no active key {key_id}" if user is None else f"no active key of {user!r}")
    click.echo(f"revoked key(s) {', '.join(map(str, revoked))}")


@keys.command("demo")
def keys_demo() -> None:
    """Make (or re-print) one demo key per role for the demo city."""
    from layers.demo_city.keys import describe, ensure_demo_keys

    data_dir = _settings().db.data_dir
    entries = _run_db(lambda conn: ensure_demo_keys(conn, data_dir))
    click.echo("Demo keys (send as 'X-API-Key: …' or 'Authorization: Bearer …'; the map asks):")
    for entry in entries:
        click.echo(describe(entry))


# -- cap --------------------------------------------------------------------------------
@main.group()
def cap() -> None:
    """CAP message signing (issue 18 §6; docs/security.md)."""


@cap.command("keygen")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="directory for cap-signing-key.pem and cap-signing-cert.pem; default <data dir>/cap",
)
@click.option("--common-name", default="GeoRisk CAP alerts", show_default=True)
@click.option("--days", type=click.IntRange(1, 3650), default=365, show_default=True)
@click.option("--if-missing", is_flag=True, help="keep an existing pair (make run uses this)")
def cap_keygen(out_dir: Path | None, common_name: str, days: int, if_missing: bool) -> None:
    """Make an RSA key and a self-signed certificate for signing CAP messages, and print the
    two settings that turn signing on."""
    from layers.alerts.cap_signature import CERT_FILE, KEY_FILE, write_key_pair

    out = out_dir or _settings().db.data_dir / "cap"
    key_path, cert_path = out / KEY_FILE, out / CERT_FILE
    if key_path.exists() or cert_path.exists():
        if not if_missing:
            _fail(
                f"{out} already holds a CAP key pair; remove it first (receivers pin the old one)"
            )
    else:
        key_path, cert_path = write_key_pair(out, common_name, days)
        click.echo(f"wrote {key_path} (private, 0600) and {cert_path}")
    click.echo(f"GEORISK_CAP_KEY_FILE={key_path.absolute()}")
    click.echo(f"GEORISK_CAP_CERT_FILE={cert_path.absolute()}")


@main.command("import")
@click.argument(
    "layer",
    type=click.Choice(
        [
            "enterprises",
            "hazard-sources",
            "monitoring-points",
            "pipelines",
            "zones",
            "districts",
            # The transport chain (docs/transport.md §5): CSV or JSON, no geometry but routes.
            "carriers",
            "vehicles",
            "crew-members",
            "waybills",
        ]
    ),
)
@click.argument("file", type=click.Path(exists=True, dir_okay=True, path_type=Path))
@click.option("--partial", is_flag=True, help="load the good rows even when some are bad")
@click.option("--crs", default=None, help="CRS of a file that declares none (e.g. EPSG:4490)")
def import_(layer: str, file: Path, partial: bool, crs: str | None) -> None:
    """Import a GeoPackage, GeoJSON, Shapefile, CSV (lon/lat columns) or JSON into LAYER."""
    from layers.imports.importer import ImportRejected, import_file

    _as_cli_actor()
    try:
        settings = _settings()
        report = import_file(
            settings.db.resolved_url(),
            layer,
            file,
            all_or_nothing=not partial,
            crs=crs,
            config=settings.risk.recompute_config(settings.db.data_dir),
        )
    except ImportRejected as exc:
        click.secho(
            f"{file}: rejected, nothing was stored ({len(exc.errors)} bad rows)", fg="red", err=True
        )
        for err in exc.errors[:200]:
            click.echo(f"  row {err.row}: {err.field}: {err.reason}", err=True)
        if len(exc.errors) > 200:
            click.echo(f"  … and {len(exc.errors) - 200} more", err=True)
        sys.exit(2)
    click.echo(report.summary())


# -- rules ------------------------------------------------------------------------------
@main.group()
def rules() -> None:
    """Safety-score rule sets (docs/rules.md): import a new version, list what is stored."""
    _as_cli_actor()


@rules.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--set", "base_code", default=None, help="CSV: the stored set whose items it replaces"
)
@click.option("--title-zh", default=None, help="CSV: the new version's title (zh)")
@click.option("--title-en", default=None, help="CSV: the new version's title (en)")
@click.option(
    "--official/--sample",
    "official",
    default=None,
    help="CSV: the official list, or a sample (default: as the stored set)",
)
@click.option("--source-note", default=None, help="CSV: where the list comes from")
def rules_import(
    file: Path,
    base_code: str | None,
    title_zh: str | None,
    title_en: str | None,
    official: bool | None,
    source_note: str | None,
) -> None:
    """Validate FILE (a JSON rule set, or a CSV item list with --set) and store it as the
    set's next version; every bad row is named and nothing is stored on any error."""
    from layers.core.errors import InvalidInput
    from layers.prevention.rule_book import (
        definition_from_file,
        load_rule_book,
        store_rule_set,
    )

    async def work(conn: Any) -> tuple[str, int, int]:
        book = await load_rule_book(conn)
        base = book.latest.get(base_code) if base_code else None
        if base_code and base is None:
            raise InvalidInput(f"--set {base_code}: no such rule set", [])
        title = None
        if base is not None and (title_zh or title_en):
            title = {"zh": title_zh or base.title.zh, "en": title_en or base.title.en}
        definition = definition_from_file(
            file,
            base,
            title=title,
            is_sample=None if official is None else not official,
            source_note=source_note,
        )
        _, version = await store_rule_set(conn, definition)
        await conn.commit()
        return definition.code, version, len(definition.items)

    try:
        code, version, items = _run_db(work)
    except InvalidInput as exc:
        click.secho(f"{file}: rejected, nothing was stored", fg="red", err=True)
        click.echo(f"  {exc.message}", err=True)
        for err in exc.errors[:200]:
            where = f"row {err.index}: " if err.index is not None else ""
            click.echo(f"  {where}{err.field}: {err.reason}", err=True)
        sys.exit(2)
    click.echo(f"rule set {code}: version {version} stored ({items} items)")


@rules.command("list")
def rules_list() -> None:
    """Every set's latest version: code, version, items, SAMPLE or official, title."""
    from layers.prevention.rule_book import load_rule_book

    async def work(conn: Any) -> list[str]:
        book = await load_rule_book(conn)
        return [
            f"{s.code}\tv{s.version}\t{len(s.items)} items\t"
            f"{'SAMPLE' if s.is_sample else 'official'}\t{s.title.en}"
            for s in book.latest.values()
        ]

    for line in _run_db(work):
        click.echo(line)


@main.command("export-tiles")
@click.option("--layers", "layer_names", required=True, help="comma list, e.g. enterprises,zones")
@click.option("--bbox", required=True, help="minx,miny,maxx,maxy in WGS 84")
@click.option("--zooms", default="8-14", show_default=True, help="zoom range, e.g. 8-14")
@click.option(
    "--view",
    "role",
    default="tile_reader",
    show_default=True,
    help="the recipient's role: the package holds only what that role sees on the map",
)
@click.option("--districts", default=None, help="regulator/officer: comma list of district codes")
@click.option("--enterprise", "enterprise_id", type=int, default=None, help="enterprise: its id")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
def export_tiles_cmd(
    layer_names: str,
    bbox: str,
    zooms: str,
    role: str,
    districts: str | None,
    enterprise_id: int | None,
    out: Path,
) -> None:
    """Write tiles to OUT.pmtiles or OUT.mbtiles for offline use in the field.

    The package is rendered through the --view role's tile view (the least one, the public
    tile_reader's, unless told otherwise): sensitive properties and other districts' or
    enterprises' rows are left out exactly as the tile routes leave them out, and the view is
    recorded in the package, so the server hands it only to callers who see at least as much.
    """
    import asyncio

    from layers.catalog import CATALOG
    from layers.collections.read import QueryError, parse_bbox
    from tiles.engine import UnknownTileLayer, parse_layers
    from tiles.export import export_tiles, parse_zooms

    if out.suffix.lower() not in (".pmtiles", ".mbtiles"):
        _fail("OUT must end in .pmtiles or .mbtiles")
    try:
        layers = parse_layers(layer_names, CATALOG.tiles)
        box = parse_bbox(bbox)
        zoom_range = parse_zooms(zooms)
    except (UnknownTileLayer, QueryError, ValueError) as exc:
        _fail(str(exc))
        return
    url = _settings().db.resolved_url()
    view = _package_view(url, role, [layer.name for layer in layers], districts, enterprise_id)
    try:
        report = asyncio.run(
            export_tiles(
                url, layers, box, zoom_range, out, view=view.tile_view(), recorded=view.to_json()
            )
        )
    except ValueError as exc:
        _fail(str(exc))
        return
    click.echo(f"{out}: {report.summary()} for the {_view_text(view)}")


def _package_view(
    url: str, role: str, layers: list[str], districts: str | None, enterprise_id: int | None
) -> PackageView:
    """The recipient's view from ``--view/--districts/--enterprise``, checked against the
    catalogue and the database; every problem is a message naming the option."""
    import psycopg

    from layers.access import roles
    from layers.access.packages import PACKAGE_ROLES, PackageView, refused_layers
    from layers.catalog import CATALOG

    if role not in PACKAGE_ROLES:
        _fail(f"--view: {role!r} is not a map role (one of {', '.join(PACKAGE_ROLES)})")
    refused = refused_layers(role, layers, CATALOG)
    if refused:
        _fail(f"--layers: {', '.join(refused)} not available to the {role} role")
    codes = sorted({c.strip() for c in districts.split(",") if c.strip()}) if districts else None
    if codes is not None and role not in roles.DISTRICT_ROLES:
        _fail(f"--districts: only for the {', '.join(roles.DISTRICT_ROLES)} roles")
    if (enterprise_id is not None) != (role == roles.ENTERPRISE):
        _fail("--enterprise: give it with --view enterprise, and only then")
    home: str | None = None
    with psycopg.connect(url) as conn:
        if codes:
            rows = conn.execute("SELECT code FROM districts WHERE code = ANY(%s)", (codes,))
            unknown = sorted(set(codes) - {row[0] for row in rows})
            if unknown:
                _fail(f"--districts: unknown district {', '.join(unknown)}")
        if enterprise_id is not None:
            row = conn.execute(
                "SELECT district FROM enterprises WHERE id = %s", (enterprise_id,)
            ).fetchone()
            if row is None:
                _fail(f"--enterprise: no enterprise {enterprise_id}")
                raise SystemExit(1)
            home = row[0]
    return PackageView(role, tuple(layers), tuple(codes) if codes else None, enterprise_id, home)


def _view_text(view: PackageView) -> str:
    scope = ""
    if view.districts:
        scope = f" of {', '.join(view.districts)}"
    elif view.enterprise_id is not None:
        scope = f" of enterprise {view.enterprise_id}"
    return f"{view.role} view{scope}"


@main.command()
@click.option("--host", default=None, help="default 127.0.0.1 (GEORISK_HOST)")
@click.option("--port", type=int, default=None, help="default 8000 (PORT)")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="server processes sharing the port (default 1, GEORISK_WORKERS)",
)
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the API and the web map."""
    import uvicorn

    from geo_api import serve_workers
    from geo_api.app import cap_signer, create_app
    from geo_api.auth import load_token_secret
    from layers.alerts.cap_signature import SigningKeyError

    settings = _settings()
    host = host or settings.server.host
    port = port or settings.server.port
    workers = workers or settings.server.workers
    try:
        # Checked here once, so a bad key stops the command instead of every worker.
        cap_signer(settings.cap)
        if workers > 1:
            # Made once, before the workers start: each would otherwise find no secret on a
            # fresh data directory and write its own, and a session signed by one worker would
            # be refused by the other (``make run`` starts two on a fresh machine).
            load_token_secret(settings.auth, settings.db.data_dir)
        app: Any = create_app(settings) if workers == 1 else "geo_api.app:app_from_environment"
    except SigningKeyError as exc:
        _fail(f"CAP signing key (GEORISK_CAP_KEY_FILE / GEORISK_CAP_CERT_FILE): {exc}")
    own_sockets = workers > 1 and serve_workers.supported()
    if own_sockets:
        try:
            serve_workers.check_port_free(host, port)
        except serve_workers.CannotListen as exc:
            _fail(f"{exc}: stop what serves it, or choose another --host / --port")
    processes = "" if workers == 1 else f", {workers} processes"
    click.secho(
        f"GeoRisk is serving on http://{host}:{port}/  (API docs: /docs{processes})", fg="green"
    )
    options: dict[str, Any] = dict(
        host=host,
        port=port,
        log_level=settings.server.log_level,
        # Open SSE streams would otherwise hold a graceful shutdown forever; clients reconnect
        # with Last-Event-ID and lose nothing.
        timeout_graceful_shutdown=settings.server.shutdown_grace_s,
        # X-Forwarded-Proto/-For are believed from these only (docs/operations.md).
        proxy_headers=True,
        forwarded_allow_ips=settings.security.trusted_proxies,
    )
    if not own_sockets:
        uvicorn.run(
            app,
            factory=workers > 1,  # each worker process builds its own app from the environment
            workers=workers if workers > 1 else None,
            timeout_worker_healthcheck=settings.server.worker_healthcheck_s,
            **options,
        )
        return
    # Each worker on a socket of its own, so the kernel spreads connections over them.
    serve_workers.run(
        app,
        workers=workers,
        timeout_worker_healthcheck=settings.server.worker_healthcheck_s,
        **options,
    )


# ``georisk partitions …`` (its own module: geo_api/cli_partitions.py)
main.add_command(partitions)


if __name__ == "__main__":
    main()
