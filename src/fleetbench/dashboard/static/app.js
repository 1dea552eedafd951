// fleetbench dashboard: fetch a view's JSON, draw its charts (vega-embed, bundled) and
// table; poll /api/changes and refetch the shown view when the stores changed (the
// others are refetched when next shown).
(() => {
"use strict";

const params = new URLSearchParams(location.search);
const POLL_MS = Math.max(500, Number(params.get("poll")) || 3000);
const FILTERS = ["model", "task", "category", "backend", "round_from", "round_to", "since", "until"];
const state = { version: null, fetched: {}, views: {}, page: 1, q: "", busy: {} };

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
};

function current() {
  const name = location.hash.slice(1);
  return $(`#view-${CSS.escape(name)}`) ? name : "overview";
}

function filterQuery(extra = {}) {
  const q = new URLSearchParams();
  const form = $("#filters");
  for (const name of FILTERS) {
    let value = form.elements[name].value;
    if (!value) continue;
    if (name === "since" || name === "until") value = new Date(value).toISOString();
    q.set(name, value);
  }
  for (const [k, v] of Object.entries(extra)) if (v !== "" && v != null) q.set(k, v);
  return q;
}

function fmt(value) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toPrecision(4);
  if (typeof value === "boolean") return value ? "yes" : "";
  return String(value);
}

function cell(key, value) {
  const td = el("td");
  td.dataset.key = key;
  td.dataset.value = value === null || value === undefined ? "" : String(value);
  if (key === "progress" && typeof value === "number") {
    td.append(el("progress", { max: "1", value: String(value) }), ` ${Math.round(value * 100)}%`);
  } else {
    const text = fmt(value);
    if (text.length > 120) {
      const d = el("details", {}, el("summary", { text: text.slice(0, 100) + "…" }), el("pre", { text }));
      td.append(d);
    } else td.textContent = text;
  }
  return td;
}

function table(columns, rows) {
  const head = el("tr", {}, ...columns.map(([k, title]) => el("th", { "data-key": k, text: title })));
  const body = el("tbody");
  for (const row of rows) {
    const tr = el("tr", {}, ...columns.map(([k]) => cell(k, row[k])));
    if (row.run_id) tr.dataset.run = row.run_id;
    body.append(tr);
  }
  return el("table", { class: "rows" }, el("thead", {}, head), body);
}

async function drawCharts(holder, charts, name) {
  for (const old of state.views[name] || []) old.finalize();
  state.views[name] = [];
  const jobs = charts.map(async (c) => {
    const box = el("div", { class: "chart", id: `chart-${name}-${c.id}` });
    holder.append(box);
    const result = await vegaEmbed(box, c.spec, { actions: false, renderer: "svg" });
    state.views[name].push(result);
    box.dataset.rendered = "true";
  });
  await Promise.all(jobs);
}

function summary(name, doc) {
  const parts = [];
  if (doc.totals) {
    const t = doc.totals;
    parts.push(el("p", { class: "totals", text:
      `${t.runs} runs (${t.running} running) · ${t.samples} samples, ${t.failed} failed · ` +
      `${t.completion_tokens} completion tokens · ${fmt(t.energy_wh)} Wh · $${fmt(t.cost_usd)}` }));
    parts.push(el("p", { class: "statuses", text: Object.entries(doc.by_status || {})
      .map(([s, n]) => `${s}: ${n}`).join(" · ") }));
  }
  if (doc.pending) parts.push(el("p", { class: "note pending", text: `${doc.pending}; this view fills in when ready` }));
  if (doc.note) parts.push(el("p", { class: "note", text: doc.note }));
  if (doc.rows_total) {
    parts.push(el("p", { class: "note", text:
      `the table shows the first ${doc.rows.length} of ${doc.rows_total} rows; the CSV export holds all` }));
  }
  if (doc.rankings) {
    for (const [task, r] of Object.entries(doc.rankings)) {
      const box = el("div", { class: "rankings" }, el("h3", { text: `${task}: rankings` }));
      for (const [key, entries] of Object.entries(r.rankings || {})) {
        if (!entries.length) continue;
        const top = entries.slice(0, 3).map((e) => `${e.rank}. ${doc.labels[e.run_id] || e.run_id} (${fmt(e.value)})`);
        box.append(el("p", { text: `${key.replace(/_/g, " ")}: ${top.join(", ")}` }));
      }
      for (const [axis, ids] of Object.entries(r.pareto || {})) {
        box.append(el("p", { class: "pareto", text: `Pareto (score vs ${axis}): ${ids.map((i) => doc.labels[i] || i).join(", ") || "—"}` }));
      }
      parts.push(box);
    }
  }
  if (doc.retries && doc.retries.length) {
    parts.push(el("h3", { text: "requests and retries per provider" }));
    parts.push(table([["folder", "folder"], ["provider", "provider"], ["model_name", "model"],
      ["samples", "samples"], ["failed", "failed"], ["retries", "retries"],
      ["retried_samples", "retried samples"]], doc.retries));
  }
  if (name === "samples") {
    const pager = el("p", { class: "pager" });
    const prev = el("button", { type: "button", id: "prev", text: "← newer" });
    const next = el("button", { type: "button", id: "next", text: "older →" });
    prev.disabled = doc.page <= 1;
    next.disabled = doc.page >= doc.pages;
    prev.onclick = () => { state.page -= 1; load("samples"); };
    next.onclick = () => { state.page += 1; load("samples"); };
    pager.append(prev, ` page ${doc.page} of ${doc.pages} · ${doc.total} samples `, next);
    parts.push(pager);
  }
  return parts;
}

async function load(name) {
  const section = $(`#view-${name}`);
  const extra = name === "samples" ? { q: state.q, page: state.page } : {};
  const query = filterQuery(extra);
  const token = (state.busy[name] = (state.busy[name] || 0) + 1);
  const response = await fetch(`/api/view/${name}?${query}`, { credentials: "same-origin" });
  const doc = await response.json();
  if (token !== state.busy[name]) return; // a newer request for this view is on its way
  const error = $("#error");
  if (!response.ok) {
    error.textContent = doc.error || `error ${response.status}`;
    error.hidden = false;
    return;
  }
  error.hidden = true;
  const keep = name === "samples" ? [$("#search")] : [];
  section.replaceChildren(...keep);
  const csv = el("a", { class: "csv", href: `/api/view/${name}.csv?${filterQuery(name === "samples" ? { q: state.q } : {})}`,
    download: `fleetbench-${name}.csv`, text: "export CSV" });
  section.append(el("div", { class: "bar" }, el("h2", { text: $(`#tabs a[data-view="${name}"]`).textContent }), csv));
  section.append(...summary(name, doc));
  const charts = el("div", { class: "charts" });
  section.append(charts);
  section.append(doc.rows.length ? table(doc.columns, doc.rows) : el("p", { class: "empty", text: "no rows match" }));
  section.dataset.rows = String(doc.rows.length);
  await drawCharts(charts, doc.charts, name);
  if (doc.pending) {
    setTimeout(() => { if (current() === name) load(name).catch(report); }, POLL_MS);
    return;
  }
  state.fetched[name] = doc.version;
  section.dataset.version = doc.version;
  section.dataset.loaded = "true";
}

function show() {
  const name = current();
  for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.view === name);
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== `view-${name}`;
  if (state.fetched[name] !== state.version) load(name).catch(report);
}

function fillMenus(meta) {
  const form = $("#filters");
  for (const [field, values] of [["model", meta.models], ["task", meta.tasks],
    ["category", meta.categories], ["backend", meta.backends]]) {
    const select = form.elements[field];
    const chosen = select.value;
    select.replaceChildren(el("option", { value: "", text: "(all)" }), ...values.map((v) => el("option", { value: v, text: v })));
    select.value = values.includes(chosen) ? chosen : "";
  }
  $("#folders").textContent = meta.folders.join(", ");
}

function report(err) {
  const error = $("#error");
  error.textContent = String(err);
  error.hidden = false;
}

async function poll() {
  try {
    const response = await fetch("/api/changes", { credentials: "same-origin" });
    const { version } = await response.json();
    $("#live").textContent = `live · checked ${new Date().toLocaleTimeString()}`;
    if (version !== state.version) {
      state.version = version;
      const meta = fetch("/api/meta").then((r) => r.json()); // the menus, beside the view
      show();
      fillMenus(await meta);
    }
  } catch (err) {
    $("#live").textContent = "offline: retrying";
  }
}

function refilter() {
  state.fetched = {};
  state.page = 1;
  show();
}

window.addEventListener("hashchange", show);
document.addEventListener("DOMContentLoaded", async () => {
  $("#filters").addEventListener("change", refilter);
  $("#filters").addEventListener("reset", () => setTimeout(refilter, 0));
  $("#search").addEventListener("submit", (e) => {
    e.preventDefault();
    state.q = $("#search").elements.q.value;
    state.page = 1;
    load("samples").catch(report);
  });
  await poll();
  setInterval(poll, POLL_MS);
});
})();
