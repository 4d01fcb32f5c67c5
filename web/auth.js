// Sign-in for the browser pages. The server keeps the session in an HttpOnly cookie (set by
// POST /api/auth/session with an API key), so every later fetch, tile and EventSource of this
// origin is authenticated without the key ever being stored by the page.
// `GeoRisk.ready` resolves with the caller ({name, role, enterprise_id, districts}) once signed
// in; the other modules start from it and show only what the role may use.
(function () {
  "use strict";
  const G = window.GeoRisk;
  const { escapeHtml } = G;
  const next = new URLSearchParams(location.search).get("next");
  // Only a path of this site: never an open redirect.
  const target = next && next.startsWith("/") && !next.startsWith("//") ? next : null;

  function signInForm(reason) {
    const box = document.createElement("div");
    box.id = "signin";
    box.innerHTML =
      `<form class="box"><h3>登录 Sign in</h3>` +
      `<p>GeoRisk API key (<code>grk_…</code>): <code>make run</code> prints one per role.</p>` +
      `<input id="signin-key" type="password" autocomplete="off" size="52" placeholder="grk_…" required>` +
      `<button type="submit">Sign in</button><div id="signin-error">${escapeHtml(reason || "")}</div></form>`;
    document.body.appendChild(box);
    box.querySelector("form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const key = document.getElementById("signin-key").value.trim();
      const r = await fetch("/api/auth/session", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ key }),
      });
      if (r.ok) { location.replace(target || location.pathname); return; }
      let detail = `HTTP ${r.status}`;
      try { detail = (await r.json()).detail || detail; } catch (err) { /* not JSON */ }
      document.getElementById("signin-error").textContent = detail;
    });
  }

  function badge(caller) {
    const el = document.createElement("div");
    el.id = "whoami";
    el.className = "panel";
    const scope = caller.enterprise_id ? ` · enterprise ${caller.enterprise_id}`
      : caller.districts ? ` · ${caller.districts.join(", ")}` : "";
    el.innerHTML = `${escapeHtml(caller.role)} · ${escapeHtml(caller.name)}${escapeHtml(scope)} ` +
      `<button type="button" id="signout">Sign out</button>`;
    document.body.appendChild(el);
    el.querySelector("#signout").addEventListener("click", async () => {
      await fetch("/api/auth/session", { method: "DELETE" });
      location.reload();
    });
  }

  G.can = (caller, ...roles) => roles.includes(caller.role);
  G.ready = fetch("/api/auth/session", { cache: "no-store" }).then((r) => r.json()).then((s) => {
    if (!s.signed_in) {
      signInForm("");
      return new Promise(() => {}); // nothing starts until the page reloads signed in
    }
    if (target && location.pathname === "/" && target !== "/") { location.replace(target); }
    badge(s);
    return s;
  });
})();
