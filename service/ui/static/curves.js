// The loss, accuracy and learning-rate curves, and the per-layer update ratios, all from the
// metrics API with server-side downsampling.
import { getMetrics } from "./api.js";
import { chartBox, h } from "./dom.js";
import { heatmap, lines } from "./charts.js";

const MAX_RATIO_LINES = 12; // past this many layers, lines become a tangle: draw a heatmap

const pick = (all, names) => names.filter((n) => all[n]).map((n) => all[n]);

export function curvesSection() {
  const boxes = { loss: chartBox("loss"), accuracy: chartBox("accuracy"), lr: chartBox("lr"),
    ratios: chartBox("update-ratios", "chart tall") };
  const el = h("section", { id: "curves" }, h("h3", {}, "Training curves"),
    h("div", { class: "row3" }, boxes.loss, boxes.accuracy, boxes.lr),
    h("h3", {}, "Update ratio per layer"),
    h("p", { class: "muted" }, "|Δw| / |w| each step: around 1e-3 is healthy; a layer far " +
      "below the others is barely changing."),
    boxes.ratios);
  return { el, boxes };
}

const CURVES = ["train_loss", "val_loss", "train_accuracy", "val_accuracy", "val_auc", "lr"];

// Two requests, so the loss curves do not wait for 50 layers' ratios, nor for the job and its
// layers: the curves' request leaves with the page's first ones and is drawn when it lands (the
// first paint of a long run). The server downsamples either way.
export async function refreshCurves({ boxes }, jobId, layersReady) {
  const curves = getMetrics(jobId, CURVES, 600).then((all) => {
    lines(boxes.loss, { title: "loss", series: pick(all, ["train_loss", "val_loss"]) });
    lines(boxes.accuracy, { title: "accuracy",
      series: pick(all, ["train_accuracy", "val_accuracy", "val_auc"]) });
    lines(boxes.lr, { title: "learning rate", series: pick(all, ["lr"]) });
  });
  const ratios = layersReady.then(async (layers) => {
    const ratioNames = layers.map((l) => `update_ratio/${l.name}`);
    const found = ratioNames.length ? await getMetrics(jobId, ratioNames, 200) : {};
    const series = pick(found, ratioNames).map((s) => ({ ...s, name: s.name.slice(13) }));
    if (series.length > MAX_RATIO_LINES) ratioHeatmap(boxes.ratios, series);
    else lines(boxes.ratios, { title: "update ratio (log)", logY: true, series,
      markY: { value: 1e-3, label: "1e-3" } });
  });
  await Promise.all([curves, ratios]);
}

// Layer x step cells of the mean log10 ratio. The server's downsampling keeps each bucket's
// low and high point, so the series' steps differ; they are bucketed again on a shared axis.
function ratioHeatmap(el, series, columns = 60) {
  const last = Math.max(1, ...series.flatMap((s) => s.steps));
  const width = last / columns;
  const cells = [];
  series.forEach((s, y) => {
    const sums = new Array(columns).fill(0);
    const ns = new Array(columns).fill(0);
    s.steps.forEach((step, i) => {
      const v = s.values[i];
      if (v === null || v <= 0) return;
      const x = Math.min(columns - 1, Math.floor(step / width));
      sums[x] += Math.log10(v);
      ns[x] += 1;
    });
    sums.forEach((sum, x) => cells.push([x, y, ns[x] ? sum / ns[x] : null]));
  });
  heatmap(el, { title: "log10 update ratio, per layer and step (healthy: about -3)",
    xLabels: Array.from({ length: columns }, (_, x) => String(Math.round((x + 0.5) * width))),
    yLabels: series.map((s) => s.name), cells, xName: "step", yName: "layer",
    valueName: "log10 ratio" });
}
