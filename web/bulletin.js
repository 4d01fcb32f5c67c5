// The daily bulletin panel (admin and regulators): the latest bulletin or an earlier one, its
// key and suggested entries in rank order with their reasons and what was done, a click to fly
// to the enterprise, a small form to record an action, and the PDF/CSV links. Everything comes
// from /api/bulletins (geo_api/routes/bulletins.py); nothing is computed here.
(function () {
  "use strict";
  const G = window.GeoRisk;
  const $ = (id) => document.getElementById(id);
  const KINDS = [["interview", "约谈"], ["inspection", "检查"], ["enforcement", "执法"], ["other", "其他"]];
  const kindName = (k) => (KINDS.find(([v]) => v === k) || [k, k])[1];
  const SHOWN = 30; // entries listed per list; the PDF and CSV hold them all

  function entryHtml(e) {
    const reasons = e.reasons.map((r) => `<li>${G.escapeHtml(r.text)}</li>`).join("");
    const actions = e.actions.map((a) =>
      `<li class="done">${G.escapeHtml(a.taken_on)} ${G.escapeHtml(kindName(a.kind))}：${G.escapeHtml(a.note)}</li>`).join("");
    const form =
      `<form class="bl-act" data-enterprise="${e.enterprise_id}">` +
      `<select name="kind">${KINDS.map(([v, t]) => `<option value="${v}">${t}</option>`).join("")}</select>` +
      `<input name="note" placeholder="处置情况 note" required maxlength="2000">` +
      `<button type="submit">记录 record</button></form>`;
    return `<li class="bl-entry" data-enterprise="${e.enterprise_id}">` +
      `<a href="#" class="bl-go">${e.rank}. ${G.swatch(e.dynamic_color)} ${G.escapeHtml(e.name)}</a>` +
      ` <small>${G.escapeHtml(G.districtName ? G.districtName(e.district) : e.district || "")}</small>` +
      `<ul class="bl-reasons">${reasons}${actions || '<li class="open">未处置 no action yet</li>'}</ul>${form}</li>`;
  }

  function listHtml(title, entries) {
    const more = entries.length > SHOWN ? `<li>… ${entries.length - SHOWN} more in the PDF/CSV</li>` : "";
    return `<h4>${title} (${entries.length})</h4><ol class="bl-list">` +
      entries.slice(0, SHOWN).map(entryHtml).join("") + more + "</ol>";
  }

  function render(b) {
    const depts = b.departments.map((d) =>
      `<li>${G.escapeHtml(d.department)}: ${d.acted_in_time}/${d.key_entries}` +
      ` ${d.index == null ? "—" : Math.round(d.index * 100) + "%"}</li>`).join("");
    $("bulletin-body").innerHTML =
      `<div id="bulletin-head"><b>${G.escapeHtml(b.number)}</b> · ${G.escapeHtml(b.date)}` +
      ` · <a href="/api/bulletins/${encodeURIComponent(b.number)}.pdf" target="_blank" rel="noopener">PDF</a>` +
      ` · <a href="/api/bulletins/${encodeURIComponent(b.number)}.csv">CSV</a></div>` +
      `<div class="bl-depts">部门指数 department index<ul>${depts || "<li>—</li>"}</ul></div>` +
      listHtml("重点关注 key attention", b.key_attention) +
      listHtml("提示关注 suggested attention", b.suggested_attention);
  }

  let current = null;
  let currentDate = null;
  async function show(number) {
    current = number;
    try {
      const b = await G.getJson(`/api/bulletins/${encodeURIComponent(number)}`);
      currentDate = b.date;
      render(b);
      $("bulletin-error").textContent = "";
    } catch (err) {
      $("bulletin-error").textContent = String(err.message || err);
    }
  }

  async function flyTo(enterpriseId) {
    const f = await G.getJson(`/api/enterprises/${enterpriseId}`);
    if (f.geometry && f.geometry.type === "Point" && G.map) {
      const [lon, lat] = f.geometry.coordinates;
      G.map.setView([lat, lon], Math.max(G.map.getZoom(), 15));
    }
  }

  // Today in the browser's own zone, never before the bulletin's day (a bulletin is dated in
  // the city's zone, which may already be tomorrow for a browser set to UTC).
  function actionDay() {
    const d = new Date();
    const local = `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
    return currentDate && currentDate > local ? currentDate : local;
  }

  async function record(form) {
    const body = {
      enterprise_id: Number(form.dataset.enterprise),
      kind: form.kind.value,
      taken_on: actionDay(),
      note: form.note.value,
    };
    const r = await fetch(`/api/bulletins/${encodeURIComponent(current)}/actions`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (!r.ok) {
      let why = `HTTP ${r.status}`;
      try { const e = await r.json(); why = (e.errors && e.errors[0] && `${e.errors[0].field}: ${e.errors[0].reason}`) || e.detail || why; } catch (e) { /* not JSON */ }
      $("bulletin-error").textContent = `not recorded — ${why}`;
      return;
    }
    await show(current);
  }

  $("bulletin-body").addEventListener("click", (ev) => {
    const go = ev.target.closest(".bl-go");
    if (!go) return;
    ev.preventDefault();
    flyTo(go.closest(".bl-entry").dataset.enterprise).catch((err) => {
      $("bulletin-error").textContent = String(err.message || err);
    });
  });
  $("bulletin-body").addEventListener("submit", (ev) => {
    ev.preventDefault();
    record(ev.target);
  });
  $("bulletin-pick").addEventListener("change", () => show($("bulletin-pick").value));

  G.ready.then(async (caller) => {
    if (!G.can(caller, "admin", "regulator")) { $("bulletin").hidden = true; return; }
    const { items } = await G.getJson("/api/bulletins?limit=60");
    if (!items.length) { $("bulletin-body").textContent = "no bulletin issued yet"; return; }
    $("bulletin-pick").innerHTML = items.map((b) =>
      `<option value="${G.escapeHtml(b.number)}">${G.escapeHtml(b.number)} · ${G.escapeHtml(b.date)}` +
      ` (${b.key_attention}/${b.suggested_attention})</option>`).join("");
    await show(items[0].number);
  }).catch((err) => { $("bulletin-error").textContent = String(err.message || err); });
})();
