// The only module that talks to the API. The key lives in sessionStorage: typed once per tab,
// gone when the tab closes, never in a URL or a cookie (so no CSRF surface).
const KEY = "gradlab.apiKey";

export class Unauthorized extends Error {}

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function setApiKey(key) {
  sessionStorage.setItem(KEY, key.trim());
}

export function forgetApiKey() {
  sessionStorage.removeItem(KEY);
}

const MAX_WAITS = 3; // 429s a read waits out before it gives up

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

async function request(path, { method = "GET", params, body } = {}, waited = 0) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const headers = { Authorization: `Bearer ${apiKey() || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  // The API limits requests per key (429 with Retry-After). A read is safe to repeat, so wait as
  // told; a POST is not retried, its caller shows the error instead.
  if (response.status === 429 && method === "GET" && waited < MAX_WAITS) {
    const seconds = Number(response.headers.get("Retry-After")) || 1;
    await sleep(Math.min(seconds, 10) * 1000);
    return request(path, { method, params, body }, waited + 1);
  }
  if (response.status === 401) {
    forgetApiKey();
    throw new Unauthorized("the API key was refused");
  }
  if (!response.ok) {
    // Problem details carry the reason in plain words; show that, not a status code.
    const problem = await response.json().catch(() => ({}));
    throw new Error(problem.detail || problem.title || `${response.status} ${response.statusText}`);
  }
  return response.json();
}

export const listJobs = (filters) => request("/v1/jobs", { params: { limit: 100, ...filters } });
export const getJob = (id) => request(`/v1/jobs/${encodeURIComponent(id)}`);
export const getLayers = (id) => request(`/v1/jobs/${encodeURIComponent(id)}/layers`);
export const getDiagnosis = (id) => request(`/v1/jobs/${encodeURIComponent(id)}/diagnosis`);
export const submitRemedy = (id, code) =>
  request(`/v1/jobs/${encodeURIComponent(id)}/remedy`, { method: "POST", body: { codes: [code] } });

// A job has at most one heal: null when it has none yet.
export const getJobHeal = async (id) =>
  (await request("/v1/heals", { params: { job_id: id } }))[0] ?? null;
export const startHeal = (id, maxRounds) => request(`/v1/jobs/${encodeURIComponent(id)}/heal`,
  { method: "POST", body: { max_rounds: maxRounds } });
export const cancelHeal = (id) =>
  request(`/v1/heals/${encodeURIComponent(id)}/cancel`, { method: "POST" });

// max_points lets the server downsample (keeping spikes), so a 100k-step run costs the same.
export async function getMetrics(id, names, maxPoints = 600) {
  const params = { max_points: maxPoints };
  if (names) params.names = names.join(",");
  const body = await request(`/v1/jobs/${encodeURIComponent(id)}/metrics`, { params });
  return Object.fromEntries(body.series.map((s) => [s.name, s]));
}

export function getSnapshots(id, filters) {
  return request(`/v1/jobs/${encodeURIComponent(id)}/snapshots`, { params: filters });
}

export async function checkKey() {
  await request("/v1/jobs", { params: { limit: 1 } });
}

export const listStudies = () => request("/v1/studies", { params: { limit: 100 } });
export const getStudy = (id) => request(`/v1/studies/${encodeURIComponent(id)}`);
export const compareStudy = (id, params) =>
  request(`/v1/studies/${encodeURIComponent(id)}/compare`, { params });
