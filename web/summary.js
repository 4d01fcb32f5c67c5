// District summary: enterprises by colour per district as stacked SVG bars (no chart library:
// four colours and eight districts do not need one).
(function () {
  "use strict";
  const G = window.GeoRisk;
  const ORDER = ["red", "orange", "yellow", "blue", "grey"];
  function render(summary) {
    const rows = summary.districts || [];
    const max = Math.max(1, ...rows.map((d) => ORDER.reduce((s, c) => s + (d.counts[c] || 0), 0)));
    const w = 230, bar = 14, gap = 5, label = 70, h = rows.length * (bar + gap);
    const parts = rows.map((d, i) => {
      let x = label;
      const y = i * (bar + gap);
      const total = ORDER.reduce((s, c) => s + (d.counts[c] || 0), 0);
      const rects = ORDER.map((c) => {
        const width = ((d.counts[c] || 0) / max) * (w - label - 30);
        const r = `<rect x="${x.toFixed(1)}" y="${y}" width="${width.toFixed(1)}" height="${bar}" fill="${G.COLORS[c]}"><title>${c}: ${d.counts[c] || 0}</title></rect>`;
        x += width;
        return r;
      }).join("");
      const name = G.escapeHtml((G.districtNames && G.districtNames[d.district]) || d.district);
      return `<text x="0" y="${y + bar - 3}" font-size="10">${name.slice(0, 10)}</text>${rects}` +
        `<text x="${(x + 3).toFixed(1)}" y="${y + bar - 3}" font-size="10">${total}</text>`;
    }).join("");
    document.getElementById("summary-chart").innerHTML =
      `<svg id="summary-svg" width="${w}" height="${h}" role="img" aria-label="enterprises by colour and district">${parts}</svg>`;
  }
  let last = null;
  G.ready.then((caller) => {
    if (!G.can(caller, "admin", "regulator")) {
      document.getElementById("summary").hidden = true;
      return new Promise(() => {});
    }
    return G.getJson("/api/risk/summary");
  }).then((s) => { last = s; render(s); })
    .catch((err) => { document.getElementById("summary-chart").textContent = String(err); });
  // Colours change while the map is open: follow the enterprises layer's changes (a burst is
  // one fetch, at most every 2 s).
  let again = null;
  G.onMapChange && G.onMapChange((changes) => {
    if (!last || again) return;
    if (changes && !changes.some((c) => c.layer === "enterprises")) return;
    again = setTimeout(() => {
      again = null;
      G.getJson("/api/risk/summary").then((s) => { last = s; render(s); }).catch(() => {});
    }, 2000);
  });
  // District names arrive with the district tiles; redraw once they are known.
  setTimeout(() => { if (last) render(last); }, 2500);
})();
