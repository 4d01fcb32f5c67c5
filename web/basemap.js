// The base map (issue 19 §4): our own roads, areas, district boundaries and place labels from
// the catalogue's base_* tile layers, drawn in a pane under the risk layers, so the map reads
// like a map with nothing from outside; optionally an external raster base (Tianditu, an
// OSM-derived server) configured by the server (GEORISK_BASEMAP_*, docs/basemap.md).
// VectorGrid draws no text: label features arrive with their lon/lat, are collected per zoom,
// deduplicated by id and placed as divIcon markers, highest priority first, skipping any that
// would overlap one already placed, never more than MAX_SHOWN at once.
// app.js calls GeoRisk.basemap.create(map) once and .start(catalog) when the catalogue is in.
(function () {
  "use strict";
  const G = window.GeoRisk;
  const PREFIX = "base_";
  const LABEL_LAYERS = new Set(["base_labels", "base_enterprise_labels"]);
  const MAX_CANDIDATES = 3000;  // label features remembered (beyond: those out of view go)
  const MAX_SHOWN = 200;        // labels on screen at once

  // Neutral tones only: nothing in the base may be mistaken for a risk colour (red, orange,
  // yellow, blue, grey), so roads are taupe and areas pale.
  const ROAD = {
    expressway: { color: "#6d5d4b", widths: [2.5, 4, 6] },
    arterial: { color: "#a08f7c", widths: [1.5, 2.5, 4] },
    local: { color: "#bcae9c", widths: [0.8, 1.4, 2.8] },
  };
  const AREA = {
    water_source: { color: "#6fa8dc", fillColor: "#b9d8f0", fillOpacity: 0.85 },
    chemical_park: { color: "#a593c2", fillColor: "#e4dcf0", fillOpacity: 0.8 },
    residential: { color: "#e3d5bd", fillColor: "#efe6d5", fillOpacity: 0.7 },
  };
  const TITLES = { base_roads: "道路 roads", base_areas: "水源地·园区·居住 areas",
    base_boundaries: "区界 boundaries", base_labels: "地名 place names",
    base_enterprise_labels: "企业名称 enterprise names" };
  // Label priority (lower first) and font size; enterprises follow their colour, red first.
  const RANK = { red: 0, orange: 1, yellow: 2, blue: 3, grey: 4 };

  const isBase = (name) => name.startsWith(PREFIX);
  const widthAt = (widths, z) => widths[z <= 10 ? 0 : z <= 13 ? 1 : 2];

  function create(map) {
    map.createPane("georiskExternalBase").style.zIndex = 120;
    map.createPane("georiskBase").style.zIndex = 150;       // tilePane (risk layers) is 200
    map.createPane("georiskLabels").style.zIndex = 380;     // above the risk tiles, under popups
    const pageUrl = new URLSearchParams(location.search);
    const wanted = pageUrl.get("layers");
    const external = G.externalBase(map, { pane: "georiskExternalBase" });
    const base = { map, layers: [], on: new Set(), grid: null, external,
      candidates: new Map(), shown: new Map(), layoutTimer: null, token: "" };
    const stats = () => G.stats;

    function styles(names) {
      const out = {};
      names.forEach((name) => {
        out[name] = (p, z) => {
          const s = stats();
          if (s) {
            s.drawn[name] = (s.drawn[name] || 0) + 1;
            if (name === "base_roads") s.base.roads[p.road_class] = (s.base.roads[p.road_class] || 0) + 1;
          }
          if (LABEL_LAYERS.has(name)) { remember(name, p, z); return []; }
          if (name === "base_roads") {
            const r = ROAD[p.road_class] || ROAD.local;
            return { color: r.color, weight: widthAt(r.widths, z), opacity: 1, lineCap: "round" };
          }
          if (name === "base_areas") {
            return Object.assign({ weight: 1, fill: true }, AREA[p.kind] || AREA.residential);
          }
          return { color: "#8e7fa8", weight: z <= 9 ? 2 : 3, opacity: 0.6 };  // boundaries
        };
      });
      return out;
    }

    // ---- labels -----------------------------------------------------------------------
    function remember(layer, p, z) {
      if (p.lat == null || p.lon == null || !p.name) return;
      const key = `${layer}:${p.id}`;
      let c = base.candidates.get(key);
      if (!c) {
        if (p.code && stats()) stats().districts[p.code] = stats().districts[p.code] || p.name;
        const kind = layer === "base_enterprise_labels" ? "enterprise" : p.kind;
        const prio = kind === "district" ? 0 : kind === "enterprise" ? 2 + (RANK[p.color] ?? 5) : 1;
        c = { key, kind, text: p.name, title: p.name_en || "", latlng: L.latLng(p.lat, p.lon),
          prio, zooms: new Set() };
        base.candidates.set(key, c);
      }
      c.zooms.add(z);
      scheduleLayout();
    }

    function scheduleLayout() {
      if (!base.layoutTimer) base.layoutTimer = setTimeout(layout, 60);
    }

    // A label's box in container pixels, with a margin: CJK glyphs are about one em wide,
    // others about 0.6. Enterprise names hang under their point (basemap.css), so the point
    // itself stays visible; place names are centred.
    function box(c, pt) {
      const font = c.kind === "district" ? 15 : c.kind === "enterprise" ? 11 : 12;
      let w = 0;
      for (const ch of c.text) w += ch.charCodeAt(0) > 0x2e80 ? font : font * 0.6;
      w += 12;
      const h = font + 8;
      const top = c.kind === "enterprise" ? pt.y + 3 : pt.y - h / 2;
      return [pt.x - w / 2, top, pt.x + w / 2, top + h];
    }
    const overlaps = (a, b) => a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];

    function layout() {
      base.layoutTimer = null;
      const z = Math.round(map.getZoom());
      const on = base.on.has("base_labels") || base.on.has("base_enterprise_labels");
      const view = map.getBounds().pad(0.1);
      if (base.candidates.size > MAX_CANDIDATES) {
        base.candidates.forEach((c, k) => { if (!view.contains(c.latlng)) base.candidates.delete(k); });
      }
      const chosen = [];
      const boxes = [];
      if (on && base.grid) {
        const layerOn = (c) => base.on.has(c.kind === "enterprise" ? "base_enterprise_labels" : "base_labels");
        const list = [...base.candidates.values()]
          .filter((c) => c.zooms.has(z) && layerOn(c) && view.contains(c.latlng))
          .sort((a, b) => a.prio - b.prio || a.key.localeCompare(b.key));
        for (const c of list) {
          if (chosen.length >= MAX_SHOWN) break;
          const b = box(c, map.latLngToContainerPoint(c.latlng));
          if (boxes.some((o) => overlaps(o, b))) continue;
          boxes.push(b);
          chosen.push(c);
        }
      }
      const keep = new Set(chosen.map((c) => c.key));
      base.shown.forEach((marker, key) => {
        if (!keep.has(key)) { map.removeLayer(marker); base.shown.delete(key); }
      });
      chosen.forEach((c) => {
        if (base.shown.has(c.key)) return;
        const icon = L.divIcon({ className: `base-label base-label-${c.kind}`, iconSize: null,
          html: `<span title="${G.escapeHtml(c.title)}">${G.escapeHtml(c.text)}</span>` });
        base.shown.set(c.key, L.marker(c.latlng, { icon, pane: "georiskLabels", interactive: false,
          keyboard: false }).addTo(map));
      });
      if (stats()) stats().base.labels = base.shown.size;
    }
    map.on("moveend zoomend", scheduleLayout);

    // ---- the grid and its switch --------------------------------------------------------
    function redraw() {
      if (base.grid) { map.removeLayer(base.grid); base.grid = null; }
      const names = base.layers.filter((n) => base.on.has(n));
      document.getElementById("map").classList.toggle("basemap-on", names.length > 0);
      if (names.length) {
        // The same short-lived tile token as the risk layers (app.js renews it through
        // setToken); before the first one arrives the session cookie carries the request.
        const url = `/tiles/${names.join(",")}/{z}/{x}/{y}.mvt` + (base.token ? "?t={t}" : "");
        base.grid = L.vectorGrid.protobuf(url, {
          pane: "georiskBase", rendererFactory: L.canvas.tile, vectorTileLayerStyles: styles(names),
          interactive: false, maxNativeZoom: 22, keepBuffer: 1, t: base.token,
        });
        // Whether every tile of the view is in (the tests and screenshots wait for it).
        base.grid.on("loading", () => { if (stats()) stats().base.loaded = false; });
        base.grid.on("load", () => { if (stats()) stats().base.loaded = true; scheduleLayout(); });
        base.grid.addTo(map);
      }
      scheduleLayout();
    }

    function switcher() {
      const list = document.getElementById("layer-list");
      const box = document.createElement("div");
      box.id = "basemap-list";
      const sub = base.layers.map((n) =>
        `<label class="sub"><input type="checkbox" data-layer="${G.escapeHtml(n)}"` +
        `${base.on.has(n) ? " checked" : ""}> ${G.escapeHtml(TITLES[n] || n)}</label>`).join("");
      box.innerHTML =
        `<label><input type="checkbox" id="basemap-on"${base.on.size ? " checked" : ""}> 底图 base map</label>${sub}` +
        (external ? `<label><input type="checkbox" id="basemap-external" checked> 外部底图 external base</label>` : "");
      list.parentNode.insertBefore(box, list);
      box.addEventListener("change", (e) => {
        const t = e.target;
        if (t.id === "basemap-external") {
          external.forEach((l) => (t.checked ? l.addTo(map) : map.removeLayer(l)));
          return;
        }
        if (t.id === "basemap-on") {
          base.on = new Set(t.checked ? base.layers : []);
          box.querySelectorAll("input[data-layer]").forEach((i) => { i.checked = t.checked; });
        } else if (t.checked) base.on.add(t.dataset.layer); else base.on.delete(t.dataset.layer);
        box.querySelector("#basemap-on").checked = base.on.size > 0;
        redraw();
      });
    }

    // The catalogue lists the base layers this caller may read; ?layers= picks them too
    // ("basemap" for all), and without ?layers= the whole base is on.
    function start(catalog) {
      if (stats()) stats().base = { roads: {}, labels: 0, loaded: false };
      base.layers = catalog.map((l) => l.name).filter(isBase);
      const picked = wanted ? wanted.split(",") : null;
      base.on = new Set(base.layers.filter((n) => !picked || picked.includes("basemap") || picked.includes(n)));
      if (base.layers.length) switcher();
      redraw();
      // A "reload" (the server lost its change feed) redraws the base too; the base is
      // reference data, so ordinary change events leave it alone.
      if (G.onMapChange) G.onMapChange((changes) => { if (changes === null) redraw(); });
    }

    function setToken(token) {
      const first = !base.token;
      base.token = token;
      if (base.grid && first) redraw();  // the URL gains ?t= once
      else if (base.grid) base.grid.options.t = token;
    }

    return { isBase, start, redraw, setToken, state: base };
  }

  G.basemap = { create, isBase };
})();
