"""``georisk import``: load a GeoPackage, GeoJSON, Shapefile, CSV or JSON into a collection.

Every row goes through the same validation as ``POST`` (``layers.imports.payload``) and the same
insert path (``layers.collections.write``: COPY into a staging table, set-based checks, one
``INSERT … SELECT`` in one transaction). Bad rows are reported with their 1-based number — row 1
is the first feature, or the first line after a CSV's header — and, by default, one bad row
rejects the whole file so a half-loaded layer never reaches the map.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

import pandas as pd
import shapely
from psycopg import AsyncConnection
from pyproj import CRS
from pyproj.exceptions import CRSError
from pyproj.transformer import Transformer
from tqdm import tqdm

from layers.catalog import CATALOG, Catalog, Collection
from layers.catalog.props import LayerProps
from layers.collections import store_records
from layers.core.crs import CRSRejected, resolve_crs, transformer_from
from layers.core.features import FeaturesRejected, Problem, Record
from layers.imports.payload import property_names, validate_item
from layers.risk.recompute import RecomputeConfig, refresh_after_create

#: Column pairs recognised as CSV point coordinates, in order of preference.
LONLAT_COLUMNS: Final = (("lon", "lat"), ("lng", "lat"), ("longitude", "latitude"), ("x", "y"))
#: CSV columns that may carry any geometry as WKT (lines and polygons have no lon/lat).
WKT_COLUMNS: Final = ("wkt", "geometry", "geom")


@dataclass(frozen=True)
class RowError:
    row: int  # 1-based; 0 means the file as a whole (no CRS, no columns …)
    field: str
    reason: str


class ImportRejected(Exception):
    """The file was not loaded (nothing stored); ``errors`` lists every bad row."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        first = errors[0] if errors else RowError(0, "file", "rejected")
        super().__init__(f"row {first.row}: {first.field}: {first.reason}")


@dataclass
class ImportReport:
    layer: str
    path: Path
    rows: int
    inserted: int
    source_crs: str
    ids: list[int] = field(default_factory=list)
    rejected: list[RowError] = field(default_factory=list)  # partial mode: rows set aside
    ignored_columns: tuple[str, ...] = ()
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [
            f"{self.path.name}: imported {self.inserted} of {self.rows} rows into {self.layer}"
            f" (from {self.source_crs}) in {self.seconds:.1f} s"
        ]
        if self.ignored_columns:
            lines.append(f"  ignored columns: {', '.join(self.ignored_columns)}")
        if self.rejected:
            lines.append(f"  {len(self.rejected)} problems, those rows were not loaded:")
            lines.extend(f"  row {e.row}: {e.field}: {e.reason}" for e in self.rejected[:200])
        return "\n".join(lines)


@dataclass
class _Source:
    """What a file yields: per row the properties and a geometry, plus read-time problems."""

    props: list[dict[str, Any]]
    geometries: list[Any]
    transformer: Transformer | None
    crs_label: str
    columns: list[str]
    problems: list[Problem] = field(default_factory=list)


def _plain(value: Any) -> Any:
    """numpy / pandas scalars → Python; NaN, NaT and NA → None; timestamps → dates."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def _file_error(fld: str, reason: str) -> ImportRejected:
    return ImportRejected([RowError(0, fld, reason)])


def _crs(declared: str | None) -> Transformer | None:
    try:
        return resolve_crs(declared)
    except CRSRejected as exc:
        raise _file_error("crs", str(exc)) from None


def _read_csv(path: Path, model: type[LayerProps], crs: str | None) -> _Source:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    frame.columns = [str(c).strip() for c in frame.columns]
    lower = {c.lower(): c for c in frame.columns}
    pair = next(
        ((lower[x], lower[y]) for x, y in LONLAT_COLUMNS if x in lower and y in lower), None
    )
    wkt = next((lower[w] for w in WKT_COLUMNS if w in lower), None)
    needs_geometry = model.geometry is not None
    if needs_geometry and pair is None and wkt is None:
        raise _file_error(
            "lon/lat", "no coordinate columns (lon/lat, lng/lat, longitude/latitude, x/y or wkt)"
        )
    geometry_columns = {c for c in (*(pair or ()), wkt) if c is not None}
    columns = [c for c in frame.columns if c not in geometry_columns]
    source = _Source([], [], _crs(crs or "EPSG:4326"), crs or "EPSG:4326", columns)
    for index, raw in enumerate(frame.to_dict("records")):
        row = {str(k): v for k, v in raw.items()}
        source.props.append({k: v for k, v in row.items() if k not in geometry_columns})
        source.geometries.append(_csv_geometry(row, pair, wkt, index, source.problems))
    return source


def _csv_geometry(
    row: Mapping[str, Any],
    pair: tuple[str, str] | None,
    wkt: str | None,
    index: int,
    problems: list[Problem],
) -> Any:
    if wkt is not None and str(row[wkt]).strip():
        try:
            return shapely.from_wkt(row[wkt])
        except shapely.errors.GEOSException:
            problems.append(Problem(index, wkt, f"{row[wkt]!r} is not WKT"))
            return None
    if pair is None:
        return None
    coords = []
    for column in pair:
        text = str(row[column]).strip()
        if not text:
            problems.append(Problem(index, column, "required"))
            return None
        try:
            coords.append(float(text))
        except ValueError:
            problems.append(Problem(index, column, f"{text!r} is not a number"))
            return None
    return {"type": "Point", "coordinates": coords}


def _read_vector(path: Path, crs: str | None) -> _Source:
    import geopandas as gpd  # heavy; only imports that read vector files need it

    frame = gpd.read_file(path, engine="pyogrio")
    if frame.crs is None:
        transformer, label = _crs(crs or "EPSG:4326"), crs or "EPSG:4326 (assumed)"
    else:
        if crs is not None:
            try:
                declared = CRS.from_user_input(crs)
            except CRSError:
                raise _file_error("crs", f"unknown CRS {crs!r}") from None
            if not declared.equals(frame.crs, ignore_axis_order=True):
                raise _file_error("crs", f"the file declares {frame.crs.to_string()}, not {crs}")
        transformer, label = transformer_from(frame.crs), frame.crs.to_string()
    geometry_name = frame.geometry.name
    columns = [str(c) for c in frame.columns if c != geometry_name]
    props = [
        {str(k): _plain(v) for k, v in row.items()}
        for row in frame.drop(columns=geometry_name).to_dict("records")
    ]
    return _Source(props, list(frame.geometry), transformer, label, columns)


def _read_json(path: Path, crs: str | None) -> _Source:
    """A ``.json`` file: an array of row objects (a register without geometry, or with a
    ``geometry`` member holding GeoJSON or WKT), or a GeoJSON FeatureCollection. Read as plain
    JSON, so times keep their time zone (a vector reader would turn them into dates)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _file_error("file", f"not valid JSON ({exc})") from None
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        features = doc.get("features")
        if not isinstance(features, list):
            raise _file_error("features", "must be an array of Features")
        rows = [
            {**(f.get("properties") or {}), "geometry": f.get("geometry")}
            if isinstance(f, dict)
            else f
            for f in features
        ]
    elif isinstance(doc, list):
        rows = doc
    else:
        raise _file_error("file", "expected an array of objects or a FeatureCollection")
    source = _Source([], [], _crs(crs or "EPSG:4326"), crs or "EPSG:4326", [])
    columns: dict[str, None] = {}
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            source.problems.append(Problem(index, "row", "expected a JSON object"))
            source.props.append({})
            source.geometries.append(None)
            continue
        geometry = row.get("geometry")
        if isinstance(geometry, str) and geometry.strip():
            try:
                geometry = shapely.from_wkt(geometry)
            except shapely.errors.GEOSException:
                source.problems.append(Problem(index, "geometry", "not WKT"))
                geometry = None
        props = {str(k): v for k, v in row.items() if k != "geometry"}
        columns.update(dict.fromkeys(props))
        source.props.append(props)
        source.geometries.append(geometry)
    source.columns = list(columns)
    return source


def read_source(path: Path, model: type[LayerProps], crs: str | None = None) -> _Source:
    if path.suffix.lower() in (".csv", ".txt"):
        return _read_csv(path, model, crs)
    if path.suffix.lower() == ".json":
        return _read_json(path, crs)
    return _read_vector(path, crs)


def _untruncate(columns: Sequence[str], accepted: frozenset[str]) -> dict[str, str]:
    """Shapefiles cut field names to 10 characters (``credit_cod``); map such a name back
    when exactly one property starts with it, so a round trip through .shp still loads."""
    out = {}
    for column in columns:
        if len(column) == 10 and column not in accepted:
            matches = [name for name in accepted if name.startswith(column)]
            if len(matches) == 1:
                out[column] = matches[0]
    return out


def _validate(
    coll: Collection, model: type[LayerProps], source: _Source, progress: bool
) -> tuple[list[Record], list[Problem], tuple[str, ...]]:
    accepted = property_names(model)
    renamed = _untruncate(source.columns, accepted)
    ignored = tuple(c for c in source.columns if renamed.get(c, c) not in accepted)
    bad_rows = {p.index for p in source.problems}
    records: list[Record] = []
    problems = list(source.problems)
    rows = enumerate(zip(source.props, source.geometries, strict=True))
    iterator = (
        tqdm(rows, total=len(source.props), desc="validating", unit="row") if progress else rows
    )
    for index, (props, geometry) in iterator:
        kept = {renamed.get(k, k): v for k, v in props.items() if renamed.get(k, k) in accepted}
        record, bad = validate_item(model, coll.name, kept, geometry, index, source.transformer)
        problems.extend(p for p in bad if not (index in bad_rows and p.field == "geometry"))
        if record is not None and index not in bad_rows:
            records.append(record)
    return records, problems, ignored


def _row_errors(problems: Sequence[Problem]) -> list[RowError]:
    return [RowError(0 if p.index is None else p.index + 1, p.field, p.reason) for p in problems]


async def _store(
    url: str,
    coll: Collection,
    records: list[Record],
    problems: list[Problem],
    partial: bool,
    progress: bool,
    config: RecomputeConfig,
) -> tuple[list[int], list[Problem]]:
    async with await AsyncConnection.connect(url) as conn:
        result = await store_records(
            conn, coll, records, problems, partial=partial, progress=progress
        )
        await refresh_after_create(conn, coll.layer, result.ids, config)
    return result.ids, result.set_aside


def import_file(
    url: str,
    layer: str,
    path: Path | str,
    *,
    all_or_nothing: bool = True,
    progress: bool = True,
    crs: str | None = None,
    config: RecomputeConfig | None = None,
    catalog: Catalog = CATALOG,
) -> ImportReport:
    """Validate and load ``path`` into ``layer``; raise ``ImportRejected`` when nothing was stored.

    ``crs`` declares the coordinates' CRS for files that carry none (CSV, a Shapefile without
    .prj); it defaults to WGS 84. Consumer map offsets (GCJ-02, BD-09) are refused.
    """
    started = time.monotonic()
    coll = catalog.collection(layer)
    if coll is None or coll.model is None:
        writable = [c.name for c in catalog.collections.values() if c.writable]
        raise _file_error("layer", f"unknown layer {layer!r}; use {', '.join(writable)}")
    model = coll.model
    layer = coll.name
    path = Path(path)
    source = read_source(path, model, crs)
    if not source.props:
        raise _file_error("file", "no rows to import")
    records, problems, ignored = _validate(coll, model, source, progress)
    try:
        # Even when rows already failed, the good ones go through the database checks too, so
        # one run reports every bad row (store_records rolls back before raising).
        ids, set_aside = asyncio.run(
            _store(
                url,
                coll,
                records,
                problems,
                not all_or_nothing,
                progress,
                config or RecomputeConfig(),
            )
        )
    except FeaturesRejected as exc:
        raise ImportRejected(_row_errors(exc.problems)) from None
    return ImportReport(
        layer=layer,
        path=path,
        rows=len(source.props),
        inserted=len(ids),
        source_crs=source.crs_label,
        ids=ids,
        rejected=_row_errors(set_aside),
        ignored_columns=ignored,
        seconds=time.monotonic() - started,
    )
