// Hash routing (#/jobs, #/jobs/<id>?layer=..&step=..&kind=.., #/studies, #/studies/<id>) and the one poller: a view hands
// it a refresh function that returns true while there is something live to follow. A view that
// names its event stream is refreshed when events come (at most every REFRESH_MS), and polled
// only when the stream cannot be read.
import { Unauthorized, apiKey, forgetApiKey } from "./api.js";
import { follow } from "./live.js";
import { dispose } from "./charts.js";
import { renderJob } from "./job.js";
import { renderJobs } from "./jobs.js";
import { renderLogin } from "./login.js";
import { renderStudies, renderStudy } from "./studies.js";

const POLL_MS = 2000;
const RETRY_MS = 5000; // after a failed refresh (API restarting, rate limit): try again, calmly
const REFRESH_MS = 1000; // a burst of events costs one refresh
let stream = null; // the AbortController of the current view's event stream
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
  return (refresh, { events } = {}) => {
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
    if (events) streamed(mine, refresh, events).catch(() => { if (mine === generation) tick(); });
    else tick();
  };
}

// Refresh once, then again on the view's events until its `end`; reject to fall back to polling.
async function streamed(mine, refresh, path) {
  if (!(await refresh())) return; // nothing live to follow
  stream = new AbortController();
  let pending = null;
  let last = 0;
  const later = () => {
    if (pending || mine !== generation) return;
    pending = setTimeout(async () => {
      pending = null;
      last = Date.now();
      if (mine === generation) await refresh().catch(showError);
    }, Math.max(0, last + REFRESH_MS - Date.now()));
  };
  let lastId = null;
  for (;;) {
    const result = await follow(path, later, { signal: stream.signal, lastId });
    if (mine !== generation) return;
    lastId = result.lastId;
    if (result.ended) {
      clearTimeout(pending);
      await refresh(); // the final state
      return;
    } // else the server closed a long stream: resume after the last event
  }
}

function route() {
  const mine = ++generation;
  if (stream) stream.abort(); // the view that followed it is gone
  stream = null;
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
