"""Mixed loading and illegal tank washing (混装 / 随意洗消; issue 14 item 3; docs/transport.md §4,
``mixed_loading``), judged at each loading of a waybill.

SOURCE: the 2019 Measures for road hazmat transport and JT/T 617.7-2018 forbid loading
incompatible dangerous goods together, and a tank that carried one class must be cleaned — at a
washing station, the cities' rule the Ningbo platform enforces — before it carries an
incompatible one (docs/domain.md §3.1). Which classes are incompatible is the data of
``compatibility.py`` (a SAMPLE table; see there).

At the loading moment of a waybill W (its first event into ``loading`` or ``in_transit``, by a
party, through the API, or derived from a stop at its origin):

* washing: the vehicle's previous unloading before that moment (the latest waybill with an
  ``unloading``/``unloaded`` event, or moved to ``delivered``) carried a class incompatible
  with W's, and no stop of the vehicle whose centroid lies in a ``washing_station`` zone (any
  stop the detector made) falls between that unloading's start and W's loading;
* strict mixed loading: another waybill of the vehicle, loaded earlier (ties: the lower id) and
  still on board (``loading`` or ``in_transit``), names a class incompatible with W's.

Either raises one ``mixed_loading`` alert at the loading (zone none, episode = the loading
moment, so the same loading judged twice — its ``loading`` then its ``loaded`` event, a replay —
is the same alert). Details name the waybills, both classes, UN numbers and substances, when and
where the vehicle unloaded, and that no washing-station stop was found.

Hooks, one check: the ingest's model ``judge`` takes the waybills of the batch's vehicles that
got a loading event in this transaction (events are stamped ``created_at = now()``, the
transaction's time); the waybill event routes call :func:`judge_waybills` after a step. A batch
of fixes without a new loading costs one indexed query.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from layers.transport.alerts import AlertChanges, merge
from layers.transport.config import TankerRules
from layers.transport.parking import Candidate
from layers.transport.warnings.compatibility import incompatible
from layers.transport.warnings.model import Stored, WarningModel

RULE = "mixed_loading"
#: The states of a waybill whose goods are on the vehicle (or going on).
LOADED = ("loading", "in_transit")

#: A step into ``loading`` / ``in_transit`` from before it (never a refused loading).
_LOADING_EVENT = (
    "e.to_state IN ('loading', 'in_transit') AND e.from_state IN ('planned', 'loading')"
    " AND e.from_state <> e.to_state"
)

_NEW_LOADINGS = (
    "SELECT DISTINCT w.id FROM waybills w JOIN waybill_events e ON e.waybill_id = w.id"
    " WHERE w.vehicle_id = ANY(%(v)s::int4[]) AND w.state IN ('loading', 'in_transit')"
    " AND e.created_at = now() AND " + _LOADING_EVENT
)

_JUDGE = (
    "WITH w AS (SELECT w.id, w.code, w.vehicle_id, w.hazmat_class, w.un_number,"
    " w.substance_name, l.at AS load_at,"
    " ST_X(coalesce(l.geom, w.origin_geom)) AS lon, ST_Y(coalesce(l.geom, w.origin_geom)) AS lat"
    " FROM waybills w CROSS JOIN LATERAL (SELECT e.at, e.geom FROM waybill_events e"
    " WHERE e.waybill_id = w.id AND " + _LOADING_EVENT + " ORDER BY e.at, e.id LIMIT 1) l"
    " WHERE w.id = ANY(%(ids)s::int4[]) AND w.state IN ('loading', 'in_transit'))"
    " SELECT w.*, prev.code AS prev_code, prev.hazmat_class AS prev_class,"
    " prev.un_number AS prev_un, prev.substance_name AS prev_substance,"
    " prev.first_at AS unload_start, prev.last_at AS unloaded_at,"
    " prev.lon AS unload_lon, prev.lat AS unload_lat,"
    " EXISTS (SELECT 1 FROM stops s JOIN zones z ON z.kind = 'washing_station'"
    " AND z.retired_at IS NULL AND ST_Covers(z.geom, s.geom)"
    " WHERE s.vehicle_id = w.vehicle_id AND s.start_ts <= w.load_at"
    " AND coalesce(s.end_ts, 'infinity') >= prev.first_at) AS washed,"
    " (SELECT coalesce(json_agg(json_build_object('waybill', o.code,"
    " 'hazmat_class', o.hazmat_class, 'un_number', o.un_number,"
    " 'substance', o.substance_name) ORDER BY o.id), '[]')"
    " FROM waybills o CROSS JOIN LATERAL (SELECT min(e.at) AS at FROM waybill_events e"
    " WHERE e.waybill_id = o.id AND " + _LOADING_EVENT + ") ol"
    " WHERE o.vehicle_id = w.vehicle_id AND o.id <> w.id AND o.state IN ('loading', 'in_transit')"
    " AND (ol.at < w.load_at OR (ol.at = w.load_at AND o.id < w.id))) AS on_board"
    " FROM w LEFT JOIN LATERAL (SELECT p.code, p.hazmat_class, p.un_number, p.substance_name,"
    " u.first_at, u.last_at, ST_X(coalesce(u.geom, p.destination_geom)) AS lon,"
    " ST_Y(coalesce(u.geom, p.destination_geom)) AS lat"
    " FROM waybills p CROSS JOIN LATERAL (SELECT min(e.at) AS first_at, max(e.at) AS last_at,"
    " (array_agg(e.geom ORDER BY e.at DESC) FILTER (WHERE e.geom IS NOT NULL))[1] AS geom"
    " FROM waybill_events e WHERE e.waybill_id = p.id AND e.at <= w.load_at"
    " AND (e.kind IN ('unloading', 'unloaded')"
    " OR (e.to_state = 'delivered' AND e.from_state <> 'delivered'))) u"
    " WHERE p.vehicle_id = w.vehicle_id AND p.id <> w.id AND u.last_at IS NOT NULL"
    " ORDER BY u.last_at DESC, p.id DESC LIMIT 1) prev ON true"
)


def _us(at: dt.datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def _goods(prefix: str, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "waybill": row[f"{prefix}code"],
        "hazmat_class": row[f"{prefix}class" if prefix else "hazmat_class"],
        "un_number": row[f"{prefix}un" if prefix else "un_number"],
        "substance": row[f"{prefix}substance" if prefix else "substance_name"],
    }


def judge_loading(row: dict[str, Any]) -> Candidate | None:
    """The alert one loading raises (a row of ``_JUDGE``), or None: pure, so the rule's edges
    are tested without a database."""
    new_class = row["hazmat_class"]
    details: dict[str, Any] = {"loaded": _goods("", row), "loaded_at": row["load_at"].isoformat()}
    findings = []
    prev_class = row.get("prev_class")
    if prev_class is not None and incompatible(prev_class, new_class) and not row["washed"]:
        findings.append("unwashed_tank")
        details["previous"] = _goods("prev_", row) | {
            "unloaded_at": row["unloaded_at"].isoformat(),
            "unload_lon": row["unload_lon"],
            "unload_lat": row["unload_lat"],
        }
        details["washing_station_stop"] = False
    clash = [o for o in row["on_board"] or () if incompatible(o["hazmat_class"], new_class)]
    if clash:
        findings.append("incompatible_on_board")
        details["on_board"] = clash
    if not findings:
        return None
    details["findings"] = findings
    t = _us(row["load_at"])
    return Candidate(
        int(row["vehicle_id"]),
        RULE,
        None,
        t,
        t,
        active=False,
        lon=float(row["lon"]),
        lat=float(row["lat"]),
        severity="severe",
        details=details,
    )


async def judge_waybills(
    conn: AsyncConnection[Any], waybill_ids: Sequence[int], rules: TankerRules
) -> AlertChanges:
    """Judge the loading of each waybill of ``waybill_ids`` that is loaded (others are
    skipped): the one home of the check, for the ingest and the event routes alike."""
    if not waybill_ids:
        return AlertChanges()
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_JUDGE, {"ids": sorted(set(waybill_ids))})
        rows = await cur.fetchall()
    cands = [c for c in map(judge_loading, rows) if c is not None]
    return await merge(conn, cands, [None] * len(cands), rules)


async def judge(conn: AsyncConnection[Any], stored: Stored, rules: TankerRules) -> AlertChanges:
    """The loadings this ingest transaction derived for the batch's vehicles."""
    vehicles = stored.vehicles
    if not vehicles:
        return AlertChanges()
    cur = await conn.execute(_NEW_LOADINGS, {"v": vehicles})
    return await judge_waybills(conn, [int(r[0]) for r in await cur.fetchall()], rules)


MODEL = WarningModel(
    "mixed_loading",
    (RULE,),
    "2019 road hazmat transport measures and JT/T 617.7-2018 (mixed loading, tank cleaning);"
    " incompatible classes: compatibility.py (SAMPLE table)",
    judge,
)
