"""Parties of the transport chain (issue 14 item 1): carriers, vehicles with their
qualifications, drivers and escorts — REST, imports with row-level errors, scoping by role, and
id-card numbers kept from roles that must not read them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from layers.imports.importer import ImportRejected, import_file
from tests.conftest import LiveServer, key_for
from tests.planting import id_card, plant_chain

TAG = "771001"


@pytest.fixture(scope="module")
def chain(database_url: str) -> dict[str, Any]:
    with psycopg.connect(database_url, autocommit=True) as c:
        return plant_chain(c, TAG, 121.20, 29.60)


def _client(server: LiveServer, role: str, **scope: Any) -> Any:
    return server.client(key=key_for(server.url, role, **scope))


def _errors(response: Any) -> dict[tuple[int | None, str], str]:
    return {(e.get("index"), e["field"]): e["reason"] for e in response.json()["errors"]}


def test_a_carrier_is_a_transport_enterprise_with_a_licence(
    live_server: LiveServer, chain: dict[str, Any], db: psycopg.Connection
) -> None:
    (extra,) = db.execute(
        "INSERT INTO enterprises (credit_code, name, category, is_hazmat, district, geom)"
        " VALUES (%s, '新承运', 'transport', true, %s, ST_SetSRID(ST_Point(121.2, 29.7), 4326))"
        " RETURNING id",
        (f"91330200{TAG}0099", chain["d1"]),
    ).fetchone()
    with live_server.client() as http:
        bad = http.post(
            "/api/carriers",
            json=[
                {
                    "enterprise_id": chain["shipper"],
                    "licence_no": "L-A",
                    "licence_expiry": "2027-01-01",
                },
                {"enterprise_id": extra, "licence_no": f"LX{TAG}", "licence_expiry": "2027-01-01"},
                {"enterprise_id": extra, "licence_no": "L-C"},
            ],
        )
        assert bad.status_code == 422, bad.text
        errors = _errors(bad)
        assert "storage enterprise" in errors[(0, "enterprise_id")]
        assert "already exists" in errors[(1, "licence_no")]
        assert errors[(2, "licence_expiry")] == "required"
        ok = http.post(
            "/api/carriers",
            json={"enterprise_id": extra, "licence_no": f"LN{TAG}", "licence_expiry": "2020-05-01"},
        )
        assert ok.status_code == 201, ok.text
        got = http.get(f"/api/carriers/{ok.json()['id']}").json()["properties"]
        assert got["enterprise_id"] == extra and got["name"] == "新承运"
        assert got["licence_status"] == "expired" and got["licence_expiry"] == "2020-05-01"


def test_vehicles_link_their_carrier_by_id_and_carry_qualifications(
    live_server: LiveServer, chain: dict[str, Any]
) -> None:
    with live_server.client() as http:
        created = http.post(
            "/api/vehicles",
            json={
                "plate": f"浙B{TAG[-4:]}9",
                "carrier_id": chain["x"],
                "capacity_t": 25,
                "tank_type": "pressure",
                "tank_volume_m3": 45.5,
                "road_permit_no": "330200123456",
                "road_permit_expiry": "2030-01-31",
                "tank_inspection_expiry": "2020-01-31",
            },
        )
        assert created.status_code == 201, created.text
        props = http.get(f"/api/vehicles/{created.json()['id']}").json()["properties"]
        assert props["carrier"] == f"承运X{TAG}"  # the carrier's name fills the text column
        assert props["carrier_id"] == chain["x"]
        assert props["tank_type"] == "pressure" and props["tank_volume_m3"] == 45.5
        assert props["road_permit_status"] == "valid"
        assert props["tank_inspection_status"] == "expired"
        # Text alone still works (not linked to a supervised carrier).
        legacy = http.post(
            "/api/vehicles",
            json={"plate": f"浙B{TAG[-4:]}8", "carrier": "某运输", "road_permit_no": None},
        )
        assert legacy.status_code == 201, legacy.text
        assert (
            http.get(f"/api/vehicles/{legacy.json()['id']}").json()["properties"]["carrier_id"]
            is None
        )
        bad = http.post(
            "/api/vehicles",
            json=[
                {"plate": "浙B00001", "carrier_id": chain["shipper"]},
                {"plate": "浙B00002", "carrier_id": chain["x"], "tank_type": "bucket"},
                {"plate": "浙B00003"},
            ],
        )
        assert bad.status_code == 422
        errors = _errors(bad)
        assert "not a registered carrier" in errors[(0, "carrier_id")]
        assert "bucket" in errors[(1, "tank_type")]
        assert errors[(2, "carrier")].startswith("required (or carrier_id")


def test_crew_csv_import_names_each_bad_row_and_never_echoes_an_id_number(
    database_url: str, chain: dict[str, Any], tmp_path: Path
) -> None:
    good = id_card(f"33020319850{TAG}")
    wrong_check = good[:17] + ("0" if good[17] != "0" else "1")
    path = tmp_path / "crew.csv"
    path.write_text(
        "carrier_id,name,id_card_no,role,certificate_no,certificate_expiry\n"
        f"{chain['x']},张三,{good},driver,CSV{TAG}1,2027-06-30\n"
        f"{chain['x']},李四,{wrong_check},escort,CSV{TAG}2,2027-06-30\n"
        f"{chain['shipper']},王五,{id_card(f'33020319860{TAG}')},driver,CSV{TAG}3,2027-06-30\n"
        f"{chain['x']},赵六,{id_card(f'33020319870{TAG}')},pilot,CSV{TAG}4,2027-06-30\n"
        f"{chain['x']},钱七,{id_card(f'33020319880{TAG}')},driver,CSV{TAG}5,30/06/2027\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as caught:
        import_file(database_url, "crew-members", path, progress=False)
    by_row = {(e.row, e.field): e.reason for e in caught.value.errors}
    assert "check character" in by_row[(2, "id_card_no")]
    assert "not a registered carrier" in by_row[(3, "carrier_id")]
    assert "pilot" in by_row[(4, "role")]
    assert (5, "certificate_expiry") in by_row
    assert (1, "id_card_no") not in by_row
    assert all(wrong_check not in reason for reason in by_row.values())

    fixed = tmp_path / "crew_ok.csv"
    fixed.write_text(
        "carrier_id,name,id_card_no,role,certificate_no,certificate_expiry\n"
        f"{chain['x']},张三,{good},driver,CSV{TAG}1,2027-06-30\n",
        encoding="utf-8",
    )
    report = import_file(database_url, "crew-members", fixed, progress=False)
    assert report.inserted == 1


def test_vehicles_json_import(database_url: str, chain: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "vehicles.json"
    rows = [
        {
            "plate": f"浙B{TAG[-4:]}7",
            "carrier_id": chain["y"],
            "capacity_t": 20,
            "road_permit_expiry": "2028-01-01",
        },
        {"plate": f"浙B{TAG[-4:]}6", "carrier_id": chain["y"], "capacity_t": 500},
    ]
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ImportRejected) as caught:
        import_file(database_url, "vehicles", path, progress=False)
    assert [(e.row, e.field) for e in caught.value.errors] == [(2, "capacity_t")]
    path.write_text(json.dumps(rows[:1], ensure_ascii=False), encoding="utf-8")
    assert import_file(database_url, "vehicles", path, progress=False).inserted == 1


def test_a_carrier_sees_only_its_own_vehicles_and_people(
    live_server: LiveServer, chain: dict[str, Any]
) -> None:
    with _client(live_server, "enterprise", enterprise_id=chain["x"]) as x:
        vehicles = x.get("/api/vehicles", params={"limit": 1000}).json()["features"]
        assert {f["properties"]["carrier_id"] for f in vehicles} == {chain["x"]}
        assert {chain["ok"], chain["old"]} <= {f["id"] for f in vehicles}
        crew = x.get("/api/crew-members").json()["features"]
        assert {f["properties"]["carrier_id"] for f in crew} == {chain["x"]}
        assert x.get(f"/api/vehicles/{chain['y_vehicle']}").status_code == 403
        assert x.get(f"/api/crew-members/{chain['y_driver']}").status_code == 403
        assert x.get("/api/crew-members/2147483000").status_code == 404
        # A carrier registers people of its own only.
        theirs = x.post(
            "/api/crew-members",
            json={
                "carrier_id": chain["y"],
                "name": "外人",
                "id_card_no": id_card(f"33020319990{TAG}"),
                "role": "driver",
                "certificate_no": f"OTHER{TAG}",
                "certificate_expiry": "2027-01-01",
            },
        )
        assert theirs.status_code == 403
    with _client(live_server, "regulator", districts=[chain["d2"]]) as reg:
        crew = reg.get("/api/crew-members", params={"limit": 1000}).json()["features"]
        assert chain["y_driver"] in {f["id"] for f in crew}
        assert chain["driver"] not in {f["id"] for f in crew}
        assert reg.get(f"/api/crew-members/{chain['driver']}").status_code == 403
    with live_server.client("officer") as officer:
        assert officer.get(f"/api/crew-members/{chain['driver']}").status_code == 200
        assert officer.post("/api/carriers", json={}).status_code == 403
    for role in ("tile_reader", "ingest"):
        with live_server.client(role) as other:
            assert other.get("/api/crew-members").status_code == 403
            assert other.get("/api/vehicles").status_code == 403


def test_id_card_numbers_are_whole_only_for_admins_and_the_carrier(
    live_server: LiveServer, chain: dict[str, Any]
) -> None:
    number = chain["id_card_driver"]
    path = f"/api/crew-members/{chain['driver']}"
    with live_server.client() as admin:
        assert admin.get(path).json()["properties"]["id_card_no"] == number
    with _client(live_server, "enterprise", enterprise_id=chain["x"]) as own:
        assert own.get(path).json()["properties"]["id_card_no"] == number
    for role in ("regulator", "officer"):
        with live_server.client(role) as http:
            one = http.get(path)
            listed = http.get("/api/crew-members", params={"carrier_id": chain["x"]})
            assert one.status_code == listed.status_code == 200
            props = one.json()["properties"]
            assert props["id_card_no"] == number[:4] + "*" * 10 + number[-4:]
            assert props["phone"] == "138****1234"
            assert number not in one.text and number not in listed.text
            assert "13800001234" not in listed.text


def test_a_duplicate_id_card_is_named_without_the_number(
    live_server: LiveServer, chain: dict[str, Any]
) -> None:
    number = chain["id_card_driver"]
    person = {
        "carrier_id": chain["x"],
        "name": "重名",
        "id_card_no": number,
        "role": "driver",
        "certificate_no": f"DUP{TAG}",
        "certificate_expiry": "2027-01-01",
    }
    with live_server.client() as http:
        twice = http.post("/api/crew-members", json=[person, {**person, "certificate_no": "X"}])
        stored = http.post("/api/crew-members", json=person)
        as_escort = http.post("/api/crew-members", json={**person, "role": "escort"})
    assert twice.status_code == stored.status_code == 409
    reasons = {(e.get("index"), e["reason"]) for e in twice.json()["errors"]}
    assert (1, "this id-card number appears more than once in this batch") in reasons
    assert _errors(stored)[(0, "id_card_no")].startswith("this id-card number already exists")
    assert number not in twice.text and number not in stored.text
    assert as_escort.status_code == 201  # the same person may also be an escort
