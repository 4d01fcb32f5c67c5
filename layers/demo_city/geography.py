"""Districts, town centres, chemical parks and the population raster of the demo city.

Districts are the Voronoi cells of their seats (real Ningbo districts, positions nudged into the
box) clipped to the box, so they tile it exactly; they do not scale. The population raster is
what GB 18218's α is computed from, so parks are nearly empty and towns dense, which spreads α
over all its bands.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import shapely
from rasterio.features import rasterize
from rasterio.transform import Affine
from shapely.geometry import MultiPoint, Polygon, box

from layers.demo_city.config import HEIGHT_M, LAT0, LAT1, LON0, LON1, WIDTH_M, to_xy


@dataclass(frozen=True)
class District:
    code: str
    name: str
    name_en: str
    seat_lon: float
    seat_lat: float
    town_peak: float  # people per 0.001° cell at the seat
    geom: Polygon  # metric plane


_SEATS = (
    ("330203", "海曙区", "Haishu District", 121.53, 29.87, 260.0),
    ("330205", "江北区", "Jiangbei District", 121.57, 29.95, 200.0),
    ("330206", "北仑区", "Beilun District", 121.86, 29.90, 150.0),
    ("330211", "镇海区", "Zhenhai District", 121.70, 30.00, 140.0),
    ("330212", "鄞州区", "Yinzhou District", 121.62, 29.78, 220.0),
    ("330213", "奉化区", "Fenghua District", 121.41, 29.66, 120.0),
    ("330281", "余姚市", "Yuyao City", 121.27, 29.96, 130.0),
    ("330282", "慈溪市", "Cixi City", 121.36, 30.14, 140.0),
)


def make_districts() -> list[District]:
    xs, ys = to_xy(np.array([s[3] for s in _SEATS]), np.array([s[4] for s in _SEATS]))
    frame = box(0.0, 0.0, WIDTH_M, HEIGHT_M)
    cells = shapely.voronoi_polygons(MultiPoint(list(zip(xs, ys, strict=True))), extend_to=frame)
    out = []
    for (code, name, name_en, lon, lat, peak), x, y in zip(_SEATS, xs, ys, strict=True):
        seat = shapely.Point(x, y)
        cell = next(c for c in cells.geoms if c.contains(seat))
        clipped = cell.intersection(frame)
        assert isinstance(clipped, Polygon)
        out.append(District(code, name, name_en, lon, lat, peak, clipped))
    return out


def district_of(districts: list[District], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The district code containing each point (object array; the box is tiled, so none miss)."""
    codes = np.full(len(x), districts[0].code, dtype=object)
    best = np.full(len(x), np.inf)
    for d in districts:
        inside = shapely.contains_xy(d.geom, x, y)
        codes[inside] = d.code
        best[inside] = 0
    # Points exactly on a shared edge: nearest seat decides.
    missing = ~np.isfinite(best)
    if missing.any():
        seats = np.array([to_xy(d.seat_lon, d.seat_lat) for d in districts], dtype=float)
        dist = np.hypot(x[missing, None] - seats[None, :, 0], y[missing, None] - seats[None, :, 1])
        codes[missing] = np.array([d.code for d in districts], dtype=object)[dist.argmin(axis=1)]
    return codes


@dataclass(frozen=True)
class Park:
    name: str
    name_en: str
    district: str
    geom: Polygon  # metric plane


_PARKS = (
    (
        "宁波石化经济技术开发区",
        "Ningbo Petrochemical Economic & Technological Development Zone",
        121.655,
        30.015,
        5200,
        3600,
    ),
    ("宁波大榭开发区", "Ningbo Daxie Development Zone", 122.02, 29.935, 3600, 2800),
    ("北仑临港化工园区", "Beilun Port Chemical Industry Park", 121.80, 29.925, 3800, 2600),
    (
        "杭州湾新区精细化工园区",
        "Hangzhou Bay New Zone Fine Chemical Park",
        121.33,
        30.12,
        3400,
        2400,
    ),
)


def make_parks(districts: list[District]) -> list[Park]:
    out = []
    for name, name_en, lon, lat, w, h in _PARKS:
        x, y = to_xy(lon, lat)
        cx, cy = float(x), float(y)
        # A rectangle with two chamfered corners: parks are not perfect boxes.
        c = 0.25
        ring = [
            (cx - w / 2, cy - h / 2),
            (cx + w / 2 - c * w, cy - h / 2),
            (cx + w / 2, cy - h / 2 + c * h),
            (cx + w / 2, cy + h / 2),
            (cx - w / 2 + c * w, cy + h / 2),
            (cx - w / 2, cy + h / 2 - c * h),
        ]
        poly = Polygon(ring)
        code = district_of(districts, np.array([cx]), np.array([cy]))[0]
        out.append(Park(name, name_en, str(code), poly))
    return out


#: Raster cell size in degrees (~100 m × 111 m).
CELL_DEG = 0.001


@dataclass
class Population:
    """People per cell on a 0.001° grid over the box, north-up (row 0 is the northern edge)."""

    people: np.ndarray  # float32, shape (rows, cols)
    cell_x: np.ndarray  # metric x of column centres
    cell_y: np.ndarray  # metric y of row centres

    def sum_near_rect(
        self, rect: tuple[float, float, float, float], site: tuple[float, ...], radius: float
    ) -> int:
        """People in cells whose centre is within ``radius`` of ``rect`` and outside ``site``."""
        x0, y0, x1, y1 = rect
        cols = np.flatnonzero((self.cell_x > x0 - radius) & (self.cell_x < x1 + radius))
        rows = np.flatnonzero((self.cell_y > y0 - radius) & (self.cell_y < y1 + radius))
        if len(cols) == 0 or len(rows) == 0:
            return 0
        cx = self.cell_x[cols][None, :]
        cy = self.cell_y[rows][:, None]
        dx = np.maximum(np.maximum(x0 - cx, 0), cx - x1)
        dy = np.maximum(np.maximum(y0 - cy, 0), cy - y1)
        near = np.hypot(dx, dy) <= radius
        sx0, sy0, sx1, sy1 = site
        in_site = (cx >= sx0) & (cx <= sx1) & (cy >= sy0) & (cy <= sy1)
        block = self.people[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        return round(float(block[near & ~in_site].sum()))


def make_population(
    rng: np.random.Generator,
    districts: list[District],
    residential: list[Polygon],
    empty: list[Polygon],
    sparse: list[Polygon],
) -> Population:
    """Towns as Gaussians over a rural floor, residential zones dense, parks/water nearly empty."""
    cols = round((LON1 - LON0) / CELL_DEG)
    rows = round((LAT1 - LAT0) / CELL_DEG)
    lon_c = LON0 + (np.arange(cols) + 0.5) * CELL_DEG
    lat_c = LAT1 - (np.arange(rows) + 0.5) * CELL_DEG
    cell_x, _ = to_xy(lon_c, np.full(cols, LAT1))
    _, cell_y = to_xy(np.full(rows, LON0), lat_c)
    gx, gy = np.meshgrid(cell_x, cell_y)
    density = 1.0 + rng.gamma(2.0, 1.0, size=gx.shape)
    for d in districts:
        sx, sy = to_xy(d.seat_lon, d.seat_lat)
        r2 = (gx - sx) ** 2 + (gy - sy) ** 2
        density += d.town_peak * np.exp(-r2 / (2 * 2500.0**2))
        density += 0.06 * d.town_peak * np.exp(-r2 / (2 * 9000.0**2))

    def mask(polys: list[Polygon]) -> np.ndarray:
        if not polys:
            return np.zeros(gx.shape, dtype=bool)
        # Rasterise in metric pixel space: x to column, y (north-up) to row.
        geoms = [
            shapely.transform(
                p,
                lambda a: np.column_stack(
                    (
                        (a[:, 0] - cell_x[0]) / (cell_x[1] - cell_x[0]) + 0.5,
                        (cell_y[0] - a[:, 1]) / (cell_y[0] - cell_y[1]) + 0.5,
                    )
                ),
            )
            for p in polys
        ]
        return rasterize(geoms, out_shape=gx.shape, fill=0, default_value=1).astype(bool)

    density[mask(residential)] += 90.0
    sparse_m = mask(sparse)
    # Industrial parks: mostly nobody, a few dormitories — spreads α over its bands.
    dorm = rng.random(gx.shape) < 0.06
    density[sparse_m] = np.where(dorm[sparse_m], rng.gamma(2.0, 2.0, size=gx.shape)[sparse_m], 0)
    density[mask(empty)] = 0.0
    people = np.round(density).astype(np.float32)
    return Population(people, cell_x, cell_y)


def write_population_tif(pop: Population, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    transform = Affine(CELL_DEG, 0.0, LON0, 0.0, -CELL_DEG, LAT1)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=pop.people.shape[1],
        height=pop.people.shape[0],
        count=1,
        dtype="float32",
        crs="EPSG:4326",
        transform=transform,
        compress="deflate",
        nodata=None,
    ) as dst:
        dst.write(pop.people, 1)
        dst.set_band_description(1, "people per cell")
