// Live alert panel and the officer's queue. Prefers Server-Sent Events (GET /api/alerts/stream)
// when the server offers them; otherwise polls GET /api/alerts?since= every 2 s and keeps
// checking for the stream, so a server upgrade switches the panel to SSE without a reload.
// Either way the list is keyed by alert id and refreshed from the same JSON, so an event only
// says "something changed".
//
// The queue: a department selector (keys carry no department, so it is the officer's choice,
// remembered in localStorage) reads GET /api/alerts?department=…; the counts per status and the
// disposal rate at the top are GET /api/alerts/stats?department=… (the database's figures, not
// a count of what happens to be loaded). Every alert the page knows stays in memory and the
// list is that memory filtered, so a lost connection never empties it: the panel is marked
// stale and keeps showing what it last knew (offline never hides an alarm).
(function () {
  "use strict";
  const G = window.GeoRisk;
  const { escapeHtml } = G;
  const STREAM = "/api/alerts/stream";
  const SHOWN = 200;      // list entries drawn; the counts above are the queue's whole size
  const QUEUE_LIMIT = 500; // alerts read when a queue is chosen
  const DEPT_KEY = "georisk.alerts.department";
  const alerts = new Map();
  let since = null, source = null, pollTimer = null, lastProbe = 0, statsTimer = null;
  // department: "" = every alert the key may read; vehicle: {id, plate, rules} from a waybill.
  const view = { department: "", vehicle: null, matched: null, stats: null, stale: false, lastOk: null };
  const $ = (id) => document.getElementById(id);

  function storedDepartment() {
    let d = "";
    try { d = localStorage.getItem(DEPT_KEY) || ""; } catch (e) { /* storage disabled */ }
    return G.DEPARTMENTS.some(([code]) => code === d) ? d : "";
  }
  function storeDepartment(d) {
    try { if (d) localStorage.setItem(DEPT_KEY, d); else localStorage.removeItem(DEPT_KEY); } catch (e) { /* ignore */ }
  }

  function inView(a) {
    if (view.vehicle) return a.vehicle_id === view.vehicle.id && view.vehicle.rules.includes(a.rule);
    return !view.department || (a.departments || []).includes(view.department);
  }

  // Deadlines of what is still open: acknowledge while new, dispose until closed.
  function deadlines(a, now) {
    const out = [];
    const due = (what, at) => {
      if (!at) return;
      const late = Date.parse(at) < now;
      out.push({ late, html: `<span class="due${late ? " overdue" : ""}">${what} ` +
        `${late ? "逾期 overdue" : "限 due"} ${escapeHtml(G.shortTime(at))}</span>` });
    };
    if (a.status === "new") due("确认 ack", a.ack_deadline);
    if (a.status === "new" || a.status === "acknowledged") due("处置 dispose", a.dispose_deadline);
    return out;
  }

  function itemHtml(a, now) {
    const where = a.zone_name ? ` @ ${escapeHtml(a.zone_name)}` : "";
    const due = deadlines(a, now);
    const late = due.some((d) => d.late);
    let actions = "";
    if (a.status === "new") actions = `<button data-ack="${a.id}">确认 Acknowledge</button>`;
    if (a.status === "acknowledged") {
      actions = `<input data-note="${a.id}" placeholder="处置说明 note" size="10">` +
        `<button data-dispose="${a.id}" data-outcome="disposed">处置 Dispose</button>` +
        `<button data-dispose="${a.id}" data-outcome="false_alarm">误报 False alarm</button>`;
    }
    const depts = (a.departments || []).map((d) => G.label(DEPT_NAMES, d)).join(", ");
    const escalated = a.escalation_level > 0 ? ` · <b class="escalated">升级 escalated ${a.escalation_level}</b>` : "";
    return `<li class="${escapeHtml(a.status)}${late ? " overdue" : ""}" data-alert="${a.id}"` +
      ` data-vehicle="${a.vehicle_id}" data-status="${escapeHtml(a.status)}">` +
      `${G.swatch(sevColor(a.severity))} <b class="rule">${escapeHtml(G.ruleLabel(a.rule))}</b>${where}<br>` +
      `${escapeHtml(a.plate || "vehicle " + a.vehicle_id)} · ${escapeHtml(G.shortTime(a.episode_start || a.created_at))} · ` +
      `<span class="status">${escapeHtml(G.label(G.ALERT_STATUSES, a.status))}</span>${escalated}` +
      (due.length ? `<br>${due.map((d) => d.html).join(" · ")}` : "") +
      (depts ? `<br><small class="depts">→ ${escapeHtml(depts)}</small>` : "") +
      (actions ? `<br>${actions}` : "") + "</li>";
  }
  const DEPT_NAMES = Object.fromEntries(G.DEPARTMENTS.map(([c, zh, en]) => [c, [zh, en]]));
  const sevColor = (s) => ({ extreme: "red", severe: "orange", moderate: "yellow" }[s] || "blue");

  function render() {
    const now = Date.now();
    const items = [...alerts.values()].filter(inView)
      .sort((a, b) => (b.created_at > a.created_at ? 1 : b.created_at < a.created_at ? -1 : b.id - a.id));
    $("alerts-list").innerHTML = items.slice(0, SHOWN).map((a) => itemHtml(a, now)).join("") ||
      "<li class=\"none\">无告警 no alerts</li>";
    const overdue = items.filter((a) => deadlines(a, now).some((d) => d.late)).length;
    const more = items.length > SHOWN ? ` (${SHOWN} shown)` : "";
    $("alerts-count").innerHTML = `<b>${items.length}</b> 条 alerts${more}` +
      (overdue ? ` · <span class="overdue-count">${overdue} 逾期 overdue</span>` : "");
    $("alerts-count").dataset.count = String(items.length);
  }

  function renderStats() {
    const s = view.stats;
    if (!s) { $("alerts-counts").innerHTML = ""; $("alerts-rate").textContent = ""; return; }
    $("alerts-counts").innerHTML = Object.keys(G.ALERT_STATUSES).map((st) =>
      `<span class="count" data-status="${st}">${escapeHtml(G.ALERT_STATUSES[st][0])}` +
      ` <small>${escapeHtml(G.ALERT_STATUSES[st][1])}</small> <b>${s.by_status[st] || 0}</b></span>`).join("");
    const pct = (x) => (x == null ? "—" : `${Math.round(x * 1000) / 10}%`);
    const mins = (x) => (x == null ? "—" : `${Math.round(x / 60)} min`);
    $("alerts-rate").innerHTML = `处置率 disposal rate <b class="rate">${pct(s.disposal_rate_of_all)}</b>` +
      ` <small>(${s.by_status.disposed || 0}/${s.total})</small>` +
      ` · 确认用时 ack median ${mins(s.time_to_acknowledge_s.median)}`;
  }

  async function loadStats() {
    const q = view.department ? `?department=${encodeURIComponent(view.department)}` : "";
    const dept = view.department;
    try {
      const body = await G.getJson(`/api/alerts/stats${q}`);
      if (dept !== view.department) return;  // the selector moved on meanwhile
      view.stats = body.overall;
      renderStats();
    } catch (err) { stale(err); }
  }
  // A burst of changes is one statistics read.
  function statsSoon() {
    if (!statsTimer) statsTimer = setTimeout(() => { statsTimer = null; loadStats(); }, 2000);
  }

  function stale(err) {
    view.stale = true;
    $("alerts").classList.add("stale");
    const at = view.lastOk ? G.shortTime(view.lastOk) : "—";
    $("alerts-stale").hidden = false;
    $("alerts-stale").textContent = `⚠ 离线 offline — 显示 ${at} 时已知告警 showing what was known at ${at}`;
    $("alerts-error").textContent = err ? String(err.message || err) : "";
  }
  function fresh() {
    view.lastOk = new Date().toISOString();
    if (!view.stale) return;
    view.stale = false;
    $("alerts").classList.remove("stale");
    $("alerts-stale").hidden = true;
    $("alerts-error").textContent = "";
  }

  function merge(list) {
    list.forEach((a) => {
      alerts.set(a.id, a);
      if (!since || a.updated_at > since) since = a.updated_at;
    });
    if (list.length) { render(); statsSoon(); }
  }

  async function poll() {
    const q = since ? `since=${encodeURIComponent(since)}&limit=500` : "limit=50";
    try {
      const body = await G.getJson(`/api/alerts?f=json&${q}`);
      merge(body.alerts || []);
      fresh();
    } catch (err) { stale(err); }
  }

  // The chosen queue (or vehicle) read whole, beyond the recent alerts the feed brings.
  async function loadView() {
    let q = `f=json&limit=${QUEUE_LIMIT}`;
    if (view.vehicle) q += `&vehicle_id=${view.vehicle.id}`;
    else if (view.department) q += `&department=${encodeURIComponent(view.department)}`;
    else q = "f=json&limit=50";
    try {
      const body = await G.getJson(`/api/alerts?${q}`);
      merge(body.alerts || []);
      view.matched = body.numberMatched;
      fresh();
    } catch (err) { stale(err); }
    render();
  }

  function setDepartment(d) {
    view.department = d;
    view.vehicle = null;
    view.stats = null;
    storeDepartment(d);
    $("alerts-department").value = d;
    renderFilter();
    render();  // at once, from what is known: works offline too
    renderStats();
    return Promise.all([loadView(), loadStats()]);
  }

  // From a waybill's popup (waybills.js): this vehicle's alerts of the waybill rules.
  function showVehicle(id, plate) {
    view.vehicle = { id: Number(id), plate: plate || "", rules: G.WAYBILL_RULES };
    renderFilter();
    render();
    return loadView();
  }
  function renderFilter() {
    const box = $("alerts-filter");
    if (!view.vehicle) { box.hidden = true; box.innerHTML = ""; return; }
    box.hidden = false;
    box.innerHTML = `车辆 vehicle <b>${escapeHtml(view.vehicle.plate || view.vehicle.id)}</b>` +
      ` · 运单类告警 waybill rules <button type="button" id="alerts-filter-clear">✕ 全部 back to queue</button>`;
  }

  function useSse() {
    clearInterval(pollTimer);
    source = new EventSource(STREAM);
    $("alerts-mode").textContent = "· SSE";
    // `alert` events carry the alert itself; anything else (e.g. `lagged`) means "re-read".
    const onAlert = (ev) => {
      try {
        const d = JSON.parse(ev.data);
        const a = d && d.properties ? d.properties : d;
        if (a && a.id && a.status) { merge([a]); return; }
      } catch (e) { /* not JSON: fall through to a re-read */ }
      poll();
    };
    source.onmessage = onAlert;
    source.addEventListener("alert", onAlert);
    source.addEventListener("lagged", () => poll());
    source.onopen = () => { poll(); loadStats(); }; // whatever changed while not connected
    source.onerror = () => {
      stale(new Error("alert stream interrupted — reconnecting"));
      if (source.readyState === EventSource.CLOSED) { source = null; usePolling(); }
    };
  }

  function usePolling() {
    $("alerts-mode").textContent = "· polling 2 s";
    clearInterval(pollTimer);
    pollTimer = setInterval(async () => {
      await poll();
      if (Date.now() - lastProbe > 30000) {
        lastProbe = Date.now();
        const res = await fetch("/openapi.json", { cache: "no-store" }).then((r) => r.json()).catch(() => ({}));
        if (res.paths && res.paths[STREAM]) useSse();
      }
    }, 2000);
  }

  async function act(url, init) {
    try {
      const f = await G.getJson(url, Object.assign({ method: "POST" }, init));
      merge([f.properties]);
      await loadStats();
    } catch (err) { $("alerts-error").textContent = String(err.message || err); }
  }

  $("alerts-list").addEventListener("click", (e) => {
    const t = e.target;
    if (t.dataset.ack) act(`/api/alerts/${t.dataset.ack}/ack`);
    if (t.dataset.dispose) {
      const note = document.querySelector(`input[data-note="${t.dataset.dispose}"]`);
      act(`/api/alerts/${t.dataset.dispose}/dispose`, {
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ outcome: t.dataset.outcome, note: note ? note.value : null }),
      });
    }
  });
  $("alerts-filter").addEventListener("click", (e) => {
    if (e.target.id === "alerts-filter-clear") setDepartment(view.department);
  });

  const select = $("alerts-department");
  select.innerHTML = `<option value="">全部 all departments</option>` + G.DEPARTMENTS.map(([code, zh, en]) =>
    `<option value="${escapeHtml(code)}">${escapeHtml(zh)} ${escapeHtml(en)}</option>`).join("");
  select.addEventListener("change", () => setDepartment(select.value));
  setInterval(render, 30000);  // deadlines pass without any new data

  G.ready.then((caller) => {
    if (!G.can(caller, "admin", "regulator", "officer")) { $("alerts").hidden = true; return; }
    setDepartment(storedDepartment()).then(poll).then(async () => {
      lastProbe = Date.now();
      if (await streamAvailable()) useSse(); else usePolling();
    });
  });
  const streamAvailable = () => G.hasPath(STREAM);  // never a blind request: a 404 is a console error
  G.alerts = alerts;
  G.alertPanel = { view, setDepartment, showVehicle, render };
})();
