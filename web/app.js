// The regulator's "one map": every catalogue layer from our own vector tiles in one combined
// tile request per tile (one HTTP round trip instead of one per layer), the four-colour legend,
// a hexagon mode whose H3 resolution the tile server picks from the zoom, popups that fetch
// the explanation (reasons, limits) only when someone asks for it, and a live change stream
// (/api/changes/stream) after which just the touched tiles are fetched again and redrawn.
(function () {
  "use strict";
  const G = window.GeoRisk;
  const { COLORS, escapeHtml, getJson } = G;
  const map = L.map("map", { preferCanvas: true, minZoom: 5 }).setView([29.9, 121.7], 10);
  // The base map (web/basemap.js): own pane under the risk layers, labels, external base.
  const base = G.basemap ? G.basemap.create(map) : null;
  const isBase = (name) => Boolean(base && base.isBase(name));
  L.control.scale({ imperial: false }).addTo(map);

  // Drawn-feature counters: the tests and scripts/bench_web.py read them (no canvas guessing).
  const stats = { drawn: {}, firstDrawnAt: null, tilesLoaded: 0, districts: {},
    liveChanges: 0, tilesRefreshed: 0, reloads: 0, liveVersion: 0, live: "connecting", tileTokens: 0,
    colors: {}, offline: {}, props: {} };
  // Layers a role may not read are not in its catalogue, so they are never requested.
  const DEFAULT_ON = new Set(["districts", "pipeline_segments", "hazard_sources", "risk_units",
    "enterprises", "monitoring_points", "tankers", "alerts"]);
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
    // Register units: filled by level (grey = not assessed), a dashed black edge when the
    // review is overdue; names are written at z ≥ 16 by unit_labels.js.
    risk_units: (p, z) => {
      if (G.unitLabels) G.unitLabels.seen(p, z);
      return { color: p.overdue ? "#000" : "#444", weight: p.overdue ? 2 : 1, dashArray: p.overdue ? "4 3" : null,
        fill: true, fillColor: fill(p.color), fillOpacity: 0.6 };
    },
    pipeline_segments: (p) => ({ color: fill(p.color), weight: 3, opacity: 0.95 }),
    enterprises: (p) => pointStyle(p, 5),
    // An offline point keeps its alarm colour and gets a dashed black ring (offline never
    // hides an alarm; grey is only for silent points without one).
    monitoring_points: (p) => Object.assign(pointStyle(p, 3), p.offline
      ? { color: "#000", weight: 2, dashArray: "2 2" } : { color: "#fff" }),
    stops: (p) => pointStyle(p, 3),
    alerts: (p) => Object.assign(pointStyle(p, 6), { color: "#000", weight: 2 }),
    tankers: (p) => ({ radius: p.count > 1 ? 6 : 4, fill: true, fillColor: "#111", fillOpacity: 0.8, color: "#fff", weight: 1 }),
    tanker_tracks: () => ({ color: "#37474f", weight: 1.5, opacity: 0.7 }),
  };
  function styleFor(name) {
    const base = STYLES[name] || ((p) => ({ color: fill(p.color), weight: 1, fill: true,
      fillColor: fill(p.color), fillOpacity: 0.45 }));
    return (p, z) => {
      p._layer = name;
      count(name);
      // What was drawn, per feature: its colour and the property names it arrived with (the
      // browser tests read these — what a user sees, not only what the API says).
      const fid = p.h3 != null ? p.h3 : (p.count === undefined ? p.id : null);  // not clusters
      if (fid != null) {
        stats.colors[`${name}:${fid}`] = p.color;
        if (p.offline !== undefined) stats.offline[`${name}:${fid}`] = Boolean(p.offline);
      }
      const keys = stats.props[name] || (stats.props[name] = {});
      Object.keys(p).forEach((k) => { keys[k] = true; });
      return base(p, z);
    };
  }

  function activeLayers() {
    const names = state.catalog.map((l) => l.name)
      .filter((n) => state.on.has(n) && !n.startsWith("h3_") && !isBase(n));
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
    q.set("v", "{v}");  // the change version: a refetched tile is never an older copy
    if (tileToken.value) q.set("t", "{t}");  // filled from the grid's options, like {v}
    const qs = q.toString().replace("%7Bv%7D", "{v}").replace("%7Bt%7D", "{t}");
    return `/tiles/${names.join(",")}/{z}/{x}/{y}.mvt?${qs}`;
  }

  // Tile URLs carry a short-lived signed token for this caller's view (GET /tiles/token),
  // never a key (URLs end up in logs and histories). It is renewed at three quarters of its
  // life and the grid's next tiles use the new one (VectorGrid fills {t} from its options),
  // so nothing is redrawn for it; a tab back from the background renews at once if due.
  const tileToken = { value: "", renewAt: 0, timer: null };
  function renewTileToken() {
    clearTimeout(tileToken.timer);
    return getJson("/tiles/token", { cache: "no-store" }).then((r) => {
      if (!r.token) return true;  // the anonymous public map: its tile URLs need no credential
      tileToken.value = r.token;
      stats.tileTokens += 1;
      const ms = Math.max(1, r.expires_in * 0.75) * 1000;
      tileToken.renewAt = Date.now() + ms;
      tileToken.timer = setTimeout(renewTileToken, ms);
      if (grid) grid.options.t = r.token;
      if (base) base.setToken(r.token);
      return true;
    }).catch(() => { tileToken.timer = setTimeout(renewTileToken, 10e3); return false; });
  }

  // VectorGrid draws a tile it could not fetch as an empty tile, which on a risk map reads as
  // "nothing here". So every tile answer is watched: a refused token (401: it expired while the
  // laptop slept, or the key was revoked) is renewed and the view fetched again; any other
  // failure puts a warning in the live banner and the view is retried until tiles come back.
  // Health is kept per tile source (the layer list in the URL): the base map's tiles loading
  // from the browser's cache must not clear a warning about the risk layers' tiles.
  const tileHealth = { failingSources: new Set(), retry: null, renewing: false,
    get failing() { return this.failingSources.size > 0; } };
  stats.tileFailures = 0;
  function refetchView() {
    redraw();
    if (base) base.redraw();
  }
  function tileAnswered(url, status) {
    const source = (url.match(/\/tiles\/([^/]+)\//) || [])[1] || "";
    if (status >= 200 && status < 400) {
      if (tileHealth.failingSources.delete(source)) showLive();
      return;
    }
    stats.tileFailures += 1;
    if (status === 401 && !tileHealth.renewing) {  // renewed once at a time
      tileHealth.renewing = true;
      renewTileToken().then((ok) => { tileHealth.renewing = false; if (ok) refetchView(); });
      return;
    }
    if (status === 401) return;
    if (!tileHealth.failingSources.has(source)) { tileHealth.failingSources.add(source); showLive(); }
    if (!tileHealth.retry) tileHealth.retry = setTimeout(() => { tileHealth.retry = null; refetchView(); }, 5e3);
  }
  const pageFetch = window.fetch.bind(window);
  window.fetch = (input, init) => {
    const url = typeof input === "string" ? input : input.url;
    const tile = /\/tiles\/[^?]*\.mvt/.test(url);
    const answer = pageFetch(input, init);
    if (!tile) return answer;
    return answer.then((r) => { tileAnswered(url, r.status); return r; },
      (err) => { tileAnswered(url, 0); throw err; });
  };
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && tileToken.renewAt && Date.now() >= tileToken.renewAt) renewTileToken();
  });

  function redraw() {
    if (grid) map.removeLayer(grid);
    if (G.unitLabels) G.unitLabels.reset();
    const names = activeLayers();
    if (!names.length) { grid = null; return; }
    const styles = {};
    names.forEach((n) => { styles[n] = styleFor(n); });
    grid = L.vectorGrid.protobuf(tileUrl(names), {
      rendererFactory: L.canvas.tile, vectorTileLayerStyles: styles, interactive: true,
      maxNativeZoom: 22, keepBuffer: 1, v: stats.liveVersion, t: tileToken.value,
    });
    grid.on("click", onFeatureClick);
    grid.on("tileload", () => {
      stats.tilesLoaded += 1;
      const drawn = Object.keys(stats.drawn).some((k) => k !== "districts" && !isBase(k) && stats.drawn[k] > 0);
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
      if (isBase(layer.name)) return;  // the base map has its own entry (web/basemap.js)
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
    openPopup = { popup, p, at, show };
    popup.on("remove", () => { if (openPopup && openPopup.popup === popup) openPopup = null; });
    if (p.count > 1) {
      show(`<h4>${p.count} × ${escapeHtml(p._layer)}</h4>worst colour ${G.swatch(p.color)} ${escapeHtml(p.color || "—")}<br>zoom in to see each one`);
      return;
    }
    const render = POPUPS[p._layer] || genericPopup;
    Promise.resolve(render(p)).then(show).catch((err) => show(`<b>${escapeHtml(p._layer)}</b><br>${escapeHtml(err.message)}`));
  }

  let openPopup = null;
  // An open popup follows its feature: a change touching where it stands renders it again.
  function refreshPopup(layer, bbox) {
    if (!openPopup || openPopup.p._layer !== layer || openPopup.p.count > 1) return;
    const { lat, lng } = openPopup.at;
    if (bbox && !(bbox[0] <= lng + 1e-4 && lng - 1e-4 <= bbox[2] && bbox[1] <= lat + 1e-4 && lat - 1e-4 <= bbox[3])) return;
    const render = POPUPS[layer] || genericPopup;
    const { show } = openPopup;
    Promise.resolve(render(openPopup.p)).then(show).catch(() => {});
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


  // ---- live map -------------------------------------------------------------------------
  // Each change names a tile layer and a bbox; the tiles of the current view that the bbox
  // touches (with a margin for symbols drawn across tile edges) are fetched again with the new
  // version and swapped in when drawn, so nothing flickers and nothing else is refetched.
  const listeners = [];
  G.onMapChange = (fn) => listeners.push(fn);
  const pending = [];
  let flushTimer = null;

  function tileBounds(c) {
    const n = Math.pow(2, c.z);
    const lon = (x) => (x / n) * 360 - 180;
    const lat = (y) => (Math.atan(Math.sinh(Math.PI * (1 - (2 * y) / n))) * 180) / Math.PI;
    const m = 64 / 4096;  // the tiles' buffer (tiles/tms.py): features near an edge are in both
    return [lon(c.x - m), lat(c.y + 1 + m), lon(c.x + 1 + m), lat(c.y - m)];
  }
  const touches = (a, b) => !a || (a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3]);

  function refreshTiles(changes, version) {
    if (!grid || !grid._map) return;
    const shown = new Set(activeLayers());
    const relevant = changes.filter((c) => shown.has(c.layer));
    if (!relevant.length) return;
    grid.options.v = version;
    const z = grid._tileZoom;
    Object.keys(grid._tiles).forEach((key) => {
      const old = grid._tiles[key];
      if (!old || old.coords.z !== z || !grid._levels[z]) return;
      const b = tileBounds(old.coords);
      if (!relevant.some((c) => touches(c.bbox, b))) return;
      grid._addTile(old.coords, grid._levels[z].el);  // the old canvas stays until the new is drawn
      const fresh = grid._tiles[key];
      stats.tilesRefreshed += 1;
      const swap = (e) => {
        if (e.tile !== fresh.el) return;
        L.DomUtil.remove(old.el);
        grid.off("tileload tileerror", swap);
      };
      grid.on("tileload tileerror", swap);
    });
  }

  function flush() {
    flushTimer = null;
    const changes = pending.splice(0, pending.length);
    if (!changes.length) return;
    const version = Math.max(...changes.map((c) => c.version));
    refreshTiles(changes, version);
    changes.forEach((c) => refreshPopup(c.layer, c.bbox));
    listeners.forEach((fn) => { try { fn(changes); } catch (e) { /* a listener's own problem */ } });
  }

  function setLive(state, text) {
    stats.live = state;
    const el = document.getElementById("live");
    if (el) { el.dataset.state = state; el.textContent = text; }
  }
  // The banner tells the worst of the two: the change stream and the tiles themselves.
  let streamLive = false;
  function showLive() {
    if (tileHealth.failing) setLive("degraded", "⚠ 图块加载失败 tiles failed — retrying");
    else if (streamLive) setLive("live", "● 实时 live");
    else setLive("offline", "○ 重连中 reconnecting…");
  }

  function listen() {
    const source = new EventSource("/api/changes/stream");
    source.addEventListener("hello", (e) => {
      const hello = JSON.parse(e.data);
      if (!stats.liveVersion) stats.liveVersion = hello.version;
      streamLive = true;
      showLive();
    });
    source.addEventListener("change", (e) => {
      const c = JSON.parse(e.data);
      stats.liveChanges += 1;
      stats.liveVersion = Math.max(stats.liveVersion, c.version);
      pending.push(c);
      if (!flushTimer) flushTimer = setTimeout(flush, 100);  // a burst becomes one refetch
    });
    source.addEventListener("reload", () => {
      stats.reloads += 1;
      redraw();  // every tile of the view again (revalidated by ETag: unchanged ones are 304s)
      listeners.forEach((fn) => { try { fn(null); } catch (e) { /* ignore */ } });
    });
    // The browser reconnects by itself and resumes with Last-Event-ID; until then the map
    // says it is not live, so nobody mistakes a frozen picture for a quiet city.
    source.onerror = () => { streamLive = false; showLive(); };
  }

  const POPUPS = { enterprises: enterprisePopup, monitoring_points: monitoringPopup, tankers: tankerPopup,
    pipeline_segments: pipelinePopup };
  G.popups = POPUPS;  // other modules add theirs (zone_edit.js: the zones an officer may correct)

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
    return renewTileToken().then(() => getJson("/tiles"));
  }).then((cat) => {
    state.catalog = cat.layers;
    if (base) base.start(cat.layers);
    buildSwitcher();
    redraw();
    listen();
    document.getElementById("status").textContent = `${cat.layers.length} layers · vector tiles`;
  }).catch((err) => { document.getElementById("status").textContent = String(err); });
})();
