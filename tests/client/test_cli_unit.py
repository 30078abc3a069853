"""The CLI's pieces without a server: argument parsing, reading specs, the text it prints.
(Every command against the real app, with exit codes: test_cli_e2e.py.)"""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import gradlab_client as gl
import pytest
from gradlab_client import _cli_output as text
from gradlab_client._cli_commands import UsageError, load_spec
from gradlab_client.cli import build_parser, main

SPEC = {"data": {"dataset": "spiral"}, "training": {"steps": 10}}


def test_global_options_go_before_or_after_the_command() -> None:
    before = build_parser().parse_args(["--json", "--url", "http://a", "list"])
    after = build_parser().parse_args(["list", "--json", "--api-key", "k"])
    assert before.json and before.url == "http://a"
    assert after.json and after.api_key == "k" and after.url is None


def test_usage_errors_exit_2_and_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["snapshots", "j1", "--kind", "gradient"]) == 2  # --layer is required
    assert "--layer" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2
    assert main(["--help"]) == 0
    assert "Exit codes" in capsys.readouterr().out


def test_a_missing_spec_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--url", "http://127.0.0.1:9", "submit", str(tmp_path / "nope.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_specs_are_read_from_json_yaml_and_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.json").write_text(json.dumps(SPEC))
    (tmp_path / "a.yaml").write_text("data:\n  dataset: spiral\ntraining:\n  steps: 10\n")
    assert load_spec(str(tmp_path / "a.json")) == SPEC
    assert load_spec(str(tmp_path / "a.yaml")) == SPEC
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(SPEC)))
    assert load_spec("-") == SPEC


@pytest.mark.parametrize(("name", "content", "needle"), [
    ("bad.json", "{", "not valid JSON"),
    ("list.json", "[1]", "one spec object"),
    ("bad.yaml", "a: [", "not valid YAML"),
])
def test_unreadable_specs_say_why(tmp_path: Path, name: str, content: str, needle: str) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(UsageError, match=needle):
        load_spec(str(tmp_path / name))


def test_yaml_without_pyyaml_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)
    (tmp_path / "a.yml").write_text("data: {}")
    with pytest.raises(UsageError, match=r"pip install 'gradlab-client\[yaml\]'"):
        load_spec(str(tmp_path / "a.yml"))


def test_tables_align_text_left_and_numbers_right() -> None:
    rendered = text.table(["NAME", "N"], [["a", 1], ["long name", 1000], ["c", None]])
    lines = rendered.splitlines()
    assert lines[0] == "NAME          N"
    assert lines[1] == "a             1"
    assert lines[2] == "long name  1000"
    assert lines[3] == "c             -"


def test_metrics_csv_is_wide_with_gaps_and_nan() -> None:
    result = gl.MetricsResult([
        gl.MetricSeries(name="loss", steps=[1, 2], values=[0.5, None]),
        gl.MetricSeries(name="acc", steps=[2], values=[0.25]),
    ])
    assert text.metrics_csv(result).splitlines() == ["step,loss,acc", "1,0.5,", "2,nan,0.25"]
    summary = text.metrics_summary(result)
    assert summary.splitlines()[1].split() == ["loss", "2", "2", "-", "0.5", "0.5"]


def test_job_detail_shows_the_summary_and_the_error() -> None:
    job = gl.Job.model_validate({
        "id": "j1", "status": "failed", "spec": SPEC, "error": "worker lost",
        "created_at": datetime(2024, 1, 1, tzinfo=UTC), "summary": {"final_loss": 0.25},
    })
    lines = dict(line.split(None, 1) for line in text.job_detail(job).splitlines())
    assert lines["error"] == "worker lost" and lines["final_loss"] == "0.25"
    assert lines["status"] == "failed" and lines["name"] == "-"


def test_histograms_are_drawn_as_bars() -> None:
    drawn = text.histogram_bars(gl.Histogram(edges=[0.0, 1.0, 2.0], counts=[1, 4]), "h")
    assert drawn.splitlines()[2].endswith("#" * 40) and drawn.splitlines()[1].endswith("#" * 10)
