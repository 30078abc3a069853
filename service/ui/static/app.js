// Hash routing (#/jobs, #/jobs/<id>?layer=..&step=..&kind=.., #/studies, #/studies/<id>) and the one poller: a view hands
// it a refresh function that returns true while there is something live to follow.
import { Unauthorized, apiKey, forgetApiKey } from "./api.js";
import { dispose } from "./charts.js";
import { renderJob } from "./job.js";
import { renderJobs } from "./jobs.js";
import { renderLogin } from "./login.js";
import { renderStudies, renderStudy } from "./studies.js";

const POLL_MS = 2000;
const RETRY_MS = 5000; // after a failed refresh (API restarting, rate limit): try again, calmly
const root = document.getElementById("view");
let generation = 0; // a poll from a view the user has left must stop, not redraw

function showError(error) {
  if (error instanceof Unauthorized) {
    renderLogin(root, route, "The key was refused; enter it again.");
    return;
  }
  console.warn(error);
  const banner = document.getElementById("banner");
  banner.textContent = `Could not load: ${error.message}`;
  banner.hidden = false;
}

function poller(mine) {
  return (refresh) => {
    const tick = async () => {
      if (mine !== generation) return;
      try {
        const again = await refresh();
        document.getElementById("banner").hidden = true;
        if (again && mine === generation) setTimeout(tick, POLL_MS);
      } catch (error) {
        if (mine !== generation) return;
        showError(error);
        if (!(error instanceof Unauthorized)) setTimeout(tick, RETRY_MS);
      }
    };
    tick();
  };
}

function route() {
  const mine = ++generation;
  dispose(root);
  delete document.body.dataset.rendered;
  if (!apiKey()) {
    renderLogin(root, route);
    return;
  }
  const [path, search] = location.hash.replace(/^#/, "").split("?");
  const query = new URLSearchParams(search || "");
  const parts = path.split("/").filter(Boolean);
  const context = { poll: poller(mine), navigate: (hash) => { location.hash = hash; } };
  const id = parts[1] && decodeURIComponent(parts[1]);
  if (parts[0] === "jobs" && id) renderJob(root, id, query, context);
  else if (parts[0] === "studies" && id) renderStudy(root, id, query, context);
  else if (parts[0] === "studies") renderStudies(root, query, context);
  else renderJobs(root, query, context);
}

document.getElementById("logout").addEventListener("click", () => {
  forgetApiKey();
  route();
});
window.addEventListener("hashchange", route);
route();
