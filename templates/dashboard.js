// Polls this page's JSON each second and writes what changed as text (never as markup). When a
// study's records change, the report part of the page is fetched again from the server.
(function () {
  const url = document.body.dataset.poll;
  if (!url) return;
  const pct = (p) => (p === null || p === undefined) ? "-" : p.toFixed(1) + " %";
  const claims = (s) => s.claims.length === 0 ? "none" : s.claims.map((c) =>
    c.board + ": " + c.config + ", lease " + Math.round(c.lease_left_s) + " s").join("; ");
  const rec = (s) => s.recommendation === null ? "none yet" :
    s.recommendation.config + ": " + s.recommendation.energy_j.toFixed(1) + " J" + (s.recommendation.confirmed ? "" : " (not confirmed)");
  const words = { waiting: "waiting for workers", running: "running", stalled: "no worker now", done: "done", unreadable: "unreadable" };
  function fill(root, s) {
    const set = (field, text) => root.querySelectorAll('[data-field="' + field + '"]').forEach((e) => { e.textContent = text; });
    set("state", words[s.state] || s.state);
    root.querySelectorAll('[data-field="state"]').forEach((e) => { e.className = "state-" + s.state; });
    set("measured", s.measured + "/" + s.budget);
    set("boards", String(s.boards));
    set("claims", claims(s));
    set("recommendation", rec(s));
    set("saving", pct(s.saving_pct) + " (frequencies only: " + pct(s.saving_same_batch_pct) + ")");
    set("board_time", s.board_time_s === null ? "-" : (s.board_time_s / 60).toFixed(1) + " min");
  }
  async function redraw() {
    const r = await fetch(location.pathname, { cache: "no-store" });
    const doc = new DOMParser().parseFromString(await r.text(), "text/html");
    const fresh = doc.getElementById("report"), old = document.getElementById("report");
    if (fresh && old) old.replaceWith(fresh);
  }
  async function poll() {
    try {
      const r = await fetch(url, { cache: "no-store" });
      const data = await r.json();
      if (Array.isArray(data)) {
        const rows = Array.from(document.querySelectorAll("tr[data-study]"));
        if (rows.length !== data.length) { location.reload(); return; }
        data.forEach((s, i) => { if (rows[i].dataset.study === s.name) fill(rows[i], s); });
      } else {
        fill(document, data);
        const report = document.getElementById("report");
        if (report && report.dataset.records !== String(data.records)) await redraw();
      }
    } catch (e) { /* the server is gone or busy: try again */ }
    setTimeout(poll, 1000);
  }
  setTimeout(poll, 1000);
  // Sortable tables: click a heading; numbers sort by value.
  document.addEventListener("click", (ev) => {
    const th = ev.target.closest("th[data-sort]");
    if (!th) return;
    const table = th.closest("table"), body = table.tBodies[0], i = th.cellIndex;
    const up = th.dataset.dir !== "up";
    th.dataset.dir = up ? "up" : "down";
    const key = (tr) => { const c = tr.cells[i]; return c.dataset.v !== undefined ? Number(c.dataset.v) : c.textContent; };
    const rows = Array.from(body.rows).sort((a, b) => { const x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1); });
    rows.forEach((r) => body.appendChild(r));
  });
})();
