// Shared helpers for the map and the diagram page: the four colours, escaping, JSON fetch,
// and a lazy look at /openapi.json so optional endpoints are only called when they exist
// (a 404 would show up as a console error, and the tests forbid those).
(function () {
  "use strict";
  const COLORS = { red: "#E02020", orange: "#FF8C00", yellow: "#FFD700", blue: "#1E6FD9", grey: "#9E9E9E" };
  const LEVELS = [
    ["red", "重大 major"], ["orange", "较大 high"], ["yellow", "一般 moderate"], ["blue", "低 low"],
    ["grey", "未评估/无数据 not assessed / offline"],
  ];
  function escapeHtml(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g,
      (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }
  async function getJson(url, init) {
    const r = await fetch(url, init);
    if (!r.ok) {
      let detail = "";
      try { detail = (await r.json()).detail || ""; } catch (e) { /* not JSON */ }
      throw new Error(`${url}: HTTP ${r.status} ${detail}`);
    }
    return r.json();
  }
  let apiPaths = null;
  async function hasPath(path) {
    if (!apiPaths) apiPaths = getJson("/openapi.json").then((d) => d.paths || {}).catch(() => ({}));
    return Object.prototype.hasOwnProperty.call(await apiPaths, path);
  }
  // A colour's CSS class suffix (app.css .sw-*, .fg-*): the pages' CSP allows no style="…".
  const colorClass = (color) => (Object.prototype.hasOwnProperty.call(COLORS, color) ? color : "grey");
  function swatch(color) {
    return `<span class="sw sw-${colorClass(color)}"></span>`;
  }
  function legendHtml(title) {
    return `<h3>${escapeHtml(title)}</h3>` +
      LEVELS.map(([c, label]) => `<div>${swatch(c)} ${escapeHtml(label)}</div>`).join("");
  }
  // An external raster base (Tianditu, an OSM-derived server) from the page's data-basemap*
  // attributes (geo_api/routes/pages.py, docs/basemap.md); the map and the diagram draw it
  // alike. Returns its layers (the base and an optional overlay), or null when none is set.
  function externalBase(map, options) {
    const d = document.documentElement.dataset;
    if (!d.basemap) return null;
    const opts = Object.assign({ maxZoom: 22, maxNativeZoom: Number(d.basemapMaxZoom || 18),
      attribution: d.basemapAttribution || "" }, options || {});
    if (d.basemapSubdomains) opts.subdomains = d.basemapSubdomains;
    const layers = [L.tileLayer(d.basemap, opts)];
    if (d.basemapOverlay) layers.push(L.tileLayer(d.basemapOverlay, Object.assign({}, opts, { attribution: "" })));
    layers.forEach((l) => l.addTo(map));
    return layers;
  }
  // Leaflet ≥ 1.8 dropped L.DomEvent.fakeStop, which VectorGrid 1.3's canvas click still calls.
  if (window.L && !L.DomEvent.fakeStop) L.DomEvent.fakeStop = function () { return true; };
  // VectorGrid's point symbolizers are CircleMarkers without a latlng; Leaflet 1.9 takes any
  // small CircleMarker for a marker and projects its (missing) latlng on click. Without
  // getLatLng the map uses the mouse position instead.
  if (window.L && L.Canvas && L.Canvas.Tile) {
    const fire = L.Canvas.Tile.prototype._fireEvent;
    L.Canvas.Tile.prototype._fireEvent = function (layers, e, type) {
      (layers || []).forEach((l) => { if (l && l.getLatLng && !l._latlng) l.getLatLng = undefined; });
      return fire.call(this, layers, e, type);
    };
  }
  window.GeoRisk = { COLORS, LEVELS, colorClass, escapeHtml, getJson, hasPath, swatch, legendHtml, externalBase };
})();
