"""client.jobs.diagnosis / remedy and `gradlab diagnose` / `gradlab remedy` against the real app
in process; findings are written through the store as the worker writes them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from gradlab_client import Client, Diagnosis, Finding, ValidationError

from store import findings, leases
from store.db import Database

VANISHING: dict[str, Any] = {
    "code": "vanishing_gradients", "severity": "error", "layer": "fc1", "step": 300,
    "title": "Gradients vanish before reaching fc1: its gradient norm is 7.3e-08, 1e-6 of out's",
    "detail": "Sigmoid's derivative is at most 0.25 and back-propagation multiplies one such "
              "factor per layer.",
    "evidence": {"ratio": 4.3e-07}, "suggestion": "Use ReLU with He (kaiming_normal) init.",
    "remedy": {"model.activation": "relu", "model.init.scheme": "kaiming_normal"},
}
NO_LEARNING: dict[str, Any] = {
    "code": "no_learning", "severity": "error", "step": 300, "title": "The loss is stuck",
    "detail": "ln(3)", "evidence": {"loss": 1.0986},
}
VANISHING = {**VANISHING, "onset_step": 1}
NO_LEARNING = {**NO_LEARNING, "onset_step": 1, "caused_by": "vanishing_gradients",
               "remedy": VANISHING["remedy"]}


@pytest.fixture
def diagnosed(sdk: Client, spiral: dict[str, Any], database: Database,
              claim: Callable[[str], int]) -> str:
    """A finished sigmoid job with a final diagnosis; returns its id."""
    job = sdk.jobs.create({**spiral, "model": {"hidden": [8], "activation": "sigmoid"}})
    attempt = claim(job.id)
    with database.transaction() as session:
        findings.replace_findings(session, job_id=job.id, attempt=attempt,
                                  findings=[NO_LEARNING, VANISHING], final=True)
        leases.finish_job(session, job_id=job.id, attempt=attempt, status="succeeded")
    return job.id


def test_the_sdk_reads_the_diagnosis(sdk: Client, diagnosed: str) -> None:
    diagnosis = sdk.jobs.diagnosis(diagnosed)
    assert isinstance(diagnosis, Diagnosis) and diagnosis.final
    assert [f.code for f in diagnosis.findings] == ["vanishing_gradients", "no_learning"]
    first = diagnosis.findings[0]
    assert isinstance(first, Finding) and first.layer == "fc1" and first.step == 300
    assert first.remedy == VANISHING["remedy"]
    assert (first.onset_step, first.caused_by) == (1, None)
    assert (diagnosis.findings[1].onset_step, diagnosis.findings[1].caused_by) == (
        1, "vanishing_gradients")


def test_the_sdk_submits_a_remedy(sdk: Client, diagnosed: str) -> None:
    child = sdk.jobs.remedy(diagnosed, codes=["vanishing_gradients"], idempotency_key="k1")
    assert child.parent_id == diagnosed
    assert (child.spec.model.activation, child.spec.model.init.scheme) == ("relu",
                                                                           "kaiming_normal")
    assert sdk.jobs.remedy(diagnosed, codes=["vanishing_gradients"],
                           idempotency_key="k1").id == child.id
    with pytest.raises(ValidationError) as raised:
        sdk.jobs.remedy(diagnosed, codes=["dead_units"])
    assert raised.value.field == "codes"


Run = Callable[..., tuple[int, str, str]]


def test_gradlab_diagnose_prints_each_finding_readably(gradlab: Run, diagnosed: str) -> None:
    code, out, _ = gradlab("diagnose", diagnosed)
    assert code == 0
    assert f"{diagnosed}: final diagnosis: 2 findings" in out
    assert "chain: vanishing_gradients (step 1) -> no_learning (step 1)" in out
    assert "ERROR    vanishing_gradients  fc1@300  from step 1" in out
    assert "  Gradients vanish before reaching fc1" in out
    assert "  suggestion: Use ReLU with He (kaiming_normal) init." in out
    assert '  remedy: model.activation="relu", model.init.scheme="kaiming_normal"' in out
    assert "ERROR    no_learning  -@300  from step 1  (caused by vanishing_gradients)" in out
    assert f"apply remedies: gradlab remedy {diagnosed} vanishing_gradients" in out


def test_gradlab_diagnose_json_is_the_api_model(gradlab: Run, diagnosed: str) -> None:
    code, out, _ = gradlab("diagnose", diagnosed, "--json")
    assert code == 0
    parsed = Diagnosis.model_validate(json.loads(out))
    assert parsed.job_id == diagnosed and len(parsed.findings) == 2


def test_gradlab_diagnose_says_when_there_is_nothing_yet(
    gradlab: Run, sdk: Client, spiral: dict[str, Any]
) -> None:
    job = sdk.jobs.create(spiral)
    code, out, _ = gradlab("diagnose", job.id)
    assert code == 0 and "not diagnosed yet" in out


def test_gradlab_remedy_prints_the_new_job_id(gradlab: Run, sdk: Client, diagnosed: str) -> None:
    code, out, err = gradlab("remedy", diagnosed, "vanishing_gradients")
    assert code == 0 and "gradlab watch" in err
    assert sdk.jobs.get(out.strip()).parent_id == diagnosed
    code, _, err = gradlab("remedy", diagnosed, "dead_units")  # not among its findings
    assert code == 2 and "codes" in err


def finish(database: Database, claim: Callable[[str], int], job_id: str, found: list[Any],
           best: float) -> None:
    attempt = claim(job_id)
    with database.transaction() as session:
        findings.replace_findings(session, job_id=job_id, attempt=attempt, findings=found,
                                  final=True)
        leases.finish_job(session, job_id=job_id, attempt=attempt, status="succeeded",
                          summary={"best_val_loss": best})


def test_a_remedy_outcome_shows_in_the_sdk_and_the_cli(
    sdk: Client, gradlab: Run, diagnosed: str, database: Database, claim: Callable[[str], int]
) -> None:
    child = sdk.jobs.remedy(diagnosed, codes=["vanishing_gradients"])
    finish(database, claim, child.id, [], best=0.1)  # the parent recorded no validation loss
    (outcome,) = sdk.jobs.diagnosis(diagnosed).findings[0].outcomes
    assert (outcome.child_id, outcome.outcome) == (child.id, "cured")
    code, out, _ = gradlab("diagnose", diagnosed)
    assert code == 0 and f"  remedy job {child.id}: cured: best validation loss 0.1" in out


def test_the_sdk_and_the_cli_heal_a_job(
    sdk: Client, gradlab: Run, diagnosed: str, database: Database, claim: Callable[[str], int]
) -> None:
    heal = sdk.jobs.heal(diagnosed, max_rounds=2)
    assert heal.status == "running" and len(heal.rounds) == 2  # the job had ended: round 1 runs
    assert sdk.jobs.heal(diagnosed).id == heal.id
    finish(database, claim, heal.current_job_id, [], best=0.1)
    healed = sdk.heals.wait(heal.id, timeout=10, poll_interval=0.1)
    assert healed.status == "healed" and healed.healthy_job_id == heal.rounds[1].job_id
    code, out, _ = gradlab("heal", diagnosed, "--wait", "--interval", "0.1")
    assert code == 0 and f"heal {heal.id} of {diagnosed}: healed" in out
    assert "round 1:" in out and 'model.activation="relu"' in out
    assert sdk.heals.cancel(heal.id).status == "healed"  # a finished heal stays as it is
