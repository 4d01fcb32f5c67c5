// Risk-unit names on the regulator's map at zoom ≥ 16. Leaflet.VectorGrid draws no text, so
// each unit in a tile carries its label point (label_lon, label_lat) and the map's style
// function hands every drawn unit to seen(); one small marker per unit id (a unit cut by tile
// edges is drawn in several tiles), only near the view, at most MAX, so a dense park costs a
// bounded number of DOM nodes. A live change drops the labels it touches; the refetched
// tiles put back what still exists.
(function () {
  "use strict";
  const G = window.GeoRisk;
  const MIN_ZOOM = 16;
  const MAX = 400;
  const labels = new Map();  // unit id → { marker, text }
  let group = null;

  function counted() { if (G.stats) G.stats.unitLabels = labels.size; }
  function drop(id) { const l = labels.get(id); if (l) { l.marker.remove(); labels.delete(id); } }
  function reset() { Array.from(labels.keys()).forEach(drop); counted(); }

  function seen(p, z) {
    if (z < MIN_ZOOM || p.id == null || p.label_lon == null || p.label_lat == null) return;
    const text = String(p.name || "");
    const old = labels.get(p.id);
    if (old && old.text === text && old.lon === p.label_lon && old.lat === p.label_lat) return;
    if (old) drop(p.id);
    else if (labels.size >= MAX) return;
    if (!group) group = L.layerGroup().addTo(G.map);
    const icon = L.divIcon({ className: "unit-name", html: `<span>${G.escapeHtml(text)}</span>`, iconSize: null });
    const marker = L.marker([p.label_lat, p.label_lon], { icon, interactive: false, keyboard: false })
      .addTo(group);
    labels.set(p.id, { marker, text, lon: p.label_lon, lat: p.label_lat });
    counted();
  }

  // Out of view or below the label zoom: gone (the tiles bring them back when needed).
  function prune() {
    if (!G.map) return;
    if (G.map.getZoom() < MIN_ZOOM) { reset(); return; }
    const view = G.map.getBounds().pad(0.5);
    labels.forEach((l, id) => { if (!view.contains(l.marker.getLatLng())) drop(id); });
    counted();
  }

  function onChanges(changes) {
    if (changes === null) { reset(); return; }  // a reload redraws every tile
    changes.filter((c) => c.layer === "risk_units").forEach((c) => {
      if (!c.bbox) { reset(); return; }
      const [w, s, e, n] = c.bbox;
      labels.forEach((l, id) => {
        const { lat, lng } = l.marker.getLatLng();
        if (w <= lng && lng <= e && s <= lat && lat <= n) drop(id);
      });
    });
    counted();
  }

  G.unitLabels = { seen, reset, labels };
  if (G.map) G.map.on("zoomend moveend", prune);
  if (G.onMapChange) G.onMapChange(onChanges);
})();
