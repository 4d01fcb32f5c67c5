// Waybill routes on the map: the electronic waybills on the road or planned for today, each as
// its planned route line, its corridor (light fill), an origin ring and a destination dot,
// styled by state, with a popup of the goods, carrier, vehicle, crew, times and the vehicle's
// live position, and a link to the vehicle's waybill alerts in the alert panel.
//
// Everything is read through the waybills REST collection (GET /api/waybills?bbox=…&active_from=
// …&active_to=…: the catalogue's rule of "on the road or planned for the day"), so the map is
// scoped exactly as the API is (a carrier's key reads its own waybills only) and no shared tile
// cache is involved. The crew comes from /api/crew-members (personal data masked per role by
// the API, never here). Waybills are not a tile layer and have no change feed of their own:
// the view is read again when the map moves, on the live map's "reload", and every minute.
(function () {
  "use strict";
  const G = window.GeoRisk;
  const { escapeHtml, getJson } = G;
  const READERS = ["admin", "regulator", "officer", "enterprise"];
  const LIMIT = 500;          // waybills drawn per view; zooming in shows the rest
  const REFRESH_MS = 60e3;
  // By state. Never the four risk colours: a waybill's state is not a risk level.
  const STYLES = {
    planned: { color: "#6A1B9A", weight: 3, dashArray: "8 6" },
    loading: { color: "#00838F", weight: 4, dashArray: "3 5" },
    in_transit: { color: "#2E7D32", weight: 5 },
    delivered: { color: "#546E7A", weight: 2, opacity: 0.6 },
    cancelled: { color: "#9E9E9E", weight: 2, opacity: 0.6, dashArray: "1 6" },
  };
  const styleOf = (s) => STYLES[s] || STYLES.planned;
  const map = G.map;
  const pane = map.createPane("waybills");
  pane.style.zIndex = 450;  // over the vector tiles and overlays, under markers and popups
  const renderer = L.svg({ pane: "waybills" });
  const group = L.layerGroup();
  // What the tests and the popup read: per waybill id, its feature and what was drawn.
  const state = { on: false, drawn: new Map(), matched: 0, loads: 0, seq: 0, timer: null, vehicle: null,
    popup: null, opening: 0, found: null };
  let moveTimer = null;

  function dayRange() {
    const now = new Date();
    const start = new Date(now.getFullYear(), now.getMonth(), now.getDate());
    return [start.toISOString(), new Date(start.getTime() + 86400e3).toISOString()];
  }
  function bbox() {
    const b = map.getBounds().pad(0.2);
    const c = (v, lim) => Math.max(-lim, Math.min(lim, v)).toFixed(6);
    return [c(b.getWest(), 180), c(b.getSouth(), 90), c(b.getEast(), 180), c(b.getNorth(), 90)].join(",");
  }
  const toLatLng = (pt) => (pt && pt.type === "Point" ? [pt.coordinates[1], pt.coordinates[0]] : null);

  function draw(features) {
    group.clearLayers();
    state.drawn.clear();
    features.forEach((f) => {
      const p = f.properties, st = styleOf(p.state);
      const layers = {};
      const corridor = p.corridor || (f.geometry && f.geometry.type !== "LineString" ? f.geometry : null);
      if (corridor) {
        const depth = corridor.type === "MultiPolygon" ? 2 : 1;
        layers.corridor = L.polygon(L.GeoJSON.coordsToLatLngs(corridor.coordinates, depth), {
          renderer, color: st.color, weight: 1, opacity: 0.5, fillColor: st.color, fillOpacity: 0.08,
          // A corridor is kilometres wide: clicks inside it belong to what lies under it (an
          // enterprise, a zone); the route line and the two ends open the waybill.
          interactive: false });
      }
      if (f.geometry && f.geometry.type === "LineString") {
        layers.route = L.polyline(L.GeoJSON.coordsToLatLngs(f.geometry.coordinates, 0),
          Object.assign({ renderer, opacity: 0.9 }, st));
      }
      const o = toLatLng(p.origin), d = toLatLng(p.destination);
      if (o) layers.origin = L.circleMarker(o, { renderer, radius: 6, color: st.color, weight: 3, fillColor: "#fff", fillOpacity: 1 });
      if (d) layers.destination = L.circleMarker(d, { renderer, radius: 6, color: "#222", weight: 1.5, fillColor: st.color, fillOpacity: 1 });
      Object.values(layers).forEach((l) => { l.on("click", (e) => open(f, e.latlng)); group.addLayer(l); });
      state.drawn.set(f.id, Object.assign({ feature: f }, layers));
    });
  }

  function note(text, warn) {
    const el = document.getElementById("wb-note");
    el.textContent = text;
    el.classList.toggle("warn", Boolean(warn));
  }

  async function load() {
    if (!state.on) return;
    const seq = ++state.seq;
    const [from, to] = dayRange();
    const url = `/api/waybills?bbox=${bbox()}&active_from=${encodeURIComponent(from)}` +
      `&active_to=${encodeURIComponent(to)}&limit=${LIMIT}`;
    try {
      const fc = await getJson(url);
      if (seq !== state.seq || !state.on) return;  // a later view won
      draw(fc.features || []);
      state.matched = fc.numberMatched;
      state.loads += 1;
      const n = (fc.features || []).length;
      note(n < fc.numberMatched ? `${n} / ${fc.numberMatched} — 放大查看全部 zoom in for all` : `${n} 条 in view`);
    } catch (err) {
      // What was drawn stays, marked stale: an unreachable server is not an empty road.
      note(`⚠ 未更新 stale — ${err.message || err}`, true);
    }
  }

  function setOn(on) {
    state.on = on;
    clearInterval(state.timer);
    if (on) {
      group.addTo(map);
      state.timer = setInterval(load, REFRESH_MS);
      load();
    } else {
      map.removeLayer(group);
      hideVehicle();
      note("");
    }
  }

  // ---- the popup -------------------------------------------------------------------------------
  const day = (iso) => G.shortTime(iso);
  const crew = (id) => (id ? getJson(`/api/crew-members/${id}`).then((f) => f.properties).catch(() => null) : null);
  function crewHtml(m, id) {
    if (!id) return "<i>无 none</i>";
    if (!m) return "—";
    const cert = m.certificate_status && m.certificate_status !== "valid"
      ? ` <b class="wb-bad">证件${m.certificate_status === "expired" ? "过期 expired" : "缺失 missing"}</b>` : "";
    return `<span class="wb-crew">${escapeHtml(m.name)}</span>${cert}` +
      (m.phone ? ` · <span class="wb-phone">${escapeHtml(m.phone)}</span>` : "");
  }

  async function popupHtml(f) {
    const p = f.properties;
    const caller = await G.ready;
    const [carrier, driver, escort, vehicle, alerts] = await Promise.all([
      p.carrier_id ? getJson(`/api/carriers?enterprise_id=${p.carrier_id}`)
        .then((fc) => fc.features[0] && fc.features[0].properties).catch(() => null) : null,
      crew(p.driver_id),
      crew(p.escort_id),
      // By the carrier's list: a vehicle registered in another district is not an error here.
      p.vehicle_id && p.carrier_id ? getJson(`/api/vehicles?carrier_id=${p.carrier_id}`)
        .then((fc) => fc.features.find((v) => v.id === p.vehicle_id) || null).catch(() => null) : null,
      p.vehicle_id ? getJson(`/api/alerts?f=json&vehicle_id=${p.vehicle_id}&limit=500`)
        .then((b) => b.alerts.filter((a) => G.WAYBILL_RULES.includes(a.rule))).catch(() => null) : null,
    ]);
    const st = styleOf(p.state);
    const line = `<svg width="26" height="10" class="wb-key"><line x1="1" y1="5" x2="25" y2="5" stroke="${st.color}"` +
      ` stroke-width="${Math.min(st.weight, 5)}"${st.dashArray ? ` stroke-dasharray="${st.dashArray}"` : ""}/></svg>`;
    let live = "<i>无定位 no fix</i>";
    state.found = null;
    if (vehicle && vehicle.geometry) {
      const [lon, lat] = vehicle.geometry.coordinates;
      const v = vehicle.properties;
      live = `<span class="wb-live">${lat.toFixed(5)}, ${lon.toFixed(5)}</span> · ${escapeHtml(day(v.last_fix_at))}` +
        (v.speed_kmh != null ? ` · ${escapeHtml(Math.round(v.speed_kmh))} km/h` : "") +
        ` <a href="#" class="wb-go" data-lat="${lat}" data-lon="${lon}">定位 show</a>`;
      state.found = [lat, lon, p.plate];  // marked once the popup is open
    }
    let alertLine = "";
    if (alerts) {
      const open = alerts.filter((a) => a.status === "new" || a.status === "acknowledged").length;
      const text = `${alerts.length} 条运单类告警 waybill alerts (${open} 未结 open)`;
      const panel = G.alertPanel && G.can(caller, "admin", "regulator", "officer");
      alertLine = `<div class="wb-alerts">` + (panel
        ? `<a href="#" class="wb-alerts-link" data-vehicle="${p.vehicle_id}" data-plate="${escapeHtml(p.plate || "")}">${escapeHtml(text)} → 告警面板 alert panel</a>`
        : escapeHtml(text)) + "</div>";
    }
    const row = (k, v) => `<tr><th>${k}</th><td>${v}</td></tr>`;
    return `<h4 class="wb-code">${escapeHtml(p.code)}</h4>` +
      `<div class="wb-state" data-state="${escapeHtml(p.state)}">${line} ${escapeHtml(G.label(G.WAYBILL_STATES, p.state))}` +
      (p.state_changed_at ? ` · ${escapeHtml(day(p.state_changed_at))}` : "") + "</div>" +
      `<table class="wb-table">` +
      row("货物 goods", `<span class="wb-goods">${escapeHtml(p.substance_name)} · UN ${escapeHtml(p.un_number)} · ` +
        `${escapeHtml(p.hazmat_class)} 类 class · ${escapeHtml(p.quantity_t)} t</span>`) +
      row("承运 carrier", escapeHtml(carrier ? carrier.name : `#${p.carrier_id}`)) +
      row("车辆 vehicle", `<span class="wb-plate">${escapeHtml(p.plate || "—")}</span>`) +
      row("驾驶员 driver", crewHtml(driver, p.driver_id)) +
      row("押运员 escort", crewHtml(escort, p.escort_id)) +
      row("计划 planned", `${escapeHtml(day(p.planned_departure))} → ${escapeHtml(day(p.planned_arrival))}`) +
      row("实时位置 live", live) +
      "</table>" + alertLine;
  }

  function showVehicle(lat, lon, plate) {
    hideVehicle();
    state.vehicle = L.circleMarker([lat, lon], { renderer, radius: 8, color: "#fff", weight: 3, fillColor: "#111", fillOpacity: 1 })
      .bindTooltip(plate || "", { permanent: false }).addTo(group);
  }
  function hideVehicle() {
    if (state.vehicle) { group.removeLayer(state.vehicle); state.vehicle = null; }
  }

  // Opened once its content is known, so the pan that keeps it clear of the floating panels
  // (alert panel left, side column right) measures the whole popup.
  function open(f, at) {
    const opened = ++state.opening;
    const show = (html) => {
      if (opened !== state.opening) return;  // a later click won
      const popup = L.popup({ maxWidth: 380, className: "wb-popup", autoPanPaddingTopLeft: L.point(340, 60),
        autoPanPaddingBottomRight: L.point(280, 20) }).setLatLng(at).setContent(html).openOn(map);
      state.popup = f.id;
      popup.on("remove", () => { if (state.popup === f.id) { state.popup = null; hideVehicle(); } });
      if (state.found) showVehicle(...state.found);
    };
    popupHtml(f).then((html) => show(`<div class="popup wb">${html}</div>`))
      .catch((err) => show(`<div class="popup">${escapeHtml(err.message || err)}</div>`));
  }

  map.getContainer().addEventListener("click", (e) => {
    const go = e.target.closest && e.target.closest(".wb-go, .wb-alerts-link");
    if (!go) return;
    e.preventDefault();
    if (go.classList.contains("wb-go")) map.setView([Number(go.dataset.lat), Number(go.dataset.lon)], Math.max(map.getZoom(), 14));
    else G.alertPanel.showVehicle(Number(go.dataset.vehicle), go.dataset.plate);
  });

  // ---- the switch in the layer panel --------------------------------------------------------
  function legend() {
    return Object.keys(STYLES).map((s) => {
      const st = STYLES[s];
      return `<span class="wb-leg"><svg width="22" height="8"><line x1="1" y1="4" x2="21" y2="4" stroke="${st.color}"` +
        ` stroke-width="${Math.min(st.weight, 4)}"${st.dashArray ? ` stroke-dasharray="${st.dashArray}"` : ""}/></svg>` +
        ` ${escapeHtml(G.WAYBILL_STATES[s][0])}</span>`;
    }).join("");
  }

  G.ready.then((caller) => {
    if (!G.can(caller, ...READERS)) return;
    const wanted = new URLSearchParams(location.search).get("layers");
    const on = wanted ? wanted.split(",").includes("waybills") : true;
    const box = document.getElementById("chain-layers");
    box.innerHTML = `<label title="电子运单：在途或今日计划的运单 waybills on the road or planned for today">` +
      `<input type="checkbox" id="waybills-on" data-overlay="waybills"${on ? " checked" : ""}> 电子运单 Waybill routes (today)</label>` +
      `<div id="wb-legend">${legend()}</div><div id="wb-note"></div>`;
    document.getElementById("waybills-on").addEventListener("change", (e) => setOn(e.target.checked));
    map.on("moveend", () => { clearTimeout(moveTimer); moveTimer = setTimeout(load, 250); });
    if (G.onMapChange) G.onMapChange((changes) => { if (changes === null) load(); });
    setOn(on);
  });
  G.waybills = Object.assign(state, { load, setOn, STYLES });
})();
