"""resnet and sequential specs at submit: a layer that cannot take its input's shape is a 422
naming the layer's index, and the parameter cap bounds the new kinds like the old ones."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from store.db import Database
from tests.service.support import SPIRAL, count_rows
from tests.service.test_jobs_api import problem_of

DIGITS = {**SPIRAL, "data": {"dataset": "digits"}}
CONV = {"type": "conv", "channels": 8}


@pytest.mark.parametrize(
    ("model", "field", "needle"),
    [
        ({"kind": "sequential", "layers": [CONV, {"type": "linear", "units": 4}]},
         "model.layers.1", "flatten"),
        ({"kind": "sequential", "layers": [
            CONV, {"type": "activation"},
            {"type": "residual", "layers": [CONV, {"type": "pool"}]}]},
         "model.layers.2", "same shape"),
        ({"kind": "sequential", "layers": [
            CONV, {"type": "residual", "layers": [{"type": "group_norm", "groups": 3}]}]},
         "model.layers.1.layers.0", "divide"),
        ({"kind": "sequential", "layers": [{"type": "pool"}] * 4}, "model.layers.3", "nothing"),
        ({"kind": "sequential", "layers": [{"type": "activation", "name": "maxout"}]},
         "model.layers.0", "even"),
        ({"kind": "sequential", "layers": [{"type": "flatten"}, {"type": "conv", "channels": 2}]},
         "model.layers.1", "conv needs"),
        ({"kind": "sequential", "layers": [{"type": "lstm"}]}, "model.layers.0", "lstm"),
        ({"kind": "sequential"}, "model.layers", "at least one"),
        ({"kind": "mlp", "layers": [CONV]}, "model.layers", "sequential"),
        ({"kind": "resnet", "hidden": [8]}, "model.hidden", "stages"),
        ({"kind": "resnet", "batch_norm": True}, "model.batch_norm", "resnet.norm"),
        ({"kind": "resnet", "activation": "maxout"}, "model.activation", "residual sum"),
        ({"kind": "resnet", "resnet": {"norm": "group", "groups": 5}},
         "model.resnet.stem_channels", "divide"),
        ({"kind": "resnet", "resnet": {"kernel": 4}}, "model.resnet.kernel", "odd"),
        ({"kind": "resnet", "resnet": {"shortcut": "none", "zero_init_residual": True}},
         "model.resnet.zero_init_residual", "shortcut"),
    ],
)
def test_a_bad_architecture_is_422_naming_the_layer(
    client: TestClient, auth: dict[str, str], database: Database,
    model: dict[str, Any], field: str, needle: str,
) -> None:
    response = client.post("/v1/jobs", json={**DIGITS, "model": model}, headers=auth)
    problem = problem_of(response, 422)
    assert problem.field == field, problem
    assert needle in (problem.detail or "") + str(problem.errors), problem
    assert count_rows(database, "jobs") == 0


@pytest.mark.parametrize(
    ("model", "field"),
    [
        ({"kind": "resnet", "resnet": {"stages": [{"channels": 16}, {"channels": 256}]}},
         "model.resnet.stages.1.channels"),
        ({"kind": "sequential", "layers": [
            {"type": "flatten"}, {"type": "linear", "units": 64},
            {"type": "residual", "layers": [{"type": "linear", "units": 2048},
                                            {"type": "activation"},
                                            {"type": "linear", "units": 64}]}]},
         "model.layers.2.layers.0"),
    ],
)
def test_the_parameter_cap_bounds_the_new_kinds_naming_the_largest_layer(
    client: TestClient, auth: dict[str, str], database: Database, model: dict[str, Any],
    field: str,
) -> None:
    response = client.post("/v1/jobs", json={**DIGITS, "model": model}, headers=auth)
    problem = problem_of(response, 422)
    assert problem.field == field, problem
    assert "parameters" in (problem.detail or "")
    assert count_rows(database, "jobs") == 0


def test_resnet_and_sequential_specs_are_accepted(
    client: TestClient, auth: dict[str, str]
) -> None:
    for model in ({"kind": "resnet", "activation": "prelu"},
                  {"kind": "sequential", "layers": [
                      CONV, {"type": "batch_norm"}, {"type": "activation"},
                      {"type": "residual", "layers": [CONV, {"type": "activation"}]},
                      {"type": "pool", "mode": "global_avg"}]}):
        response = client.post("/v1/jobs", json={**DIGITS, "model": model}, headers=auth)
        assert response.status_code == 201, response.text
