"""`gradlab` against the real app in process: what each command prints and the exit code a
pipeline acts on. The CLI's seam is main(argv, http_client=...): the TestClient stands in for
the network. No worker runs; jobs are ended through the store from a thread."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from gradlab_client._http import RetryPolicy
from gradlab_client.cli import main
from sqlalchemy import select

from store import leases, orm
from store.db import Database

Spec = dict[str, Any]
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def spec_file(tmp_path: Path, spiral: Spec) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spiral))
    return path


def submitted(gradlab: Run, spec_file: Path) -> str:
    code, out, _ = gradlab("submit", str(spec_file))
    assert code == 0
    return out.strip()


def test_submit_prints_just_the_id_and_show_finds_it(gradlab: Run, spec_file: Path) -> None:
    code, out, err = gradlab("submit", str(spec_file))
    job_id = out.strip()
    assert code == 0 and "\n" not in job_id and f"gradlab watch {job_id}" in err
    code, out, _ = gradlab("show", job_id)
    fields = dict(line.split(None, 1) for line in out.splitlines())
    assert code == 0 and fields["id"] == job_id and fields["status"] == "queued"
    code, out, _ = gradlab("--json", "show", job_id)
    assert json.loads(out)["spec"]["model"]["hidden"] == [8]


def test_submit_reads_yaml(gradlab: Run, tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("name: from-yaml\ndata: {dataset: spiral}\ntraining: {steps: 5}\n")
    code, out, _ = gradlab("submit", str(path), "--json")
    assert code == 0 and json.loads(out)["name"] == "from-yaml"


def test_a_bad_spec_exits_2_naming_the_field(gradlab: Run, tmp_path: Path, spiral: Spec) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**spiral, "model": {"activation": "swish"}}))
    code, out, err = gradlab("submit", str(path))
    assert code == 2 and out == ""
    assert "model.activation: 'swish' is not one of" in err
    code, _, err = gradlab("--json", "submit", str(path))
    problem = json.loads(err)
    assert code == 2 and problem["field"] == "model.activation" and problem["status"] == 422


def test_api_errors_exit_1(gradlab: Run) -> None:
    code, out, err = gradlab("show", "no-such-job")
    assert code == 1 and out == "" and "404 Not Found" in err
    code, _, err = gradlab("list", key="glk_wrong")
    assert code == 1 and "401" in err


def test_an_unreachable_service_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(RetryPolicy, "delay", lambda self, retry, retry_after=None: 0.0)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    http = httpx.Client(transport=httpx.MockTransport(refuse))
    assert main(["--url", "http://gradlab.invalid", "list"], http_client=http) == 1
    assert "connection refused" in capsys.readouterr().err


def test_list_prints_a_table_or_json(gradlab: Run, spec_file: Path) -> None:
    first, second = submitted(gradlab, spec_file), submitted(gradlab, spec_file)
    code, out, _ = gradlab("list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["ID", "NAME", "STATUS", "STEP", "CREATED"]
    assert [line.split()[0] for line in lines[1:]] == [second, first]
    assert lines[1].index("queued") == lines[0].index("STATUS")  # aligned columns
    code, out, _ = gradlab("list", "--json", "--status", "queued", "--limit", "1")
    assert [job["id"] for job in json.loads(out)] == [second]


def test_cancel(gradlab: Run, spec_file: Path) -> None:
    job_id = submitted(gradlab, spec_file)
    code, out, _ = gradlab("cancel", job_id)
    assert code == 0 and "cancelled" in out


@pytest.fixture
def end_next_job(database: Database, finish: Callable[..., None]) -> Iterator[Callable[..., None]]:
    """end_next_job(status, ...) ends the next job that gets submitted, from a thread, the way
    a worker would: a stand-in for the live worker of the integration tests."""
    threads: list[threading.Thread] = []

    def end(status: str, **values: Any) -> None:
        def run() -> None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with database.read() as session:
                    queued = session.scalars(select(orm.Job.id).where(orm.Job.status == "queued"))
                    job_id = queued.first()
                if job_id is not None:
                    time.sleep(0.1)  # let the CLI see it queued first
                    finish(job_id, status, **values)
                    return
                time.sleep(0.02)

        threads.append(threading.Thread(target=run, daemon=True))
        threads[-1].start()

    yield end
    for thread in threads:
        thread.join(timeout=10)


@pytest.mark.parametrize(
    ("status", "exit_code"), [("succeeded", 0), ("diverged", 3), ("failed", 4), ("cancelled", 5)]
)
def test_submit_wait_exits_with_the_jobs_ending(
    gradlab: Run, spec_file: Path, end_next_job: Callable[..., None], status: str, exit_code: int
) -> None:
    end_next_job(status, summary={"final_loss": 0.5}, error="boom" if status == "failed" else None)
    code, out, err = gradlab("submit", str(spec_file), "--wait", "--interval", "0.05")
    fields = dict(line.split(None, 1) for line in out.splitlines())
    assert code == exit_code and fields["status"] == status and fields["final_loss"] == "0.5"
    assert "queued" in err and status in err  # progress lines on stderr, one per status
    if status == "failed":
        assert fields["error"] == "boom"


def test_watch_shows_the_latest_metrics_then_the_summary(
    gradlab: Run, spec_file: Path, record: Callable[[str], int], database: Database,
) -> None:
    job_id = submitted(gradlab, spec_file)
    attempt = record(job_id)  # running, with loss recorded up to step 9
    timer = threading.Timer(0.3, _finish, args=(database, job_id, attempt))
    timer.start()
    code, out, err = gradlab("watch", job_id, "--interval", "0.05", "--json")
    timer.join()
    assert code == 0 and json.loads(out)["status"] == "succeeded"
    lines = err.splitlines()
    assert lines[0].endswith("0/20 running train_loss=0.1 val_accuracy=0.8")
    assert lines[-1].endswith("20/20 succeeded train_loss=0.1 val_accuracy=0.8")


def _finish(database: Database, job_id: str, attempt: int) -> None:
    with database.transaction() as session:
        leases.finish_job(session, job_id=job_id, attempt=attempt, status="succeeded",
                          progress_step=20)


def test_metrics_summary_csv_and_json(
    gradlab: Run, spec_file: Path, record: Callable[[str], int]
) -> None:
    job_id = submitted(gradlab, spec_file)
    record(job_id)
    code, out, _ = gradlab("metrics", job_id)
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert code == 0 and rows["train_loss"][1:3] == ["10", "9"]
    code, out, _ = gradlab("metrics", job_id, "--names", "train_loss,val_accuracy", "--csv")
    lines = out.splitlines()
    assert lines[:3] == ["step,train_loss,val_accuracy", "0,1.0,0.0", "1,0.5,"]
    code, out, _ = gradlab("--json", "metrics", job_id, "--names", "train_loss")
    assert [series["name"] for series in json.loads(out)] == ["train_loss"]


def test_snapshots_table_and_histogram(
    gradlab: Run, spec_file: Path, record: Callable[[str], int]
) -> None:
    job_id = submitted(gradlab, spec_file)
    record(job_id)
    code, out, _ = gradlab("snapshots", job_id, "--kind", "gradient", "--layer", "fc1")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:4] == ["STEP", "KIND", "LAYER", "MEAN"]
    assert len(lines) == 3
    code, out, _ = gradlab("snapshots", job_id, "--kind", "gradient", "--layer", "fc1",
                           "--step", "5")
    assert "histogram of log10|x|" in out and "#" * 40 in out
    code, out, _ = gradlab("snapshots", job_id, "--kind", "weight", "--layer", "out", "--json")
    assert [snapshot["step"] for snapshot in json.loads(out)] == [0, 5]


def test_catalog(gradlab: Run) -> None:
    code, out, _ = gradlab("catalog")
    assert code == 0 and "model.activation:" in out and "max_parameters" in out
    code, out, _ = gradlab("catalog", "--json")
    assert "model.init.scheme" in json.loads(out)["enums"]


def test_datasets_upload_and_list(gradlab: Run, tmp_path: Path) -> None:
    path = tmp_path / "points.npz"
    buffer = io.BytesIO()
    np.savez(buffer, x=np.random.default_rng(0).normal(size=(30, 2)), y=np.arange(30) % 3)
    path.write_bytes(buffer.getvalue())
    code, out, _ = gradlab("datasets", "upload", str(path), "--json")
    info = json.loads(out)
    assert code == 0 and info["id"].startswith("upload:") and info["num_classes"] == 3
    code, out, _ = gradlab("datasets", "list")
    ids = [line.split()[0] for line in out.splitlines()[1:]]
    assert code == 0 and "spiral" in ids and info["id"] in ids
    code, _, err = gradlab("datasets", "upload", str(tmp_path / "missing.npz"))
    assert code == 2 and "no such file" in err
    (tmp_path / "junk.npz").write_text("junk")
    code, _, err = gradlab("datasets", "upload", str(tmp_path / "junk.npz"))
    assert code == 2 and "npz" in err
