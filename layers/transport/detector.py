"""The per-vehicle detector: stops (moving ↔ stopped) and speeding / off-corridor episodes.

Each vehicle is a small state machine over its fixes in event-time order (docs/domain.md §3):

* moving: the first fix of a cluster is its anchor; a fix within ``stop_radius_m`` of the
  anchor joins the cluster, a farther one starts a new cluster. Once a cluster spans
  ``stop_min_s`` the vehicle is stopped, the stop starting at the anchor's time.
* stopped: a fix within the radius of the stop's *centroid* (running mean of its fixes) extends
  the stop; the first fix at or beyond it closes the stop and anchors a new cluster.
* episodes: consecutive fixes whose value exceeds their limit (speed over the road's limit,
  distance beyond the corridor) form one episode; it counts once it lasts ``min_s``.

The machine is sequential per vehicle, so it runs like ``fix_filters``: step k handles the k-th
fix of every vehicle at once (numpy across vehicles), a day of 30 s fixes being 2,880 steps
whatever the fleet. State lives in ``DetectorState`` arrays, which ``layers/transport/state.py``
loads from and saves to ``vehicle_state``, so a batch continues exactly where the last ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
from numpy.typing import NDArray

from layers.transport.config import TankerRules
from layers.transport.fix_filters import haversine_m

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
B = NDArray[np.bool_]
#: Episode kinds and the alert rule each one raises.
EPISODE_RULES = {"over": "overspeed", "dev": "corridor_deviation"}


def _f(n: int) -> F64:
    return np.full(n, np.nan)


def _i(n: int) -> I64:
    return np.zeros(n, dtype=np.int64)


@dataclass
class EpisodeState:
    """One open episode per vehicle: first and last fix over the limit, peak, its location."""

    active: B
    start: I64
    last: I64
    peak: F64
    limit: F64
    lon: F64
    lat: F64

    @classmethod
    def empty(cls, n: int) -> EpisodeState:
        return cls(np.zeros(n, bool), _i(n), _i(n), _f(n), _f(n), _f(n), _f(n))


@dataclass
class DetectorState:
    """Per vehicle (index = position in ``vehicle_id``); times are µs since the Unix epoch."""

    vehicle_id: I64
    has_anchor: B
    stopped: B
    since: I64  # when the current state (moving / stopped) began; 0 = unknown
    anchor_t: I64
    anchor_lon: F64
    anchor_lat: F64
    n: I64
    sum_lon: F64
    sum_lat: F64
    last_t: I64  # last fix of the cluster or stop
    episodes: dict[str, EpisodeState] = field(default_factory=dict)

    @classmethod
    def empty(cls, vehicle_id: I64) -> DetectorState:
        n = len(vehicle_id)
        z = np.zeros(n, bool)
        return cls(
            np.asarray(vehicle_id, np.int64),
            z,
            z.copy(),
            _i(n),
            _i(n),
            _f(n),
            _f(n),
            _i(n),
            np.zeros(n),
            np.zeros(n),
            _i(n),
            {k: EpisodeState.empty(n) for k in EPISODE_RULES},
        )

    def take(self, rows: I64) -> DetectorState:
        """The state of the vehicles at ``rows`` (copies)."""
        plain = {f.name: getattr(self, f.name)[rows] for f in fields(self) if f.name != "episodes"}
        eps = {
            k: EpisodeState(*(getattr(e, f.name)[rows] for f in fields(EpisodeState)))
            for k, e in self.episodes.items()
        }
        return DetectorState(**plain, episodes=eps)


@dataclass
class Stops:
    """Stops found (closed) or still going on (``open``); centroid in lon/lat."""

    vehicle_id: list[I64] = field(default_factory=list)
    start: list[I64] = field(default_factory=list)
    end: list[I64] = field(default_factory=list)
    n: list[I64] = field(default_factory=list)
    lon: list[F64] = field(default_factory=list)
    lat: list[F64] = field(default_factory=list)
    open: list[B] = field(default_factory=list)

    def add(
        self, vid: I64, start: I64, end: I64, n: I64, lon: F64, lat: F64, is_open: bool
    ) -> None:
        for name, v in zip(
            ("vehicle_id", "start", "end", "n", "lon", "lat"),
            (vid, start, end, n, lon, lat),
            strict=True,
        ):
            getattr(self, name).append(np.asarray(v).copy())
        self.open.append(np.full(len(vid), is_open))

    def arrays(self) -> dict[str, np.ndarray]:
        names = ("vehicle_id", "start", "end", "n", "lon", "lat", "open")
        if not self.vehicle_id:
            return {k: np.zeros(0, bool if k == "open" else np.float64) for k in names}
        return {k: np.concatenate(getattr(self, k)) for k in names}


@dataclass
class Episodes:
    """Episodes that reached the minimum duration, per kind (``over``, ``dev``)."""

    rows: dict[str, Stops] = field(default_factory=lambda: {k: Stops() for k in EPISODE_RULES})
    peak: dict[str, list[F64]] = field(default_factory=lambda: {k: [] for k in EPISODE_RULES})
    limit: dict[str, list[F64]] = field(default_factory=lambda: {k: [] for k in EPISODE_RULES})


@dataclass
class Fixes:
    """Fixes sorted by (vehicle, ts); ``values``/``limits`` per episode kind (NaN = no limit)."""

    vehicle_id: I64
    t: I64
    lon: F64
    lat: F64
    values: dict[str, F64]
    limits: dict[str, F64]


def run(fixes: Fixes, state: DetectorState, rules: TankerRules) -> tuple[Stops, Episodes]:
    """Advance ``state`` (in place) over ``fixes``; every vehicle of ``fixes`` must be in
    ``state``. Returns the stops closed during the run plus those open at its end, and the
    episodes likewise."""
    stops, episodes = Stops(), Episodes()
    if len(fixes.t):
        slot_of = {int(v): i for i, v in enumerate(state.vehicle_id.tolist())}
        v = fixes.vehicle_id
        starts = np.flatnonzero(np.concatenate(([True], v[1:] != v[:-1])))
        sizes = np.diff(np.append(starts, len(v)))
        slots = np.array([slot_of[int(x)] for x in v[starts].tolist()], dtype=np.int64)
        by_size = np.argsort(-sizes, kind="stable")
        sorted_sizes = sizes[by_size]
        for k in range(int(sorted_sizes[0])):
            m = int(np.searchsorted(-sorted_sizes, -k, side="left"))  # groups with size > k
            grp = by_size[:m]
            _step(fixes, starts[grp] + k, slots[grp], state, rules, stops, episodes)
    _emit_open(state, rules, stops, episodes)
    return stops, episodes


def _step(
    fx: Fixes, idx: I64, g: I64, s: DetectorState, rules: TankerRules, stops: Stops, eps: Episodes
) -> None:
    t, x, y = fx.t[idx], fx.lon[idx], fx.lat[idx]
    stopped, n = s.stopped[g], s.n[g]
    ref_x = np.where(stopped, s.sum_lon[g] / np.maximum(n, 1), s.anchor_lon[g])
    ref_y = np.where(stopped, s.sum_lat[g] / np.maximum(n, 1), s.anchor_lat[g])
    d = haversine_m(ref_x, ref_y, x, y)
    # "stay within 200 m" while gathering; "≥ 200 m from the stop point" to leave.
    inside = s.has_anchor[g] & np.where(stopped, d < rules.stop_radius_m, d <= rules.stop_radius_m)
    closing = stopped & ~inside
    if closing.any():
        c = g[closing]
        stops.add(
            s.vehicle_id[c],
            s.anchor_t[c],
            s.last_t[c],
            s.n[c],
            s.sum_lon[c] / s.n[c],
            s.sum_lat[c] / s.n[c],
            False,
        )
        s.since[c] = t[closing]
    r, e = g[~inside], g[inside]
    s.has_anchor[r], s.stopped[r] = True, False
    s.anchor_t[r], s.anchor_lon[r], s.anchor_lat[r] = t[~inside], x[~inside], y[~inside]
    s.n[r], s.sum_lon[r], s.sum_lat[r], s.last_t[r] = 1, x[~inside], y[~inside], t[~inside]
    s.n[e] += 1
    s.sum_lon[e] += x[inside]
    s.sum_lat[e] += y[inside]
    s.last_t[e] = t[inside]
    newly = inside & ~stopped & (t - s.anchor_t[g] >= int(rules.stop_min_s * 1e6))
    if newly.any():
        s.stopped[g[newly]] = True
        s.since[g[newly]] = s.anchor_t[g[newly]]
    for kind, ep in s.episodes.items():
        _episode_step(kind, ep, fx, idx, g, t, x, y, s, rules, eps)


def _min_us(kind: str, rules: TankerRules) -> int:
    return int((rules.overspeed_min_s if kind == "over" else rules.corridor_min_s) * 1e6)


def _episode_step(
    kind: str,
    ep: EpisodeState,
    fx: Fixes,
    idx: I64,
    g: I64,
    t: I64,
    x: F64,
    y: F64,
    s: DetectorState,
    rules: TankerRules,
    eps: Episodes,
) -> None:
    value, limit = fx.values[kind][idx], fx.limits[kind][idx]
    over = value > limit  # NaN limit → False
    active = ep.active[g]
    ending = active & ~over
    if ending.any():
        c = g[ending]
        long = ep.last[c] - ep.start[c] >= _min_us(kind, rules)
        _emit_episode(kind, ep, c[long], s, eps, False)
        ep.active[c] = False
    begin = over & ~active
    b = g[begin]
    ep.active[b], ep.start[b], ep.last[b] = True, t[begin], t[begin]
    ep.peak[b], ep.limit[b], ep.lon[b], ep.lat[b] = value[begin], limit[begin], x[begin], y[begin]
    cont = over & active
    c = g[cont]
    ep.last[c] = t[cont]
    higher = value[cont] > ep.peak[c]
    ep.peak[c[higher]] = value[cont][higher]
    ep.lon[c[higher]], ep.lat[c[higher]] = x[cont][higher], y[cont][higher]
    ep.limit[c] = np.fmin(ep.limit[c], limit[cont])


def _emit_episode(
    kind: str, ep: EpisodeState, c: I64, s: DetectorState, eps: Episodes, is_open: bool
) -> None:
    if len(c) == 0:
        return
    n = np.ones(len(c), dtype=np.int64)
    eps.rows[kind].add(s.vehicle_id[c], ep.start[c], ep.last[c], n, ep.lon[c], ep.lat[c], is_open)
    eps.peak[kind].append(ep.peak[c].copy())
    eps.limit[kind].append(ep.limit[c].copy())


def _emit_open(s: DetectorState, rules: TankerRules, stops: Stops, eps: Episodes) -> None:
    c = np.flatnonzero(s.stopped)
    if len(c):
        stops.add(
            s.vehicle_id[c],
            s.anchor_t[c],
            s.last_t[c],
            s.n[c],
            s.sum_lon[c] / s.n[c],
            s.sum_lat[c] / s.n[c],
            True,
        )
    for kind, ep in s.episodes.items():
        c = np.flatnonzero(ep.active & (ep.last - ep.start >= _min_us(kind, rules)))
        _emit_episode(kind, ep, c, s, eps, True)
