// fwd status page: read-only, refreshes from /v1/dashboard. Every value
// from the configuration or the kernel is inserted as text nodes (never as
// markup), so an interface alias or rule comment cannot inject any.
"use strict";
(function () {
  const EVERY = 3000;
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    return e;
  }
  const fmtNum = (n) => Number(n || 0).toLocaleString("en-US");
  function fmtRate(bps) {
    const u = ["bit/s", "kbit/s", "Mbit/s", "Gbit/s"]; let v = (bps || 0) * 8, i = 0;
    while (v >= 1000 && i < u.length - 1) { v /= 1000; i++; }
    return v.toFixed(v < 10 && i > 0 ? 1 : 0) + " " + u[i];
  }
  function fmtDur(s) {
    s = Math.max(0, Math.floor(s)); const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    return d ? d + "d " + h + "h" : h ? h + "h " + m + "m" : m + "m " + (s % 60) + "s";
  }
  const fmtTime = (t) => t ? new Date(t).toLocaleString() : "–";

  function spark(series, cls) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "spark"); svg.setAttribute("viewBox", "0 0 120 22"); svg.setAttribute("preserveAspectRatio", "none");
    const pts = (series || []).slice(-120);
    for (const [s, c] of [[pts, cls || ""]]) {
      if (!s.length) continue;
      const max = Math.max(...s, 1e-9), step = s.length > 1 ? 120 / (s.length - 1) : 0;
      const pl = document.createElementNS(ns, "polyline");
      pl.setAttribute("points", s.map((v, i) => (i * step).toFixed(1) + "," + (21 - 20 * v / max).toFixed(1)).join(" "));
      if (c) pl.setAttribute("class", c);
      svg.append(pl);
    }
    return svg;
  }

  function table(head, rows) {
    const t = el("table", {}, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))));
    const tb = el("tbody");
    for (const r of rows) tb.append(el("tr", {}, ...r.map((c) => c instanceof Node && c.tagName === "TD" ? c : el("td", {}, c))));
    t.append(tb);
    return t;
  }
  const num = (v) => el("td", { class: "num" }, fmtNum(v));

  function counters(title, list, cls) {
    if (!list || !list.length) return [];
    return [el("h3", {}, title), table(["rule", "where", "packets", "bytes"],
      list.map((c) => [el("td", { class: cls || "" }, c.id, c.comment ? el("span", { class: "muted comment" }, " " + c.comment) : ""),
        c.pos || "", num(c.packets), num(c.bytes)]))];
  }

  function tenantCard(t) {
    const card = el("section", { class: "card tenant", "data-tenant": t.name }, el("h2", {}, "tenant ", el("span", { class: "name" }, t.name)));
    card.append(table(["interface", "state", "addresses", "rx", "tx", "last minutes"],
      (t.interfaces || []).map((i) => [
        el("td", {}, i.name, i.device ? el("span", { class: "muted" }, " (" + i.device + ")") : ""),
        el("td", { class: "state-" + i.state }, i.state),
        (i.addresses || []).join(", "),
        el("td", { class: "num" }, fmtRate(i.rx_bps)), el("td", { class: "num" }, fmtRate(i.tx_bps)),
        el("td", {}, spark(i.rx_hist), spark(i.tx_hist, "tx")),
      ])));
    const lim = t.conntrack_limit > 0 ? t.conntrack_limit : 0;
    const ct = el("p", {}, "connections: ", el("span", { class: "conntrack" }, fmtNum(t.conntrack)),
      lim ? " / " + fmtNum(lim) + " " : " ",
      lim ? el("span", { class: "bar" + (t.conntrack >= lim ? " full" : ""), style: "width:" + Math.min(100, Math.round(100 * t.conntrack / lim)) + "px" }) : "",
      " · new/s: ", el("span", { class: "newconns" }, (t.new_conns_per_s || 0).toFixed(1)), " ", spark(t.new_conns_hist));
    card.append(ct);
    const routes = Object.entries(t.routes || {}).map(([k, v]) => k + " " + fmtNum(v)).join(" · ");
    card.append(el("p", {}, "routes: ", el("span", { class: "routes" }, routes || "none")));
    if (t.bgp_neighbors && t.bgp_neighbors.length) {
      card.append(el("h3", {}, "BGP neighbours"), table(["neighbour", "AS", "state", "uptime", "received", "accepted"],
        t.bgp_neighbors.map((n) => [el("td", {}, n.address, n.description ? el("span", { class: "muted" }, " " + n.description) : ""), String(n.asn), el("td", { class: "bgp-state state-" + n.state }, n.state),
          n.state === "established" ? fmtDur(n.uptime_s) : "–", num(n.received), num(n.accepted)])));
    }
    card.append(...counters("Top rules", t.top_rules, "rule"), ...counters("Default drops", t.drops, "drop"), ...counters("NAT", t.nat, "nat"));
    return card;
  }

  function banner(text, warn) {
    const b = $("banner");
    b.textContent = text || "";
    b.className = "banner" + (warn ? " warn" : "") + (text ? "" : " hidden");
  }

  function render(d) {
    $("revision").textContent = d.revision ? String(d.revision) : "not stored";
    $("config").textContent = d.config_file || "–";
    $("started").textContent = fmtTime(d.started);
    $("pending").textContent = d.pending_confirm
      ? "revision " + d.pending_confirm.revision + " rolls back to " + d.pending_confirm.previous + " at " + fmtTime(d.pending_confirm.deadline)
      : "none";
    const tb = $("reloads").querySelector("tbody");
    tb.replaceChildren(...(d.reloads || []).slice(0, 10).map((r) => el("tr", {}, el("td", {}, fmtTime(r.time)), el("td", {}, r.reason),
      el("td", { class: "result-" + r.result }, r.result), el("td", {}, r.revision ? String(r.revision) : "–"),
      el("td", { class: "num" }, fmtNum(r.changes)), el("td", { class: "num" }, (r.duration_ns / 1e6).toFixed(0) + " ms"))));
    $("tenants").replaceChildren(...(d.tenants || []).map(tenantCard));
    $("summary").textContent = (d.tenants || []).length + " tenants";
    const last = (d.reloads || [])[0];
    if (d.store && !d.store.ok) banner("Revision store cannot be written: " + (d.store.error || "unknown error"), true);
    else if (last && last.result !== "applied") banner("Last reload " + last.result + ": " + (last.errors || []).join("; "));
    else if (d.pending_confirm) banner("Change pending: confirm with `fwd confirm` before " + fmtTime(d.pending_confirm.deadline), true);
    else banner("");
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
    document.body.dataset.ready = "1";
  }

  async function tick() {
    try {
      const r = await fetch("v1/dashboard", { headers: token ? { Authorization: "Bearer " + token } : {}, cache: "no-store" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      render(await r.json());
    } catch (e) {
      banner("The fwd daemon is unreachable (" + e.message + "); showing the last data received.");
      document.body.dataset.unreachable = "1";
    }
  }
  $("every").textContent = String(EVERY / 1000);
  tick();
  setInterval(tick, EVERY);
})();
