// Thin wrappers over ECharts: one chart per element, resized with its box. Every chart records
// how many data points it was given in data-points, so a test (or a person with devtools) can
// tell an empty chart from one the library drew.
import * as echarts from "./vendor/echarts.esm.min.js";

const resizer = new ResizeObserver((entries) => {
  for (const entry of entries) echarts.getInstanceByDom(entry.target)?.resize();
});

const COLORS = ["#2f6fba", "#d9822b", "#2e9e6a", "#c23b52", "#7a5bc2", "#8a6d3b", "#3aa6b9"];

function chartOn(el) {
  let chart = echarts.getInstanceByDom(el);
  if (!chart) {
    chart = echarts.init(el, null, { renderer: "canvas" });
    resizer.observe(el);
  }
  return chart;
}

function draw(el, option, points, onClick) {
  const chart = chartOn(el);
  // notMerge: a redraw with fewer series must not keep the old ones.
  chart.setOption({ animation: false, color: COLORS, ...option }, { notMerge: true });
  el.dataset.points = String(points);
  chart.off("click");
  if (onClick) chart.on("click", onClick);
  return chart;
}

// Axis numbers: 2e-7 rather than 0.0000002, so a gradient's axis stays readable.
const tick = (v) => (v !== 0 && Math.abs(v) < 1e-3) || Math.abs(v) >= 1e5
  ? Number(v).toExponential(1) : String(Number(Number(v).toPrecision(4)));

const axisStep = { type: "value", name: "step", nameLocation: "end", scale: true };
const grid = { left: 64, right: 24, top: 36, bottom: 36 };

// Curves: [{name, steps, values}] on a shared step axis; null values leave gaps (a NaN loss).
export function lines(el, { title, series, logY = false, markY }) {
  const points = series.reduce((n, s) => n + s.steps.length, 0);
  draw(el, {
    title: { text: title, left: 0, top: 0, textStyle: { fontSize: 13 } },
    tooltip: { trigger: "axis" },
    legend: { type: "scroll", top: 20, left: 0, right: 0 },
    grid: { ...grid, top: 60 },
    xAxis: axisStep,
    yAxis: { type: logY ? "log" : "value", scale: true, axisLabel: { formatter: tick } },
    series: series.map((s, i) => ({
      name: s.name, type: "line", showSymbol: false, connectNulls: false,
      data: s.steps.map((step, j) => [step, logY && s.values[j] <= 0 ? null : s.values[j]]),
      markLine: i === 0 && markY ? {
        silent: true, symbol: "none", data: [{ yAxis: markY.value, name: markY.label }],
        label: { formatter: markY.label }, lineStyle: { type: "dashed", color: "#888" },
      } : undefined,
    })),
  }, points);
}

// A TensorBoard-style distribution band over steps: min-max, p1-p99 and mean +- std filled,
// p50 and mean drawn. Each band is a transparent lower series plus a filled (upper - lower)
// series on its own stack; stackStrategy "all" keeps bands that cross zero intact.
export function band(el, { title, steps, stats }) {
  const pick = (key) => stats.map((s) => s[key] ?? null);
  const meanMinus = stats.map((s) => (s.mean ?? 0) - (s.std ?? 0));
  const meanPlus = stats.map((s) => (s.mean ?? 0) + (s.std ?? 0));
  const bands = [
    ["min-max", pick("min"), pick("max"), 0.12],
    ["p1-p99", pick("p1"), pick("p99"), 0.22],
    ["mean±std", meanMinus, meanPlus, 0.32],
  ];
  const series = bands.flatMap(([name, low, high, alpha], i) => [
    { name, type: "line", stack: `b${i}`, stackStrategy: "all", data: low, symbol: "none",
      lineStyle: { opacity: 0 }, tooltip: { show: false } },
    { name, type: "line", stack: `b${i}`, stackStrategy: "all", symbol: "none",
      data: high.map((h, j) => (h === null || low[j] === null ? null : h - low[j])),
      lineStyle: { opacity: 0 }, areaStyle: { color: COLORS[0], opacity: alpha } },
  ]);
  series.push({ name: "p50", type: "line", data: pick("p50"), symbol: "none",
    lineStyle: { color: COLORS[1], width: 1.5 } });
  series.push({ name: "mean", type: "line", data: pick("mean"), symbol: "none",
    lineStyle: { color: COLORS[3], width: 1, type: "dashed" } });
  draw(el, {
    title: { text: title, left: 0, top: 0, textStyle: { fontSize: 13 } },
    tooltip: { trigger: "axis" },
    legend: { top: 20, left: 0, data: ["min-max", "p1-p99", "mean±std", "p50", "mean"] },
    grid: { ...grid, top: 56 },
    xAxis: { type: "category", name: "step", data: steps.map(String), boundaryGap: false },
    yAxis: { type: "value", scale: true, axisLabel: { formatter: tick } },
    series,
  }, steps.length);
}

// A grid of cells: x and y are category labels, cells [xIndex, yIndex, value|null].
// `range` [lo, hi] fixes the colour scale (widened to fit the data), so equal colours mean equal
// values from one job to the next.
export function heatmap(el, { title, xLabels, yLabels, cells, xName, yName, valueName, onCell,
  range }) {
  const values = cells.map((c) => c[2]).filter((v) => v !== null && Number.isFinite(v));
  const all = [...values, ...(range || [])];
  const lo = all.length ? Math.min(...all) : 0;
  const hi = all.length ? Math.max(...all) : 1;
  draw(el, {
    title: { text: title, left: 0, top: 0, textStyle: { fontSize: 13 } },
    tooltip: {
      formatter: (p) => `${yName} ${yLabels[p.value[1]]}<br>${xName} ${xLabels[p.value[0]]}` +
        `<br>${valueName} ${p.value[2] === null ? "–" : Number(p.value[2]).toPrecision(3)}`,
    },
    grid: { left: 90, right: 90, top: 36, bottom: 40 },
    xAxis: { type: "category", name: xName, data: xLabels, splitArea: { show: false } },
    // At most ~12 labels per axis: 50 layer names or 32 bin centres would overprint.
    yAxis: { type: "category", name: yName, data: yLabels,
      axisLabel: { interval: Math.max(0, Math.ceil(yLabels.length / 12) - 1) } },
    visualMap: {
      min: lo, max: hi > lo ? hi : lo + 1, calculable: true, orient: "vertical", right: 4,
      top: 36, itemHeight: 120, text: [valueName, ""], textStyle: { fontSize: 10 },
      inRange: { color: ["#0d0887", "#6a00a8", "#b12a90", "#e16462", "#fca636", "#f0f921"] },
    },
    series: [{ type: "heatmap", data: cells, progressive: 0,
      emphasis: { itemStyle: { borderColor: "#000", borderWidth: 1 } } }],
  }, values.length, onCell ? (p) => onCell(p.value[0], p.value[1]) : null);
}

// A ridge: one histogram per step, stacked upwards with a fixed offset, newest on top.
export function ridge(el, { title, rows }) {
  const peak = Math.max(1e-12, ...rows.flatMap((r) => r.density));
  const scale = 1.6 / peak;
  draw(el, {
    title: { text: title, left: 0, top: 0, textStyle: { fontSize: 13 } },
    tooltip: { trigger: "item", formatter: (p) => `step ${p.seriesName}` },
    grid: { ...grid, left: 70 },
    xAxis: { type: "value", scale: true, name: "value" },
    yAxis: { type: "value", show: true, min: 0, max: rows.length + 1,
      axisLabel: { formatter: (v) => rows[Math.round(v)]?.step ?? "" }, interval: 1,
      name: "step" },
    series: rows.map((r, i) => ({
      name: String(r.step), type: "line", symbol: "none", smooth: false, z: rows.length - i,
      data: r.centres.map((x, j) => [x, i + r.density[j] * scale]),
      lineStyle: { color: "#1d3557", width: 1 },
      areaStyle: { origin: i, color: COLORS[0], opacity: 0.55 },
    })),
  }, rows.reduce((n, r) => n + r.centres.length, 0));
}

// One histogram as bars (for the small multiples of every layer at one step).
export function histogram(el, { title, centres, counts, highlight }) {
  draw(el, {
    title: { text: title, textStyle: { fontSize: 11, color: highlight ? "#c23b52" : "#333" } },
    tooltip: { trigger: "axis" },
    grid: { left: 40, right: 8, top: 28, bottom: 24 },
    xAxis: { type: "category", data: centres.map((c) => Number(c).toPrecision(2)),
      axisLabel: { fontSize: 9 } },
    yAxis: { type: "value", axisLabel: { fontSize: 9 } },
    series: [{ type: "bar", data: counts, barCategoryGap: "0%",
      itemStyle: { color: highlight ? COLORS[3] : COLORS[0] } }],
  }, counts.length);
}

export function dispose(root) {
  for (const el of root.querySelectorAll("[data-chart]")) {
    resizer.unobserve(el);
    echarts.getInstanceByDom(el)?.dispose();
  }
}
