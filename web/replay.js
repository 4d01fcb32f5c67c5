// Track replay: one vehicle's fixes in a chosen window from /api/vehicles/{id}/track, drawn as a
// line with a marker that a slider (or the play loop) moves fix by fix.
(function () {
  "use strict";
  const G = window.GeoRisk;
  const $ = (id) => document.getElementById(id);
  const local = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  const now = new Date();
  $("replay-to").value = local(now);
  $("replay-from").value = local(new Date(now - 24 * 3600e3));
  let group = null, timer = null;

  G.selectVehicle = (id) => { $("replay-vehicle").value = id; };

  async function replay() {
    const id = $("replay-vehicle").value;
    if (!id) { $("replay-info").textContent = "choose a vehicle (click a tanker)"; return; }
    const from = new Date($("replay-from").value).toISOString();
    const to = new Date($("replay-to").value).toISOString();
    clearInterval(timer);
    if (group) G.map.removeLayer(group);
    try {
      const fc = await G.getJson(`/api/vehicles/${id}/track?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`);
      const line = fc.features.find((f) => f.geometry && f.geometry.type === "LineString");
      if (!line || !line.geometry.coordinates.length) { $("replay-info").textContent = "no fixes in this window"; return; }
      const pts = line.geometry.coordinates.map(([x, y]) => [y, x]);
      const times = line.properties.times || [], speeds = line.properties.speeds_kmh || [];
      const marker = L.circleMarker(pts[0], { radius: 7, color: "#000", fillColor: "#fff", fillOpacity: 1 });
      const stops = fc.features.filter((f) => f.geometry && f.geometry.type === "Point")
        .map((f) => L.circleMarker([f.geometry.coordinates[1], f.geometry.coordinates[0]], { radius: 5, color: "#E02020" }));
      group = L.layerGroup([L.polyline(pts, { color: "#0d47a1", weight: 3 }), marker, ...stops]).addTo(G.map);
      G.map.fitBounds(L.latLngBounds(pts), { maxZoom: 15 });
      const slider = $("replay-slider");
      slider.max = pts.length - 1; slider.value = 0; slider.disabled = false;
      const move = (i) => {
        marker.setLatLng(pts[i]);
        $("replay-info").textContent = `${i + 1}/${pts.length} · ${times[i] || ""} · ${speeds[i] != null ? speeds[i] + " km/h" : ""}`;
      };
      slider.oninput = () => { clearInterval(timer); move(Number(slider.value)); };
      let i = 0;
      timer = setInterval(() => { if (i >= pts.length) { clearInterval(timer); return; } slider.value = i; move(i++); }, 100);
    } catch (err) { $("replay-info").textContent = String(err.message || err); }
  }
  $("replay-go").addEventListener("click", replay);
  G.ready.then((caller) => { if (!G.can(caller, "admin", "regulator", "officer")) $("replay").hidden = true; });
})();
