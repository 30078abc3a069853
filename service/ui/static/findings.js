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

function card(jobId, f) {
  const where = [f.layer && `layer ${f.layer}`, f.step !== null && f.step !== undefined &&
    `step ${fmt(f.step)}`].filter(Boolean).join(", ");
  return h("li", { class: `finding ${f.severity}`, dataset: { code: f.code } },
    h("div", { class: "finding-title" }, h("span", { class: `sev ${f.severity}` }, f.severity),
      " ", h("strong", {}, f.title)),
    h("p", {}, f.detail),
    f.suggestion && h("p", { class: "muted" }, f.suggestion),
    where && h("a", { class: "evidence", href: evidenceHref(jobId, f) }, `Show the evidence: ${where}`),
    remedyButton(jobId, f));
}

export function renderFindings(el, jobId, diagnosis) {
  const state = !diagnosis.updated_at ? "not diagnosed yet"
    : diagnosis.final ? "final" : "live: updated while the job runs";
  const list = diagnosis.findings.length
    ? h("ul", { class: "findings" }, diagnosis.findings.map((f) => card(jobId, f)))
    : h("p", { class: "ok" }, diagnosis.final ? "No findings: nothing went wrong." : "No findings so far.");
  el.replaceChildren(h("h3", {}, "Diagnosis ", h("small", { class: "muted" }, `(${state})`)), list);
}
