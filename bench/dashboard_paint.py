"""The dashboard's first paint of a 1,000,000-step job, in a real headless Chromium.

    .venv/bin/python bench/dashboard_paint.py [--steps 1000000] [--layers 10] [--repeats 3]

The approach of the browser tests (tests/ui): Debian's Chromium driven by tests/ui/drive.mjs
(playwright-core from `make ui`), the real API (`gradlab-server api`) on a fresh SQLite home, and
a finished job written straight through the store by tests/ui/synthetic.py (per-step loss and
learning rate, evaluation series, an update ratio per layer every 100 steps, snapshots of every
layer). The figures are the time from navigating to the job's page to its loss curve being
drawn (the first paint), and to the page saying every chart is drawn (body[data-rendered]).
Each visit is a fresh browser (scripts and the charting library loaded and parsed again, as a
user opening a link). Target: <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from query_latency import api_process  # noqa: E402

from store import migrate, teams  # noqa: E402
from store.db import Database  # noqa: E402
from tests.ui.synthetic import write_big_job  # noqa: E402

CHROMIUM = os.environ.get("GRADLAB_TEST_CHROMIUM", "/usr/bin/chromium")
TARGET_MS = 1000


def drive(base: str, key: str, job_id: str, out: Path) -> tuple[int, int]:
    """One fresh browser: log in, open the job's page; milliseconds until the loss curve is
    drawn, and until every chart is."""
    node = shutil.which("node")
    if node is None or not Path(CHROMIUM).exists():
        raise SystemExit("needs node and Chromium (apt-get install chromium; make ui)")
    actions = [{"do": "login"}, {"do": "job", "id": job_id}]
    plan = {"base": base, "key": key, "out": str(out), "chromium": CHROMIUM,
            "timeout_ms": 120_000, "actions": actions}
    done = subprocess.run([node, str(ROOT / "tests/ui/drive.mjs"), json.dumps(plan)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-4000:])
    report = json.loads(done.stdout)
    if "error" in report:
        raise SystemExit(report["error"])
    if report["pageErrors"] or report["failedRequests"]:
        raise SystemExit(f"the page failed: {report['pageErrors']} {report['failedRequests']}")
    page = report["results"][1]
    return int(page["lossMs"]), int(page["ms"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--snapshot-every", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min), cpus: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        from query_latency import backend

        settings, _ = backend("sqlite", home)
        settings.ensure_directories()
        migrate.upgrade(settings)
        database = Database.from_settings(settings)
        try:
            with database.transaction() as session:
                key = teams.create_api_key(
                    session, team_id=teams.create_team(session, name="bench").id)
                team_id = teams.authenticate(session, key=key).id  # type: ignore[union-attr]
            with api_process(settings, home) as base:
                started = time.monotonic()
                job_id = write_big_job(database, team_id=team_id, steps=args.steps,
                                       layers=args.layers, snapshot_every=args.snapshot_every)
                print(f"wrote a {args.steps:,}-step, {args.layers}-layer job in "
                      f"{time.monotonic() - started:.0f} s")
                times = [drive(base, key, job_id, home) for _ in range(args.repeats)]
        finally:
            database.close()
    paint = statistics.median(loss for loss, _ in times)
    verdict = "meets target" if paint <= TARGET_MS else "MISSES target"
    print(f"each visit in a fresh browser, (loss curve drawn, every chart drawn) ms: {times}")
    print(f"first paint (loss curve) p50 {paint:.0f} ms (target <= {TARGET_MS} ms: {verdict}); "
          f"whole page p50 {statistics.median(whole for _, whole in times):.0f} ms")


if __name__ == "__main__":
    main()
