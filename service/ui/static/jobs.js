// The jobs list: state, live progress, key metrics, filtered by status and name.
import { listJobs } from "./api.js";
import { fmt, h, progressBar, statusBadge } from "./dom.js";

const STATUSES = ["", "queued", "running", "succeeded", "failed", "cancelled", "diverged"];
const LIVE = new Set(["queued", "running"]);

function row(job) {
  const s = job.summary || {};
  return h("tr", { dataset: { job: job.id } },
    h("td", {}, h("a", { href: `#/jobs/${job.id}` }, job.name || job.id.slice(0, 8))),
    h("td", {}, statusBadge(job.status)),
    h("td", {}, progressBar(job)),
    h("td", { class: "num" }, fmt(s.final_train_loss)),
    h("td", { class: "num" }, fmt(s.final_val_loss)),
    h("td", { class: "num" }, fmt(s.best_val_accuracy ?? s.final_val_accuracy)),
    h("td", {}, `${job.spec.model.kind} ${job.spec.model.activation ?? ""} ` +
      `[${(job.spec.model.hidden || []).length} hidden]`),
    h("td", {}, new Date(job.created_at).toLocaleString()));
}

export function renderJobs(root, query, { poll }) {
  const filters = { status: query.get("status") || "", name: query.get("name") || "" };
  const status = h("select", { id: "filter-status" },
    STATUSES.map((s) => h("option", { value: s, selected: s === filters.status }, s || "any status")));
  const name = h("input", { id: "filter-name", placeholder: "exact job name", value: filters.name });
  const apply = (event) => {
    event.preventDefault();
    const q = new URLSearchParams({ status: status.value, name: name.value.trim() });
    location.hash = `#/jobs?${q}`;
  };
  const body = h("tbody", {});
  const more = h("button", { type: "button", hidden: true }, "More");
  const message = h("p", { class: "muted" });
  let cursor = null;

  async function load(append) {
    const page = await listJobs({ ...filters, cursor: append ? cursor : undefined });
    cursor = page.next_cursor;
    more.hidden = !cursor;
    const rows = page.items.map(row);
    if (append) body.append(...rows);
    else body.replaceChildren(...rows);
    message.textContent = body.children.length ? "" : "No jobs match.";
    // Poll only while something can still change, and only the first page.
    return !append && page.items.some((j) => LIVE.has(j.status));
  }
  more.addEventListener("click", () => load(true));

  root.replaceChildren(
    h("h2", {}, "Jobs"),
    h("form", { class: "filters", onsubmit: apply }, status, " ", name, " ",
      h("button", { type: "submit" }, "Filter")),
    h("table", { class: "jobs" },
      h("thead", {}, h("tr", {}, ["job", "status", "progress", "train loss", "val loss",
        "val acc", "model", "created"].map((t) => h("th", {}, t)))),
      body),
    message, more);
  poll(() => load(false));
}
