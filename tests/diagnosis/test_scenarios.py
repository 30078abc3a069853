"""Real runs, not fabricated statistics: each pathology of the lecture, trained on the CPU, must
be named; the same networks with a suitable init, activation, batch norm or learning rate must
raise no warning or error. The scenarios are tests/diagnosis/scenarios.py (shared with
bench/diagnosis_matrix.py)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from gradlab_contract.models import Finding as ApiFinding
from gradlab_contract.spec import JobSpec

from diagnosis import Finding, RunRecord, apply_remedies, diagnose
from tests.diagnosis.harness import record_run
from tests.diagnosis.scenarios import HEALTHY, PATHOLOGICAL, Scenario

Recorded = Callable[[str], RunRecord]


def alarms(found: list[Finding]) -> list[Finding]:
    return [finding for finding in found if finding.severity != "info"]


def describe(found: list[Finding]) -> str:
    return "\n".join(f"{f.severity} {f.code}: {f.title}" for f in found) or "(no findings)"


@pytest.mark.parametrize("scenario", PATHOLOGICAL, ids=lambda s: s.name)
def test_each_pathology_is_named(scenario: Scenario, recorded: Recorded) -> None:
    found = diagnose(recorded(scenario.name))
    assert scenario.expect <= {f.code for f in alarms(found)}, describe(found)


@pytest.mark.parametrize("scenario", HEALTHY, ids=lambda s: s.name)
def test_healthy_runs_raise_no_warning(scenario: Scenario, recorded: Recorded) -> None:
    found = diagnose(recorded(scenario.name))
    assert alarms(found) == [], describe(found)


@pytest.mark.parametrize("scenario", PATHOLOGICAL, ids=lambda s: s.name)
def test_findings_cite_the_step_and_numbers_and_fit_the_api(
    scenario: Scenario, recorded: Recorded
) -> None:
    for finding in diagnose(recorded(scenario.name)):
        assert finding.step is not None and finding.evidence, finding
        assert finding.title and finding.detail and finding.suggestion
        json.dumps(finding.to_dict(), allow_nan=False)  # what the API and JSONB accept
        assert ApiFinding.model_validate(finding.to_dict()).code == finding.code


def test_a_deep_sigmoid_network_is_explained_in_plain_words(recorded: Recorded) -> None:
    found = diagnose(recorded("deep_sigmoid"))
    vanishing = next(f for f in found if f.code == "vanishing_gradients")
    assert vanishing.severity == "error" and vanishing.layer == "fc1"
    assert vanishing.title.startswith("Gradients vanish before reaching fc1: its gradient norm")
    assert "of out's" in vanishing.title
    assert "Sigmoid's derivative is at most 0.25" in vanishing.detail
    assert vanishing.evidence["ratio"] < 1e-5
    assert vanishing.remedy == {"model.activation": "relu", "model.init.scheme": "kaiming_normal"}


def test_live_diagnosis_names_an_init_problem_at_the_first_snapshot(recorded: Recorded) -> None:
    """What the worker sees at step 1 (the first snapshot and the metrics up to it) is enough
    for the problems an initialization causes."""
    for name, code in [("zero_init", "symmetry"), ("deep_sigmoid", "vanishing_gradients"),
                       ("tanh_small_init", "activation_collapse"),
                       ("tanh_large_init", "saturation")]:
        full = recorded(name)
        first = min(s.step for s in full.snapshots)
        early = RunRecord.build(
            full.spec, layers=full.layers,
            snapshots=[s for s in full.snapshots if s.step == first],
            metrics={n: s for n, s in full.metrics.items() if not s.steps or s.steps[0] <= first},
        )
        assert code in {f.code for f in diagnose(early)}, name


@pytest.mark.parametrize("name", ["zero_init", "deep_sigmoid", "tanh_large_init"])
def test_applying_the_remedies_cures_the_run(name: str, recorded: Recorded) -> None:
    """The remedied spec trains without any of the problems found (it may still want more steps:
    a network that starts to learn at last is not converged after 300 of them)."""
    found = diagnose(recorded(name))
    codes = [f.code for f in found if f.remedy]
    spec = next(s for s in PATHOLOGICAL if s.name == name).job_spec()
    fixed = JobSpec.model_validate(apply_remedies(spec, found, codes))
    after = alarms(diagnose(record_run(fixed)))
    assert not {f.code for f in after} & {f.code for f in found}, describe(after)
    assert all(f.severity != "error" for f in after), describe(after)
