"""The catalogue is the one declaration of a layer: a throwaway layer declared in a test gets a
REST collection (list, item, create with validation, edit with ETags, delete), tiles and
TileJSON, with nothing else written for it; and the catalogue's rules about names and derived
views hold."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import httpx
import mapbox_vector_tile
import psycopg
import pytest
from pydantic import Field

from layers.catalog import CATALOG, Catalog, DuplicateLayer
from layers.catalog.model import (
    BadLayerName,
    Column,
    Layer,
    Prop,
    Rest,
    Tiles,
    Writes,
    layer_name,
    url_segment,
)
from layers.catalog.props import LayerProps
from layers.core.geometry import POINT, GeometryRule
from tests.conftest import LiveServer, key_for, make_settings
from tests.test_tiles import tile_xy
from tiles.tms import Tile, tile_range


class WellProps(LayerProps):
    """Validation of the throwaway layer: a name and a non-negative depth."""

    geometry: ClassVar[GeometryRule | None] = POINT
    name: str
    depth_m: float = Field(ge=0)
    district: str | None = None


#: A layer that exists only in this test: observation wells with a depth.
WELLS = Layer(
    name="test_wells",
    title="Observation wells (test)",
    description="A throwaway layer declared by tests/test_catalog.py",
    audience="city",
    from_sql="test_wells t",
    geom_sql="t.geom",
    geometry_type="point",
    properties=(
        Prop("id", "t.id", "Number", "well id", rest=False),
        Prop("name", "t.name", "String"),
        Prop("depth_m", "t.depth_m", "Number", "depth in metres"),
        Prop("district", "t.district", "String", tiles=False),
    ),
    district_sql="t.district",
    depends_on=("test_wells",),
    tiles=Tiles(minzoom=4, maxzoom=20),
    rest=Rest(
        noun="well",
        writes=Writes(
            table="test_wells",
            model=WellProps,
            columns=(
                Column("name", "text"),
                Column("depth_m", "float8"),
                Column("district", "text"),
                Column("geom", "geometry", geometry=True),
            ),
        ),
    ),
)


@pytest.fixture(scope="module")
def wells_server(database_url: str) -> Iterator[LiveServer]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS test_wells")
        conn.execute(
            "CREATE TABLE test_wells (id serial PRIMARY KEY, name text NOT NULL,"
            " depth_m float8 NOT NULL, district text, geom geometry(Point, 4326) NOT NULL,"
            " version integer NOT NULL DEFAULT 1)"  # the ETag of PATCH and DELETE
        )
        conn.execute("CREATE INDEX ON test_wells USING gist (geom)")
    try:
        with LiveServer(make_settings(database_url), CATALOG.with_layers(WELLS)) as server:
            yield server
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS test_wells")


def test_a_new_layer_is_one_declaration(wells_server: LiveServer) -> None:
    lon, lat = 121.55, 29.87
    with wells_server.client() as http:
        created = http.post(
            "/api/test-wells",
            json={
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {"name": "W-1", "depth_m": 42.5},
            },
        )
        assert created.status_code == 201, created.text
        well_id = created.json()["id"]

        # Validation comes from the declared model: a negative depth is a 422 naming the field.
        bad = http.post(
            "/api/test-wells",
            json={
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {"name": "W-2", "depth_m": -1},
            },
        )
        assert bad.status_code == 422
        assert any(e["field"] == "depth_m" for e in bad.json()["errors"])

        listing = http.get("/api/test-wells").json()
        assert listing["numberMatched"] == 1
        feature = listing["features"][0]
        assert feature["id"] == well_id
        assert feature["properties"] == {"name": "W-1", "depth_m": 42.5, "district": None}
        assert feature["geometry"]["coordinates"] == pytest.approx([lon, lat])
        item = http.get(f"/api/test-wells/{well_id}").json()
        assert item["properties"]["name"] == "W-1"

        tilejson = http.get("/tiles/test_wells.json").json()
        assert tilejson["tilejson"] == "3.0.0"
        (vector_layer,) = tilejson["vector_layers"]
        assert vector_layer["id"] == "test_wells"
        assert set(vector_layer["fields"]) == {"id", "name", "depth_m"}

        catalog = http.get("/tiles").json()
        assert "test_wells" in [layer["name"] for layer in catalog["layers"]]
        style = http.get("/styles/risk.json").json()
        assert "test_wells" in style["sources"]

        z = 14
        x, y, _, _ = tile_range((lon, lat, lon, lat), z)
        tile = http.get(f"/tiles/test_wells/{z}/{x}/{y}.mvt")
        assert tile.status_code == 200, tile.text
        decoded = mapbox_vector_tile.decode(tile.content)
        (drawn,) = decoded["test_wells"]["features"]
        assert drawn["properties"] == {"id": well_id, "name": "W-1", "depth_m": 42.5}
        # The point lands where the well is (tile grid, y up as the decoder returns it).
        px, py = drawn["geometry"]["coordinates"]
        ex, ey = tile_xy(lon, lat, Tile(z, x, y))
        assert abs(px - ex) <= 1 and abs(py - ey) <= 1

        # The openapi document lists the new collection's operations.
        paths = http.get("/openapi.json").json()["paths"]
        assert {"get", "post"} <= set(paths["/api/test-wells"])
        assert {"get", "patch", "delete"} <= set(paths["/api/test-wells/{item_id}"])

        # PATCH and DELETE come from the same declaration: a merge patch validated by the
        # declared model, guarded by the item's ETag.
        etag = http.get(f"/api/test-wells/{well_id}").headers["ETag"]
        assert etag == '"1"'
        merge = {"Content-Type": "application/merge-patch+json", "If-Match": etag}
        deeper = http.patch(
            f"/api/test-wells/{well_id}", json={"properties": {"depth_m": 50}}, headers=merge
        )
        assert deeper.status_code == 200, deeper.text
        assert deeper.headers["ETag"] == '"2"'
        assert http.get(f"/api/test-wells/{well_id}").json()["properties"]["depth_m"] == 50
        negative = http.patch(
            f"/api/test-wells/{well_id}",
            json={"properties": {"depth_m": -3}},
            headers={**merge, "If-Match": '"2"'},
        )
        assert negative.status_code == 422
        assert [e["field"] for e in negative.json()["errors"]] == ["depth_m"]
        stale = http.delete(f"/api/test-wells/{well_id}", headers={"If-Match": etag})
        assert stale.status_code == 412 and stale.headers["ETag"] == '"2"'
        gone = http.delete(f"/api/test-wells/{well_id}", headers={"If-Match": '"2"'})
        assert gone.status_code == 204, gone.text
        assert http.get(f"/api/test-wells/{well_id}").status_code == 404


def test_the_default_server_does_not_know_the_throwaway_layer(client: httpx.Client) -> None:
    assert client.get("/api/test-wells").status_code == 404
    assert client.get("/tiles/test_wells.json").status_code == 404


def test_a_tile_reader_does_not_get_a_city_layer(wells_server: LiveServer) -> None:
    key = key_for(wells_server.url, "tile_reader")
    with wells_server.client(key=key) as http:
        assert http.get("/tiles/test_wells.json").status_code == 403
        names = [layer["name"] for layer in http.get("/tiles").json()["layers"]]
        assert "test_wells" not in names


def test_names_have_one_spelling() -> None:
    assert url_segment("hazard_sources") == "hazard-sources"
    assert layer_name("hazard-sources") == "hazard_sources"
    assert CATALOG.collection("hazard-sources") is CATALOG.collection("hazard_sources")
    with pytest.raises(BadLayerName):
        Layer(name="Hazard-Sources", title="", description="", audience="city")
    with pytest.raises(DuplicateLayer):
        Catalog([WELLS, WELLS])


def test_derived_views_agree_with_the_declarations() -> None:
    """Tiles, collections, hexagon rollups and change maps all come from the same entries."""
    tiles, collections = CATALOG.tiles, CATALOG.collections
    for name, layer in CATALOG.layers.items():
        assert (name in tiles) == (layer.tiles is not None), name
        assert (layer.path in collections) == (layer.rest is not None), name
        if layer.hexagons is not None:
            assert f"h3_{name}" in tiles
    # One colour expression per layer: the enterprise colour is the same in tiles and REST.
    ent_tile, ent_rest = tiles["enterprises"], collections["enterprises"]
    rest_color = dict(ent_rest.properties)["color"]
    tile_color = next(p.sql for p in ent_tile.properties if p.name == "color")
    assert rest_color == tile_color == ent_tile.color_sql == ent_rest.color_sql
    # Change notices: an alarm dirties both monitoring hexagon layers and the point tiles.
    assert set(CATALOG.hex_layers_for_change("alarms")) == {"monitoring_points", "alarms"}
    assert "monitoring_points" in {t.name for t in CATALOG.tile_layers_for_change("alarms")}
    assert "fixes" not in CATALOG.refreshed_hex_layers  # rolled up on a schedule


def test_the_legend_comes_from_the_declaration(client: httpx.Client) -> None:
    """What a colour means is declared once and reaches TileJSON and the catalogue."""
    doc = client.get("/tiles/enterprises.json").json()
    assert doc["legend"].startswith("Enterprises: dynamic risk colour")
    assert "red #E02020" in doc["legend"]
    entries = {layer["name"]: layer for layer in client.get("/tiles").json()["layers"]}
    assert entries["hazard_sources"]["legend"] == "GB 18218 grade"
    assert client.get("/tiles/districts.json").json()["legend"] == ""
