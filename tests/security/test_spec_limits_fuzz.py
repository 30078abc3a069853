"""OWASP API4: a spec over any resource cap (parameters, activation memory, steps, batch size,
histogram bins) or an upload over its size limit is refused, and leaves nothing behind: no job
row, no data set row or file, no broker message. Hypothesis draws the specs."""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Callable
from typing import Any

import pytest
from celery import Celery
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service import create_app
from store.artifacts import open_artifact_store
from store.db import Database
from store.settings import Settings
from tests.service.support import SPIRAL, count_rows

CAPS = {"max_parameters": 100_000, "max_steps": 10_000, "max_batch_size": 512, "max_bins": 128,
        "max_activation_bytes": 200_000, "max_upload_bytes": 64 * 1024}
SPIRAL_TRAIN_ROWS = 1200  # 3 classes x 500 points, less the 20% validation split
FUZZ = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
Spec = dict[str, Any]


@pytest.fixture
def capped(app_settings: Settings, celery_app: Celery) -> Callable[[], TestClient]:
    return lambda: TestClient(create_app(app_settings.model_copy(update=CAPS),
                                         celery_app=celery_app))


def _spec(*, hidden: list[int] | None = None, bins: int | None = None, **training: int) -> Spec:
    """SPIRAL with these values; `training` replaces its training section when given."""
    spec: Spec = {**SPIRAL, "model": {"hidden": hidden or SPIRAL["model"]["hidden"]}}
    if training:
        spec["training"] = {"steps": 20, **training} if "epochs" not in training else training
    if bins is not None:
        spec["telemetry"] = {"bins": bins}
    return spec


def _over(spec: Spec) -> set[str]:
    """The fields of the caps this spiral MLP spec exceeds, computed here, independently of
    service.limits: any of them may be the one the refusal names."""
    hidden, training = spec["model"]["hidden"], spec["training"]
    batch = training.get("batch_size", 64)
    widths = [2, *hidden, 3]  # spiral: 2 features, 3 classes
    parameters = sum(a * b + b for a, b in itertools.pairwise(widths))
    activation_bytes = 12 * sum(widths) * batch  # 3 tensors of fp32 per element kept
    steps = training.get("steps") or training["epochs"] * math.ceil(SPIRAL_TRAIN_ROWS / batch)
    over = {
        "training.batch_size": batch > CAPS["max_batch_size"]
        or activation_bytes > CAPS["max_activation_bytes"],
        "telemetry.bins": spec.get("telemetry", {}).get("bins", 64) > CAPS["max_bins"],
        "model.hidden": parameters > CAPS["max_parameters"],
        "training.steps" if "steps" in training else "training.epochs":
            steps > CAPS["max_steps"],
    }
    return {field for field, exceeded in over.items() if exceeded}


# Choices that do not change what a spec costs, drawn so the caps are met by varied specs.
VARIETY = st.fixed_dictionaries({
    "activation": st.sampled_from(["relu", "tanh", "gelu", "sigmoid", "elu"]),
    "optimizer": st.sampled_from(["sgd", "adam", "rmsprop", "adamw"]),
})
batch_over = st.integers(CAPS["max_batch_size"] + 1, 10**9).map(
    lambda n: _spec(batch_size=n))
bins_over = st.integers(CAPS["max_bins"] + 1, 10**9).map(lambda n: _spec(bins=n))
steps_over = st.integers(CAPS["max_steps"] + 1, 10**15).map(lambda n: _spec(steps=n))
parameters_over = st.lists(st.integers(1, 65536), min_size=1, max_size=4).map(
    lambda hidden: _spec(hidden=hidden))


@st.composite
def epochs_over(draw: st.DrawFn) -> Spec:
    batch = draw(st.integers(1, CAPS["max_batch_size"]))
    per_epoch = math.ceil(SPIRAL_TRAIN_ROWS / batch)
    epochs = draw(st.integers(CAPS["max_steps"] // per_epoch + 1, 10**9))
    return _spec(epochs=epochs, batch_size=batch)


@st.composite
def activations_over(draw: st.DrawFn) -> Spec:
    """Few parameters, but a batch whose activations are over the cap."""
    width = draw(st.integers(16, 256))
    smallest = CAPS["max_activation_bytes"] // (12 * (2 + width + 3)) + 1
    batch = draw(st.integers(min(smallest, CAPS["max_batch_size"]), CAPS["max_batch_size"]))
    return _spec(hidden=[width], batch_size=batch)


OVER_A_CAP = st.one_of(batch_over, bins_over, steps_over, epochs_over(), parameters_over,
                       activations_over()).filter(lambda spec: bool(_over(spec)))


@FUZZ
@given(spec=OVER_A_CAP, variety=VARIETY)
def test_a_spec_over_any_cap_is_refused_and_leaves_nothing(
    capped: Callable[[], TestClient], auth: dict[str, str], database: Database,
    published: Callable[[], list[str]], spec: Spec, variety: dict[str, str],
) -> None:
    expected = _over(spec)
    spec = {**spec, "model": {**spec["model"], "activation": variety["activation"]},
            "optimizer": {"name": variety["optimizer"]}}
    with capped() as client:
        response = client.post("/v1/jobs", json=spec, headers=auth)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "limit_exceeded", body
    assert body["field"] in expected, (body, expected)
    assert count_rows(database, "jobs") == 0
    assert published() == []


def test_a_spec_at_every_cap_is_accepted(
    capped: Callable[[], TestClient], auth: dict[str, str]
) -> None:
    """The caps are limits, not off by one: the refusals above are about size alone."""
    spec = _spec(steps=CAPS["max_steps"], batch_size=CAPS["max_batch_size"],
                 bins=CAPS["max_bins"])
    assert not _over(spec)
    with capped() as client:
        assert client.post("/v1/jobs", json=spec, headers=auth).status_code == 201


@FUZZ
@given(extra=st.integers(1, 3 * CAPS["max_upload_bytes"]), chunked=st.booleans())
def test_an_upload_over_the_limit_is_refused_and_leaves_nothing(
    capped: Callable[[], TestClient], auth: dict[str, str], database: Database,
    app_settings: Settings, extra: int, chunked: bool,
) -> None:
    payload = b"\0" * (CAPS["max_upload_bytes"] + extra)
    with capped() as client:
        if chunked:
            boundary = "b0undary"
            head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                    f'filename="big.npz"\r\n\r\n').encode()
            parts = [head, payload, f"\r\n--{boundary}--\r\n".encode()]
            response = client.post(
                "/v1/datasets", content=iter(parts),
                headers={**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"})
        else:
            response = client.post("/v1/datasets", headers=auth,
                                   files={"file": ("big.npz", io.BytesIO(payload))})
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "payload_too_large"
    assert count_rows(database, "datasets") == 0
    assert not any(path.is_file() for path in app_settings.uploads_dir.rglob("*"))
    assert open_artifact_store(app_settings).listing("uploads") == []
