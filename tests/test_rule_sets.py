"""Rule sets as data (docs/rules.md): the shipped SAMPLE sets, import with row-level errors
(API and ``georisk rules import``), versions that deductions keep, assignment by category,
district and tags, and who may load a set.

Sets created here use codes ``rt-…`` of their own; the shipped ones are never changed.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from click.testing import CliRunner
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from geo_api.cli import main
from layers.demo_city.scores import FURNACE_DISTRICT
from layers.prevention.rule_sets import SHIPPED_DIR
from tests.conftest import LiveServer, key_for
from tests.scoring_support import book, clean, plant
from tests.test_web import CHROMIUM, _click_at, browser, watched  # noqa: F401 - fixtures

P = "RL"


@pytest.fixture()
def fresh(db: psycopg.Connection) -> None:
    clean(db, P)


def _definition(code: str) -> dict[str, Any]:
    """A small official set: three items, two measures, assigned to a tag of its own."""
    return {
        "code": code,
        "title": {"zh": "测试记分标准", "en": "Test score list"},
        "is_sample": False,
        "source_note": "test",
        "cycle": {"start_month": 7, "start_day": 1, "carry_over": "unrectified"},
        "items": [
            {"code": "T-1", "points": 3, "category": "unsafe_acts", "tier": "provincial",
             "text": {"zh": "违章作业", "en": "Unsafe act"}},
            {"code": "T-2", "points": 6, "category": "management", "tier": "district",
             "text": {"zh": "管理缺失", "en": "Management gap"}},
            {"code": "T-3", "points": 2, "category": "qualifications", "tier": "provincial",
             "trigger": "certificate_expired", "text": {"zh": "证书过期", "en": "Expired"}},
        ],
        "measures": [
            {"at": 4, "code": "watch", "text": {"zh": "关注", "en": "Watch"},
             "effects": {"colour_raise": 0, "inspection_every_days": 20}},
            {"at": 8, "code": "act", "text": {"zh": "处置", "en": "Act"},
             "effects": {"colour_raise": 3, "key_list": True, "enforcement": True}},
        ],
        "assignments": [{"tag": code}],
    }  # fmt: skip


def test_shipped_sets_are_labelled_samples(client: httpx.Client, database_url: str) -> None:
    body = client.get("/api/rule-sets").json()["rule_sets"]
    by_code = {s["code"]: s for s in body}
    xiaoshan, hailing = by_code["xiaoshan"], by_code["hailing"]
    assert (xiaoshan["items_count"], hailing["items_count"]) == (46, 22)
    for s in (xiaoshan, hailing):
        assert s["is_sample"] is True and s["version"] == 1
        assert "SAMPLE" in s["title"]["en"] and "样例" in s["title"]["zh"]
        assert "SAMPLE" in s["source_note"] and "rules import" in s["source_note"]
    assert [m["at"] for m in xiaoshan["measures"]] == [6, 9, 12]
    assert [m["at"] for m in hailing["measures"]] == [3, 6, 10]
    assert all(
        m["effects"]["colour_raise"] >= 1 for m in xiaoshan["measures"] + hailing["measures"]
    )
    assert hailing["cycle"] == {"start_month": 10, "start_day": 1, "carry_over": "unrectified"}
    assert {"category": None, "district": "321202", "tag": "furnace", "priority": 0} in hailing[
        "assignments"
    ]
    full = client.get("/api/rule-sets/xiaoshan").json()
    assert set(Counter(i["points"] for i in full["items"])) == {12, 6, 3, 2, 1}
    assert {i["trigger"] for i in full["items"]} == {
        "none",
        "licence_expired",
        "certificate_expired",
        "alarm_undisposed",
    }
    assert {i["tier"] for i in full["items"]} == {"provincial", "district"}
    # The shipped files are the stored version 1, item for item.
    shipped = json.loads((SHIPPED_DIR / "hailing.json").read_text(encoding="utf-8"))
    stored = client.get("/api/rule-sets/hailing", params={"version": 1}).json()
    assert [(i["code"], i["points"], i["text"]) for i in stored["items"]] == [
        (i["code"], i["points"], i["text"]) for i in shipped["items"]
    ]
    assert client.get("/api/rule-sets/nope").status_code == 404
    assert client.get("/api/rule-sets/hailing", params={"version": 99}).status_code == 404


def test_assignment_by_district_tag_and_category(
    live_server: LiveServer,
    client: httpx.Client,
    database_url: str,
    db: psycopg.Connection,
    fresh: None,
) -> None:
    rules = book(database_url)
    pick = rules.set_for
    assert pick("321202", "production", ["furnace"]).code == "hailing"  # type: ignore[union-attr]
    assert pick("321202", "production", []).code == "xiaoshan"  # type: ignore[union-attr]
    assert pick("330203", "storage", ["furnace"]).code == "xiaoshan"  # type: ignore[union-attr]
    assert pick(None, None, []).code == "xiaoshan"  # type: ignore[union-attr]
    # Not every enterprise of a district: only its furnace enterprises.
    furnace = plant(db, P, 1, hailing=True)
    neighbour = plant(db, P, 2, district=FURNACE_DISTRICT)
    assert client.get(f"/api/enterprises/{furnace}/score").json()["rule_set"]["code"] == "hailing"
    assert client.get(f"/api/enterprises/{neighbour}/score").json()["rule_set"]["code"] == (
        "xiaoshan"
    )
    # Tagging it a furnace enterprise moves it to Hailing (a regulator's step, not its own).
    tags = f"/api/enterprises/{neighbour}/tags"
    with live_server.client(
        key=key_for(database_url, "enterprise", enterprise_id=neighbour)
    ) as own:
        assert own.put(tags, json={"tags": ["furnace"]}).status_code == 403
    r = client.put(tags, json={"tags": ["Furnace!"]})
    assert r.status_code == 422 and "tags" in r.text
    r = client.put(tags, json={"tags": ["furnace", "furnace"]})
    assert r.status_code == 200, r.text
    assert (r.json()["tags"], r.json()["rule_set"]["code"]) == (["furnace"], "hailing")
    assert client.get(f"/api/enterprises/{neighbour}/score").json()["rule_set"]["code"] == (
        "hailing"
    )


def test_bad_rows_are_named_and_nothing_is_stored(
    client: httpx.Client, db: psycopg.Connection
) -> None:
    code = f"rt-{uuid.uuid4().hex[:8]}"
    bad = _definition(code)
    bad["items"][1]["points"] = 13
    bad["items"][2]["category"] = "misc"
    bad["items"].append(copy.deepcopy(bad["items"][0]))  # duplicate code, row 3
    r = client.post("/api/rule-sets", json=bad)
    assert r.status_code == 422, r.text
    errors = {(e.get("index"), e["field"]) for e in r.json()["errors"]}
    assert {(1, "items.points"), (2, "items.category")} <= errors
    # Row-level checks that need the whole list run once every row is well formed.
    bad["items"][1]["points"], bad["items"][2]["category"] = 6, "management"
    r = client.post("/api/rule-sets", json=bad)
    assert r.status_code == 422
    assert [(e.get("index"), e["field"]) for e in r.json()["errors"]] == [(3, "code")]
    sample = {**_definition(code), "is_sample": True}
    r = client.post("/api/rule-sets", json=sample)
    assert r.status_code == 422 and "SAMPLE" in r.text  # a sample says so in its title
    assert db.execute("SELECT count(*) FROM rule_sets WHERE code = %s", (code,)).fetchone() == (0,)


def test_versions_and_deductions_keep_theirs(
    live_server: LiveServer, database_url: str, db: psycopg.Connection, fresh: None
) -> None:
    code = f"rt-{uuid.uuid4().hex[:8]}"
    enterprise = plant(db, P, 3)
    db.execute("UPDATE enterprises SET tags = %s WHERE id = %s", ([code], enterprise))
    regulator = live_server.client(key=key_for(database_url, "regulator"))
    admin = live_server.client()
    with regulator, admin:
        assert regulator.post("/api/rule-sets", json=_definition(code)).status_code == 403
        r = admin.post("/api/rule-sets", json=_definition(code))
        assert r.status_code == 201, r.text
        assert (r.json()["version"], r.json()["is_sample"]) == (1, False)
        first = regulator.post(
            f"/api/enterprises/{enterprise}/deductions", json={"item_code": "T-1", "note": "x"}
        ).json()
        assert (first["rule_set"], first["rule_set_version"], first["points"]) == (code, 1, 3)
        v2 = _definition(code)
        v2["items"][0] = {
            **v2["items"][0],
            "points": 6,
            "text": {"zh": "违章作业（修订）", "en": "Unsafe act (v2)"},
        }
        v2.pop("assignments")  # keeps the set's assignments
        r = admin.post("/api/rule-sets", json=v2)
        assert r.status_code == 201 and r.json()["version"] == 2
        second = regulator.post(
            f"/api/enterprises/{enterprise}/deductions", json={"item_code": "T-1", "note": "y"}
        ).json()
        assert (second["rule_set_version"], second["points"]) == (2, 6)
        score = regulator.get(f"/api/enterprises/{enterprise}/score").json()
        listed = regulator.get("/api/rule-sets").json()["rule_sets"]
    assert score["rule_set"]["version"] == 2 and score["is_sample"] is False
    assert score["deducted"] == 9  # 3 under version 1 + 6 under version 2
    old = next(h for h in score["history"] if h["id"] == first["id"])
    assert (old["points"], old["rule_set_version"], old["item_text"]["en"]) == (3, 1, "Unsafe act")
    new = next(h for h in score["history"] if h["id"] == second["id"])
    assert new["item_text"]["en"] == "Unsafe act (v2)"
    # 9 points: "watch" (no colour raise, inspect every 20 days) and "act" (raise 3, key list)
    assert [m["code"] for m in score["measures"]] == ["watch", "act"]
    assert score["effects"]["colour_raise"] == 3 and score["effects"]["inspection_every_days"] == 20
    assert db.execute(
        "SELECT dynamic_color FROM enterprises WHERE id = %s", (enterprise,)
    ).fetchone() == ("red",)
    ours = next(s for s in listed if s["code"] == code)
    assert ours["versions"] == [1, 2] and ours["assignments"] == [
        {"category": None, "district": None, "tag": code, "priority": 0}
    ]


def test_cli_imports_json_and_a_csv_item_list(
    database_url: str, db: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    code = f"rt-{uuid.uuid4().hex[:8]}"
    runner = CliRunner()
    path = tmp_path / "set.json"
    path.write_text(json.dumps(_definition(code), ensure_ascii=False), encoding="utf-8")
    r = runner.invoke(main, ["rules", "import", str(path)])
    assert r.exit_code == 0, r.output
    assert f"rule set {code}: version 1 stored (3 items)" in r.output
    # The official list as a spreadsheet: the items replace version 1's, the rest is kept.
    csv_path = tmp_path / "official.csv"
    csv_path.write_text(
        "code,text_zh,text_en,points,category,tier,trigger,cap_per_cycle\n"
        "OF-1,未佩戴防护用品,No protective equipment,2,unsafe_acts,provincial,,\n"
        "OF-2,报警未处置,Alarm not disposed of,3,monitoring,district,alarm_undisposed,6\n",
        encoding="utf-8",
    )
    r = runner.invoke(main, ["rules", "import", str(csv_path), "--set", code, "--official"])
    assert r.exit_code == 0, r.output
    assert "version 2 stored (2 items)" in r.output
    items = db.execute(
        "SELECT i.code, i.points, i.trigger, i.cap_per_cycle FROM rule_items i"
        " JOIN rule_sets s ON s.id = i.rule_set_id WHERE s.code = %s AND s.version = 2"
        " ORDER BY i.position",
        (code,),
    ).fetchall()
    assert items == [("OF-1", 2, "none", None), ("OF-2", 3, "alarm_undisposed", 6)]
    measures = db.execute(
        "SELECT m.code FROM rule_measures m JOIN rule_sets s ON s.id = m.rule_set_id"
        " WHERE s.code = %s AND s.version = 2 ORDER BY m.at_points",
        (code,),
    ).fetchall()
    assert measures == [("watch",), ("act",)]
    # Bad rows: each named by row and field, exit 2, nothing stored.
    csv_path.write_text(
        "code,text_zh,text_en,points,category,tier,trigger\n"
        "OF-1,未佩戴防护用品,No protective equipment,two,unsafe_acts,provincial,\n"
        "OF-2,,Alarm not disposed of,3,monitoring,county,\n",
        encoding="utf-8",
    )
    r = runner.invoke(main, ["rules", "import", str(csv_path), "--set", code])
    assert r.exit_code == 2
    assert "nothing was stored" in r.output
    assert "row 0: items.points" in r.output
    assert "row 1: items.text.zh" in r.output and "row 1: items.tier" in r.output
    r = runner.invoke(main, ["rules", "import", str(csv_path)])
    assert r.exit_code == 2 and "--set" in r.output
    assert db.execute("SELECT max(version) FROM rule_sets WHERE code = %s", (code,)).fetchone() == (
        2,
    )


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")
def test_the_map_popup_labels_a_sample_score(
    watched: Any,  # noqa: F811 - the fixture imported from test_web
    live_server: LiveServer,
    client: httpx.Client,
    db: psycopg.Connection,
    fresh: None,
) -> None:
    """Where the score shows (the enterprise popup), a SAMPLE set says so, with the points,
    the measure reached and each deduction's state."""
    enterprise = plant(db, P, 4, hailing=True)
    base = f"/api/enterprises/{enterprise}/deductions"
    client.post(base, json={"item_code": "HL-03", "note": "吊具"})
    wrong = client.post(base, json={"item_code": "HL-01", "note": "误扣"}).json()["id"]
    client.post(f"{base}/{wrong}/void", json={"reason": "记录错误"})
    lon, lat = 125.9 + 4 * 0.0005, 33.65
    page = watched.page
    page.goto(live_server.base_url + "/?layers=enterprises")
    page.wait_for_function("() => GeoRisk.stats.tilesLoaded > 0", timeout=15_000)
    loaded = page.evaluate("() => GeoRisk.stats.tilesLoaded")
    page.evaluate(
        "([lat, lon]) => GeoRisk.map.setView([lat, lon], 17, {animate: false})", [lat, lon]
    )
    # The tiles of the new view, not the first view's, must be in before the click.
    page.wait_for_function(f"() => GeoRisk.stats.tilesLoaded > {loaded}", timeout=15_000)
    panel = page.locator(".leaflet-popup-content .ent-score")
    popup = page.locator(".leaflet-popup-content")
    for _ in range(10):  # a tile still drawing misses the click: click again
        _click_at(page, lon, lat)
        try:
            popup.wait_for(timeout=1500)
            break
        except PlaywrightTimeout:
            continue
    panel.wait_for(timeout=10_000)
    text = panel.inner_text()
    assert "SAMPLE 样例" in text and "海陵" in text
    assert "deducted 3 / 12" in text.replace("\n", " ")
    assert "加密检查频次" in text and "inspect every 14 d" in text
    states = page.locator(".ent-score .deduction").evaluate_all(
        "els => els.map(e => e.dataset.state)"
    )
    assert sorted(states) == ["open", "voided"]
    assert watched.errors == []
