"""The enterprise's "one map, one book" PDF (issue 19 §3) and the register behind it.

A hazmat enterprise of our own (127.8 E, 35.8 N, far from the demo city and other tests) with a
site, a graded hazard source holding substances, two monitoring points, emergency contacts and
three risk units registered through the API (LEC, LS and one not assessed yet), each with typed
controls and a responsible person. The PDF is fetched over HTTP and read back with pypdf: what
a reader can search and copy, not what a renderer drew.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb
from pypdf import PdfReader

from layers.core.colors import DISPLAY_HEX

LON, LAT = 127.8, 35.8
CONTACTS = [
    {"role": "主要负责人", "name": "赵建国", "phone": "13900001111"},
    {"role": "安全管理人员", "name": "钱秀英", "phone": "13900002222"},
    {"role": "应急值班", "name": "值班室", "phone": "0574-86660000"},
]
UNITS: list[dict[str, Any]] = [
    {
        "name": "液氯储罐区",
        "kind": "tank_farm",
        "method": "LEC",
        "likelihood": 6,
        "exposure": 6,
        "consequence": 15,  # D = 540 → red
        "controls": [
            {"type": "engineering", "measure": "紧急切断阀"},
            {"type": "engineering", "measure": "有毒气体检测报警"},
            {"type": "management", "measure": "双人巡检制度"},
        ],
        "responsible": "张伟",
        "responsible_phone": "13800138001",
        "assessed_on": "2025-01-10",
        "review_due": "2026-01-10",  # overdue
    },
    {
        "name": "氯化反应釜",
        "kind": "reactor",
        "method": "LS",
        "likelihood": 2,
        "severity": 4,  # R = 8 → yellow
        "controls": [
            {"type": "training", "measure": "岗前安全培训"},
            {"type": "ppe", "measure": "防静电工作服"},
            {"type": "emergency", "measure": "泄漏应急预案"},
        ],
        "responsible": "李娜",
        "responsible_phone": "13800138002",
        "assessed_on": "2026-06-01",
        "review_due": "2099-06-01",
    },
    {
        "name": "装车栈台",
        "kind": "loading_bay",
        "method": None,  # registered, not assessed yet
        "controls": [{"type": "emergency", "measure": "静电接地报警器"}],
        "responsible": "王芳",
        "responsible_phone": None,
        "assessed_on": None,
        "review_due": None,
    },
]


def _square(x0: float, y0: float, size: float) -> list[list[float]]:
    x, y = LON + x0, LAT + y0
    return [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]


def _feature(ring: list[list[float]], props: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": props,
    }


def _enterprise(db: psycopg.Connection, code: str, name: str) -> int:
    row = db.execute(
        "INSERT INTO enterprises (credit_code, name, category, is_hazmat, district, address,"
        " diagnosis_score, contacts, geom, site_geom) VALUES (%s, %s, 'production', true,"
        " 'BOOK-T', '测试市化工园区纬三路8号', 88, %s, ST_SetSRID(ST_Point(%s, %s), 4326),"
        " ST_Multi(ST_MakeEnvelope(%s, %s, %s, %s, 4326))) RETURNING id",
        (code, name, Jsonb(CONTACTS), LON, LAT, LON - 0.002, LAT - 0.002, LON + 0.002, LAT + 0.002),
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture(scope="module")
def planted(database_url: str, live_server: Any) -> Iterator[dict[str, Any]]:
    with psycopg.connect(database_url, autocommit=True) as db:
        db.execute(
            "INSERT INTO districts (code, name, geom) VALUES ('BOOK-T', 'Book test',"
            " ST_Multi(ST_MakeEnvelope(%s, %s, %s, %s, 4326))) ON CONFLICT DO NOTHING",
            (LON - 0.05, LAT - 0.05, LON + 0.05, LAT + 0.05),
        )
        eid = _enterprise(db, "91330200BK00000019", "一图一册化工有限公司")
        hs = db.execute(
            "INSERT INTO hazard_sources (enterprise_id, code, unit_name, unit_kind, geom, grade,"
            " r_value, color) VALUES (%s, 'HSBOOK01', '液氯罐组', 'storage',"
            " ST_Multi(ST_MakeEnvelope(%s, %s, %s, %s, 4326)), 2, 63.4, 'orange') RETURNING id",
            (eid, LON - 0.0018, LAT - 0.0018, LON - 0.0002, LAT - 0.0002),
        ).fetchone()
        assert hs is not None
        db.execute(
            "INSERT INTO hazard_source_substances (hazard_source_id, name, cas, q, critical_q)"
            " VALUES (%s, '液氯', '7782-50-5', 40, 5)",
            (hs[0],),
        )
        db.execute(
            "INSERT INTO monitoring_points (code, hazard_source_id, kind, substance, unit, level1,"
            " level2, geom, live_color) VALUES ('MPBOOK01', %s, 'gas_toxic', '氯气', 'ppm', 1, 3,"
            " ST_SetSRID(ST_Point(%s, %s), 4326), 'blue'),"
            " ('MPBOOK02', %s, 'temperature', NULL, '°C', NULL, NULL,"
            " ST_SetSRID(ST_Point(%s, %s), 4326), 'red')",
            (hs[0], LON - 0.001, LAT - 0.001, hs[0], LON - 0.0015, LAT - 0.0005),
        )
        with live_server.client() as client:
            rings = (
                _square(-0.0017, -0.0017, 0.0014),
                _square(0.0003, 0.0003, 0.0012),
                _square(0.0003, -0.0017, 0.0010),
            )
            ids = []
            for ring, unit in zip(rings, UNITS, strict=True):
                props = dict(unit, hazard_source_id=hs[0] if unit["kind"] == "tank_farm" else None)
                r = client.post(f"/api/enterprises/{eid}/risk-units", json=_feature(ring, props))
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
        yield {"id": eid, "hazard_source": hs[0], "units": ids}
        db.execute("DELETE FROM enterprises WHERE id = %s", (eid,))


def _pdf(client: httpx.Client, eid: int) -> PdfReader:
    r = client.get(f"/enterprises/{eid}/diagram.pdf")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    return PdfReader(io.BytesIO(r.content))


def _texts(reader: PdfReader) -> list[str]:
    return [page.extract_text() for page in reader.pages]


def _fill_colours(page: Any) -> set[tuple[float, float, float]]:
    """Every non-stroking RGB colour the page's content stream sets (``r g b rg``)."""
    data = page.get_contents().get_data().decode("latin-1")
    return {
        (round(float(r), 2), round(float(g), 2), round(float(b), 2))
        for r, g, b in re.findall(r"([\d.]+) ([\d.]+) ([\d.]+) rg", data)
    }


def _rgb(hex_color: str) -> tuple[float, float, float]:
    h = hex_color.lstrip("#")
    return tuple(round(int(h[i : i + 2], 16) / 255, 2) for i in (0, 2, 4))  # type: ignore[return-value]


def test_the_book_has_cover_map_register_controls_sources_and_contacts(
    client: httpx.Client, db: psycopg.Connection, planted: dict[str, Any]
) -> None:
    reader = _pdf(client, planted["id"])
    assert len(reader.pages) >= 4
    for page in reader.pages:  # A4 portrait, every page
        w, h = (float(v) for v in page.mediabox.upper_right)
        assert abs(w - 595.3) < 1 and abs(h - 841.9) < 1
    texts = _texts(reader)
    every = "\n".join(texts)

    cover = texts[0]
    assert "一图一册化工有限公司" in cover and "91330200BK00000019" in cover
    assert "测试市化工园区纬三路8号" in cover and "生产" in cover
    assert "重大风险" in cover  # the red unit makes the enterprise red, with its reason
    assert "液氯储罐区" in cover
    for c in CONTACTS:
        assert c["role"] in cover and c["name"] in cover and c["phone"] in cover

    # The map page: each unit's level colour is a fill on the page, its name a label on it,
    # plus the hazard source's orange and the red monitoring point; scale bar and north arrow.
    map_no = next(i for i, t in enumerate(texts) if "四色分布图" in t)
    page = reader.pages[map_no]
    fills = _fill_colours(page)
    for colour in ("red", "yellow", "grey", "orange"):
        assert _rgb(DISPLAY_HEX[colour]) in fills, colour
    for unit in UNITS:
        assert unit["name"] in texts[map_no]
    assert re.search(r"\b\d+ m\b", texts[map_no]) and "N" in texts[map_no]
    for label in ("重大风险", "较大风险", "一般风险", "低风险", "未评估"):
        assert label in texts[map_no]

    register = next(t for t in texts if "风险分级管控清单" in t)
    assert "LEC L6 E6 C15" in register and "540" in register
    assert "LS L2 S4" in register and "未评估" in register
    assert "储罐区" in register and "反应装置" in register and "装卸区" in register
    for person in ("张伟 13800138001", "李娜 13800138002", "王芳"):
        assert person in register
    assert "2026-01-10 逾期" in register and "2099-06-01" in register
    assert "2099-06-01 逾期" not in register

    controls = next(t for t in texts if "管控措施 Controls" in t)
    for unit in UNITS:
        for c in unit["controls"]:
            assert c["measure"] in controls
    for type_name in ("工程技术", "管理措施", "培训教育", "个体防护", "应急处置"):
        assert type_name in controls

    # Grade and R as the risk engine left them (it re-assesses the source from its substances).
    grade, r_value = db.execute(
        "SELECT grade, round(r_value::numeric, 2) FROM hazard_sources WHERE id = %s",
        (planted["hazard_source"],),
    ).fetchone()
    r_text = f"{float(r_value):.2f}".rstrip("0").rstrip(".")
    assert f"HSBOOK01 液氯罐组 {grade} 级 {r_text}" in every
    assert "液氯 7782-50-5 q=40 t / Q=5 t" in every
    assert "MPBOOK01" in every and "有毒气体 氯气" in every and "一级 1 二级 3 ppm" in every
    assert "MPBOOK02" in every and "温度" in every


def test_the_text_is_a_truetype_subset_with_unicode_map(
    client: httpx.Client, planted: dict[str, Any]
) -> None:
    """Real text, not outlines: the CJK font is embedded as TrueType with a ToUnicode CMap."""
    reader = _pdf(client, planted["id"])
    fonts = reader.pages[0]["/Resources"]["/Font"]
    found = []
    for ref in fonts.values():
        font = ref.get_object()
        descendant = font["/DescendantFonts"][0].get_object()
        descriptor = descendant["/FontDescriptor"].get_object()
        found.append((font["/Subtype"], "/FontFile2" in descriptor, "/ToUnicode" in font))
    assert found and all(f == ("/Type0", True, True) for f in found), found


def test_a_register_of_sixty_units_runs_over_pages(
    client: httpx.Client, db: psycopg.Connection, planted: dict[str, Any]
) -> None:
    eid = _enterprise(db, "91330200BK00000027", "六十单元储运有限公司")
    try:
        for n in range(60):
            x, y = divmod(n, 8)
            ring = _square(-0.0018 + x * 0.00045, -0.0018 + y * 0.00045, 0.0004)
            wkt = "POLYGON((" + ", ".join(f"{a} {b}" for a, b in ring) + "))"
            db.execute(
                "INSERT INTO risk_units (enterprise_id, name, kind, method, likelihood, exposure,"
                " consequence, color, controls, responsible, geom)"
                " VALUES (%s, %s, 'warehouse', 'LEC', 1, 3, 15, 'blue', %s, %s,"
                " ST_Multi(ST_GeomFromText(%s, 4326)))",
                (
                    eid,
                    f"第{n + 1:02d}号库房",
                    Jsonb([{"type": "management", "measure": f"库房{n + 1:02d}巡检"}]),
                    f"责任人{n + 1:02d}",
                    wkt,
                ),
            )
        reader = _pdf(client, eid)
        texts = _texts(reader)
        small = len(_pdf(client, planted["id"]).pages)
        assert len(reader.pages) > small
        # The register alone spans pages, each with its heading row repeated.
        start = next(i for i, t in enumerate(texts) if "风险分级管控清单" in t)
        end = next(i for i, t in enumerate(texts) if "管控措施 Controls" in t)
        assert end - start >= 2
        assert all("序号 风险单元 类型" in t for t in texts[start:end])
        register = "\n".join(texts[start:end])
        every = "\n".join(texts)
        for n in range(1, 61):
            assert f"第{n:02d}号库房" in register
            assert f"责任人{n:02d}" in register
            assert f"库房{n:02d}巡检" in every
    finally:
        db.execute("DELETE FROM enterprises WHERE id = %s", (eid,))


def test_a_missing_cjk_font_is_a_clear_503_naming_the_package(
    client: httpx.Client, planted: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from layers.risk import fonts

    monkeypatch.setattr(fonts, "CJK_FONT_FILES", (tmp_path / "absent.ttc",))
    r = client.get(f"/enterprises/{planted['id']}/diagram.pdf")
    assert r.status_code == 503
    assert "fonts-wqy-microhei" in r.json()["detail"]
    assert r.json()["errors"] == [
        {"field": "font", "reason": "fonts-wqy-microhei is not installed"}
    ]
    with pytest.raises(fonts.CjkFontMissing, match="apt-get install -y fonts-wqy-microhei"):
        fonts.cjk_font_file()


def test_the_api_stores_exactly_what_was_entered(
    client: httpx.Client, planted: dict[str, Any]
) -> None:
    units = client.get(f"/api/enterprises/{planted['id']}/risk-units").json()["features"]
    by_name = {u["properties"]["name"]: u["properties"] for u in units}
    for unit in UNITS:
        stored = by_name[unit["name"]]
        for key, value in unit.items():
            assert stored[key] == value, key
    grey = by_name["装车栈台"]
    assert (grey["method"], grey["likelihood"], grey["color"], grey["score"]) == (
        None,
        None,
        None,
        None,
    )
    assert by_name["液氯储罐区"]["hazard_source_id"] == planted["hazard_source"]
    assert (by_name["液氯储罐区"]["color"], by_name["氯化反应釜"]["color"]) == ("red", "yellow")


def test_not_assessed_answers_null_colour_and_drops_inputs(
    client: httpx.Client, planted: dict[str, Any]
) -> None:
    ring = _square(0.0016, 0.0016, 0.0002)
    r = client.post(
        f"/api/enterprises/{planted['id']}/risk-units",
        json=_feature(ring, {"name": "待评估仓库", "method": None, "likelihood": 3}),
    )
    assert r.status_code == 201, r.text
    assert r.json()["color"] is None and r.json()["score"] is None
    stored = client.get(f"/api/risk-units/{r.json()['id']}").json()["properties"]
    assert (stored["method"], stored["likelihood"], stored["color"]) == (None, None, None)
    assert client.delete(f"/api/risk-units/{r.json()['id']}").status_code == 204


@pytest.mark.parametrize(
    ("props", "field"),
    [
        ({"method": "LEC", "exposure": 6, "consequence": 15}, "likelihood"),
        ({"method": "LS", "likelihood": 2, "hazard_source_id": 2_000_000_000}, "hazard_source_id"),
        ({"method": None, "controls": [{"type": "paperwork", "measure": "x"}]}, "controls"),
        ({"method": None, "assessed_on": "2026-02-01", "review_due": "2026-01-01"}, "properties"),
    ],
)
def test_bad_register_entries_are_422_naming_the_field(
    client: httpx.Client, planted: dict[str, Any], props: dict[str, Any], field: str
) -> None:
    ring = _square(0.0016, 0.0016, 0.0002)
    r = client.post(
        f"/api/enterprises/{planted['id']}/risk-units",
        json=_feature(ring, {"name": "坏数据", "severity": 2, **props}),
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"].startswith(field)
    listed = client.get(f"/api/enterprises/{planted['id']}/risk-units").json()["features"]
    assert "坏数据" not in {u["properties"]["name"] for u in listed}


def test_a_unit_may_not_stand_on_another_enterprises_hazard_source(
    client: httpx.Client, db: psycopg.Connection, planted: dict[str, Any]
) -> None:
    other = _enterprise(db, "91330200BK00000035", "隔壁公司")
    try:
        ring = _square(0.0016, 0.0016, 0.0002)
        props = {"name": "越界单元", "method": None, "hazard_source_id": planted["hazard_source"]}
        r = client.post(f"/api/enterprises/{other}/risk-units", json=_feature(ring, props))
        assert r.status_code == 422
        assert r.json()["errors"] == [
            {"field": "hazard_source_id", "reason": "not a hazard source of this enterprise"}
        ]
    finally:
        db.execute("DELETE FROM enterprises WHERE id = %s", (other,))


def test_emergency_contacts_are_replaced_as_one_list_and_reach_the_cover(
    client: httpx.Client, planted: dict[str, Any]
) -> None:
    url = f"/api/enterprises/{planted['id']}/contacts"
    assert client.get(url).json() == {"contacts": CONTACTS}
    new = [{"role": "应急值班", "name": "孙丽", "phone": "+86 139-0000-3333"}]
    try:
        r = client.put(url, json={"contacts": [{**new[0], "name": " 孙丽 "}]})
        assert r.status_code == 200, r.text
        assert r.json() == {"contacts": new}  # stored trimmed, exactly as answered
        assert client.get(url).json() == {"contacts": new}
        cover = _texts(_pdf(client, planted["id"]))[0]
        assert "孙丽" in cover and "+86 139-0000-3333" in cover
        assert "赵建国" not in cover
    finally:
        assert client.put(url, json={"contacts": CONTACTS}).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"contacts": [{"role": "值班", "name": "甲", "phone": "打电话"}]}, "contacts.0.phone"),
        ({"contacts": [CONTACTS[0], {"role": "值班", "phone": "110"}]}, "contacts.1.name"),
        ({"contacts": [{**CONTACTS[0], "email": "x@example.org"}]}, "contacts.0.email"),
        ({"contacts": [{**CONTACTS[0], "role": "   "}]}, "contacts.0.role"),
        ({"contacts": [CONTACTS[0]] * 31}, "contacts"),
        ([CONTACTS[0]], "body"),
    ],
)
def test_bad_contacts_are_422_naming_the_field_and_change_nothing(
    client: httpx.Client, planted: dict[str, Any], body: Any, field: str
) -> None:
    url = f"/api/enterprises/{planted['id']}/contacts"
    r = client.put(url, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == field
    assert client.get(url).json() == {"contacts": CONTACTS}


def test_contacts_of_an_unknown_enterprise_are_404(client: httpx.Client) -> None:
    url = "/api/enterprises/2000000000/contacts"
    assert client.get(url).status_code == 404
    assert client.put(url, json={"contacts": []}).status_code == 404


def test_a_randomly_chosen_seeded_hazmat_enterprise_has_its_register_in_its_book(
    client: httpx.Client, db: psycopg.Connection
) -> None:
    """Issue 19's check on the demo city: ≥ 3 units, and the book holds the map, the table and
    every unit's controls as intact Chinese text. The demo city's registers come from
    layers/demo_city (issue 19 §2); until a seed plants them there is nothing to check."""
    import random

    # Other tests draw a unit or two on seeded enterprises; a seeded register covers them all.
    rows = db.execute(
        "SELECT e.id, (SELECT count(*) FROM risk_units u WHERE u.enterprise_id = e.id)"
        " FROM enterprises e WHERE e.is_hazmat AND e.site_geom IS NOT NULL"
        " AND e.credit_code NOT LIKE '91330200BK%%' ORDER BY e.id"
    ).fetchall()
    if sum(1 for _, n in rows if n > 0) * 2 < len(rows):
        pytest.skip("the seeded demo city has no risk registers (layers/demo_city registers)")
    eid, count = random.Random(19).choice(rows)
    assert count >= 3
    units = client.get(f"/api/enterprises/{eid}/risk-units").json()["features"]
    texts = _texts(_pdf(client, eid))
    map_no = next(i for i, t in enumerate(texts) if "四色分布图" in t)
    assert {_rgb(DISPLAY_HEX[u["properties"]["color"] or "grey"]) for u in units} <= _fill_colours(
        _pdf(client, eid).pages[map_no]
    )
    register = "\n".join(t for t in texts if "序号 风险单元" in t)
    controls = "\n".join(t for t in texts if "措施类型" in t)
    for u in units:
        assert u["properties"]["name"] in register
        for c in u["properties"]["controls"]:
            assert c["measure"] in controls


def test_georisk_fonts_names_the_package_when_it_may_not_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from click.testing import CliRunner

    from geo_api import cli
    from geo_api import fonts as installer
    from layers.risk import fonts

    assert CliRunner().invoke(cli.main, ["fonts"]).output.startswith("book font: /")
    monkeypatch.setattr(fonts, "CJK_FONT_FILES", (tmp_path / "absent.ttc",))
    monkeypatch.setattr(installer.os, "geteuid", lambda: 1000)  # not root: no apt-get
    result = CliRunner().invoke(cli.main, ["fonts"])
    assert result.exit_code == 1
    assert "apt-get install -y fonts-wqy-microhei" in result.output


def test_the_offline_html_export_escapes_what_enterprises_typed() -> None:
    """Names are user input: the export's legend and tooltips carry them as text, not markup."""
    from pathlib import Path

    from layers.risk.diagram import Diagram, render_html

    ring = [[LON, LAT], [LON + 0.001, LAT], [LON + 0.001, LAT + 0.001], [LON, LAT]]
    unit = {
        "type": "Feature",
        "id": 1,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"id": 1, "name": "<b id=unitmark>罐区</b>", "color": "red"},
    }
    d = Diagram(
        enterprise={"id": 1, "name": "<img src=x onerror=alert(1)>化工", "color": "red"},
        point=(LON, LAT),
        site=None,
        units=[unit],
    )
    page = render_html(d, Path(__file__).resolve().parents[1] / "web" / "vendor")
    assert "<img src=x onerror" not in page and "&lt;img src=x onerror=alert(1)&gt;化工" in page
    # The tooltip's data is JSON in a script (folium writes < > & as \\u escapes); decoded, the
    # name must still be escaped text when the tooltip puts it into the page.
    data = page.replace("\\u0026", "&").replace("\\u003c", "<").replace("\\u003e", ">")
    assert "<b id=unitmark>" not in data and "&lt;b id=unitmark&gt;" in data
