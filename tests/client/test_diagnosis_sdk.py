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
    assert "ERROR    vanishing_gradients  fc1@300" in out
    assert "  Gradients vanish before reaching fc1" in out
    assert "  suggestion: Use ReLU with He (kaiming_normal) init." in out
    assert '  remedy: model.activation="relu", model.init.scheme="kaiming_normal"' in out
    assert "ERROR    no_learning  -@300" in out
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
    code, _, err = gradlab("remedy", diagnosed, "no_learning")
    assert code == 2 and "codes" in err
