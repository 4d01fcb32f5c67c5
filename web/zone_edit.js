// Correcting a zone on the map (issue 16): a caller who may write zones (admin, regulator,
// officer) clicks a zone, opens it in the side form, edits its name, kind, active hours, dwell
// and — with Leaflet-Geoman — its outline, and saves it as a merge patch guarded by the ETag it
// read (If-Match). Someone else's save in between is a 412: the form says so and offers to
// reload; a zone still needed answers 409 with its dependents named. The map itself redraws
// from the change stream like for any other change (app.js), so nothing is drawn here but the
// outline being edited.
(function () {
  "use strict";
  const G = window.GeoRisk;
  const { escapeHtml } = G;
  const WRITERS = ["admin", "regulator", "officer"];
  const KINDS = [["designated_parking", "停车场 parking"], ["school", "学校 school"],
    ["hospital", "医院 hospital"], ["residential", "居民区 residential"],
    ["water_source", "水源地 water source"], ["chemical_park", "化工园区 chemical park"]];
  // What the tests (and anyone curious) can read: the last answer and the form's state.
  const state = G.zoneEdit = { id: null, etag: null, shape: null, lastStatus: null, saved: 0, deleted: 0 };

  function panel() {
    let box = document.getElementById("zone-edit");
    if (box) return box;
    box = document.createElement("section");
    box.id = "zone-edit";
    box.className = "box";
    box.hidden = true;
    box.innerHTML =
      '<h3>编辑区域 Edit zone <span id="z-id"></span></h3>' +
      '<label>名称 name <input id="z-name" maxlength="200"></label>' +
      `<label>类型 kind <select id="z-kind">${KINDS.map(([k, t]) => `<option value="${k}">${escapeHtml(t)}</option>`).join("")}</select></label>` +
      '<label>时段 active hours <input id="z-hours" placeholder="07:00-18:00" maxlength="200"></label>' +
      '<label>允许停留 max dwell (s) <input id="z-dwell" type="number" min="0" step="1"></label>' +
      '<div class="z-buttons"><button type="button" id="z-shape">编辑形状 edit shape</button>' +
      '<button type="button" id="z-save">保存 save</button>' +
      '<button type="button" id="z-delete">删除 delete</button>' +
      '<button type="button" id="z-delete-confirm" hidden>确认删除 confirm delete</button>' +
      '<button type="button" id="z-reload" hidden>重新加载 reload</button>' +
      '<button type="button" id="z-cancel">关闭 close</button></div>' +
      '<div id="z-msg" role="status"></div>';
    document.getElementById("side").prepend(box);
    box.querySelector("#z-shape").addEventListener("click", editShape);
    box.querySelector("#z-save").addEventListener("click", save);
    box.querySelector("#z-delete").addEventListener("click", () => {
      $("z-delete-confirm").hidden = false;  // two steps instead of a blocking confirm()
    });
    box.querySelector("#z-delete-confirm").addEventListener("click", remove);
    box.querySelector("#z-reload").addEventListener("click", () => open(state.id));
    box.querySelector("#z-cancel").addEventListener("click", close);
    return box;
  }
  const $ = (id) => document.getElementById(id);

  function say(text, kind) {
    const el = $("z-msg");
    el.textContent = text;
    el.className = kind || "";
  }

  function dropShape() {
    if (state.shape) { G.map.removeLayer(state.shape); state.shape = null; }
  }

  async function open(id) {
    panel().hidden = false;
    dropShape();
    say("…");
    $("z-reload").hidden = true;
    $("z-delete-confirm").hidden = true;
    const r = await fetch(`/api/zones/${id}`, { cache: "no-store" });
    if (!r.ok) { say(await problem(r), "error"); return; }
    const f = await r.json();
    const p = f.properties;
    Object.assign(state, { id, etag: r.headers.get("ETag"), feature: f });
    $("z-id").textContent = `#${id}`;
    $("z-name").value = p.name || "";
    $("z-kind").value = p.kind;
    $("z-hours").value = p.active_hours || "";
    $("z-dwell").value = p.max_dwell_s == null ? "" : p.max_dwell_s;
    say(`版本 version ${state.etag}`);
  }

  function close() {
    dropShape();
    panel().hidden = true;
    Object.assign(state, { id: null, etag: null, feature: null });
  }

  // The outline, drawn over the tiles, with Geoman's vertex handles.
  function editShape() {
    if (!state.feature || state.shape) return;
    const layer = L.geoJSON(state.feature, { style: { color: "#6d4c41", weight: 2, dashArray: "4 3", fillOpacity: 0.15 } })
      .getLayers()[0];
    layer.addTo(G.map);
    layer.pm.enable({ allowSelfIntersection: false, snappable: false });
    state.shape = layer;
    say("拖动顶点后保存 drag the corners, then save");
  }

  async function problem(r) {
    try { return (await r.json()).detail || `HTTP ${r.status}`; } catch (e) { return `HTTP ${r.status}`; }
  }

  // What the server says when the edit is refused, in the officer's words.
  async function refused(r) {
    state.lastStatus = r.status;
    if (r.status === 412) {
      $("z-reload").hidden = false;
      say("已被他人修改 — 请重新加载 changed by someone else — reload", "error");
      return;
    }
    if (r.status === 409) {
      const body = await r.json().catch(() => ({}));
      const deps = (body.dependents || []).map((d) => `${d.count} ${d.kind}: ${d.ids.join(", ")}`).join("; ");
      say(`仍被引用 still needed: ${deps || body.detail || ""}`, "error");
      return;
    }
    say(await problem(r), "error");
  }

  async function save() {
    const dwell = $("z-dwell").value.trim();
    const patch = { properties: { name: $("z-name").value, kind: $("z-kind").value,
      active_hours: $("z-hours").value.trim() || null, max_dwell_s: dwell === "" ? null : Number(dwell) } };
    if (state.shape) patch.geometry = state.shape.toGeoJSON().geometry;
    const r = await fetch(`/api/zones/${state.id}`, { method: "PATCH",
      headers: { "Content-Type": "application/merge-patch+json", "If-Match": state.etag },
      body: JSON.stringify(patch) });
    if (!r.ok) { await refused(r); return; }
    state.etag = r.headers.get("ETag");
    dropShape();
    const f = await fetch(`/api/zones/${state.id}`, { cache: "no-store" });
    if (f.ok) state.feature = await f.json();
    say(`已保存 saved (version ${state.etag})`, "ok");
    state.lastStatus = r.status;
    state.saved += 1;
  }

  async function remove() {
    $("z-delete-confirm").hidden = true;
    const r = await fetch(`/api/zones/${state.id}`, { method: "DELETE", headers: { "If-Match": state.etag } });
    if (!r.ok) { await refused(r); return; }
    const retired = r.status === 200;
    const id = state.id;
    close();
    panel().hidden = false;
    say(retired ? `已停用 zone ${id} retired: kept for past alerts, gone from map and rules`
      : `已删除 zone ${id} deleted`, "ok");
    state.lastStatus = r.status;
    state.deleted += 1;
  }

  // The zones popup offers the form to those who may write zones.
  G.ready.then((caller) => {
    if (!WRITERS.includes(caller.role) || !G.popups) return;
    G.popups.zones = (p) => {
      const rows = ["name", "kind", "district", "max_dwell_s"].filter((k) => p[k] != null)
        .map((k) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(p[k])}</td></tr>`).join("");
      return `<h4>zone ${escapeHtml(p.id)}</h4><table>${rows}</table>` +
        `<button type="button" class="zone-edit-open" data-zone="${escapeHtml(p.id)}">编辑 edit</button>`;
    };
    document.addEventListener("click", (e) => {
      const id = e.target && e.target.dataset && e.target.dataset.zone;
      if (!id || !e.target.classList.contains("zone-edit-open")) return;
      G.map.closePopup();
      open(Number(id));
    });
  });
  G.openZoneEditor = open;
})();
