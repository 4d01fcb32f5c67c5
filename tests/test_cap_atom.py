"""CAP sender settings and the Atom feed of CAP messages (issue 16 §5), over real HTTP and a
real PostGIS.

Two districts of our own (``ATOM-A`` with four alerts, ``ATOM-B`` with one), planted by SQL
with known change times so "newest change first" is checkable; the feed is read with
feedparser, as a polling system would, and with lxml for the CAP extension elements. A
server of its own carries non-default CAP sender settings and a small feed cap.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import httpx
import psycopg
import pytest
from lxml import etree
from pydantic import ValidationError

from geo_api.settings import CapSettings
from tests.conftest import LiveServer, auth, key_for, make_settings

XSD = Path(__file__).parent / "data" / "cap-1.2.xsd"
CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
ATOM = "{http://www.w3.org/2005/Atom}"
SENDER = "alerts@atom-test.example"
NAME_ZH = "原子测试发送方"
NAME_EN = "Atom Test Sender"
WEB = "https://georisk.atom-test.example/alerts?id={alert_id}"
FEED_MAX = 3
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _box(lon: float, lat: float) -> str:
    a, b, c, d = lon - 0.05, lat - 0.05, lon + 0.05, lat + 0.05
    return f"MULTIPOLYGON((({a} {b}, {c} {b}, {c} {d}, {a} {d}, {a} {b})))"


@pytest.fixture(scope="module")
def area(database_url: str) -> dict[str, Any]:
    """Alerts A1..A4 in ATOM-A, changed 4, 1, 3 and 2 hours ago; B1 in ATOM-B."""
    with psycopg.connect(database_url, autocommit=True) as c:
        for code, lon in (("ATOM-A", 126.1), ("ATOM-B", 126.3)):
            c.execute(
                "INSERT INTO districts (code, name, geom) VALUES (%s, %s,"
                " ST_GeomFromText(%s, 4326))",
                (code, f"原子{code[-1]}区", _box(lon, 33.1)),
            )
        row = c.execute(
            "INSERT INTO vehicles (plate, carrier, district) VALUES ('测ATOM1', '原子危运',"
            " 'ATOM-A') RETURNING id"
        ).fetchone()
        assert row
        vid = row[0]
        ids: dict[str, int] = {}
        for name, district, hours, rule in (
            ("A1", "ATOM-A", 4, "illegal_parking"),
            ("A2", "ATOM-A", 1, "overspeed"),
            ("A3", "ATOM-A", 3, "illegal_parking"),
            ("A4", "ATOM-A", 2, "overspeed"),
            ("B1", "ATOM-B", 1, "illegal_parking"),
        ):
            at = NOW - dt.timedelta(hours=hours)
            row = c.execute(
                "INSERT INTO alerts (vehicle_id, rule, episode_start, episode_end, active,"
                " district, severity, created_at, updated_at, geom) VALUES (%s, %s, %s, %s,"
                " false, %s, 'moderate', %s, %s, ST_SetSRID(ST_Point(126.1, 33.1), 4326))"
                " RETURNING id",
                (vid, rule, at, at + dt.timedelta(minutes=10), district, at, at),
            ).fetchone()
            assert row
            ids[name] = int(row[0])
    return ids


@pytest.fixture(scope="module")
def atom_server(database_url: str) -> Iterator[LiveServer]:
    settings = make_settings(database_url)
    settings.cap = CapSettings(
        sender=SENDER,
        sender_name_zh=NAME_ZH,
        sender_name_en=NAME_EN,
        web_url=WEB,
        feed_max=FEED_MAX,
    )
    with LiveServer(settings) as server:
        yield server


@pytest.fixture()
def http(atom_server: LiveServer) -> Iterator[httpx.Client]:
    with atom_server.client() as c:
        yield c


def _expected(db: psycopg.Connection, district: str, limit: int) -> list[tuple[int, int]]:
    """(id, revision) of the district's alerts, newest change first, straight from the table."""
    rows = db.execute(
        "SELECT id, revision FROM alerts WHERE district = %s"
        " ORDER BY updated_at DESC, id DESC LIMIT %s",
        (district, limit),
    ).fetchall()
    return [(int(a), int(r)) for a, r in rows]


def _entries(http: httpx.Client, base: str, **params: Any) -> list[tuple[int, int]]:
    """(alert id, revision) of each entry, read off its CAP link and CAP identifier."""
    r = http.get("/api/alerts/cap.atom", params=params)
    assert r.status_code == 200, r.text
    doc = etree.fromstring(r.content)
    out = []
    for entry in doc.findall(f"{ATOM}entry"):
        (link,) = [x for x in entry.findall(f"{ATOM}link") if x.get("rel") == "alternate"]
        assert link.get("type") == "application/cap+xml"
        href = link.get("href")
        assert href and href.startswith(base + "/api/alerts/") and href.endswith(".cap")
        alert_id = int(href.removeprefix(base + "/api/alerts/").removesuffix(".cap"))
        ident = entry.findtext(f"{CAP}identifier")
        assert ident and ident.startswith(f"georisk-alert-{alert_id}-r")
        out.append((alert_id, int(ident.rsplit("-r", 1)[1])))
    return out


def _cap(http: httpx.Client, alert_id: int) -> etree._Element:
    r = http.get(f"/api/alerts/{alert_id}.cap")
    assert r.status_code == 200, r.text
    doc = etree.fromstring(r.content)
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    assert schema.validate(doc), schema.error_log
    return doc


# -- CAP sender -----------------------------------------------------------------------------
def test_cap_sender_names_and_web_link_come_from_settings(
    http: httpx.Client, client: httpx.Client, area: dict[str, int]
) -> None:
    alert_id = area["A1"]
    doc = _cap(http, alert_id)  # still valid CAP 1.2 with our values
    assert doc.findtext(f"{CAP}sender") == SENDER
    infos = doc.findall(f"{CAP}info")
    assert [i.findtext(f"{CAP}senderName") for i in infos] == [NAME_ZH, NAME_EN]
    web = WEB.format(alert_id=alert_id)
    assert [i.findtext(f"{CAP}web") for i in infos] == [web, web]
    # An Update references the original by "sender,identifier,sent": our sender there too.
    r = http.post(f"/api/alerts/{area['A3']}/ack")
    assert r.status_code == 200, r.text
    update = _cap(http, area["A3"])
    assert update.findtext(f"{CAP}msgType") == "Update"
    references = update.findtext(f"{CAP}references")
    assert references and references.startswith(f"{SENDER},georisk-alert-{area['A3']}-r1,")
    # The shared server runs on the defaults: the values CAP carried before they were settings.
    default = etree.fromstring(client.get(f"/api/alerts/{alert_id}.cap").content)
    assert default.findtext(f"{CAP}sender") == "georisk@hazmat-regulator.gov.cn"
    names = [i.findtext(f"{CAP}senderName") for i in default.findall(f"{CAP}info")]
    assert names == ["危险化学品风险监测预警平台", "Hazardous Chemicals Risk Monitoring Platform"]
    assert default.find(f"{CAP}info/{CAP}web") is None


def test_cap_sender_settings_are_checked() -> None:
    for bad in ({"sender": "two words"}, {"sender": "a,b"}, {"sender": "a&b"}):
        with pytest.raises(ValidationError, match="sender"):
            CapSettings(**bad)
    with pytest.raises(ValidationError, match="http"):
        CapSettings(web_url="ftp://example.org/{alert_id}")
    with pytest.raises(ValidationError, match="alert_id"):
        CapSettings(web_url="https://example.org/{alert}")


# -- Atom feed ------------------------------------------------------------------------------
def test_the_feed_holds_the_districts_cap_messages_newest_first(
    atom_server: LiveServer, http: httpx.Client, db: psycopg.Connection, area: dict[str, int]
) -> None:
    r = http.get("/api/alerts/cap.atom", params={"district": "ATOM-A"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(r.content)
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "atom10"
    assert NAME_EN in feed.feed.title and "ATOM-A" in feed.feed.title
    assert feed.feed.author == NAME_EN and feed.feed.id.startswith("urn:uuid:")
    expected = _expected(db, "ATOM-A", FEED_MAX)
    assert len(expected) == FEED_MAX  # four alerts, the server's cap is three
    assert _entries(http, atom_server.base_url, district="ATOM-A") == expected
    ids = [e.id for e in feed.entries]
    assert len(set(ids)) == len(ids) == FEED_MAX and all(i.startswith("urn:uuid:") for i in ids)
    updated = [e.updated_parsed for e in feed.entries]
    assert updated == sorted(updated, reverse=True)
    for entry, (alert_id, _) in zip(feed.entries, expected, strict=True):
        links = {link.rel: link for link in entry.links}
        assert links["alternate"].href == f"{atom_server.base_url}/api/alerts/{alert_id}.cap"
        assert links["related"].href == WEB.format(alert_id=alert_id)
        assert "测ATOM1" in entry.title
        assert entry.tags[0].term in ("illegal_parking", "overspeed")
        # What the entry says is what its CAP message says.
        cap = _cap(http, alert_id)
        doc = etree.fromstring(r.content)
        (raw,) = [
            e
            for e in doc.findall(f"{ATOM}entry")
            if e.findtext(f"{CAP}identifier") == cap.findtext(f"{CAP}identifier")
        ]
        for tag in ("msgType",):
            assert raw.findtext(f"{CAP}{tag}") == cap.findtext(f"{CAP}{tag}")
        for tag in ("urgency", "severity", "certainty"):
            assert raw.findtext(f"{CAP}{tag}") == cap.findtext(f"{CAP}info/{CAP}{tag}")
    # Another district's alert is never in it; that district's feed has just its own.
    assert area["B1"] not in {a for a, _ in _entries(http, atom_server.base_url, district="ATOM-A")}
    assert _entries(http, atom_server.base_url, district="ATOM-B") == _expected(db, "ATOM-B", 9)


def test_the_feed_limit(
    atom_server: LiveServer, http: httpx.Client, db: psycopg.Connection, area: dict[str, int]
) -> None:
    base = atom_server.base_url
    assert _entries(http, base, district="ATOM-A", limit=2) == _expected(db, "ATOM-A", 2)
    assert _entries(http, base, district="ATOM-A", limit=1) == _expected(db, "ATOM-A", 1)
    assert len(_entries(http, base, district="ATOM-A", limit=1000)) == FEED_MAX  # capped
    r = http.get("/api/alerts/cap.atom", params={"district": "ATOM-A", "limit": 0})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.limit"


def test_the_feed_is_scoped_by_role(
    atom_server: LiveServer, db: psycopg.Connection, database_url: str, area: dict[str, int]
) -> None:
    officer = auth(key_for(database_url, "officer", districts=["ATOM-A"]))
    base = atom_server.base_url
    with httpx.Client(base_url=base, headers=officer, timeout=30) as http:
        assert _entries(http, base, district="ATOM-A") == _expected(db, "ATOM-A", FEED_MAX)
        # Unasked, an officer's feed is their districts'.
        assert _entries(http, base) == _expected(db, "ATOM-A", FEED_MAX)
        r = http.get("/api/alerts/cap.atom", params={"district": "ATOM-B"})
        assert r.status_code == 403 and r.json()["errors"][0]["field"] == "district"
        assert str(area["B1"]) not in r.text
    regulator = auth(key_for(database_url, "regulator", districts=["ATOM-B"]))
    with httpx.Client(base_url=base, headers=regulator, timeout=30) as http:
        assert _entries(http, base) == _expected(db, "ATOM-B", FEED_MAX)
        r = http.get("/api/alerts/cap.atom", params={"district": "ATOM-A"})
        assert r.status_code == 403 and r.json()["errors"][0]["field"] == "district"
    r = httpx.get(
        base + "/api/alerts/cap.atom",
        params={"district": "ATOM-A"},
        headers=auth(key_for(database_url, "tile_reader")),
    )
    assert r.status_code == 403
    assert httpx.get(base + "/api/alerts/cap.atom").status_code == 401
    with atom_server.client() as admin:
        r = admin.get("/api/alerts/cap.atom", params={"district": "NO-SUCH"})
        assert r.status_code == 404 and r.json()["errors"][0]["field"] == "district"


def test_conditional_get_answers_304_until_something_changes(
    http: httpx.Client, area: dict[str, int]
) -> None:
    params = {"district": "ATOM-A"}
    first = http.get("/api/alerts/cap.atom", params=params)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert first.headers["cache-control"] == "private, no-cache"
    r = http.get("/api/alerts/cap.atom", params=params, headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == etag
    r = http.get("/api/alerts/cap.atom", params=params, headers={"If-Modified-Since": modified})
    assert r.status_code == 304
    earlier = email.utils.parsedate_to_datetime(modified) - dt.timedelta(minutes=1)
    for since in (email.utils.format_datetime(earlier, True), "not a date"):
        r = http.get("/api/alerts/cap.atom", params=params, headers={"If-Modified-Since": since})
        assert r.status_code == 200 and r.content == first.content
    r = http.get("/api/alerts/cap.atom", params=params, headers={"If-None-Match": '"other"'})
    assert r.status_code == 200 and r.content == first.content
    # An officer acknowledges A2: a new CAP message (an Update), first in the feed.
    assert http.post(f"/api/alerts/{area['A2']}/ack").status_code == 200
    r = http.get("/api/alerts/cap.atom", params=params, headers={"If-None-Match": etag})
    assert r.status_code == 200 and r.headers["etag"] != etag
    top = etree.fromstring(r.content).find(f"{ATOM}entry")
    assert top is not None
    assert top.findtext(f"{CAP}identifier") == f"georisk-alert-{area['A2']}-r2"
    assert top.findtext(f"{CAP}msgType") == "Update"
    # (If-Modified-Since is not asked again here: HTTP dates have whole seconds, and this
    # change may fall in the same second as the last one; the ETag is exact.)
