// Per-layer distributions: which layers learn (gradient scale, layer x step), every layer at one
// step side by side (the lecture's per-layer activation histograms), and one layer over time
// (band, step x bin heatmap, ridge). The selection (layer, step, kind) lives in the URL, so a
// finding's link opens exactly its evidence.
import { band, heatmap, histogram, ridge } from "./charts.js";
import { chartBox, fmt, h } from "./dom.js";
import {
  atStep, centres, gradientScale, layerHistory, layersOverTime, readable, rebin, ridgeRows,
} from "./snapshots.js";

const KINDS = ["gradient", "weight", "activation"];
const OVERVIEW_STEPS = 20; // columns of the layer x step heatmap: one request each
const HISTORY_STEPS = 40; // points of one layer's band and heatmap (a request each on long runs)
const RIDGE_ROWS = 12;

export function layersSection(navigate) {
  const el = h("section", { id: "layers" });
  return { el, navigate, boxes: {} };
}

function nearest(steps, step) {
  if (!steps.length) return null;
  if (step === null || Number.isNaN(step)) return steps[steps.length - 1];
  return steps.reduce((best, s) => (Math.abs(s - step) < Math.abs(best - step) ? s : best));
}

function controls(section, job, layers, steps, sel) {
  const go = (changes) => section.navigate({ ...sel, ...changes });
  const kind = h("select", { id: "sel-kind", onchange: () => go({ kind: kind.value }) },
    KINDS.map((k) => h("option", { value: k, selected: k === sel.kind }, k)));
  const layer = h("select", { id: "sel-layer", onchange: () => go({ layer: layer.value }) },
    layers.map((l) => h("option", { value: l.name, selected: l.name === sel.layer },
      `${l.depth}. ${l.name} (${l.type} ${l.shape.join("×")})`)));
  const index = Math.max(0, steps.indexOf(sel.step));
  const label = h("output", { id: "sel-step-label" }, `step ${fmt(sel.step)}`);
  const slider = h("input", { type: "range", id: "sel-step", min: 0, max: steps.length - 1,
    value: index, oninput: () => { label.textContent = `step ${fmt(steps[slider.value])}`; },
    onchange: () => go({ step: steps[slider.value] }) });
  return h("div", { class: "controls" }, h("label", {}, "kind ", kind), h("label", {}, "layer ", layer),
    h("label", { class: "step" }, slider, label));
}

export async function refreshLayers(section, job, layers, steps, query) {
  if (!layers.length || !steps.length) {
    section.el.replaceChildren(h("h3", {}, "Layers"),
      h("p", { class: "muted" }, "No distributions recorded yet."));
    return;
  }
  const names = layers.map((l) => l.name);
  const sel = {
    kind: KINDS.includes(query.get("kind")) ? query.get("kind") : "activation",
    layer: names.includes(query.get("layer")) ? query.get("layer") : names[0],
    step: nearest(steps, query.has("step") ? Number(query.get("step")) : null),
  };
  const boxes = {
    scale: chartBox("gradient-scale", "chart tall"), band: chartBox("band"),
    heat: chartBox("step-bin-heatmap"), ridge: chartBox("ridge", "chart tall"),
  };
  const grid = h("div", { class: "small-multiples", id: "at-step" });
  const title = h("h3", { id: "layer-title" }, `${sel.layer}: ${sel.kind} over time`);
  section.el.replaceChildren(
    h("h3", {}, "Which layers learn"),
    h("p", { class: "muted" }, "The size (std) of each layer's gradient against the largest layer's " +
      "at the same step, input layer at the bottom. Healthy: one colour throughout. Vanishing " +
      "gradients: the lower rows go dark, 1e-3 and less of the top; those layers have stopped " +
      "learning. Click a cell to open that layer and step."),
    boxes.scale,
    controls(section, job, layers, steps, sel),
    h("h3", {}, `Every layer at step ${fmt(sel.step)}: ` +
      `${sel.kind === "gradient" ? "log10 |gradient|" : sel.kind}`),
    grid, title, h("div", { class: "row2" }, boxes.band, boxes.heat), boxes.ridge);
  await Promise.all([
    drawScale(section, job, layers, steps, sel, boxes.scale),
    drawAtStep(job, sel, grid),
    drawHistory(job, sel, steps, boxes),
  ]);
}

async function drawScale(section, job, layers, steps, sel, el) {
  const rows = await layersOverTime(job.id, "gradient", steps, OVERVIEW_STEPS);
  const yLabels = layers.map((l) => l.name);
  // Relative to the step's largest layer: gradients shrink everywhere as a run converges, so an
  // absolute scale would darken a healthy run's late steps too. Here a healthy run is one flat
  // colour and a vanishing gradient is a dark band over the layers it no longer reaches.
  const cells = [];
  rows.forEach((r, x) => {
    const scales = r.items.map(gradientScale);
    const top = Math.max(...scales.filter((v) => v !== null));
    r.items.forEach((s, i) => cells.push([x, yLabels.indexOf(s.layer),
      scales[i] === null ? null : scales[i] - top]));
  });
  const xLabels = rows.map((r) => String(r.step));
  heatmap(el, { title: "gradient std per layer, log10 relative to the step's largest layer",
    xLabels, yLabels, cells, xName: "step", yName: "layer", valueName: "log10 relative",
    range: [-4, 0],
    onCell: (x, y) => section.navigate({ ...sel, kind: "gradient", layer: yLabels[y],
      step: rows[x].step }) });
}

async function drawAtStep(job, sel, grid) {
  const items = await atStep(job.id, sel.kind, sel.step);
  grid.replaceChildren(...items.map((s) => {
    const box = chartBox(`at-step-${s.layer}`, "chart small");
    const cell = h("div", { class: s.layer === sel.layer ? "multiple selected" : "multiple", dataset: { layer: s.layer } }, box,
      h("div", { class: "muted stat" }, `mean ${fmt(s.stats.mean, 2)} std ${fmt(s.stats.std, 2)}` +
        ` zero ${fmt(s.stats.zero_fraction, 2)}`));
    return { s, box, cell };
  }).map(({ s, box, cell }) => {
    // Draw after the cell is in the document, or ECharts measures a 0x0 box.
    queueMicrotask(() => {
      const { histogram: hist } = readable(s);
      histogram(box, { title: s.layer, centres: centres(hist), counts: hist.counts,
        highlight: s.layer === sel.layer });
    });
    return cell;
  }));
  if (!items.length) grid.replaceChildren(h("p", { class: "muted" }, "No snapshots at this step."));
}

async function drawHistory(job, sel, steps, boxes) {
  const history = await layerHistory(job.id, sel.kind, sel.layer, steps, HISTORY_STEPS);
  const axis = history.length ? readable(history[0]).axis : sel.kind;
  band(boxes.band, { title: `${sel.kind} distribution (min-max, p1-p99, mean±std, p50)`,
    steps: history.map((s) => s.step), stats: history.map((s) => s.stats) });
  const { labels, cells } = rebin(history);
  heatmap(boxes.heat, { title: `step x bin: log10 fraction of ${axis}`,
    xLabels: history.map((s) => String(s.step)), yLabels: labels, cells,
    xName: "step", yName: axis, valueName: "log10 fraction" });
  const ridgeSteps = new Set(history.map((s) => s.step).filter((_, i, all) =>
    all.length <= RIDGE_ROWS || i % Math.ceil(all.length / RIDGE_ROWS) === 0 || i === all.length - 1));
  ridge(boxes.ridge, { title: `${axis} histograms over steps (ridge)`,
    rows: ridgeRows(history.filter((s) => ridgeSteps.has(s.step))) });
}
