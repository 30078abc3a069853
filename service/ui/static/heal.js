// The heal panel: start a heal (rounds of diagnose -> remedy -> train until a job is healthy),
// then follow it round by round: each round's job, its findings, the changes that made it and
// whether it cured the round before.
import { cancelHeal, getJobHeal, startHeal } from "./api.js";
import { fmt, h } from "./dom.js";

const ROUNDS = 3;

function round(r) {
  const changes = Object.entries(r.changes || {}).map(([k, v]) => `${k} = ${JSON.stringify(v)}`);
  return h("li", { class: "heal-round", dataset: { round: r.round, job: r.job_id } },
    h("strong", {}, r.round === 0 ? "the job" : `round ${r.round}`), " ",
    h("a", { href: `#/jobs/${r.job_id}` }, r.job_id.slice(0, 8)), " ",
    h("span", { class: "muted" }, r.status || "queued"),
    r.outcome && h("span", { class: `outcome ${r.outcome}` }, ` ${r.outcome.replace("_", " ")}`),
    r.findings && r.findings.length ? ` · findings: ${r.findings.join(", ")}` : "",
    changes.length ? h("div", {}, h("code", {}, changes.join(", "))) : "");
}

function panel(el, jobId, heal) {
  if (!heal) {
    const out = h("span", { class: "muted" });
    const button = h("button", { type: "button", class: "heal-start", onclick: async () => {
      button.disabled = true;
      try {
        panel(el, jobId, await startHeal(jobId, ROUNDS));
      } catch (e) {
        button.disabled = false;
        out.textContent = e.message;
      }
    } }, `Heal this job (up to ${ROUNDS} rounds)`);
    el.replaceChildren(h("h3", {}, "Heal"), h("p", { class: "muted" },
      "Apply the root causes' remedies and train again, round after round, until a job is " +
      "healthy."), button, " ", out);
    return;
  }
  const stop = heal.status === "running" && h("button", { type: "button", class: "heal-cancel",
    onclick: async () => panel(el, jobId, await cancelHeal(heal.id)) }, "Cancel heal");
  el.replaceChildren(
    h("h3", {}, "Heal ", h("small", { class: `muted heal-status ${heal.status}` }, heal.status)),
    heal.reason && h("p", { class: "muted" }, heal.reason),
    heal.healthy_job_id && h("p", {}, "Healthy job: ",
      h("a", { href: `#/jobs/${heal.healthy_job_id}` }, heal.healthy_job_id.slice(0, 8))),
    h("ol", { class: "heal-rounds" }, heal.rounds.map(round)),
    h("p", { class: "muted" }, `training steps of the remedy jobs: ${fmt(heal.training_steps)}`),
    stop || "");
}

// Returns whether the heal still runs, so the page keeps polling.
export async function renderHeal(el, jobId) {
  const heal = await getJobHeal(jobId);
  panel(el, jobId, heal);
  return !!heal && heal.status === "running";
}
