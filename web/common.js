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
  // ---- labels: the one home of what the pages call the vocabularies of layers/core/vocab.py ----
  // [Chinese, English] per alert rule (vocab.ALERT_RULES; tests/test_chain_map.py checks that
  // every rule has one). A rule the server adds later still shows, by its code.
  const RULE_LABELS = {
    illegal_parking: ["违规停车", "illegal parking"],
    forbidden_zone_parking: ["禁区停车", "parking in a forbidden zone"],
    overspeed: ["超速", "overspeed"],
    corridor_deviation: ["偏离路线", "route deviation"],
    terminal_emergency: ["紧急报警", "emergency button"],
    terminal_overspeed: ["终端超速", "terminal overspeed"],
    terminal_fatigue: ["终端疲劳报警", "terminal fatigue"],
    terminal_antenna_cut: ["天线断开", "GNSS antenna cut"],
    terminal_power_cut: ["主电源断电", "main power cut"],
    moving_without_waybill: ["无运单行驶", "moving without a waybill"],
    loading_check_failed: ["装货查验未通过", "loading check failed"],
    no_escort: ["无押运员", "no escort"],
    waybill_corridor_deviation: ["偏离运单路线", "off the waybill's corridor"],
    undeclared_stop: ["未申报停靠", "undeclared stop"],
    wrong_destination: ["非申报目的地", "wrong destination"],
    fatigue_continuous: ["连续驾驶超时", "over 4 h continuous driving"],
    fatigue_daily: ["日累计驾驶超时", "daily driving overtime"],
    restricted_hours: ["限行时段通行", "restricted hours"],
    positioning_gap: ["定位中断", "positioning gap"],
    mixed_loading: ["混装", "mixed loading"],
  };
  // The warning models of the transport chain (vocab.WARNING_MODEL_RULES): a waybill popup
  // links to its vehicle's alerts of these rules.
  const WAYBILL_RULES = ["moving_without_waybill", "loading_check_failed", "no_escort",
    "waybill_corridor_deviation", "undeclared_stop", "wrong_destination", "fatigue_continuous",
    "fatigue_daily", "restricted_hours", "positioning_gap", "mixed_loading"];
  // vocab.DEPARTMENTS, in its order: the alert panel's queue selector.
  const DEPARTMENTS = [
    ["emergency_management", "应急管理", "emergency management"],
    ["transport", "交通运输", "transport"],
    ["traffic_police", "公安交警", "traffic police"],
    ["market_regulation", "市场监管", "market regulation"],
  ];
  const ALERT_STATUSES = { new: ["待确认", "new"], acknowledged: ["已确认", "acknowledged"],
    disposed: ["已处置", "disposed"], false_alarm: ["误报", "false alarm"] };
  const WAYBILL_STATES = { planned: ["计划", "planned"], loading: ["装货中", "loading"],
    in_transit: ["运输中", "in transit"], delivered: ["已送达", "delivered"],
    cancelled: ["已取消", "cancelled"] };
  const label = (table, code) => (table[code] ? `${table[code][0]} ${table[code][1]}` : String(code || ""));
  const ruleLabel = (rule) => label(RULE_LABELS, rule);
  // A server time (ISO 8601) in the browser's zone, to the minute: "12-05 08:30".
  function shortTime(iso) {
    const d = new Date(iso);
    if (!iso || Number.isNaN(d.getTime())) return "—";
    const p = (n) => String(n).padStart(2, "0");
    return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  }

  window.GeoRisk = { COLORS, LEVELS, colorClass, escapeHtml, getJson, hasPath, swatch, legendHtml, externalBase,
    RULE_LABELS, WAYBILL_RULES, DEPARTMENTS, ALERT_STATUSES, WAYBILL_STATES, label, ruleLabel, shortTime };
})();
