"""``seed_demo_city``: generate the Ningbo-like demo city and load it, phase by phase.

Deterministic for (seed, scale, day): every phase draws from its own generator derived from the
seed, and each vehicle from one derived from the seed and its id. The one input that is not is
``now`` for the "fix in the future" filter, which only matters when ``day`` is today, and the
end of the live layer's 24 h of readings (layers/demo_city/live.py; a parameter, default the
wall clock floored to 5 minutes).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box
from tqdm import tqdm

from layers.core.partitions import ensure_daily_partitions
from layers.core.vocab import HAZMAT_CATEGORIES
from layers.demo_city import (
    bulletins,
    chain,
    enterprises,
    geography,
    live,
    loader,
    monitoring,
    pipelines,
    registers,
    roads,
    scenarios,
    supervision,
    tracks,
    truth,
    zones,
)
from layers.demo_city import scores as demo_scores
from layers.demo_city.config import CST, Counts, to_lonlat
from layers.prevention.bulletin import BulletinRules
from layers.risk.recompute import RecomputeConfig, RecomputeReport, recompute
from layers.transport import fix_filters
from layers.transport.batch import BatchReport, detect_all
from layers.transport.config import TankerRules

CHUNK_VEHICLES = 400


@dataclass
class SeedReport:
    """What was loaded, how long each phase took, and where the side files are."""

    seed: int
    scale: float
    day: dt.date
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    ground_truth: Path = Path()
    population_tif: Path = Path()
    events: dict[str, int] = field(default_factory=dict)
    risk: str = ""
    tankers: str = ""
    live: str = ""

    def summary(self) -> str:
        total = sum(self.seconds.values())
        lines = [
            f"demo city seed={self.seed} scale={self.scale:g} day={self.day} "
            f"loaded in {total:.1f} s"
        ]
        lines += [f"  {k:<26} {v:>10,}" for k, v in self.counts.items()]
        lines.append("  phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items()))
        lines.append("  planted: " + ", ".join(f"{k} {v}" for k, v in sorted(self.events.items())))
        lines.append(f"  ground truth: {self.ground_truth}")
        lines.append(f"  population raster: {self.population_tif}")
        if self.risk:
            lines.append(f"  risk: {self.risk}")
        if self.tankers:
            lines.append(f"  tanker alerts: {self.tankers}")
        if self.live:
            lines.append(f"  live: {self.live}")
        return "\n".join(lines)


def _default_day() -> dt.date:
    return dt.datetime.now(CST).date() - dt.timedelta(days=1)


def _mp(p: Polygon | MultiPolygon) -> MultiPolygon:
    return p if isinstance(p, MultiPolygon) else MultiPolygon([p])


@contextmanager
def _phase(report: SeedReport, name: str, progress: bool) -> Iterator[None]:
    t0 = time.monotonic()
    if progress:
        tqdm.write(f"· {name} …")
    yield
    report.seconds[name] = round(time.monotonic() - t0, 2)


def seed_demo_city(
    url: str,
    *,
    scale: float = 1.0,
    seed: int = 20221,
    out_dir: Path,
    replace: bool = False,
    progress: bool = True,
    day: dt.date | None = None,
    now: dt.datetime | None = None,
) -> SeedReport:
    """Generate the demo city for (seed, scale, day) and load it into ``url`` with COPY.

    ``day`` is the local (Asia/Shanghai) day the tanker fixes cover, default yesterday. Raises
    ``loader.NotEmpty`` when data exists and ``replace`` is false. Writes ``population.tif`` and
    ``ground_truth.json`` into ``out_dir``. ``now`` ends the 24 h of monitoring readings
    (default: the wall clock floored to 5 minutes).
    """
    if scale <= 0:
        raise ValueError("scale must be > 0")
    day = day or _default_day()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = Counts.for_scale(scale)
    report = SeedReport(seed, scale, day)
    report.ground_truth = out_dir / "ground_truth.json"
    report.population_tif = out_dir / "population.tif"

    def rng(phase: int) -> np.random.Generator:
        return np.random.default_rng([seed, phase])

    with psycopg.connect(url) as conn:
        loader.prepare(conn, replace)  # fail fast, before any work

        with _phase(report, "geography", progress):
            districts = geography.make_districts()
            parks = geography.make_parks(districts)
            net = roads.make_network(rng(1))
            lots = zones.make_lots(rng(2), net, parks, counts, first_id=1)
            zones.add_town_lots(rng(3), net, lots, districts, parks, counts)
            clearance = zones.Clearance(lots, parks)
            area = zones.make_area_zones(rng(4), districts, clearance, counts, len(lots) + 1)

        with _phase(report, "enterprises", progress):
            hazmat = enterprises.make_hazmat(rng(5), net, parks, districts, counts, day)
            others = enterprises.make_others(
                rng(6), districts, parks, clearance, net, counts, len(hazmat) + 1
            )
            ents = hazmat + others
            enterprises.finish_identity(rng(7), ents, districts, net)
            people = registers.make_people(rng(18), ents)
            zrng = rng(8)
            site_zones = []
            nid = len(lots) + len(area) + 1
            for e in others:
                if e.category in ("school", "hospital"):
                    site_zones.append(zones.site_zone(zrng, e.category, e.x, e.y, nid, e.name))
                    nid += 1
            forbidden = area + site_zones
            park_z = zones.park_zones(parks, nid)
            nid += len(park_z)
            # Washing stations and hazmat-restricted areas (issue 14: the chain's models).
            washing = zones.washing_stations(
                rng(21), net, parks, clearance, [z.geom for z in forbidden], nid
            )
            nid += len(washing)
            restricted = zones.restricted_zones(districts, lots, nid)
            all_zones = lots + forbidden + park_z + washing + restricted
            zones.assign_districts(all_zones, districts)
            pop = geography.make_population(
                rng(9),
                districts,
                [z.geom for z in area if z.kind == "residential"],
                [z.geom for z in area if z.kind == "water_source"],
                [p.geom for p in parks],
            )
            geography.write_population_tif(pop, report.population_tif)
            sources = enterprises.make_hazard_sources(rng(10), hazmat, pop, counts)

        with _phase(report, "monitoring+pipelines", progress):
            points = monitoring.make_points(rng(11), sources, counts.monitoring_min)
            plants = [e for e in hazmat if e.category in ("production", "storage")]
            lines = pipelines.make_pipelines(
                rng(12),
                net,
                plants,
                [z for z in lots if z.lot_kind == "park"],
                districts,
                counts.pipeline_km,
            )
            points += monitoring.pipeline_points(rng(13), lines, len(points) + 1)
            fleet = tracks.make_fleet(rng(14), counts, lots)

        with _phase(report, "load static", progress):
            _load_static(
                conn, report, districts, ents, people, sources, lines, points, all_zones, net, fleet
            )

        with _phase(report, "registers", progress):
            # After the static load: units point at enterprises and hazard sources.
            regs = registers.make_registers(rng(17), ents, sources, districts, day, people)
            report.counts["risk_units"] = loader.copy_registers(conn, regs)

        with _phase(report, "tracks", progress):
            # Carriers first: a vehicle no transport enterprise takes over has no carrier, so
            # no waybill — it stays idle (its day must not read as moving without a waybill).
            _link_carriers(conn)
            unlinked = {
                int(r[0])
                for r in conn.execute("SELECT id FROM vehicles WHERE enterprise_id IS NULL")
            }
            events, noise, chain_plan = _load_tracks(
                conn, report, net, lots, forbidden, fleet, day, seed, progress,
                hazmat, washing, restricted, scale, unlinked,
            )  # fmt: skip

        with _phase(report, "finalize", progress):
            loader.fix_sequences(conn)
            loader.mark_demo(conn, seed, scale, day)
            # Carriers' licences, vehicles' papers, crews and waybills (issue 14).
            chain_counts, chain_truth = chain.seed_chain(conn, rng(19), day, chain_plan)
            report.counts.update(chain_counts)
            conn.commit()
            conn.autocommit = True
            conn.execute("ANALYZE")
            zone_counts: dict[str, int] = {}
            for z in all_zones:
                zone_counts[z.kind] = zone_counts.get(z.kind, 0) + 1
            truth.write(
                report.ground_truth,
                seed=seed,
                scale=scale,
                day=day,
                events=events,
                noise=noise,
                zones=zone_counts,
                sections={
                    "registers": regs.truth,
                    "transport_chain": chain_truth,
                    "chain_scenarios": chain_plan.truth,
                },
            )
    with _phase(report, "risk", progress):
        # The map should open with colours: grade every source and rate every enterprise.
        config = RecomputeConfig(population_raster=report.population_tif)
        report.risk = asyncio.run(_recompute(url, config)).summary()
    with _phase(report, "tanker alerts", progress):
        # The map should open with real alerts: the live engine's detector and rules over
        # the seeded fixes, then the carriers with illegal-parking alerts re-rated.
        report.tankers = asyncio.run(_detect(url, config)).summary()
    with _phase(report, "monitoring", progress):
        # The live panels should show true data: 24 h of readings (the last samples judged by
        # the real evaluator, a few planted alarms), hidden dangers, tasks and score events.
        lrep = live.LiveReport()
        live_now = now or live.default_now()
        with psycopg.connect(url) as conn:
            furnaces = demo_scores.assign(conn, seed)  # before: furnaces are not Xiaoshan's
            state = live.write_static(conn, seed, scale, live_now, lrep)
            score_truth = demo_scores.write(conn, seed, live_now, furnaces)
        auto = asyncio.run(demo_scores.automatic(url, live_now, score_truth["enterprises"]))
        score_truth["automatic"] = {"deductions": len(auto.deductions), "warnings": auto.warnings}
        lrep.enterprises = sorted(
            set(lrep.enterprises) | set(score_truth["enterprises"]) | set(auto.deducted)
        )
        asyncio.run(live.evaluate_recent(url, *state, config, lrep))
        truth.add_section(report.ground_truth, "live", lrep.truth)
        truth.add_section(report.ground_truth, "scores", score_truth)
        report.counts["readings"] = lrep.readings + lrep.evaluated
        report.counts["alarms_planted"] = lrep.alarms
        report.counts["hidden_dangers"] = lrep.hidden_dangers
        report.counts["inspection_tasks"] = lrep.inspection_tasks
        report.counts["score_events"] = lrep.score_events
        report.live = (
            f"{lrep.alarms} planted alarms ({lrep.red_points} red points), "
            f"{len(lrep.enterprises)} enterprises re-rated"
        )
    with _phase(report, "supervision", progress):
        # Diagnosis dates (a few expired), a direct-red enterprise, major hidden dangers in
        # each closing state (issue 15), then those enterprises re-rated.
        with psycopg.connect(url) as conn:
            # Dates relative to the rating's clock (the wall clock), as the live phase's.
            sup = supervision.plant(conn, seed, scale, (now or live.default_now()).date())
        asyncio.run(_rerate(url, config, sup["enterprises"]))
        truth.add_section(report.ground_truth, "supervision", sup)
        report.counts["enterprise_findings"] = 1
    with _phase(report, "bulletins", progress):
        # The bulletin pages should open on a week of history: the real issuing code over the
        # seeded facts, with penalties, accidents and the regulators' actions.
        issued = asyncio.run(_bulletins(url, seed, now or live.default_now()))
        truth.add_section(report.ground_truth, "bulletins", issued.truth)
        report.counts["bulletins"] = len(issued.bulletins)
        report.counts["bulletin_actions"] = issued.actions
        report.counts["penalties"] = issued.penalties
        report.counts["accidents"] = issued.accidents
    for ev in events:
        report.events[ev["kind"]] = report.events.get(ev["kind"], 0) + 1
    print(report.summary())
    return report


async def _bulletins(url: str, seed: int, now: dt.datetime) -> bulletins.BulletinSeed:
    today = now.astimezone(CST).date()  # the bulletin's day is the local one
    async with await psycopg.AsyncConnection.connect(url) as conn:
        issued = await bulletins.seed_bulletins(
            conn, np.random.default_rng([seed, 19]), today, BulletinRules()
        )
        await conn.commit()
    return issued


async def _detect(url: str, config: RecomputeConfig) -> BatchReport:
    report = await detect_all(url, TankerRules())
    if report.carriers:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            await recompute(conn, config, sorted(report.carriers))
    return report


async def _rerate(url: str, config: RecomputeConfig, ids: list[int]) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await recompute(conn, config, ids)


async def _recompute(url: str, config: RecomputeConfig) -> RecomputeReport:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        return await recompute(conn, config, None)


def _link_carriers(conn: psycopg.Connection) -> None:
    """Make each carrier a supervised transport enterprise, so its tankers' alerts reach that
    enterprise's dynamic colour: the i-th carrier by name takes over the i-th transport
    enterprise by id (deterministic), and its vehicles point at it."""
    conn.execute(
        "WITH c AS (SELECT carrier, row_number() OVER (ORDER BY carrier) AS rn"
        "           FROM (SELECT DISTINCT carrier FROM vehicles) d),"
        " t AS (SELECT id, row_number() OVER (ORDER BY id) AS rn"
        "       FROM enterprises WHERE category = 'transport')"
        " UPDATE enterprises e SET name = c.carrier FROM c JOIN t ON t.rn = c.rn WHERE e.id = t.id"
    )
    conn.execute(
        "UPDATE vehicles v SET enterprise_id = e.id FROM enterprises e"
        " WHERE e.category = 'transport' AND e.name = v.carrier"
    )


def _load_static(
    conn: psycopg.Connection,
    report: SeedReport,
    districts: list[geography.District],
    ents: list[enterprises.Enterprise],
    people: registers.People,
    sources: list[enterprises.HazardSource],
    lines: list[pipelines.Pipeline],
    points: list[monitoring.MonitoringPoint],
    all_zones: list[zones.Zone],
    net: roads.Network,
    fleet: list[tracks.Vehicle],
) -> None:
    c = report.counts
    geoms = loader.wkb_hex([_mp(d.geom) for d in districts])
    c["districts"] = loader.copy_rows(
        conn,
        "districts",
        ("id", "code", "name", "name_en", "geom"),
        (
            (i + 1, d.code, d.name, d.name_en, g)
            for i, (d, g) in enumerate(zip(districts, geoms, strict=True))
        ),
    )

    pts = loader.wkb_hex([Point(e.x, e.y) for e in ents])
    sites = loader.wkb_hex([_mp(box(*e.site)) if e.site else Point(0, 0) for e in ents])
    hz = set(HAZMAT_CATEGORIES)
    c["enterprises"] = loader.copy_rows(
        conn,
        "enterprises",
        (
            "id",
            "credit_code",
            "name",
            "category",
            "is_hazmat",
            "district",
            "park",
            "address",
            "geom",
            "site_geom",
            "licence_expiry",
            "diagnosis_score",
            "contacts",
        ),
        (
            (
                e.id,
                e.credit_code,
                e.name,
                e.category,
                e.category in hz,
                e.district,
                e.park,
                e.address,
                p,
                s if e.site else None,
                e.licence_expiry,
                e.diagnosis_score,
                people.contacts(e.id),
            )
            for e, p, s in zip(ents, pts, sites, strict=True)
        ),
    )
    hs_geoms = loader.wkb_hex([_mp(box(*h.rect)) for h in sources])
    c["hazard_sources"] = loader.copy_rows(
        conn,
        "hazard_sources",
        ("id", "enterprise_id", "code", "unit_name", "unit_kind", "population_500m", "geom"),
        (
            (h.id, h.enterprise_id, h.code, h.unit_name, h.unit_kind, h.population_500m, g)
            for h, g in zip(sources, hs_geoms, strict=True)
        ),
    )
    subs = [(h.id, s) for h in sources for s in h.substances]
    c["hazard_source_substances"] = loader.copy_rows(
        conn,
        "hazard_source_substances",
        ("id", "hazard_source_id", "name", "cas", "q", "critical_q", "beta", "hazard_class"),
        (
            (i + 1, hid, s.name, s.cas, s.q, s.critical_q, s.beta, s.hazard_class)
            for i, (hid, s) in enumerate(subs)
        ),
    )
    pl_geoms = loader.wkb_hex([p.geom for p in lines])
    c["pipelines"] = loader.copy_rows(
        conn,
        "pipelines",
        (
            "id",
            "code",
            "name",
            "substance",
            "cas",
            "diameter_mm",
            "pressure_mpa",
            "operator",
            "district",
            "geom",
        ),
        (
            (
                p.id,
                p.code,
                p.name,
                p.substance,
                p.cas,
                p.diameter_mm,
                p.pressure_mpa,
                p.operator,
                p.district,
                g,
            )
            for p, g in zip(lines, pl_geoms, strict=True)
        ),
    )
    c["pipeline_km"] = round(sum(p.geom.length for p in lines) / 1000)
    mp_geoms = loader.wkb_hex([Point(m.x, m.y) for m in points])
    c["monitoring_points"] = loader.copy_rows(
        conn,
        "monitoring_points",
        (
            "id",
            "code",
            "hazard_source_id",
            "pipeline_id",
            "kind",
            "substance",
            "unit",
            "level1",
            "level2",
            "limit_h",
            "limit_hh",
            "limit_l",
            "limit_ll",
            "sampling_interval_s",
            "geom",
        ),
        (
            (
                m.id,
                m.code,
                m.hazard_source_id,
                m.pipeline_id,
                m.kind,
                m.substance,
                m.unit,
                m.level1,
                m.level2,
                m.limit_h,
                m.limit_hh,
                m.limit_l,
                m.limit_ll,
                m.sampling_interval_s,
                g,
            )
            for m, g in zip(points, mp_geoms, strict=True)
        ),
    )
    z_geoms = loader.wkb_hex([_mp(z.geom) for z in all_zones])
    c["zones"] = loader.copy_rows(
        conn,
        "zones",
        (
            "id",
            "code",
            "name",
            "kind",
            "district",
            "max_dwell_s",
            "active_hours",
            "population",
            "geom",
        ),
        (
            (
                z.id,
                z.code,
                z.name,
                z.kind,
                z.district,
                z.max_dwell_s,
                z.active_hours,
                z.population,
                g,
            )
            for z, g in zip(all_zones, z_geoms, strict=True)
        ),
    )
    road_lines = [
        LineString([(net.node_x[u], net.node_y[u]), (net.node_x[v], net.node_y[v])])
        for u, v in zip(net.edge_u.tolist(), net.edge_v.tolist(), strict=True)
    ]
    r_geoms = loader.wkb_hex(road_lines)
    c["roads"] = loader.copy_rows(
        conn,
        "roads",
        ("id", "name", "road_class", "speed_limit_kmh", "geom"),
        (
            (i + 1, net.edge_name[i], roads.CLASS_NAMES[int(k)], roads.SPEED_LIMIT[int(k)], g)
            for i, (k, g) in enumerate(zip(net.edge_cls.tolist(), r_geoms, strict=True))
        ),
    )
    c["road_km"] = round(float(net.edge_len.sum()) / 1000)
    c["vehicles"] = loader.copy_rows(
        conn,
        "vehicles",
        ("id", "plate", "carrier", "hazmat_class", "un_number", "capacity_t", "district"),
        (
            (v.id, v.plate, v.carrier, v.hazmat_class, v.un_number, v.capacity_t, v.district)
            for v in fleet
        ),
    )


def _load_tracks(
    conn: psycopg.Connection,
    report: SeedReport,
    net: roads.Network,
    lots: list[zones.Zone],
    forbidden: list[zones.Zone],
    fleet: list[tracks.Vehicle],
    day: dt.date,
    seed: int,
    progress: bool,
    hazmat: list[enterprises.Enterprise],
    washing: list[zones.Zone],
    restricted: list[zones.Zone],
    scale: float,
    unlinked: set[int],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], scenarios.ChainPlan]:
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=CST)
    day_start_us = int(midnight.timestamp()) * 1_000_000
    world = tracks.World(net, lots, forbidden, day_start_us, seed, restricted=restricted)
    world.prepare()
    plan = scenarios.make_chain_plan(
        world, fleet, hazmat, washing, scale, day, len(tracks.KINDS), unlinked
    )
    utc_days = {
        midnight.astimezone(dt.UTC).date(),
        (midnight + dt.timedelta(days=1, seconds=-1)).astimezone(dt.UTC).date(),
    }
    ensure_daily_partitions(conn, "positions", utc_days)
    forced = {v.id: k for v, k in zip(fleet, tracks.KINDS, strict=False)}
    now = np.datetime64(dt.datetime.now(dt.UTC).replace(tzinfo=None), "us")
    stream = loader.PositionStream(conn)
    events: list[dict[str, Any]] = []
    noise: list[dict[str, Any]] = []
    rejects: list[tuple[Any, ...]] = []
    bar = tqdm(total=len(fleet), unit="veh", desc="tanker tracks", disable=not progress)
    try:
        for a in range(0, len(fleet), CHUNK_VEHICLES):
            out = _chunk(world, fleet[a : a + CHUNK_VEHICLES], forced, events, noise, plan)
            codes = fix_filters.classify_fixes(
                out.vehicle_id,
                out.ts_us.astype("datetime64[us]"),
                out.lon,
                out.lat,
                now=now,
                speed_kmh=out.speed,
                heading=out.heading,
            )
            good = codes == fix_filters.OK
            stream.put(
                out.vehicle_id[good],
                out.ts_us[good],
                out.lon[good],
                out.lat[good],
                out.speed[good],
                out.heading[good],
            )
            for i in np.flatnonzero(~good).tolist():
                ts = dt.datetime.fromtimestamp(int(out.ts_us[i]) / 1e6, dt.UTC)
                rejects.append(
                    (
                        int(out.vehicle_id[i]),
                        ts,
                        float(out.lon[i]),
                        float(out.lat[i]),
                        float(out.speed[i]),
                        fix_filters.REASONS[int(codes[i])],
                    )
                )
            bar.update(min(CHUNK_VEHICLES, len(fleet) - a))
    finally:
        bar.close()
        stream.close()
    report.counts["positions"] = stream.rows
    report.counts["position_rejects"] = loader.copy_rows(
        conn, "position_rejects", ("vehicle_id", "ts", "lon", "lat", "speed_kmh", "reason"), rejects
    )
    kinds = {e["kind"] for e in events}
    missing = [k for k in tracks.KINDS if k not in kinds]
    if missing:
        raise RuntimeError(f"no planted {missing}: raise the scale")
    for e in events:
        e["start"] = truth.iso(day_start_us, e["start"])
        e["end"] = truth.iso(day_start_us, e["end"])
    for n in noise:
        n["ts"] = truth.iso(day_start_us, n["ts"])
        if "delivered_after_ts" in n:
            n["delivered_after_ts"] = truth.iso(day_start_us, n["delivered_after_ts"])
    plan.finish_truth(day_start_us)
    return events, noise, plan


def _chunk(
    world: tracks.World,
    vehicles: list[tracks.Vehicle],
    forced: dict[int, str],
    events: list[dict[str, Any]],
    noise: list[dict[str, Any]],
    plan: scenarios.ChainPlan,
) -> tracks.ChunkOut:
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("vid", "ts", "lon", "lat", "spd", "hd")}
    for veh in vehicles:
        if veh.id in plan.plans:
            s, ev, protected = plan.simulate(world, veh)
        else:
            kept: list[tracks.Timeline] = []
            s, ev, protected = tracks.simulate(
                world, veh, forced.get(veh.id), veh.id in plan.idle, kept
            )
            plan.fatigue(veh.id, kept[0], s)
            plan.unwaybilled_edges(world, veh.id, kept[0], s)
        plan.restricted(world, veh, s, protected)
        lon, lat = to_lonlat(s.x, s.y)
        lon, lat = np.round(lon, 6), np.round(lat, 6)
        nrng = np.random.default_rng([world.seed, 9001, veh.id])
        order, nz = tracks.add_noise(nrng, veh.id, s, lon, lat, protected, veh.id == 1)
        events += ev
        noise += nz
        cols["vid"].append(np.full(len(order), veh.id, dtype=np.int32))
        cols["ts"].append(world.day_start_us + (s.ts_s[order] * 1e6).astype(np.int64))
        cols["lon"].append(lon[order])
        cols["lat"].append(lat[order])
        cols["spd"].append(np.round(s.speed[order], 1).astype(np.float32))
        cols["hd"].append(s.heading[order].astype(np.int16))
    cat = {k: np.concatenate(v) for k, v in cols.items()}
    return tracks.ChunkOut(
        cat["vid"], cat["ts"], cat["lon"], cat["lat"], cat["spd"], cat["hd"], [], []
    )
