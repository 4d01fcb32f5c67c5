"""Offline tile packages by view (issue 16 §5): ``georisk export-tiles --view``, then
``GET /tiles/packages`` and ``GET /tiles/{name}.pmtiles`` with range requests, read back by
GDAL's PMTiles driver from the file and from the served URL (/vsicurl/)."""

from __future__ import annotations

import gzip
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mapbox_vector_tile
import psycopg
import pyogrio
import pytest
from click.testing import CliRunner
from pmtiles.reader import MmapSource, Reader, all_tiles

from geo_api.cli import main as cli
from layers.access.packages import PackageView, covers
from layers.catalog import CATALOG
from tests.conftest import LiveServer, auth, key_for, make_settings
from tests.planting import plant_two_sites

LON, LAT = 127.60, 35.60  # an area of this module's own, outside the demo city
BBOX = f"{LON - 0.01},{LAT - 0.01},{LON + 0.01},{LAT + 0.01}"
ZOOMS = "13-15"
PUBLIC_LAYERS = "enterprises,hazard_sources"
ALL_LAYERS = "enterprises,hazard_sources,risk_units"


@pytest.fixture(scope="module")
def plant(database_url: str) -> dict[str, Any]:
    """Enterprises A (district d1) and B (district d2) side by side, each with a hazard source
    holding a substance inventory and an R value, and a risk unit."""
    with psycopg.connect(database_url, autocommit=True) as c:
        out = plant_two_sites(c, "PKGX", "离线包公司", LON, LAT, 0.002, substance="液氯PKG")
    return out


def export(url: str, out: Path, *args: str, layers: str = PUBLIC_LAYERS) -> Any:
    """``georisk export-tiles`` as an operator runs it (through click, against ``url``)."""
    argv = ["export-tiles", "--layers", layers, "--bbox", BBOX, "--zooms", ZOOMS, *args, str(out)]
    return CliRunner().invoke(cli, argv, env={"GEORISK_DATABASE_URL": url})


@pytest.fixture(scope="module")
def packages(database_url: str, plant: dict[str, Any], tmp_path_factory: Any) -> Path:
    """The served directory: a public, an admin, an enterprise-A and a district-d1 package."""
    folder: Path = tmp_path_factory.mktemp("packages")
    runs = [
        export(database_url, folder / "public.pmtiles"),  # no --view: the public view
        export(database_url, folder / "full.pmtiles", "--view", "admin", layers=ALL_LAYERS),
        export(
            database_url,
            folder / "plant_a.pmtiles",
            *("--view", "enterprise", "--enterprise", str(plant["a"]["id"])),
            layers=ALL_LAYERS,
        ),
        export(
            database_url,
            folder / "district_one.pmtiles",
            *("--view", "regulator", "--districts", plant["d1"]),
            layers=ALL_LAYERS,
        ),
        export(database_url, folder / "public.mbtiles"),
    ]
    for run in runs:
        assert run.exit_code == 0, run.output
    (folder / "notes.txt").write_text("not a package")
    return folder


@pytest.fixture(scope="module")
def server(database_url: str, packages: Path) -> Iterator[LiveServer]:
    settings = make_settings(database_url)
    settings.tiles.packages_dir = packages
    with LiveServer(settings) as live:
        yield live


def tile_properties(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Every feature's properties in a PMTiles file, by layer, decoded from the raw tiles
    (not through any declared schema: a leaked key would show here)."""
    out: dict[str, list[dict[str, Any]]] = {}
    with path.open("rb") as f:
        source = MmapSource(f)
        for _, data in all_tiles(source):
            for name, layer in mapbox_vector_tile.decode(gzip.decompress(data)).items():
                out.setdefault(name, []).extend(feat["properties"] for feat in layer["features"])
    return out


def gdal_fields(source: str) -> dict[str, Any]:
    """Layer → (columns, rows) as GDAL's PMTiles driver reads them."""
    out = {}
    for name, _ in pyogrio.list_layers(source):
        frame = pyogrio.read_dataframe(source, layer=name)
        out[str(name)] = frame
    return out


def ints(column: Any) -> set[int]:
    # Fields are declared by description only (TileJSON), so GDAL may type them as text.
    return {int(v) for v in column}


def metadata(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        meta: dict[str, Any] = Reader(MmapSource(f)).metadata()
    return meta


# -- export ----------------------------------------------------------------------------------


def test_public_package_holds_no_sensitive_field(packages: Path, plant: dict[str, Any]) -> None:
    path = packages / "public.pmtiles"
    frames = gdal_fields(str(path))
    assert set(frames) == {"enterprises", "hazard_sources"}
    hazards = frames["hazard_sources"]
    assert ints(hazards["enterprise_id"]) >= {plant["a"]["id"], plant["b"]["id"]}
    assert "R" not in hazards.columns and "substances" not in hazards.columns
    raw = tile_properties(path)
    assert raw["hazard_sources"] and all(
        "R" not in p and "substances" not in p for p in raw["hazard_sources"]
    )
    meta = metadata(path)
    assert meta["georisk_view"]["role"] == "tile_reader"
    fields = {v["id"]: v["fields"] for v in meta["vector_layers"]}
    assert "R" not in fields["hazard_sources"] and "substances" not in fields["hazard_sources"]


def test_admin_package_has_what_the_public_one_lacks(packages: Path) -> None:
    path = packages / "full.pmtiles"
    frames = gdal_fields(str(path))
    assert set(frames) == {"enterprises", "hazard_sources", "risk_units"}
    hazards = frames["hazard_sources"]
    assert "R" in hazards.columns and "substances" in hazards.columns
    mine = hazards[hazards["code"] == "PKGX-HS"]
    assert {float(r) for r in mine["R"]} == {12.5}  # TileJSON fields carry no types
    assert any("液氯PKGA" in s for s in mine["substances"])
    assert len(frames["risk_units"]) >= 2
    assert metadata(path)["georisk_view"]["role"] == "admin"


def test_enterprise_package_holds_only_its_enterprise(
    packages: Path, plant: dict[str, Any]
) -> None:
    a = plant["a"]["id"]
    path = packages / "plant_a.pmtiles"
    frames = gdal_fields(str(path))
    assert ints(frames["enterprises"]["id"]) == {a}
    assert ints(frames["hazard_sources"]["enterprise_id"]) == {a}
    assert ints(frames["risk_units"]["enterprise_id"]) == {a}
    raw = tile_properties(path)
    assert all(p.get("enterprise_id", a) == a for layer in raw.values() for p in layer)
    view = metadata(path)["georisk_view"]
    assert (view["role"], view["enterprise_id"]) == ("enterprise", a)


def test_mbtiles_records_the_view(packages: Path) -> None:
    db = sqlite3.connect(packages / "public.mbtiles")
    rows = dict(db.execute("SELECT name, value FROM metadata").fetchall())
    db.close()
    assert json.loads(rows["georisk_view"])["role"] == "tile_reader"
    hazards = next(
        v for v in json.loads(rows["json"])["vector_layers"] if v["id"] == "hazard_sources"
    )
    assert "R" not in hazards["fields"]


def test_export_refuses_layers_and_bad_views(
    database_url: str, plant: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "x.pmtiles"
    refused = export(database_url, out, layers="enterprises,risk_units,tankers")
    assert refused.exit_code == 1
    assert "risk_units, tankers not available to the tile_reader role" in refused.output
    for args, expect in [
        (("--view", "ingest"), "--view: 'ingest' is not a map role"),
        (("--view", "enterprise"), "--enterprise:"),
        (("--view", "admin", "--enterprise", "1"), "--enterprise:"),
        (("--view", "admin", "--districts", plant["d1"]), "--districts: only for"),
        (("--view", "regulator", "--districts", "nowhere"), "unknown district nowhere"),
        (("--view", "enterprise", "--enterprise", "999999"), "no enterprise 999999"),
    ]:
        run = export(database_url, out, *args)
        assert run.exit_code == 1 and expect in run.output, (args, run.output)
    assert not out.exists()


# -- who may fetch what ------------------------------------------------------------------------


def _view(role: str, **kw: Any) -> PackageView:
    return PackageView(role, kw.pop("layers", ("enterprises", "hazard_sources")), **kw)


def test_covering_rules() -> None:
    public, ent = (
        _view("tile_reader"),
        _view("enterprise", enterprise_id=5, enterprise_district="x"),
    )
    district = _view("regulator", districts=("x",))
    full = _view("admin", layers=("enterprises", "risk_units"))
    assert covers("tile_reader", None, None, public, CATALOG)
    assert covers(
        "officer", frozenset({"y"}), None, _view("tile_reader", layers=("districts",)), CATALOG
    )
    assert not covers("tile_reader", None, None, ent, CATALOG)
    assert covers("enterprise", None, 5, ent, CATALOG)
    assert not covers("enterprise", None, 6, ent, CATALOG)
    assert covers("regulator", frozenset({"x"}), None, ent, CATALOG)
    assert not covers("regulator", frozenset({"y"}), None, ent, CATALOG)
    assert covers("regulator", frozenset({"x", "y"}), None, district, CATALOG)
    assert not covers("regulator", frozenset({"y"}), None, district, CATALOG)
    assert not covers("regulator", frozenset({"x"}), None, full, CATALOG)
    assert covers("regulator", None, None, full, CATALOG)
    assert not covers("enterprise", None, 5, full, CATALOG)
    assert not covers("regulator", None, None, None, CATALOG)  # no view recorded
    assert covers("admin", None, None, None, CATALOG)


def listed(server: LiveServer, headers: dict[str, str]) -> set[str]:
    with httpx.Client(base_url=server.base_url, headers=headers) as http:
        answer = http.get("/tiles/packages")
    assert answer.status_code == 200, answer.text
    return {f"{p['name']}.{p['format']}" for p in answer.json()["packages"]}


def test_listing_by_caller(server: LiveServer, plant: dict[str, Any]) -> None:
    url = server.url
    everything = {
        "public.pmtiles", "public.mbtiles", "full.pmtiles", "plant_a.pmtiles",
        "district_one.pmtiles",
    }  # fmt: skip
    assert listed(server, server.admin_headers) == everything
    assert listed(server, auth(key_for(url, "tile_reader"))) == {"public.pmtiles", "public.mbtiles"}
    assert listed(server, auth(key_for(url, "regulator"))) == everything
    d1 = auth(key_for(url, "regulator", districts=[plant["d1"]]))
    assert listed(server, d1) == {
        "public.pmtiles", "public.mbtiles", "plant_a.pmtiles", "district_one.pmtiles"
    }  # fmt: skip
    d2 = auth(key_for(url, "regulator", districts=[plant["d2"]]))
    assert listed(server, d2) == {"public.pmtiles", "public.mbtiles"}
    ent_a = auth(key_for(url, "enterprise", enterprise_id=plant["a"]["id"]))
    assert listed(server, ent_a) == {"public.pmtiles", "public.mbtiles", "plant_a.pmtiles"}
    ent_b = auth(key_for(url, "enterprise", enterprise_id=plant["b"]["id"]))
    assert listed(server, ent_b) == {"public.pmtiles", "public.mbtiles"}


def test_refusals_and_unknown_names(server: LiveServer, plant: dict[str, Any]) -> None:
    reader = auth(key_for(server.url, "tile_reader"))
    ent_b = auth(key_for(server.url, "enterprise", enterprise_id=plant["b"]["id"]))
    with httpx.Client(base_url=server.base_url) as http:
        for path, headers in [("/tiles/full.pmtiles", reader), ("/tiles/plant_a.pmtiles", ent_b)]:
            answer = http.get(path, headers=headers)
            assert answer.status_code == 403, path
            assert answer.json()["errors"][0]["field"] == "name"
        for path in ["/tiles/nothing.pmtiles", "/tiles/notes.pmtiles", "/tiles/full.mbtiles",
                     "/tiles/..%2Fpublic.pmtiles", "/tiles/public.txt.pmtiles"]:  # fmt: skip
            answer = http.get(path, headers=server.admin_headers)
            assert answer.status_code == 404, path
        assert http.get("/tiles/public.pmtiles").status_code == 401
        ingest = auth(key_for(server.url, "ingest"))
        assert http.get("/tiles/public.pmtiles", headers=ingest).status_code == 403


def test_range_requests(server: LiveServer, packages: Path) -> None:
    body = (packages / "public.pmtiles").read_bytes()
    size = len(body)
    with server.client("tile_reader") as http:
        whole = http.get("/tiles/public.pmtiles")
        assert whole.status_code == 200 and whole.content == body
        assert whole.headers["accept-ranges"] == "bytes" and whole.headers["etag"]
        head = http.get("/tiles/public.pmtiles", headers={"Range": "bytes=0-126"})
        assert head.status_code == 206 and head.content == body[:127]
        assert head.headers["content-range"] == f"bytes 0-126/{size}"
        assert head.content[:7] == b"PMTiles"
        mid = http.get("/tiles/public.pmtiles", headers={"Range": f"bytes=100-{size // 2}"})
        assert mid.status_code == 206 and mid.content == body[100 : size // 2 + 1]
        tail = http.get("/tiles/public.pmtiles", headers={"Range": "bytes=-50"})
        assert tail.status_code == 206 and tail.content == body[-50:]
        past = http.get("/tiles/public.pmtiles", headers={"Range": f"bytes={size}-{size + 9}"})
        assert past.status_code == 416
        assert past.headers["content-range"] == f"bytes */{size}"
        stale = http.get(
            "/tiles/public.pmtiles", headers={"Range": "bytes=0-9", "If-Range": '"other"'}
        )
        assert stale.status_code == 200 and stale.content == body
        probe = http.head("/tiles/public.pmtiles")
        assert probe.status_code == 200 and int(probe.headers["content-length"]) == size
        assert http.head("/tiles/full.pmtiles").status_code == 403
        mb = http.get("/tiles/public.mbtiles")
        assert mb.status_code == 200 and mb.content[:15] == b"SQLite format 3"
        assert "attachment" in mb.headers["content-disposition"]


def test_gdal_reads_the_served_package(server: LiveServer, plant: dict[str, Any]) -> None:
    key = key_for(server.url, "enterprise", enterprise_id=plant["a"]["id"])
    options = {
        "GDAL_HTTP_HEADERS": f"X-API-Key: {key}",
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "CPL_VSIL_CURL_USE_HEAD": "NO",
    }
    pyogrio.set_gdal_config_options(options)
    try:
        frames = gdal_fields(f"/vsicurl/{server.base_url}/tiles/plant_a.pmtiles")
        public = gdal_fields(f"/vsicurl/{server.base_url}/tiles/public.pmtiles")
    finally:
        pyogrio.set_gdal_config_options({name: None for name in options})
    a = plant["a"]["id"]
    assert ints(frames["hazard_sources"]["enterprise_id"]) == {a}
    assert ints(frames["enterprises"]["id"]) == {a}
    assert "R" in frames["hazard_sources"].columns  # its own R values: the enterprise's view
    assert "R" not in public["hazard_sources"].columns
    assert plant["b"]["id"] in ints(public["enterprises"]["id"])
