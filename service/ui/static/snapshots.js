// Which snapshots to fetch, and how to turn them into chart rows. A 100,000-step job with 50
// layers holds hundreds of thousands of snapshots: never ask for all of them. The worker takes
// one at step 1, every `snapshot_every` steps and at the last step, so the steps are known from
// the spec and a chart asks only for a few dozen of them, by exact step.
import { getSnapshots } from "./api.js";

const PAGE = 1000; // the API's largest page

export function snapshotSteps(job) {
  const every = job.spec.telemetry?.snapshot_every ?? 50;
  const last = job.progress.step;
  if (last < 1) return [];
  const steps = [1];
  for (let s = every; s <= last; s += every) if (s !== 1) steps.push(s);
  if (steps[steps.length - 1] !== last && job.status !== "running") steps.push(last);
  return steps;
}

// n steps spread evenly over `steps`, always keeping the first and the last.
export function spread(steps, n) {
  if (steps.length <= n) return steps.slice();
  const picked = new Set();
  for (let i = 0; i < n; i++) picked.add(steps[Math.round((i * (steps.length - 1)) / (n - 1))]);
  return [...picked].sort((a, b) => a - b);
}

// Run `task` over `items` with at most `limit` requests in flight: the browser would queue
// them anyway, and a burst of 100 would delay the page's other requests.
async function mapLimited(items, limit, task) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await task(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

// Every layer of one kind at one step (one request).
export async function atStep(jobId, kind, step) {
  const page = await getSnapshots(jobId, { kind, step, limit: PAGE });
  return page.items;
}

const ONE_PAGE = 300; // snapshots of one layer fetched in one request rather than step by step

// One layer's snapshots of one kind at up to `n` steps spread over the run. A short history
// comes in one request and is thinned here; a long one is asked for at `n` exact steps, so the
// cost stays flat however long the run (the API has no stride filter).
export async function layerHistory(jobId, kind, layer, steps, n) {
  if (steps.length <= ONE_PAGE) {
    const page = await getSnapshots(jobId, { kind, layer, limit: ONE_PAGE });
    const keep = new Set(spread(page.items.map((s) => s.step), n));
    return page.items.filter((s) => keep.has(s.step));
  }
  const wanted = spread(steps, n);
  const pages = await mapLimited(wanted, 4, (step) =>
    getSnapshots(jobId, { kind, layer, step, limit: 1 }));
  return pages.flatMap((p) => p.items);
}

// Every layer of one kind at up to `n` steps: {step: [snapshots from input to output]}.
export async function layersOverTime(jobId, kind, steps, n) {
  const wanted = spread(steps, n);
  const found = await mapLimited(wanted, 4, (step) => atStep(jobId, kind, step));
  return wanted.map((step, i) => ({ step, items: found[i] })).filter((r) => r.items.length);
}

export function centres(histogram) {
  const e = histogram.edges;
  return histogram.counts.map((_, i) => ((e[i] ?? 0) + (e[i + 1] ?? 0)) / 2);
}

// The histogram a kind is best read from: gradients span orders of magnitude, so their
// log10|g| histogram shows a vanishing layer as a shift to the left, where the raw one is a
// spike at 0 for every layer.
export function readable(snapshot) {
  if (snapshot.kind === "gradient" && snapshot.log_histogram) {
    return { histogram: snapshot.log_histogram, axis: "log10 |gradient|" };
  }
  return { histogram: snapshot.histogram, axis: snapshot.kind };
}

// Put each snapshot's histogram (own edges) on common bins, so steps can share a heatmap axis.
// A bin's mass is spread over the common bins it overlaps: assigning it whole to one would
// leave empty stripes wherever the common bins are finer than a snapshot's own.
export function rebin(snapshots, bins = 32) {
  const hists = snapshots.map((s) => readable(s).histogram);
  const edges = hists.flatMap((h) => h.edges.filter((x) => x !== null && Number.isFinite(x)));
  if (!edges.length) return { labels: [], cells: [] };
  const lo = Math.min(...edges);
  const width = (Math.max(...edges) - lo) / bins || 1;
  const labels = Array.from({ length: bins }, (_, i) => (lo + (i + 0.5) * width).toPrecision(3));
  const cells = [];
  hists.forEach((h, x) => {
    const grid = spreadOnto(h, lo, width, bins);
    // log10 of the fraction: a thin tail is still visible next to the mode.
    grid.forEach((v, y) => cells.push([x, y, v > 0 ? Math.log10(v) : null]));
  });
  return { labels, cells };
}

function spreadOnto(h, lo, width, bins) {
  const grid = new Array(bins).fill(0);
  const total = h.counts.reduce((a, b) => a + b, 0) || 1;
  h.counts.forEach((count, i) => {
    const a = h.edges[i];
    const b = h.edges[i + 1];
    if (!count || a === null || b === null) return;
    const first = Math.max(0, Math.floor((a - lo) / width));
    const last = Math.min(bins - 1, Math.floor((b - lo) / width));
    for (let j = first; j <= last; j++) {
      const overlap = Math.min(b, lo + (j + 1) * width) - Math.max(a, lo + j * width);
      const share = b > a ? Math.max(0, overlap) / (b - a) : 1;
      grid[j] += (count * share) / total;
    }
  });
  return grid;
}

export function ridgeRows(snapshots) {
  return snapshots.map((s) => {
    const h = readable(s).histogram;
    const total = h.counts.reduce((a, b) => a + b, 0) || 1;
    return { step: s.step, centres: centres(h), density: h.counts.map((c) => c / total) };
  });
}

// The size of a layer's gradient at a step: log10 of its std (an l2 norm grows with the
// layer's size, a std does not, so layers of different widths compare fairly).
export function gradientScale(snapshot) {
  const v = snapshot.stats.std ?? snapshot.stats.l2;
  return v && v > 0 ? Math.log10(v) : null;
}
