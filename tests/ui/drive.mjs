// Drives the dashboard in a real headless Chromium (Debian's, never a downloaded one) and prints
// what it saw as JSON: pytest (test_dashboard.py) makes the assertions. One plan per run:
//   node drive.mjs '{"base": "...", "key": "...", "out": "dir", "actions": [{"do": ...}, ...]}'
// Actions: login; jobs {query, shot}; job {id, query, shot}; follow {id, code, shot};
// study {id, shot}; live {id}; remedy {code}.
import { chromium } from "playwright-core";

const plan = JSON.parse(process.argv[2]);
const TIMEOUT = plan.timeout_ms ?? 60000;
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run"];

// For each chart: the points the page gave the library, and what its canvases hold. Pixel
// variance is the honest test of "drew something": an empty or failed chart is one flat colour.
function inspectCharts() {
  return [...document.querySelectorAll("[data-chart]")].map((el) => {
    let n = 0; let sum = 0; let sq = 0; let inked = 0;
    for (const canvas of el.querySelectorAll("canvas")) {
      if (!canvas.width || !canvas.height) continue;
      const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
      for (let i = 0; i < data.length; i += 16) { // every 4th pixel is plenty
        const lum = data[i + 3] ? (data[i] + data[i + 1] + data[i + 2]) / 3 : 255;
        n += 1; sum += lum; sq += lum * lum;
        if (lum < 240) inked += 1;
      }
    }
    const mean = n ? sum / n : 0;
    return { name: el.dataset.chart, points: Number(el.dataset.points || 0),
      variance: n ? sq / n - mean * mean : 0, inked: n ? inked / n : 0 };
  });
}

async function rendered(page, id) {
  try {
    await page.waitForFunction((job) => document.body.dataset.rendered === job, id,
      { timeout: TIMEOUT });
  } catch (error) {
    const banner = await page.textContent("#banner").catch(() => "");
    throw new Error(`${id} did not render (banner: ${banner || "none"}): ${error.message}`);
  }
}

const actions = {
  async login(page) {
    await page.goto(`${plan.base}/ui`);
    await page.fill("#api-key", plan.key);
    await page.click("#login button[type=submit]");
    await page.waitForSelector("table.jobs tbody tr", { timeout: TIMEOUT });
    return { url: page.url(), stored: await page.evaluate(() => sessionStorage.length) };
  },
  async jobs(page, a) {
    await page.goto(`${plan.base}/ui/#/jobs${a.query ? `?${a.query}` : ""}`);
    await page.waitForSelector("table.jobs tbody tr, p.muted:has-text('No jobs')", { timeout: TIMEOUT });
    await page.waitForTimeout(300);
    const rows = await page.$$eval("table.jobs tbody tr", (trs) => trs.map((tr) => ({
      id: tr.dataset.job, cells: [...tr.cells].map((c) => c.textContent.trim()) })));
    if (a.shot) await page.screenshot({ path: `${plan.out}/${a.shot}`, fullPage: true });
    return { rows };
  },
  async job(page, a) {
    const started = Date.now();
    await page.goto(`${plan.base}/ui/#/jobs/${a.id}${a.query ? `?${a.query}` : ""}`);
    // The first paint that matters: the loss curve drawn (its chart has been given points).
    const lossMs = page.waitForSelector('[data-chart="loss"][data-points]', { timeout: TIMEOUT })
      .then(() => Date.now() - started, () => null);
    await rendered(page, a.id);
    const ms = Date.now() - started;
    return { ms, lossMs: await lossMs, ...(await describe(page, a)) };
  },
  async follow(page, a) {
    const link = page.locator(`li.finding[data-code="${a.code}"] a.evidence`);
    const href = await link.getAttribute("href");
    await page.evaluate(() => { delete document.body.dataset.rendered; });
    await link.click();
    await rendered(page, a.id);
    return { href, ...(await describe(page, a)) };
  },
  async study(page, a) {
    await page.goto(`${plan.base}/ui/#/studies/${a.id}`);
    await rendered(page, a.id);
    await page.waitForTimeout(400);
    if (a.shot) await page.screenshot({ path: `${plan.out}/${a.shot}`, fullPage: true });
    const rows = await page.$$eval("#comparison tbody tr", (trs) =>
      trs.map((tr) => [...tr.cells].map((c) => c.textContent.trim())));
    return { rows, charts: await page.evaluate(inspectCharts) };
  },
  async live(page, a) {
    await page.goto(`${plan.base}/ui/#/jobs/${a.id}`);
    await rendered(page, a.id);
    const progress = () => page.textContent(".job-header .progress span");
    const first = await progress();
    // Nothing is reloaded by hand: the page's own poll must move the progress bar.
    await page.waitForFunction((before) =>
      document.querySelector(".job-header .progress span")?.textContent !== before, first,
    { timeout: TIMEOUT });
    return { first, later: await progress() };
  },
  async remedy(page, a) {
    await page.click(`li.finding[data-code="${a.code}"] button.remedy`);
    const link = page.locator(`li.finding[data-code="${a.code}"] .remedy-result a`);
    await link.waitFor({ timeout: TIMEOUT });
    return { href: await link.getAttribute("href") };
  },
};

async function describe(page, a) {
  await page.waitForTimeout(400); // let ECharts finish its frame
  if (a.shot) await page.screenshot({ path: `${plan.out}/${a.shot}`, fullPage: true });
  const charts = await page.evaluate(inspectCharts);
  return { charts, ...(await page.evaluate(() => ({
    findings: [...document.querySelectorAll("li.finding")].map((li) => ({
      code: li.dataset.code, evidence: li.querySelector("a.evidence")?.getAttribute("href") ?? null,
      remedy: !!li.querySelector("button.remedy") })),
    layer: document.querySelector("#sel-layer")?.value ?? null,
    kind: document.querySelector("#sel-kind")?.value ?? null,
    step: document.querySelector("#sel-step-label")?.textContent ?? null,
    title: document.querySelector("#layer-title")?.textContent ?? null,
    selected: document.querySelector(".multiple.selected")?.dataset.layer ?? null,
  }))) };
}

const browser = await chromium.launch({ executablePath: plan.chromium ?? "/usr/bin/chromium",
  args: ARGS, headless: true });
const report = { results: [], console: [], pageErrors: [], failedRequests: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on("console", (m) => { if (m.type() === "error") report.console.push(m.text()); });
  page.on("pageerror", (e) => report.pageErrors.push(String(e)));
  page.on("requestfailed", (r) => report.failedRequests.push(`${r.url()} ${r.failure()?.errorText}`));
  page.on("response", (r) => { if (r.status() >= 400) report.failedRequests.push(`${r.status()} ${r.url()}`); });
  for (const a of plan.actions) report.results.push(await actions[a.do](page, a));
} catch (error) {
  report.error = String(error.stack || error);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report));
