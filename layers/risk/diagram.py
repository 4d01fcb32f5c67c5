"""The enterprise's four-colour risk distribution diagram ("one map one book", 一图一册).

Loads what the diagram shows (site, risk units, hazard sources, monitoring points, contacts) in
one query and renders it without a browser: PNG with matplotlib (the A4 PDF "book" is
layers/risk/book.py, which draws the same map in vectors), a standalone folium HTML
with our vendored Leaflet inlined (folium links CDNs by default; inspectors open these files
offline), and GeoJSON. Drawing happens in a local metric plane (equirectangular around the
site) so the scale bar is true to a few parts per thousand at a site's size.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection

from layers.core.colors import DISPLAY_HEX
from layers.core.errors import FieldError, NotFound

GREY = "#9E9E9E"
LEVELS = (
    ("red", "重大 major"),
    ("orange", "较大 high"),
    ("yellow", "一般 moderate"),
    ("blue", "低 low"),
)
_CJK_FONTS = ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC")


class EnterpriseNotFound(NotFound, LookupError):
    """No enterprise with that id (a 404 naming ``id``)."""

    def __init__(self, enterprise_id: int) -> None:
        message = f"enterprise {enterprise_id} not found"
        super().__init__(message, [FieldError("id", "not found")])
        self.enterprise_id = enterprise_id


@dataclass
class Diagram:
    """Everything one diagram shows, as GeoJSON-like dicts (WGS 84)."""

    enterprise: dict[str, Any]
    point: tuple[float, float]
    site: dict[str, Any] | None
    units: list[dict[str, Any]] = field(default_factory=list)
    hazards: list[dict[str, Any]] = field(default_factory=list)
    monitors: list[dict[str, Any]] = field(default_factory=list)


_SQL = """
SELECT json_build_object(
  'enterprise', json_build_object('id', e.id, 'name', e.name, 'credit_code', e.credit_code,
      'category', e.category, 'district', e.district, 'address', e.address,
      'color', coalesce(e.dynamic_color, e.inherent_color), 'dynamic_color', e.dynamic_color,
      'inherent_color', e.inherent_color, 'reasons', coalesce(e.risk_reasons, '[]'::jsonb),
      'contacts', e.contacts),
  'point', json_build_array(ST_X(e.geom), ST_Y(e.geom)),
  'site', ST_AsGeoJSON(e.site_geom, 7)::json,
  'units', coalesce((SELECT json_agg(json_build_object('type', 'Feature', 'id', u.id,
      'geometry', ST_AsGeoJSON(u.geom, 7)::json,
      'properties', json_build_object('id', u.id, 'name', u.name, 'kind', u.kind,
        'hazard_source_id', u.hazard_source_id, 'method', u.method,
        'likelihood', u.likelihood, 'exposure', u.exposure, 'consequence', u.consequence,
        'severity', u.severity, 'controls', u.controls, 'color', u.color,
        'responsible', u.responsible, 'responsible_phone', u.responsible_phone,
        'assessed_on', u.assessed_on, 'review_due', u.review_due,
        'score', CASE u.method WHEN 'LEC' THEN u.likelihood * u.exposure * u.consequence
                 ELSE u.likelihood * u.severity END)) ORDER BY u.id)
      FROM risk_units u WHERE u.enterprise_id = e.id), '[]'::json),
  'hazards', coalesce((SELECT json_agg(json_build_object('type', 'Feature', 'id', h.id,
      'geometry', ST_AsGeoJSON(h.geom, 7)::json,
      'properties', json_build_object('id', h.id, 'code', h.code, 'name', h.unit_name,
        'grade', h.grade, 'R', round(h.r_value::numeric, 2), 'color', h.color,
        'substances', coalesce((SELECT json_agg(json_build_object('name', s.name, 'cas', s.cas,
            'q', s.q, 'critical_q', s.critical_q) ORDER BY s.id)
          FROM hazard_source_substances s WHERE s.hazard_source_id = h.id), '[]'::json)))
      ORDER BY h.id)
      FROM hazard_sources h WHERE h.enterprise_id = e.id), '[]'::json),
  'monitors', coalesce((SELECT json_agg(json_build_object('type', 'Feature', 'id', m.id,
      'geometry', ST_AsGeoJSON(m.geom, 7)::json,
      'properties', json_build_object('id', m.id, 'code', m.code, 'kind', m.kind,
        'color', m.live_color, 'hazard_source', h.code, 'substance', m.substance,
        'measure_unit', m.unit, 'limit_ll', m.limit_ll, 'limit_l', m.limit_l,
        'limit_h', m.limit_h, 'limit_hh', m.limit_hh, 'level1', m.level1, 'level2', m.level2,
        'offline', m.offline,
        'level', ms.level, 'last_value', ms.last_value, 'last_ts', ms.last_ts)) ORDER BY m.id)
      FROM monitoring_points m JOIN hazard_sources h ON h.id = m.hazard_source_id
      LEFT JOIN monitoring_state ms ON ms.point_id = m.id
      WHERE h.enterprise_id = e.id), '[]'::json))
FROM enterprises e WHERE e.id = %s
"""


async def load_diagram(conn: AsyncConnection[Any], enterprise_id: int) -> Diagram:
    cur = await conn.execute(_SQL, (enterprise_id,))
    row = await cur.fetchone()
    if row is None:
        raise EnterpriseNotFound(enterprise_id)
    d = row[0]
    return Diagram(
        enterprise=d["enterprise"],
        point=(float(d["point"][0]), float(d["point"][1])),
        site=d["site"],
        units=d["units"],
        hazards=d["hazards"],
        monitors=d["monitors"],
    )


def to_geojson(d: Diagram) -> dict[str, Any]:
    """One FeatureCollection; ``properties.layer`` says which part of the diagram a feature is."""
    features: list[dict[str, Any]] = []
    ent = dict(d.enterprise, layer="enterprise")
    geom = d.site or {"type": "Point", "coordinates": list(d.point)}
    features.append({"type": "Feature", "id": f"e{ent['id']}", "geometry": geom, "properties": ent})
    for layer, items in (("risk_unit", d.units), ("hazard_source", d.hazards)):
        for f in items:
            features.append(dict(f, properties=dict(f["properties"], layer=layer)))
    for f in d.monitors:
        features.append(dict(f, properties=dict(f["properties"], layer="monitoring_point")))
    return {"type": "FeatureCollection", "name": d.enterprise["name"], "features": features}


def color_hex(color: str | None) -> str:
    return DISPLAY_HEX.get(color or "", GREY)


# ---- matplotlib ----------------------------------------------------------------------------


class Plane:
    """Local metres around the site: x east, y north (equirectangular; fine at site scale)."""

    def __init__(self, lon0: float, lat0: float) -> None:
        self.lon0, self.lat0 = lon0, lat0
        self.kx = 111_320.0 * math.cos(math.radians(lat0))

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        return ((lon - self.lon0) * self.kx, (lat - self.lat0) * 110_574.0)


def rings(geom: dict[str, Any] | None) -> list[list[list[float]]]:
    if not geom:
        return []
    if geom["type"] == "Polygon":
        return list(geom["coordinates"])
    if geom["type"] == "MultiPolygon":
        return [ring for poly in geom["coordinates"] for ring in poly]
    return []


def _setup_fonts() -> None:
    import matplotlib
    from matplotlib import font_manager

    matplotlib.use("Agg")
    have = {f.name for f in font_manager.fontManager.ttflist}
    cjk = [name for name in _CJK_FONTS if name in have]
    matplotlib.rcParams["font.family"] = ["DejaVu Sans", *cjk]


def _draw_map(ax: Any, d: Diagram) -> None:
    from matplotlib.patches import FancyArrow, Polygon, Rectangle

    plane = Plane(*d.point)
    xs: list[float] = []
    ys: list[float] = []

    def poly(ring: list[list[float]], **kw: Any) -> None:
        pts = [plane.xy(x, y) for x, y in ring]
        xs.extend(p[0] for p in pts)
        ys.extend(p[1] for p in pts)
        ax.add_patch(Polygon(pts, closed=True, **kw))

    for ring in rings(d.site):
        poly(ring, fill=False, edgecolor="#444", linestyle="--", linewidth=1.2)
    for f in d.hazards:
        for ring in rings(f["geometry"]):
            c = color_hex(f["properties"]["color"])
            poly(ring, facecolor="none", edgecolor=c, hatch="///", linewidth=1.5)
    for f in d.units:
        c = color_hex(f["properties"]["color"])
        for ring in rings(f["geometry"]):
            poly(ring, facecolor=c, edgecolor="#222", alpha=0.7, linewidth=1)
        cx, cy = plane.xy(*centroid(rings(f["geometry"])[0]))
        ax.text(cx, cy, f["properties"]["name"], ha="center", va="center", fontsize=7)
    for f in d.monitors:
        x, y = plane.xy(*f["geometry"]["coordinates"][:2])
        xs.append(x)
        ys.append(y)
        ax.plot(
            x,
            y,
            marker="^",
            markersize=6,
            color=color_hex(f["properties"]["color"]),
            markeredgecolor="#000",
            linestyle="none",
        )
    ex, ey = plane.xy(*d.point)
    ax.plot(ex, ey, marker="*", markersize=10, color="#000", linestyle="none")
    xs.append(ex)
    ys.append(ey)
    half = max(max(xs) - min(xs), max(ys) - min(ys), 60.0) / 2 * 1.25
    cx, cy = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
    ax.set_xlim(cx - half, cx + half)
    ax.set_ylim(cy - half, cy + half)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    # Scale bar: a round length near a fifth of the frame, bottom left.
    target = half * 2 / 5
    length = min(
        (m for m in (10, 20, 50, 100, 200, 500, 1000, 2000) if m >= target * 0.6), default=5000
    )
    x0, y0 = cx - half * 0.9, cy - half * 0.9
    ax.add_patch(Rectangle((x0, y0), length, half * 0.02, color="#000"))
    ax.text(x0 + length / 2, y0 + half * 0.04, f"{length} m", ha="center", fontsize=8)
    # North arrow, top right (the plane's y axis is true north).
    nx, ny = cx + half * 0.85, cy + half * 0.65
    ax.add_patch(
        FancyArrow(
            nx,
            ny,
            0,
            half * 0.18,
            width=half * 0.03,
            color="#000",
            length_includes_head=True,
            head_width=half * 0.08,
        )
    )
    ax.text(nx, ny + half * 0.21, "N", ha="center", fontsize=11)


def centroid(ring: list[list[float]]) -> tuple[float, float]:
    pts = ring[:-1] if len(ring) > 1 and ring[0] == ring[-1] else ring
    return (sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts))


def _legend(ax: Any) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = [
        Patch(facecolor=color_hex(c), edgecolor="#222", label=f"{label}") for c, label in LEVELS
    ]
    handles += [
        Patch(facecolor="none", edgecolor="#555", hatch="///", label="重大危险源 hazard source"),
        Line2D([], [], marker="^", color="#777", linestyle="none", label="监测点 monitoring point"),
        Patch(facecolor="none", edgecolor="#444", linestyle="--", label="厂界 site boundary"),
    ]
    ax.legend(handles=handles, loc="upper left", fontsize=7, framealpha=0.9)


def _title(d: Diagram) -> str:
    e = d.enterprise
    return f"{e['name']} 安全风险四色分布图 (colour: {e.get('color') or 'not rated'})"


def render_png(d: Diagram, dpi: int = 120) -> bytes:
    _setup_fonts()
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 8))
    ax = fig.add_subplot(1, 1, 1)
    _draw_map(ax, d)
    _legend(ax)
    ax.set_title(_title(d), fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


# ---- folium --------------------------------------------------------------------------------


#: XML namespace names, not fetched by anyone: the only "URLs" an offline file may contain.
NAMESPACE_URLS = ("http://www.w3.org/",)


def _offline_leaflet(vendor_dir: Path) -> tuple[str, str]:
    """Leaflet JS and CSS with their comment and attribution links removed, so the export holds
    no URL but XML namespaces (the attribution control is off in this map anyway)."""
    js = (vendor_dir / "leaflet" / "leaflet.js").read_text(encoding="utf-8")
    css = (vendor_dir / "leaflet" / "leaflet.css").read_text(encoding="utf-8")
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    return js.replace("https://leafletjs.com", "#"), css


def render_html(d: Diagram, vendor_dir: Path) -> str:
    """A standalone folium map: Leaflet JS/CSS inlined from web/vendor, no tiles, no CDN."""
    import folium

    m = folium.Map(
        location=[d.point[1], d.point[0]], zoom_start=17, tiles=None, attribution_control=False
    )
    # folium's defaults are CDN links (Leaflet, jQuery, Bootstrap, fonts); drop them all and
    # inline the one library a GeoJSON map needs, from the copy we already vendor.
    m.default_js = []
    m.default_css = []
    leaflet_js, leaflet_css = _offline_leaflet(vendor_dir)
    m.get_root().header.add_child(  # type: ignore[attr-defined]
        folium.Element(f"<style>{leaflet_css}</style>\n<script>{leaflet_js}</script>")
    )

    def style(feature: dict[str, Any]) -> dict[str, Any]:
        p = feature["properties"]
        c = color_hex(p.get("color"))
        if p.get("layer") == "enterprise":
            return {"color": "#444", "weight": 2, "dashArray": "6 4", "fill": False}
        if p.get("layer") == "hazard_source":
            return {"color": c, "weight": 2, "fillOpacity": 0.1}
        return {"color": "#222", "weight": 1, "fillColor": c, "fillOpacity": 0.7}

    gj = to_geojson(d)
    # folium keys styles by feature id and sorts them: give every id the same type (str).
    # Names are whatever an enterprise typed: the tooltip writes them into the page as HTML,
    # so they go in escaped (an inspector's offline copy must not run someone's markup).
    polygons = [
        dict(
            f,
            id=f"{f['properties']['layer']}-{f.get('id')}",
            properties={k: _html_text(v) for k, v in f["properties"].items()},
        )
        for f in gj["features"]
        if f["properties"]["layer"] != "monitoring_point"
    ]
    folium.GeoJson(
        {"type": "FeatureCollection", "features": polygons},
        name="risk units",
        style_function=style,
        tooltip=folium.GeoJsonTooltip(fields=["layer", "name", "color"]),
    ).add_to(m)
    for f in d.monitors:
        lon, lat = f["geometry"]["coordinates"][:2]
        folium.CircleMarker(
            [lat, lon],
            radius=5,
            color="#000",
            weight=1,
            fill=True,
            fill_opacity=1,
            fill_color=color_hex(f["properties"]["color"]),
            tooltip=html.escape(f"{f['properties']['code']} {f['properties']['kind']}"),
        ).add_to(m)
    legend = "".join(
        f'<div><span style="display:inline-block;width:12px;height:12px;background:'
        f'{color_hex(c)}"></span> {label}</div>'
        for c, label in LEVELS
    )
    m.get_root().html.add_child(  # type: ignore[attr-defined]
        folium.Element(
            '<div id="legend" style="position:fixed;bottom:20px;left:20px;z-index:1000;'
            f'background:#fff;padding:6px;font:12px sans-serif"><b>{html.escape(_title(d))}</b>'
            f"{legend}</div>"
        )
    )
    bounds = [[lat, lon] for f in polygons for ring in rings(f["geometry"]) for lon, lat in ring]
    if bounds:
        m.fit_bounds(bounds)
    page: str = m.get_root().render()
    return page


def _html_text(value: Any) -> Any:
    return html.escape(value) if isinstance(value, str) else value


def geojson_text(d: Diagram) -> str:
    return json.dumps(to_geojson(d), ensure_ascii=False)
