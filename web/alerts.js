// Live alert panel. Prefers Server-Sent Events (GET /api/alerts/stream) when the server offers
// them; otherwise polls GET /api/alerts?since= every 2 s and keeps checking for the stream, so
// a server upgrade switches the panel to SSE without a reload. Either way the list is keyed by
// alert id and refreshed from the same JSON, so an event only says "something changed".
(function () {
  "use strict";
  const G = window.GeoRisk;
  const { escapeHtml } = G;
  const STREAM = "/api/alerts/stream";
  const alerts = new Map();
  let since = null, source = null, pollTimer = null, lastProbe = 0;
  const $ = (id) => document.getElementById(id);
  const RULES = { illegal_parking: "违停 illegal parking", overspeed: "超速 overspeed",
    forbidden_zone_parking: "禁区停车 parking in a forbidden zone",
    terminal_emergency: "紧急报警 emergency button", terminal_overspeed: "终端超速 terminal overspeed",
    terminal_fatigue: "疲劳驾驶 fatigue", terminal_antenna_cut: "天线断开 GNSS antenna cut",
    terminal_power_cut: "主电源断电 main power cut" };

  function render() {
    const items = [...alerts.values()].sort((a, b) => (b.created_at > a.created_at ? 1 : -1)).slice(0, 100);
    $("alerts-list").innerHTML = items.map((a) => {
      const when = (a.episode_start || a.created_at || "").replace("T", " ").slice(0, 19);
      const where = a.zone_name ? ` @ ${escapeHtml(a.zone_name)}` : "";
      let actions = "";
      if (a.status === "new") actions = `<button data-ack="${a.id}">确认 Acknowledge</button>`;
      if (a.status === "acknowledged") {
        actions = `<input data-note="${a.id}" placeholder="note" size="10">` +
          `<button data-dispose="${a.id}" data-outcome="disposed">处置 Dispose</button>` +
          `<button data-dispose="${a.id}" data-outcome="false_alarm">误报 False alarm</button>`;
      }
      return `<li class="${escapeHtml(a.status)}" data-alert="${a.id}" data-vehicle="${a.vehicle_id}">` +
        `${G.swatch(sevColor(a.severity))} <b>${escapeHtml(RULES[a.rule] || a.rule)}</b>${where}<br>` +
        `${escapeHtml(a.plate || "vehicle " + a.vehicle_id)} · ${escapeHtml(when)} · ` +
        `<span class="status">${escapeHtml(a.status)}</span><br>${actions}</li>`;
    }).join("") || "<li>no alerts</li>";
  }
  const sevColor = (s) => ({ extreme: "red", severe: "orange", moderate: "yellow" }[s] || "blue");

  function merge(list) {
    list.forEach((a) => {
      alerts.set(a.id, a);
      if (!since || a.updated_at > since) since = a.updated_at;
    });
    if (list.length) render();
  }

  async function poll() {
    const q = since ? `since=${encodeURIComponent(since)}&limit=500` : "limit=50";
    try {
      const body = await G.getJson(`/api/alerts?f=json&${q}`);
      merge(body.alerts || []);
      $("alerts-error").textContent = "";
    } catch (err) { $("alerts-error").textContent = String(err.message || err); }
  }

  async function streamAvailable() {
    // Ask the OpenAPI document (never a blind request: a 404 would be a console error).
    return G.hasPath(STREAM);
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
    source.onopen = () => poll(); // whatever changed between the first read and the connection
    source.onerror = () => { if (source.readyState === EventSource.CLOSED) { source = null; usePolling(); } };
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

  G.ready.then((caller) => {
    if (!G.can(caller, "admin", "regulator", "officer")) { $("alerts").hidden = true; return; }
    poll().then(async () => {
      lastProbe = Date.now();
      if (await streamAvailable()) useSse(); else usePolling();
    });
  });
  G.alerts = alerts;
})();
