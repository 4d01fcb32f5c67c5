// The enterprise's four-colour diagram: site, hazard sources, monitoring points and its risk
// units from diagram.geojson (the same document the export serves, so page and exports agree);
// units are drawn and edited with Leaflet-Geoman and saved through the risk-unit API, whose
// answer (with the server-computed colour) replaces the drawn shape.
(function () {
  "use strict";
  const G = window.GeoRisk;
  const { escapeHtml, getJson } = G;
  const id = document.body.dataset.enterprise;
  const $ = (x) => document.getElementById(x);
  const map = L.map("dmap", { preferCanvas: false, maxZoom: 22 });
  G.externalBase(map);  // GEORISK_BASEMAP_* (docs/basemap.md), as on the map
  L.control.scale({ imperial: false, maxWidth: 150 }).addTo(map);
  $("dlegend").innerHTML = G.legendHtml("风险等级 Risk level") +
    '<div>▨ 重大危险源 hazard source</div><div>▲ 监测点 monitoring point</div><div>┄ 厂界 site</div>';

  const context = L.featureGroup().addTo(map);
  const units = L.featureGroup().addTo(map);
  const fill = (c) => G.COLORS[c] || G.COLORS.grey;
  let pending = null; // a drawn or edited layer awaiting the form

  function unitLayer(f) {
    const layer = L.geoJSON(f, { style: { color: "#222", weight: 1, fillColor: fill(f.properties.color), fillOpacity: 0.7 } })
      .getLayers()[0];
    layer.feature = f;
    layer.bindTooltip(escapeHtml(f.properties.name), { permanent: true, direction: "center", className: "unit-label" });
    layer.on("pm:edit", () => openForm(layer));
    layer.on("click", () => openForm(layer));
    return layer;
  }

  // Controls arrive typed ({type, measure}); the table shows them on one line.
  const CONTROL_LABELS = { engineering: "工程", management: "管理", training: "培训", ppe: "防护", emergency: "应急" };
  function controlsText(list) {
    return (list || []).map((c) => `${CONTROL_LABELS[c.type] || c.type}: ${c.measure}`).join("; ");
  }

  function renderTable(list) {
    $("units").querySelector("tbody").innerHTML = list.map((f) => {
      const p = f.properties;
      const a = p.method === "LEC" ? `LEC L${p.likelihood} E${p.exposure} C${p.consequence}` : `LS L${p.likelihood} S${p.severity}`;
      return `<tr data-unit="${p.id}"><td>${escapeHtml(p.name)}</td><td>${escapeHtml(a)}</td><td>${escapeHtml(p.score)}</td>` +
        `<td>${G.swatch(p.color)} ${escapeHtml(p.color)}</td><td>${escapeHtml(controlsText(p.controls))}</td>` +
        `<td><button data-delete="${p.id}">删除 delete</button></td></tr>`;
    }).join("") || '<tr><td colspan="6">no risk units yet — draw one with the polygon tool</td></tr>';
  }

  async function load() {
    const fc = await getJson(`/enterprises/${id}/diagram.geojson`);
    context.clearLayers(); units.clearLayers();
    const list = [];
    fc.features.forEach((f) => {
      const p = f.properties;
      if (p.layer === "risk_unit") { units.addLayer(unitLayer(f)); list.push(f); return; }
      let layer;
      if (p.layer === "enterprise") {
        $("ent-color").innerHTML = `${G.swatch(p.color)} ${escapeHtml(p.color || "not rated")}`;
        layer = f.geometry.type === "Point"
          ? L.circleMarker([f.geometry.coordinates[1], f.geometry.coordinates[0]], { radius: 6, color: "#000" })
          : L.geoJSON(f, { style: { color: "#444", weight: 2, dashArray: "6 4", fill: false } });
      } else if (p.layer === "hazard_source") {
        layer = L.geoJSON(f, { style: { color: fill(p.color), weight: 2, dashArray: "2 3", fillOpacity: 0.08 } })
          .bindTooltip(`${escapeHtml(p.code)} ${escapeHtml(p.name)} · grade ${escapeHtml(p.grade)} · R ${escapeHtml(p.R)}`);
      } else {
        const [x, y] = f.geometry.coordinates;
        layer = L.marker([y, x], { pmIgnore: true, icon: L.divIcon({ className: "mp-icon",
          html: `<span style="color:${fill(p.color)};font-size:14px;text-shadow:0 0 2px #000">▲</span>`, iconSize: [14, 14] }) })
          .bindTooltip(`${escapeHtml(p.code)} ${escapeHtml(p.kind)} · ${escapeHtml(p.color || "no data")}`);
      }
      layer.options.pmIgnore = true;
      context.addLayer(layer);
    });
    renderTable(list);
    const all = L.featureGroup([context, units]);
    if (!map._loaded) map.fitBounds(all.getBounds().pad(0.3), { maxZoom: 19 });
    window.diagramReady = true;
  }

  // ---- drawing and the form ------------------------------------------------------------------
  map.pm.addControls({ position: "topleft", drawMarker: false, drawCircleMarker: false, drawPolyline: false,
    drawCircle: false, drawText: false, cutPolygon: false, rotateMode: false, dragMode: false });
  map.pm.setGlobalOptions({ snappable: false });
  map.on("pm:create", (e) => { openForm(e.layer); });

  function openForm(layer) {
    pending = layer;
    const p = (layer.feature && layer.feature.properties) || {};
    $("u-name").value = p.name || "";
    $("u-method").value = p.method || "LEC";
    $("u-l").value = p.likelihood != null ? p.likelihood : 3;
    $("u-e").value = p.exposure != null ? p.exposure : 6;
    $("u-c").value = p.consequence != null ? p.consequence : 15;
    $("u-s").value = p.severity != null ? p.severity : 3;
    $("u-controls").value = (p.controls || []).map((c) => c.measure).join("; ");
    $("u-error").textContent = "";
    toggleMethod();
    $("unit-form").hidden = false;
    $("u-name").focus();
  }
  function toggleMethod() {
    const lec = $("u-method").value === "LEC";
    document.querySelectorAll("#unit-form .lec").forEach((n) => { n.hidden = !lec; });
    document.querySelectorAll("#unit-form .ls").forEach((n) => { n.hidden = lec; });
  }
  $("u-method").addEventListener("change", toggleMethod);

  async function save() {
    const lec = $("u-method").value === "LEC";
    const num = (x) => Number($(x).value);
    const props = { name: $("u-name").value, method: $("u-method").value, likelihood: num("u-l"),
      controls: $("u-controls").value || null };
    if (lec) { props.exposure = num("u-e"); props.consequence = num("u-c"); } else { props.severity = num("u-s"); }
    const geometry = pending.toGeoJSON().geometry;
    const old = pending.feature && pending.feature.properties.id;
    const url = old ? `/api/risk-units/${old}` : `/api/enterprises/${id}/risk-units`;
    try {
      await getJson(url, { method: old ? "PUT" : "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ type: "Feature", geometry, properties: props }) });
    } catch (err) { $("u-error").textContent = err.message; return; }
    if (!old) map.removeLayer(pending);
    pending = null;
    $("unit-form").hidden = true;
    await load();
    $("u-error").textContent = "";
  }
  $("u-save").addEventListener("click", save);
  $("u-cancel").addEventListener("click", () => {
    if (pending && !pending.feature) map.removeLayer(pending);
    pending = null; $("unit-form").hidden = true; load();
  });
  $("units").addEventListener("click", async (e) => {
    const del = e.target.dataset.delete;
    if (!del) return;
    await fetch(`/api/risk-units/${del}`, { method: "DELETE" });
    load();
  });

  load().catch((err) => { $("units").querySelector("tbody").innerHTML = `<tr><td>${escapeHtml(err.message)}</td></tr>`; });
  window.diagramMap = map;
})();
