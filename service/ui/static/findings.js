// The diagnosis: each finding in plain words, a link to the layer and step of its evidence, and
// a button that submits the job again with that finding's remedy.
import { submitRemedy } from "./api.js";
import { fmt, h } from "./dom.js";

// Which distribution shows a finding's evidence best.
const KIND_OF = {
  vanishing_gradients: "gradient", exploding_gradients: "gradient", symmetry: "weight",
  saturation: "activation", activation_collapse: "activation", dead_units: "activation",
};

export function evidenceHref(jobId, finding) {
  const q = new URLSearchParams();
  if (finding.layer) q.set("layer", finding.layer);
  if (finding.step !== null && finding.step !== undefined) q.set("step", finding.step);
  q.set("kind", KIND_OF[finding.code] || "gradient");
  return `#/jobs/${jobId}?${q}`;
}

function remedyButton(jobId, finding) {
  if (!finding.remedy) return null;
  const changes = Object.entries(finding.remedy).map(([k, v]) => `${k} = ${JSON.stringify(v)}`);
  const out = h("span", { class: "remedy-result" });
  const button = h("button", { type: "button", class: "remedy", dataset: { code: finding.code },
    title: changes.join("\n"), onclick: async () => {
      button.disabled = true;
      try {
        const job = await submitRemedy(jobId, finding.code);
        out.replaceChildren("submitted ", h("a", { href: `#/jobs/${job.id}` }, job.id.slice(0, 8)));
      } catch (e) {
        button.disabled = false;
        out.textContent = e.message;
      }
    } }, "Submit with this remedy");
  return h("div", {}, button, " ", h("code", {}, changes.join(", ")), " ", out);
}

// What the remedy jobs submitted for a finding proved: cured, not cured, or still running.
function outcomes(f) {
  if (!f.outcomes || !f.outcomes.length) return null;
  return h("ul", { class: "outcomes" }, f.outcomes.map((o) =>
    h("li", { class: `outcome ${o.outcome}`, dataset: { child: o.child_id } },
      "remedy job ", h("a", { href: `#/jobs/${o.child_id}` }, o.child_id.slice(0, 8)), ": ",
      h("strong", {}, o.outcome.replace("_", " ")), o.reason ? ` (${o.reason})` : "")));
}

const since = (f) => (f.onset_step !== null && f.onset_step !== undefined
  ? `from step ${fmt(f.onset_step)}` : "");

function card(jobId, f) {
  const where = [f.layer && `layer ${f.layer}`, f.step !== null && f.step !== undefined &&
    `step ${fmt(f.step)}`].filter(Boolean).join(", ");
  const cause = f.caused_by && h("span", { class: "caused-by muted" }, ` caused by ${f.caused_by}`);
  return h("li", { class: `finding ${f.severity}${f.caused_by ? " symptom" : ""}`,
    dataset: { code: f.code, causedBy: f.caused_by || "", onset: f.onset_step ?? "" } },
    h("div", { class: "finding-title" }, h("span", { class: `sev ${f.severity}` }, f.severity),
      " ", h("strong", {}, f.title), " ", h("small", { class: "muted onset" }, since(f)), cause),
    h("p", {}, f.detail),
    f.suggestion && h("p", { class: "muted" }, f.suggestion),
    where && h("a", { class: "evidence", href: evidenceHref(jobId, f) }, `Show the evidence: ${where}`),
    remedyButton(jobId, f), outcomes(f));
}

// "activation_collapse (step 1) → no_learning (step 1), dead_units (step 50)": each root cause
// and the symptoms it explains, in the order they began.
export function causeChain(findings) {
  const label = (f) => `${f.code}${f.onset_step !== null && f.onset_step !== undefined
    ? ` (step ${fmt(f.onset_step)})` : ""}`;
  return findings.filter((f) => !f.caused_by).map((root) => {
    const effects = findings.filter((f) => f.caused_by === root.code);
    return effects.length ? `${label(root)} → ${effects.map(label).join(", ")}` : null;
  }).filter(Boolean);
}

export function renderFindings(el, jobId, diagnosis) {
  const state = !diagnosis.updated_at ? "not diagnosed yet"
    : diagnosis.final ? "final" : "live: updated while the job runs";
  const list = diagnosis.findings.length
    ? h("ul", { class: "findings" }, diagnosis.findings.map((f) => card(jobId, f)))
    : h("p", { class: "ok" }, diagnosis.final ? "No findings: nothing went wrong." : "No findings so far.");
  const chains = causeChain(diagnosis.findings);
  const chain = chains.length && h("p", { class: "chain" }, "Chain: ", chains.join("; "));
  el.replaceChildren(h("h3", {}, "Diagnosis ", h("small", { class: "muted" }, `(${state})`)),
    chain || "", list);
}
