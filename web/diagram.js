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

  // The register's vocabularies (layers/core/vocab.py), with the book's Chinese names.
  const CONTROL_TYPES = [["engineering", "工程技术"], ["management", "管理措施"], ["training", "培训教育"],
    ["ppe", "个体防护"], ["emergency", "应急处置"]];
  const CONTROL_NAMES = Object.fromEntries(CONTROL_TYPES);
  const KIND_NAMES = { process_unit: "生产装置", reactor: "反应装置", tank_farm: "储罐区", warehouse: "仓库",
    loading_bay: "装卸区", utilities: "公用工程", other: "其他" };
  const today = () => new Date().toISOString().slice(0, 10);

  // Controls arrive typed ({type, measure}); the table shows them grouped by type, in the
  // vocabulary's order.
  function controlsHtml(list) {
    return CONTROL_TYPES.map(([t, label]) => {
      const measures = (list || []).filter((c) => c.type === t).map((c) => c.measure);
      return measures.length ? `<div data-type="${t}"><span class="ctype">${label}:</span> ${escapeHtml(measures.join("；"))}</div>` : "";
    }).join("");
  }
  function assessment(p) {
    if (p.method === "LEC") return `LEC L${p.likelihood} E${p.exposure} C${p.consequence}`;
    if (p.method === "LS") return `LS L${p.likelihood} S${p.severity}`;
    return "未评估 not assessed";
  }

  function renderTable(list) {
    $("units").querySelector("tbody").innerHTML = list.map((f) => {
      const p = f.properties;
      const overdue = p.review_due && p.review_due < today();
      const person = [p.responsible, p.responsible_phone].filter(Boolean).join(" ");
      return `<tr data-unit="${p.id}"><td>${escapeHtml(p.name)}</td><td>${escapeHtml(KIND_NAMES[p.kind] || p.kind)}</td>` +
        `<td>${escapeHtml(assessment(p))}</td><td>${escapeHtml(p.score == null ? "" : p.score)}</td>` +
        `<td>${G.swatch(p.color)} ${escapeHtml(p.color || "grey")}</td><td>${escapeHtml(person)}</td>` +
        `<td class="review${overdue ? " overdue" : ""}">${escapeHtml(p.review_due || "")}${overdue ? " 逾期 overdue" : ""}</td>` +
        `<td class="controls">${controlsHtml(p.controls)}</td>` +
        `<td><button data-delete="${p.id}">删除 delete</button></td></tr>`;
    }).join("") || '<tr><td colspan="9">no risk units yet — draw one with the polygon tool</td></tr>';
  }

  // The hazard-source select offers this enterprise's own sources (from the same document).
  function fillHazards(hazards) {
    $("u-hazard").innerHTML = '<option value="">— none</option>' + hazards.map((p) =>
      `<option value="${p.id}">${escapeHtml(p.code)} ${escapeHtml(p.name)}</option>`).join("");
  }

  async function load() {
    const fc = await getJson(`/enterprises/${id}/diagram.geojson`);
    context.clearLayers(); units.clearLayers();
    const list = [];
    fillHazards(fc.features.filter((f) => f.properties.layer === "hazard_source").map((f) => f.properties));
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
          html: `<span class="mp-mark fg-${G.colorClass(p.color)}">▲</span>`, iconSize: [14, 14] }) })
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

  function controlRow(c) {
    const row = document.createElement("div");
    row.className = "control";
    row.innerHTML = `<select class="c-type" aria-label="control type">${CONTROL_TYPES.map(([t, label]) =>
      `<option value="${t}">${label}</option>`).join("")}</select>` +
      '<input class="c-measure" aria-label="measure" maxlength="1000"><button type="button" class="c-remove" title="remove">✕</button>';
    row.querySelector(".c-type").value = (c && c.type) || "engineering";
    row.querySelector(".c-measure").value = (c && c.measure) || "";
    row.querySelector(".c-remove").addEventListener("click", () => row.remove());
    $("u-control-rows").appendChild(row);
    return row;
  }
  $("u-add-control").addEventListener("click", () => controlRow().querySelector(".c-measure").focus());

  function openForm(layer) {
    pending = layer;
    const p = (layer.feature && layer.feature.properties) || {};
    const isNew = !layer.feature;
    $("u-name").value = p.name || "";
    $("u-kind").value = p.kind || "other";
    $("u-hazard").value = p.hazard_source_id != null ? String(p.hazard_source_id) : "";
    $("u-method").value = isNew ? "LEC" : (p.method || "");
    $("u-l").value = p.likelihood != null ? p.likelihood : 3;
    $("u-e").value = p.exposure != null ? p.exposure : 6;
    $("u-c").value = p.consequence != null ? p.consequence : 15;
    $("u-s").value = p.severity != null ? p.severity : 3;
    $("u-control-rows").innerHTML = "";
    (p.controls || []).forEach(controlRow);
    $("u-responsible").value = p.responsible || "";
    $("u-phone").value = p.responsible_phone || "";
    $("u-assessed").value = p.assessed_on || "";
    $("u-review").value = p.review_due || "";
    $("u-error").textContent = "";
    toggleMethod();
    $("unit-form").hidden = false;
    $("u-name").focus();
  }
  // Inputs of the chosen method only; none when the unit is registered but not assessed.
  function toggleMethod() {
    const m = $("u-method").value;
    document.querySelectorAll("#unit-form .inputs label").forEach((n) => { n.hidden = !m || !n.classList.contains(m.toLowerCase()); });
  }
  $("u-method").addEventListener("change", toggleMethod);

  function formProperties() {
    const method = $("u-method").value || null;
    const num = (x) => Number($(x).value);
    const text = (x) => $(x).value.trim() || null;
    const props = { name: $("u-name").value, kind: $("u-kind").value,
      hazard_source_id: $("u-hazard").value ? Number($("u-hazard").value) : null, method,
      controls: [...document.querySelectorAll("#u-control-rows .control")]
        .map((r) => ({ type: r.querySelector(".c-type").value, measure: r.querySelector(".c-measure").value.trim() }))
        .filter((c) => c.measure),
      responsible: text("u-responsible"), responsible_phone: text("u-phone"),
      assessed_on: $("u-assessed").value || null, review_due: $("u-review").value || null };
    if (method) props.likelihood = num("u-l");
    if (method === "LEC") { props.exposure = num("u-e"); props.consequence = num("u-c"); }
    if (method === "LS") props.severity = num("u-s");
    return props;
  }

  async function save() {
    const props = formProperties();
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

  // ---- emergency contacts (the book's cover): edited and saved as one list ------------------
  function contactRow(c) {
    const row = document.createElement("div");
    row.className = "contact";
    row.innerHTML = '<input class="k-role" placeholder="职责 role" aria-label="role" maxlength="100">' +
      '<input class="k-name" placeholder="姓名 name" aria-label="name" maxlength="200">' +
      '<input class="k-phone" type="tel" placeholder="电话 phone" aria-label="phone" maxlength="40">' +
      '<button type="button" class="k-remove" title="remove">✕</button>';
    row.querySelector(".k-role").value = (c && c.role) || "";
    row.querySelector(".k-name").value = (c && c.name) || "";
    row.querySelector(".k-phone").value = (c && c.phone) || "";
    row.querySelector(".k-remove").addEventListener("click", () => row.remove());
    $("contact-rows").appendChild(row);
    return row;
  }
  function showContacts(list) {
    $("contact-rows").innerHTML = "";
    list.forEach(contactRow);
  }
  async function loadContacts() {
    showContacts((await getJson(`/api/enterprises/${id}/contacts`)).contacts);
  }
  $("c-add").addEventListener("click", () => contactRow().querySelector(".k-role").focus());
  $("c-save").addEventListener("click", async () => {
    const contacts = [...document.querySelectorAll("#contact-rows .contact")].map((r) => ({
      role: r.querySelector(".k-role").value.trim(), name: r.querySelector(".k-name").value.trim(),
      phone: r.querySelector(".k-phone").value.trim() })).filter((c) => c.role || c.name || c.phone);
    $("c-status").className = "";
    try {
      const saved = await getJson(`/api/enterprises/${id}/contacts`, { method: "PUT",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify({ contacts }) });
      showContacts(saved.contacts);
      $("c-status").textContent = "已保存 saved";
    } catch (err) { $("c-status").className = "error"; $("c-status").textContent = err.message; }
  });
  loadContacts().catch((err) => { $("c-status").className = "error"; $("c-status").textContent = err.message; });

  load().catch((err) => { $("units").querySelector("tbody").innerHTML = `<tr><td>${escapeHtml(err.message)}</td></tr>`; });
  window.diagramMap = map;
})();
