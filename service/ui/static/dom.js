// A tiny element builder: text goes in as text nodes, never as HTML, so job names and finding
// details from the API cannot inject markup.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function fmt(value, digits = 4) {
  if (value === null || value === undefined) return "–";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value)) return value.toLocaleString("en");
  return Math.abs(value) >= 1e4 || (value !== 0 && Math.abs(value) < 1e-3)
    ? value.toExponential(2) : value.toPrecision(digits);
}

export function chartBox(name, cls = "chart") {
  return h("div", { class: cls, "data-chart": name });
}

export function statusBadge(status) {
  return h("span", { class: `badge ${status}` }, status);
}

export function progressBar(job) {
  const { step, total_steps: total } = job.progress;
  const pct = total ? Math.min(100, (100 * step) / total) : 0;
  return h("div", { class: "progress", title: `${step} / ${total}` },
    h("div", { class: "bar", style: `width:${pct.toFixed(1)}%` }),
    h("span", {}, `${fmt(step)} / ${fmt(total)}`));
}
