"""The continuous risk index: Σ R with distance decay plus live alarms — its one home.

The same index colours the raster surface (``GET /api/risk/surface.tif``/``.png``) and scores
hexagons (``layers/risk/hexagons.py``), so a hexagon's score is the surface's value at its centre.

Index at a point p, in GB 18218-2018 R units::

    I(p) = Σ_sources R_s · k(d(p, s))  +  Σ_open alarms W_level · k(d(p, a))
    k(d) = exp(-d / D0_M)  for d ≤ CUTOFF_M, else 0

* D0_M = 500 m: the radius of the people count behind GB 18218's α (docs/domain.md §2.1 and §2.6),
  so a source weighs e⁻¹ ≈ 37 % of its R at that ring; CUTOFF_M = 3 km = 6·D0 (k = 0.25 %).
* An open alarm weighs the lowest R of the grade whose colour it shows (level 1 → yellow →
  R 10, level 2 → orange → R 50; docs/domain.md §2.4 colouring, §2.1 grade bands).
* Distances are local-plane metres from the WGS 84 degree lengths at the emitter's latitude;
  within 3 km the error is far below 1 %.

Because the index is in R units, its colour classes reuse the GB 18218 grade bands
(``CLASS_BREAKS``): directly on a first-grade source the index is ≥ 100 and shows red.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from psycopg import AsyncConnection
from psycopg.rows import tuple_row
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile
from rasterio.transform import Affine, from_bounds

from layers.core.colors import DISPLAY_HEX, RiskColor

Bbox = tuple[float, float, float, float]
FloatArray = NDArray[np.float64]

#: Decay length (m): GB 18218-2018 counts people within 500 m for α.
D0_M: Final = 500.0
#: Beyond this distance (m) a source no longer contributes (k(3 km) = e⁻⁶ ≈ 0.25 %).
CUTOFF_M: Final = 3_000.0
#: Weight of one open alarm by level, in R units (level 1 → yellow band, level 2 → orange).
ALARM_WEIGHT: Final[dict[int, float]] = {1: 10.0, 2: 50.0}
#: Index → colour, worst first; the GB 18218 R grade bands (≥ 100, ≥ 50, ≥ 10) plus a floor.
CLASS_BREAKS: Final[tuple[tuple[float, RiskColor], ...]] = (
    (100.0, "red"),
    (50.0, "orange"),
    (10.0, "yellow"),
    (1.0, "blue"),
)
#: Below the lowest break the quick look is transparent ("~0": less than 1 % of a grade-1 R).

#: Pairs evaluated at once when scoring scattered points (bounds memory to ≈ 32 MB).
_PAIR_CHUNK: Final = 4_000_000


def metres_per_degree(lat: float | FloatArray) -> tuple[Any, Any]:
    """(m per ° lon, m per ° lat) on WGS 84 at ``lat`` (the standard series expansion)."""
    phi = np.radians(lat)
    per_lon = 111_412.84 * np.cos(phi) - 93.5 * np.cos(3 * phi)
    per_lat = 111_132.92 - 559.82 * np.cos(2 * phi) + 1.175 * np.cos(4 * phi)
    return per_lon, per_lat


def kernel(d_m: FloatArray) -> FloatArray:
    """k(d): exponential decay with length D0_M, zero beyond CUTOFF_M."""
    out: FloatArray = np.where(d_m <= CUTOFF_M, np.exp(-d_m / D0_M), 0.0)
    return out


@dataclass(frozen=True)
class Emitters:
    """Everything that adds to the index: hazard sources (weight R) and open alarms."""

    lon: FloatArray
    lat: FloatArray
    weight: FloatArray

    def __len__(self) -> int:
        return int(self.lon.size)


def expand_bbox(bbox: Bbox, metres: float) -> Bbox:
    """The bbox grown by ``metres`` on every side (of the query constant, not of any column)."""
    minx, miny, maxx, maxy = bbox
    edge_lat = max(abs(miny), abs(maxy))
    per_lon, per_lat = metres_per_degree(min(edge_lat, 89.0))
    dx, dy = metres / float(per_lon), metres / float(per_lat)
    return (
        max(minx - dx, -180.0),
        max(miny - dy, -90.0),
        min(maxx + dx, 180.0),
        min(maxy + dy, 90.0),
    )


_EMITTERS_SQL = """
SELECT ST_X(p), ST_Y(p), w FROM (
    SELECT ST_PointOnSurface(geom) AS p, r_value AS w
    FROM hazard_sources
    WHERE r_value > 0 AND retired_at IS NULL
      AND (%(all)s OR geom && ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326))
    UNION ALL
    SELECT mp.geom, CASE a.level WHEN 2 THEN %(w2)s ELSE %(w1)s END
    FROM alarms a JOIN monitoring_points mp ON mp.id = a.point_id
    WHERE a.cleared_at IS NULL AND mp.retired_at IS NULL
      AND (%(all)s OR mp.geom && ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326))
) e
"""


async def load_emitters(conn: AsyncConnection[Any], bbox: Bbox | None) -> Emitters:
    """Sources and open alarms that can reach ``bbox`` (all of them when ``bbox`` is None).

    The envelope is the bbox expanded by the cut-off, so the GiST indexes on the geometry
    columns are used as they stand.
    """
    box = expand_bbox(bbox, CUTOFF_M) if bbox is not None else (0.0, 0.0, 0.0, 0.0)
    params = {
        "all": bbox is None,
        "x0": box[0],
        "y0": box[1],
        "x1": box[2],
        "y1": box[3],
        "w1": ALARM_WEIGHT[1],
        "w2": ALARM_WEIGHT[2],
    }
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_EMITTERS_SQL, params)
    rows = await cur.fetchall()
    data = np.array(rows, dtype=np.float64).reshape(-1, 3)
    return Emitters(lon=data[:, 0].copy(), lat=data[:, 1].copy(), weight=data[:, 2].copy())


def index_at_points(lon: FloatArray, lat: FloatArray, emitters: Emitters) -> FloatArray:
    """I(p) at scattered points (hexagon centres), in chunks of bounded memory."""
    out = np.zeros(lon.size, dtype=np.float64)
    if lon.size == 0 or len(emitters) == 0:
        return out
    per_lon, per_lat = metres_per_degree(emitters.lat)
    step = max(1, _PAIR_CHUNK // len(emitters))
    for start in range(0, lon.size, step):
        sl = slice(start, start + step)
        dx = (lon[sl, None] - emitters.lon[None, :]) * per_lon[None, :]
        dy = (lat[sl, None] - emitters.lat[None, :]) * per_lat[None, :]
        out[sl] = kernel(np.hypot(dx, dy)) @ emitters.weight
    return out


@dataclass(frozen=True)
class Grid:
    """A north-up raster exactly covering ``bbox``: ``values[row, col]``, row 0 at the top."""

    bbox: Bbox
    values: NDArray[np.float32]

    @property
    def transform(self) -> Affine:
        height, width = self.values.shape
        return from_bounds(*self.bbox, width=width, height=height)


def grid_height(bbox: Bbox, width: int) -> int:
    """Rows for ``width`` columns keeping the bbox's aspect ratio in degrees (EPSG:4326)."""
    minx, miny, maxx, maxy = bbox
    return max(1, round(width * (maxy - miny) / (maxx - minx)))


def index_on_grid(bbox: Bbox, width: int, height: int, emitters: Emitters) -> Grid:
    """I at every pixel centre, each emitter added only over its cut-off window."""
    minx, miny, maxx, maxy = bbox
    xs = minx + (np.arange(width) + 0.5) * (maxx - minx) / width
    ys_up = miny + (np.arange(height) + 0.5) * (maxy - miny) / height  # ascending, for search
    acc = np.zeros((height, width), dtype=np.float64)
    for lon0, lat0, w in zip(emitters.lon, emitters.lat, emitters.weight, strict=True):
        per_lon, per_lat = metres_per_degree(float(lat0))
        rx, ry = CUTOFF_M / float(per_lon), CUTOFF_M / float(per_lat)
        c0, c1 = np.searchsorted(xs, [lon0 - rx, lon0 + rx])
        r0, r1 = np.searchsorted(ys_up, [lat0 - ry, lat0 + ry])
        if c0 >= c1 or r0 >= r1:
            continue
        dx = (xs[c0:c1] - lon0) * per_lon
        dy = (ys_up[r0:r1] - lat0) * per_lat
        acc[r0:r1, c0:c1] += w * kernel(np.hypot(dy[:, None], dx[None, :]))
    return Grid(bbox=bbox, values=acc[::-1].astype(np.float32))


async def risk_surface(conn: AsyncConnection[Any], bbox: Bbox, width: int, height: int) -> Grid:
    """The index over ``bbox`` at ``width`` × ``height`` pixels."""
    emitters = await load_emitters(conn, bbox)
    return index_on_grid(bbox, width, height, emitters)


def classify(values: NDArray[np.float32]) -> NDArray[np.uint8]:
    """0 = transparent, then 1 + the position of the colour in ``CLASS_BREAKS``."""
    out = np.zeros(values.shape, dtype=np.uint8)
    for i, (low, _) in reversed(list(enumerate(CLASS_BREAKS))):
        out[values >= low] = i + 1
    return out


def _rgba(hex_color: str) -> tuple[int, int, int, int]:
    h = hex_color.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), 255


def geotiff_bytes(grid: Grid) -> bytes:
    """One float32 band, EPSG:4326, bounds exactly the requested bbox."""
    height, width = grid.values.shape
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": "float32",
        "crs": "EPSG:4326",
        "transform": grid.transform,
        "compress": "deflate",
    }
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(grid.values, 1)
            dst.set_band_description(1, "risk index (GB 18218 R units, distance-decayed)")
            dst.update_tags(
                formula=f"sum R*exp(-d/{D0_M:g} m), d <= {CUTOFF_M:g} m; alarms {ALARM_WEIGHT}"
            )
        return bytes(mem.read())


def png_bytes(grid: Grid) -> bytes:
    """RGBA quick look in the four display colours, transparent below the lowest break."""
    classes = classify(grid.values)
    palette = np.zeros((len(CLASS_BREAKS) + 1, 4), dtype=np.uint8)
    for i, (_, color) in enumerate(CLASS_BREAKS):
        palette[i + 1] = _rgba(DISPLAY_HEX[color])
    rgba = np.moveaxis(palette[classes], -1, 0)
    height, width = classes.shape
    with MemoryFile() as mem, warnings.catch_warnings():
        # PNG carries no georeferencing; the quick look is a picture of the requested bbox.
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with mem.open(driver="PNG", width=width, height=height, count=4, dtype="uint8") as dst:
            dst.write(rgba)
        return bytes(mem.read())
