// The regulator's "one map": every registry layer from our own vector tiles in one combined
// tile request per tile (one HTTP round trip instead of one per layer), the four-colour legend,
// a hexagon mode whose H3 resolution the tile server picks from the zoom, and popups that fetch
// the explanation (reasons, limits) only when someone asks for it.
(function () {
  "use strict";
  const G = window.GeoRisk;
  const { COLORS, escapeHtml, getJson } = G;
  const map = L.map("map", { preferCanvas: true, minZoom: 5 }).setView([29.9, 121.7], 10);
  const basemap = document.documentElement.dataset.basemap;
  if (basemap) L.tileLayer(basemap, { maxZoom: 19 }).addTo(map);
  L.control.scale({ imperial: false }).addTo(map);

  // Drawn-feature counters: the tests and scripts/bench_web.py read them (no canvas guessing).
  const stats = { drawn: {}, firstDrawnAt: null, tilesLoaded: 0, districts: {} };
  const DEFAULT_ON = new Set(["districts", "pipeline_segments", "hazard_sources", "enterprises",
    "monitoring_points", "tankers", "alerts"]);
  const POINT_LAYERS = new Set(["enterprises", "hazard_sources", "monitoring_points"]);
  // ?layers=a,b picks the initial layers (shareable links; the tests use it to isolate a layer).
  const wanted = new URLSearchParams(location.search).get("layers");
  const state = { catalog: [], on: new Set(wanted ? wanted.split(",") : DEFAULT_ON), hex: false,
    hexLayer: "h3_enterprises" };
  let grid = null;

  const fill = (c) => COLORS[c] || COLORS.grey;
  function count(name) { stats.drawn[name] = (stats.drawn[name] || 0) + 1; }

  // Styles per tile layer; each also tags the feature with its layer for the click handler.
  function pointStyle(p, base) {
    const n = p.count || 1;
    return { radius: n > 1 ? Math.min(4 + Math.sqrt(n) * 1.5, 18) : base, fill: true, fillOpacity: 0.9,
      fillColor: fill(p.color), color: "#333", weight: 1 };
  }
  const STYLES = {
    districts: (p) => { stats.districts[p.code] = p.name; return { color: "#555", weight: 1.5, fill: false, dashArray: "4 3" }; },
    zones: () => ({ color: "#6d4c41", weight: 1, fill: true, fillOpacity: 0.1 }),
    overlay_zones: (p) => ({ color: fill(p.color), weight: 0.5, fill: true, fillColor: fill(p.color), fillOpacity: 0.2 }),
    hazard_sources: (p) => ({ color: "#222", weight: 1, fill: true, fillColor: fill(p.color), fillOpacity: 0.7 }),
    pipeline_segments: (p) => ({ color: fill(p.color), weight: 3, opacity: 0.95 }),
    enterprises: (p) => pointStyle(p, 5),
    monitoring_points: (p) => Object.assign(pointStyle(p, 3), { color: "#fff" }),
    stops: (p) => pointStyle(p, 3),
    alerts: (p) => Object.assign(pointStyle(p, 6), { color: "#000", weight: 2 }),
    tankers: (p) => ({ radius: p.count > 1 ? 6 : 4, fill: true, fillColor: "#111", fillOpacity: 0.8, color: "#fff", weight: 1 }),
    tanker_tracks: () => ({ color: "#37474f", weight: 1.5, opacity: 0.7 }),
  };
  function styleFor(name) {
    const base = STYLES[name] || ((p) => ({ color: fill(p.color), weight: 1, fill: true,
      fillColor: fill(p.color), fillOpacity: 0.45 }));
    return (p, z) => { p._layer = name; count(name); return base(p, z); };
  }

  function activeLayers() {
    const names = state.catalog.map((l) => l.name).filter((n) => state.on.has(n) && !n.startsWith("h3_"));
    if (!state.hex) return names;
    return names.filter((n) => !POINT_LAYERS.has(n)).concat([state.hexLayer]);
  }

  function tileUrl(names) {
    const q = new URLSearchParams();
    if (names.includes("tanker_tracks")) {
      const to = new Date();
      q.set("from", new Date(to - 3600e3).toISOString());
      q.set("to", to.toISOString());
    }
    const qs = q.toString();
    return `/tiles/${names.join(",")}/{z}/{x}/{y}.mvt${qs ? "?" + qs : ""}`;
  }

  function redraw() {
    if (grid) map.removeLayer(grid);
    const names = activeLayers();
    if (!names.length) { grid = null; return; }
    const styles = {};
    names.forEach((n) => { styles[n] = styleFor(n); });
    grid = L.vectorGrid.protobuf(tileUrl(names), {
      rendererFactory: L.canvas.tile, vectorTileLayerStyles: styles, interactive: true,
      maxNativeZoom: 22, keepBuffer: 1,
    });
    grid.on("click", onFeatureClick);
    grid.on("tileload", () => {
      stats.tilesLoaded += 1;
      const drawn = Object.keys(stats.drawn).some((k) => k !== "districts" && stats.drawn[k] > 0);
      if (drawn && stats.firstDrawnAt === null) stats.firstDrawnAt = performance.now();
    });
    grid.addTo(map);
    updateHexLabel();
  }

  function updateHexLabel() {
    // Same rule as layers/registry.py: resolution max(5, min(10, zoom − 4)).
    const res = Math.max(5, Math.min(10, Math.round(map.getZoom()) - 4));
    document.getElementById("hex-res").textContent = state.hex ? `res ${res}` : "";
  }
  map.on("zoomend", updateHexLabel);

  function buildSwitcher() {
    const list = document.getElementById("layer-list");
    const hexSelect = document.getElementById("hex-layer");
    state.catalog.forEach((layer) => {
      if (layer.name.startsWith("h3_")) {
        hexSelect.insertAdjacentHTML("beforeend",
          `<option value="${escapeHtml(layer.name)}">${escapeHtml(layer.title.replace("Hexagons: ", ""))}</option>`);
        return;
      }
      const id = `layer-${layer.name}`;
      list.insertAdjacentHTML("beforeend",
        `<label title="${escapeHtml(layer.description)} (z ≥ ${layer.minzoom})"><input type="checkbox" id="${id}"` +
        ` data-layer="${escapeHtml(layer.name)}"${state.on.has(layer.name) ? " checked" : ""}> ${escapeHtml(layer.title)}</label>`);
    });
    list.addEventListener("change", (e) => {
      const name = e.target.dataset.layer;
      if (e.target.checked) state.on.add(name); else state.on.delete(name);
      redraw();
    });
    // A role without the default hexagon layer gets its first one (or no hexagon mode at all).
    if (!state.catalog.some((l) => l.name === state.hexLayer)) {
      state.hexLayer = hexSelect.options.length ? hexSelect.options[0].value : "";
      document.getElementById("hex-mode").disabled = !state.hexLayer;
    }
    hexSelect.value = state.hexLayer;
    hexSelect.addEventListener("change", () => { state.hexLayer = hexSelect.value; if (state.hex) redraw(); });
    document.getElementById("hex-mode").addEventListener("change", (e) => { state.hex = e.target.checked; redraw(); });
  }

  // ---- popups -------------------------------------------------------------------------------
  function onFeatureClick(e) {
    const p = (e.layer && e.layer.properties) || {};
    // VectorGrid points look like markers to Leaflet 1.9, which then reports no latlng.
    const at = (e.latlng && e.latlng.lat !== undefined) ? e.latlng : map.mouseEventToLatLng(e.originalEvent);
    const popup = L.popup({ maxWidth: 360 }).setLatLng(at).setContent("…").openOn(map);
    const show = (html) => popup.setContent(`<div class="popup">${html}</div>`);
    if (p.count > 1) {
      show(`<h4>${p.count} × ${escapeHtml(p._layer)}</h4>worst colour ${G.swatch(p.color)} ${escapeHtml(p.color || "—")}<br>zoom in to see each one`);
      return;
    }
    const render = POPUPS[p._layer] || genericPopup;
    Promise.resolve(render(p)).then(show).catch((err) => show(`<b>${escapeHtml(p._layer)}</b><br>${escapeHtml(err.message)}`));
  }

  function genericPopup(p) {
    const rows = Object.keys(p).filter((k) => k !== "_layer")
      .map((k) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(p[k])}</td></tr>`).join("");
    return `<h4>${escapeHtml(p._layer)}</h4><table>${rows}</table>`;
  }

  async function enterprisePopup(p) {
    const r = await getJson(`/api/enterprises/${p.id}/risk`);
    const reasons = (r.reasons || []).map((x) =>
      `<li>${G.swatch(x.color)} ${escapeHtml(x.zh)}<br><small>${escapeHtml(x.en)}</small></li>`).join("");
    return `<h4 class="ent-name">${escapeHtml(r.name || p.name)}</h4>` +
      `<div>${escapeHtml(p.category || "")} · ${escapeHtml(G.districtName(p.district))}</div>` +
      `<div class="ent-color">colour ${G.swatch(r.color)} <b>${escapeHtml(r.color || "not rated")}</b></div>` +
      `<div class="ent-dynamic">dynamic ${G.swatch(r.dynamic_color)} ${escapeHtml(r.dynamic_color || "—")}` +
      ` · inherent ${G.swatch(r.inherent_color)} ${escapeHtml(r.inherent_color || "—")}</div>` +
      `<div>reasons:</div><ul class="reasons">${reasons || "<li>none recorded</li>"}</ul>` +
      `<a href="/enterprises/${p.id}/diagram">四色风险分布图 diagram</a>`;
  }

  async function monitoringPopup(p) {
    const f = await getJson(`/api/monitoring-points/${p.id}`);
    const q = f.properties;
    const limits = ["level1", "level2", "limit_l", "limit_ll", "limit_h", "limit_hh"]
      .filter((k) => q[k] != null).map((k) => `${k} ${q[k]}`).join(" · ");
    let readings = "<i>no readings</i>";
    if (await G.hasPath("/api/monitoring-points/{point_id}/readings")) {
      try {
        const r = await getJson(`/api/monitoring-points/${p.id}/readings?limit=5`);
        const rows = (r.readings || r.features || []).slice(0, 5).map((x) => {
          const v = x.properties || x;
          return `<li>${escapeHtml(v.ts)}: ${escapeHtml(v.value)} ${escapeHtml(q.unit || "")}</li>`;
        }).join("");
        if (rows) readings = `<ul>${rows}</ul>`;
      } catch (err) { readings = "<i>no readings</i>"; }
    }
    return `<h4>${escapeHtml(q.code)} · ${escapeHtml(q.kind)}</h4>` +
      `<div>${escapeHtml(q.substance || "")} (${escapeHtml(q.unit || "")})</div>` +
      `<div>limits: ${escapeHtml(limits || "—")}</div>` +
      `<div>level ${G.swatch(q.color)} ${escapeHtml(q.color || "no data / offline")}</div>` +
      `<div>latest readings: ${readings}</div>`;
  }

  function tankerPopup(p) {
    G.selectVehicle && G.selectVehicle(p.id);
    return `<h4>${escapeHtml(p.plate)}</h4>${escapeHtml(p.carrier || "")}<br>UN ${escapeHtml(p.un_number || "—")}` +
      `<br>${escapeHtml(p.ts)} · ${escapeHtml(p.speed_kmh)} km/h<br><i>vehicle ${p.id} chosen for replay</i>`;
  }

  function pipelinePopup(p) {
    return `<h4>pipeline ${escapeHtml(p.code)} · segment ${escapeHtml(p.seq)}</h4>` +
      `${escapeHtml(p.substance || "")}<br>colour ${G.swatch(p.color)} ${escapeHtml(p.color || "—")}`;
  }

  const POPUPS = { enterprises: enterprisePopup, monitoring_points: monitoringPopup, tankers: tankerPopup,
    pipeline_segments: pipelinePopup };

  G.districtName = (code) => (stats.districts[code] ? `${stats.districts[code]} (${code})` : code || "");
  G.districtNames = stats.districts;
  G.map = map;
  G.stats = stats;

  document.getElementById("legend").innerHTML = G.legendHtml("四色风险 Risk colours");
  G.ready.then((caller) => {
    // An enterprise user's map opens on their own site, the only one they can see.
    if (caller.role === "enterprise" && caller.enterprise_id && !wanted) {
      getJson(`/api/enterprises/${caller.enterprise_id}`).then((f) => {
        if (f.geometry) map.setView([f.geometry.coordinates[1], f.geometry.coordinates[0]], 16);
      }).catch(() => {});
    }
    return getJson("/tiles");
  }).then((cat) => {
    state.catalog = cat.layers;
    buildSwitcher();
    redraw();
    document.getElementById("status").textContent = `${cat.layers.length} layers · vector tiles`;
  }).catch((err) => { document.getElementById("status").textContent = String(err); });
})();
