// Foundation map: districts, zones, pipelines and enterprises from the GeoJSON API, redrawn
// for the current view. Vector tiles and the four-colour risk layers replace this later.
(function () {
  "use strict";
  const params = new URLSearchParams(location.search);
  const map = L.map("map", { preferCanvas: true }).setView([29.9, 121.7], 10);
  const basemap = document.documentElement.dataset.basemap;
  if (basemap) L.tileLayer(basemap, { maxZoom: 19 }).addTo(map);

  // The four risk colours (layers/colors.py) and grey for "not rated yet".
  const riskColors = { red: "#E02020", orange: "#FF8C00", yellow: "#FFD700", blue: "#1E6FD9" };
  const zoneColors = {
    designated_parking: "#2e7d32", school: "#8e24aa", hospital: "#c62828",
    residential: "#6d4c41", water_source: "#0277bd", chemical_park: "#455a64",
  };
  const layers = {
    districts: L.geoJSON(null, { style: { color: "#555", weight: 1.5, fill: false, dashArray: "4 3" } }),
    zones: L.geoJSON(null, {
      style: (f) => ({ color: zoneColors[f.properties.kind] || "#777", weight: 1, fillOpacity: 0.15 }),
    }),
    pipelines: L.geoJSON(null, { style: { color: "#ff6f00", weight: 2 } }),
    enterprises: L.geoJSON(null, {
      pointToLayer: (f, latlng) => L.circleMarker(latlng, {
        radius: f.properties.is_hazmat ? 5 : 3, weight: 1, color: "#333",
        fillColor: riskColors[f.properties.color] || "#9E9E9E", fillOpacity: 0.9,
      }),
      onEachFeature: (f, layer) => layer.bindPopup(
        `<b>${escapeHtml(f.properties.name)}</b><br>${escapeHtml(f.properties.category)}` +
        ` · ${escapeHtml(f.properties.district || "")}` +
        `<br>colour: ${escapeHtml(f.properties.dynamic_color || "not rated")}` +
        ` (inherent ${escapeHtml(f.properties.inherent_color || "—")})`),
    }),
  };
  Object.values(layers).forEach((l) => l.addTo(map));
  L.control.layers(null, layers, { collapsed: false }).addTo(map);
  L.control.scale({ imperial: false }).addTo(map);

  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  async function load(name, extra) {
    const b = map.getBounds();
    const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(5)).join(",");
    const url = `/api/${name}?bbox=${bbox}&limit=5000${extra || ""}`;
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${name}: HTTP ${response.status}`);
    const body = await response.json();
    layers[name].clearLayers();
    layers[name].addData(body);
    return body.numberMatched;
  }

  async function refresh() {
    const status = document.getElementById("status");
    try {
      const counts = await Promise.all(["districts", "zones", "pipelines", "enterprises"].map((n) => load(n)));
      status.textContent = `enterprises in view: ${counts[3]} · zones: ${counts[1]} · pipelines: ${counts[2]}`;
    } catch (err) {
      status.textContent = String(err);
    }
  }
  map.on("moveend", refresh);
  refresh();
  if (params.has("debug")) window.georiskMap = map;
})();
