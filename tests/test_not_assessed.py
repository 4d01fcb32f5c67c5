"""Unknown is grey (docs/domain.md §2.2, issue 13): never assessed is grey, never blue.

Everything planted here lives in a district of its own, ``N13-T`` (126.5–126.65 E,
34.3–34.45 N), created through the API like any client would, and is read back through the API:
the enterprise's risk, the collection, the city summary, hexagons and TileJSON's legend.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
from h3ronpy.vector import coordinates_to_cells

from layers.core.colors import LIVE_COLORS
from layers.risk.enterprise import raise_one_level
from layers.risk.hexagons import NO_COLOR, aggregate, rollup
from layers.risk.recompute import recompute
from tests.conftest import make_settings

DISTRICT = "N13-T"
BOUNDS = (126.5, 34.3, 126.65, 34.45)
EVERYTHING_MISSING = "not assessed: no diagnosis score, no major hazard source, no risk unit"


def _code(n: int) -> str:
    return f"9133020000NA{n:06d}"


def _enterprise(n: int, lon: float, lat: float, **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"credit_code": _code(n), "name": f"未评估{n}", "category": "storage"}
        | props,
    }


@pytest.fixture(scope="module")
def district(database_url: str) -> Iterator[str]:
    with psycopg.connect(database_url, autocommit=True) as c:
        c.execute(
            "INSERT INTO districts (code, name, geom)"
            " VALUES (%s, 'Not assessed test', ST_Multi(ST_MakeEnvelope(%s, %s, %s, %s, 4326)))",
            (DISTRICT, *BOUNDS),
        )
    yield DISTRICT


def _post(client: httpx.Client, feature: dict[str, Any]) -> int:
    r = client.post("/api/enterprises", json=feature)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _rerate(database_url: str, ids: list[int]) -> None:
    settings = make_settings(database_url)
    config = settings.risk.recompute_config(settings.db.data_dir)

    async def go() -> None:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            await recompute(conn, config, ids)

    asyncio.run(go())


def _summary_of(client: httpx.Client) -> tuple[dict[str, Any], dict[str, Any]]:
    summary = client.get("/api/risk/summary").json()
    mine = next(d for d in summary["districts"] if d["district"] == DISTRICT)
    return summary, mine


def test_a_new_enterprise_with_nothing_assessed_is_grey_until_a_score_arrives(
    client: httpx.Client, db: psycopg.Connection, district: str, database_url: str
) -> None:
    new = _post(client, _enterprise(1, 126.52, 34.32))
    risk = client.get(f"/api/enterprises/{new}/risk").json()
    assert (risk["color"], risk["inherent_color"], risk["dynamic_color"]) == ("grey",) * 3
    assert risk["reasons"] == [
        {
            "en": EVERYTHING_MISSING,
            "zh": "未评估：无安全风险诊断得分，无重大危险源，无风险单元",
            "code": "not_assessed",
            "color": "grey",
            "raises": False,
        }
    ]
    item = client.get(f"/api/enterprises/{new}").json()["properties"]
    assert (item["color"], item["inherent_color"], item["dynamic_color"]) == ("grey",) * 3
    greys = client.get(
        "/api/enterprises", params={"color": "grey", "bbox": "126.5,34.3,126.65,34.45"}
    )
    assert new in [f["id"] for f in greys.json()["features"]]

    summary, mine = _summary_of(client)
    assert mine["counts"] == {"grey": 1} and mine["not_assessed"] == 1
    assert summary["enterprises"]["grey"] >= 1
    assert summary["not_assessed"] >= summary["enterprises"]["grey"]

    # A diagnosis score arrives (90: the edge of blue): coloured, and no longer counted grey.
    db.execute("UPDATE enterprises SET diagnosis_score = 90 WHERE id = %s", (new,))
    _rerate(database_url, [new])
    risk = client.get(f"/api/enterprises/{new}/risk").json()
    assert (risk["inherent_color"], risk["dynamic_color"]) == ("blue", "blue")
    assert [r["code"] for r in risk["reasons"]] == ["diagnosis_score"]
    assert client.get(f"/api/enterprises/{new}").json()["properties"]["color"] == "blue"
    _, mine = _summary_of(client)
    assert mine["counts"] == {"blue": 1} and mine["not_assessed"] == 0


def test_posted_scores_at_the_edge_and_an_unassessable_hazard_source(
    client: httpx.Client, district: str
) -> None:
    yellow = _post(client, _enterprise(2, 126.53, 34.33, diagnosis_score=89.99))
    assert client.get(f"/api/enterprises/{yellow}/risk").json()["color"] == "yellow"
    zero = _post(client, _enterprise(3, 126.54, 34.34, diagnosis_score=0))
    assert client.get(f"/api/enterprises/{zero}/risk").json()["color"] == "red"  # 0 is a score

    # A hazard source without substances cannot be assessed (S undefined): grey, and the
    # enterprise's reason says which input is missing.
    owner = _post(client, _enterprise(4, 126.56, 34.36))
    ring = [[126.5595, 34.3595], [126.5605, 34.3595], [126.5605, 34.3605], [126.5595, 34.3595]]
    source = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {
            "enterprise_id": owner,
            "code": "NA-HS",
            "unit_name": "empty store",
            "unit_kind": "storage",
        },
    }
    r = client.post("/api/hazard-sources", json=source)
    assert r.status_code == 201, r.text
    props = client.get(f"/api/hazard-sources/{r.json()['id']}").json()["properties"]
    assert (props["color"], props["grade"], props["S"]) == ("grey", None, None)
    risk = client.get(f"/api/enterprises/{owner}/risk").json()
    assert risk["color"] == "grey"
    assert risk["reasons"][0]["en"] == (
        "not assessed: no diagnosis score, 1 hazard source(s) not assessed (substances, Q or β),"
        " no risk unit"
    )
    summary = client.get("/api/risk/summary").json()
    assert summary["hazard_sources_by_grade"]["not_assessed"] >= 1


def test_a_live_condition_on_a_not_assessed_enterprise_gives_yellow(
    client: httpx.Client, district: str
) -> None:
    """The rule (layers/risk/enterprise.py): inherent stays grey, dynamic is blue raised once."""
    new = _post(client, _enterprise(5, 126.58, 34.38))
    r = client.post(
        f"/api/enterprises/{new}/hidden-dangers",
        json={
            "title": "储罐区无紧急切断",
            "is_major": True,
            "found_at": dt.datetime.now(dt.UTC).isoformat(),
        },
    )
    assert r.status_code == 201, r.text
    risk = client.get(f"/api/enterprises/{new}/risk").json()
    assert (risk["inherent_color"], risk["dynamic_color"]) == ("grey", raise_one_level("blue"))
    assert [x["code"] for x in risk["reasons"]] == ["open_major_hidden_danger", "not_assessed"]
    _, mine = _summary_of(client)
    # Not assessed, whatever its dynamic colour: the summary still counts it.
    assert mine["counts"].get("yellow", 0) >= 1
    assert mine["not_assessed"] > mine["counts"].get("grey", 0)


def test_worst_colour_ignores_grey_unless_everything_is_grey() -> None:
    grey, blue = LIVE_COLORS.index("grey"), LIVE_COLORS.index("blue")
    cells = np.array([1, 1, 2, 2, 3], dtype=np.uint64)
    ranks = np.array([grey, blue, grey, grey, NO_COLOR], dtype=np.uint8)
    out = aggregate(cells, ranks, np.ones(5, dtype=np.int64))
    assert [LIVE_COLORS[r] if r != NO_COLOR else None for r in out.rank] == ["blue", "grey", None]
    assert out.count.tolist() == [2, 2, 1]


def test_hexagon_of_a_grey_and_a_blue_enterprise_is_blue(
    client: httpx.Client, district: str, database_url: str
) -> None:
    spots = {"grey": (126.55, 34.35), "blue": (126.5501, 34.3501), "alone": (126.60, 34.40)}
    lon = np.array([p[0] for p in spots.values()])
    lat = np.array([p[1] for p in spots.values()])
    cells = np.asarray(coordinates_to_cells(lat, lon, 9)).tolist()
    assert cells[0] == cells[1] != cells[2]  # the first two share a resolution-9 cell
    _post(client, _enterprise(6, *spots["grey"]))
    _post(client, _enterprise(7, *spots["blue"], diagnosis_score=95))
    _post(client, _enterprise(8, *spots["alone"]))

    async def roll() -> None:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            await rollup(conn, "enterprises", [9])

    asyncio.run(roll())
    shared = client.get(
        "/api/h3/enterprises", params={"res": 9, "bbox": "126.54995,34.34995,126.55005,34.35005"}
    ).json()["features"]
    assert [(h["properties"]["color"], h["properties"]["count"]) for h in shared] == [("blue", 2)]
    lone = client.get(
        "/api/h3/enterprises", params={"res": 9, "bbox": "126.59995,34.39995,126.60005,34.40005"}
    ).json()["features"]
    assert [(h["properties"]["color"], h["properties"]["count"]) for h in lone] == [("grey", 1)]


def test_legend_names_grey_as_not_assessed_or_offline(client: httpx.Client) -> None:
    doc = client.get("/tiles/enterprises,monitoring_points.json").json()
    assert "grey #9E9E9E not assessed / offline" in doc["legend"]
    fields = {v["id"]: v["fields"] for v in doc["vector_layers"]}
    assert "offline" in fields["monitoring_points"]
    assert "not assessed" in fields["enterprises"]["color"]
    style = client.get("/styles/risk.json").json()
    assert style["metadata"]["georisk:meaning"]["grey"].startswith("not assessed / offline")


@pytest.mark.parametrize(
    ("table", "column", "constraint"),
    [
        ("enterprises", "inherent_color", "ck_enterprises_inherent_color"),
        ("enterprises", "dynamic_color", "ck_enterprises_dynamic_color"),
        ("hazard_sources", "color", "ck_hazard_sources_color"),
    ],
)
def test_rated_colours_take_grey_and_nothing_else(
    db: psycopg.Connection, table: str, column: str, constraint: str
) -> None:
    with db.transaction(force_rollback=True):
        db.execute(f"UPDATE {table} SET {column} = 'grey' WHERE id = (SELECT min(id) FROM {table})")
    with pytest.raises(psycopg.errors.CheckViolation) as caught:
        db.execute(
            f"UPDATE {table} SET {column} = 'purple' WHERE id = (SELECT min(id) FROM {table})"
        )
    assert caught.value.diag.constraint_name == constraint
