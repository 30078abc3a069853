// Studies: the list, and one study's comparison table (one row per variant, mean ± spread over
// seeds) with the curves of all its jobs overlaid, one colour per variant.
import { compareStudy, getMetrics, getStudy, listStudies } from "./api.js";
import { lines } from "./charts.js";
import { chartBox, fmt, h } from "./dom.js";

const CURVE_METRICS = ["val_accuracy", "val_loss", "train_loss", "train_accuracy"];
const MAX_CURVES = 40; // jobs drawn at once: past that the overlay is unreadable anyway
const TERMINAL = new Set(["succeeded", "failed", "cancelled", "diverged"]);

const counts = (c) => Object.entries(c || {}).map(([s, n]) => `${n} ${s}`).join(", ");

export function renderStudies(root, _query, { poll }) {
  const body = h("tbody", {});
  root.replaceChildren(h("h2", {}, "Studies"), h("table", { class: "jobs" },
    h("thead", {}, h("tr", {}, ["study", "template", "varied", "jobs", "status"].map((t) =>
      h("th", {}, t)))), body));
  poll(async () => {
    const page = await listStudies();
    body.replaceChildren(...page.items.map((s) => h("tr", { dataset: { study: s.id } },
      h("td", {}, h("a", { href: `#/studies/${s.id}` }, s.name || s.id.slice(0, 8))),
      h("td", {}, s.template || "–"), h("td", {}, s.varied.join(", ")),
      h("td", { class: "num" }, s.jobs), h("td", {}, counts(s.counts)))));
    return page.items.some((s) => Object.keys(s.counts).some((k) => !TERMINAL.has(k)));
  });
}

function stat(s) {
  return s ? `${fmt(s.mean, 3)} ± ${fmt(s.std, 2)}` : "–";
}

function table(comparison, query, navigate, studyId) {
  const metricNames = Object.keys(comparison.rows[0]?.metrics || {});
  const columns = ["variant", ...comparison.varied, ...metricNames,
    ...(comparison.target ? ["steps_to_target"] : [])];
  const sortBy = (column) => {
    const q = new URLSearchParams(query);
    const again = q.get("sort") === column && q.get("order") !== "desc";
    q.set("sort", column);
    q.set("order", again ? "desc" : "asc");
    navigate(`#/studies/${studyId}?${q}`);
  };
  const head = h("tr", {}, columns.map((c) => h("th", {},
    h("button", { type: "button", class: "sort", onclick: () => sortBy(c) }, c))),
  h("th", {}, "jobs"), h("th", {}, "findings"));
  const rows = comparison.rows.map((r) => h("tr", { dataset: { variant: r.variant } },
    h("td", {}, r.variant),
    comparison.varied.map((p) => h("td", {}, JSON.stringify(r.values[p]))),
    metricNames.map((m) => h("td", { class: "num" }, stat(r.metrics[m]))),
    comparison.target ? h("td", { class: "num" },
      `${stat(r.steps_to_target)} (${r.reached_target}/${r.seeds.length})`) : null,
    h("td", {}, r.job_ids.map((id, i) => h("a", { href: `#/jobs/${id}`, class: "job-link" },
      `seed ${r.seeds[i] ?? i}`)).flatMap((a) => [a, " "]), h("small", {}, counts(r.statuses))),
    h("td", {}, r.codes.join(", ") || "–")));
  return h("table", { class: "jobs", id: "comparison" }, h("thead", {}, head), h("tbody", {}, rows));
}

// A varied value may be a list or an object (model.resnet.stages): show it as JSON.
const valueText = (v) => (v !== null && typeof v === "object" ? JSON.stringify(v) : String(v));

async function overlay(el, comparison, metric) {
  const jobs = comparison.rows.flatMap((r) => r.job_ids.map((id, i) => ({ id, row: r,
    label: `${comparison.varied.map((p) => `${p.split(".").pop()}=${valueText(r.values[p])}`)
      .join(" ")}` +
      (r.seeds.length > 1 ? ` s${r.seeds[i]}` : "") }))).slice(0, MAX_CURVES);
  const found = await Promise.all(jobs.map((j) => getMetrics(j.id, [metric], 300)));
  const series = jobs.map((j, i) => ({ ...(found[i][metric] || { steps: [], values: [] }),
    name: j.label }));
  lines(el, { title: `${metric}, every job`, series: series.filter((s) => s.steps.length) });
}

export function renderStudy(root, studyId, query, { poll, navigate }) {
  const head = h("div", {});
  const tableBox = h("div", {});
  const metric = query.get("metric") || CURVE_METRICS[0];
  const picker = h("select", { id: "study-metric", onchange: () => {
    const q = new URLSearchParams(query);
    q.set("metric", picker.value);
    navigate(`#/studies/${studyId}?${q}`);
  } }, CURVE_METRICS.map((m) => h("option", { value: m, selected: m === metric }, m)));
  const curves = chartBox("study-curves", "chart tall");
  root.replaceChildren(head, h("section", {}, h("h3", {}, "Comparison"),
    h("div", { class: "scroll" }, tableBox)),
    h("section", {}, h("h3", {}, "Curves ", picker), curves));
  const params = { sort: query.get("sort"), order: query.get("order") };
  poll(async () => {
    const [study, comparison] = await Promise.all([getStudy(studyId), compareStudy(studyId, params)]);
    head.replaceChildren(h("h2", {}, study.name || study.id),
      h("p", { class: "muted" }, `varied: ${study.varied.join(", ")} · ${study.variants} variants, ` +
        `${study.jobs} jobs: ${counts(study.counts)}`));
    tableBox.replaceChildren(table(comparison, query, navigate, studyId));
    await overlay(curves, comparison, metric);
    document.body.dataset.rendered = studyId;
    return !study.done && Object.keys(study.counts).some((k) => !TERMINAL.has(k));
  }, { events: `/v1/studies/${encodeURIComponent(studyId)}/events` });
}
