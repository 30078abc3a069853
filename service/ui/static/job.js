// The job page: header, diagnosis, curves and per-layer distributions. While the job runs it is
// refreshed every couple of seconds; the layer charts, which cost dozens of small requests,
// only when a new snapshot step has arrived.
import { getDiagnosis, getJob, getLayers } from "./api.js";
import { curvesSection, refreshCurves } from "./curves.js";
import { fmt, h, progressBar, statusBadge } from "./dom.js";
import { renderFindings } from "./findings.js";
import { renderHeal } from "./heal.js";
import { layersSection, refreshLayers } from "./layers.js";
import { snapshotSteps } from "./snapshots.js";

const LIVE = new Set(["queued", "running"]);
// The layer charts cost a few dozen requests against the key's rate limit: while a job runs
// they are redrawn at most this often, the header, curves and diagnosis every poll.
const LAYERS_EVERY_MS = 30000;

function describe(spec) {
  const m = spec.model;
  const o = spec.optimizer;
  return `${spec.data.dataset} · ${m.kind} ${m.activation} hidden [${(m.hidden || []).join(", ")}]` +
    ` init ${m.init?.scheme ?? "default"} · ${o.name} lr ${o.lr}` +
    (m.batch_norm ? " · batch norm" : "");
}

function header(job) {
  const summary = Object.entries(job.summary || {}).map(([k, v]) =>
    h("span", { class: "metric" }, h("small", {}, k), " ", fmt(v)));
  return h("div", { class: "job-header" },
    h("h2", {}, job.name || job.id, " ", statusBadge(job.status)),
    h("p", { class: "muted" }, describe(job.spec), job.parent_id && " · remedy of ",
      job.parent_id && h("a", { href: `#/jobs/${job.parent_id}` }, job.parent_id.slice(0, 8))),
    progressBar(job), h("div", { class: "summary" }, summary),
    job.error && h("pre", { class: "error" }, job.error));
}

export function renderJob(root, jobId, query, { poll, navigate }) {
  const head = h("div", {});
  const diagnosis = h("section", { id: "diagnosis" });
  const healing = h("section", { id: "heal" });
  const curves = curvesSection();
  const layers = layersSection((sel) => navigate(`#/jobs/${jobId}?${new URLSearchParams(sel)}`));
  root.replaceChildren(head, diagnosis, healing, curves.el, layers.el);
  let lastStepSeen = null;
  let layersDrawnAt = 0;
  let model = [];

  poll(async () => {
    // The model's layers are fixed once the job has started: asked for until they are known.
    const layersReady = model.length ? Promise.resolve(model) : getLayers(jobId);
    const curvesDrawn = refreshCurves(curves, jobId, layersReady); // not held by the job's row
    const job = await getJob(jobId);
    head.replaceChildren(header(job));
    // The diagnosis of a finished job may be computed on request (seconds on a long run): it
    // fills its section when it comes, without holding the charts back.
    const findings = getDiagnosis(jobId).then((found) => renderFindings(diagnosis, jobId, found));
    model = await layersReady;
    const steps = snapshotSteps(job);
    const newest = steps[steps.length - 1] ?? null;
    const heal = renderHeal(healing, jobId);
    const work = [findings, heal, curvesDrawn];
    const due = Date.now() - layersDrawnAt >= LAYERS_EVERY_MS || !LIVE.has(job.status);
    if (newest !== lastStepSeen && due) {
      lastStepSeen = newest;
      layersDrawnAt = Date.now();
      work.push(refreshLayers(layers, job, model, steps, query));
    }
    await Promise.all(work);
    document.body.dataset.rendered = jobId; // the page has drawn once: tests wait for this
    return LIVE.has(job.status) || await heal; // a running heal: its rounds keep changing
  }, { events: `/v1/jobs/${encodeURIComponent(jobId)}/events` });
}
