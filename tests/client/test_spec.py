"""The job spec contract: defaults, field-naming errors, impossible combinations, the catalog."""

from typing import Any, get_args

import pytest
from gradlab_client import JobSpec, describe_errors
from gradlab_contract.catalog import DESCRIPTIONS, ENUMS, enum_values
from pydantic import ValidationError


def errors_of(raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        JobSpec.model_validate(raw)
    return {error.field: error.message for error in describe_errors(caught.value)}


def test_minimal_spec_gets_documented_defaults() -> None:
    spec = JobSpec.model_validate({"data": {"dataset": "spiral"}, "training": {"steps": 10}})
    assert spec.model.kind == "mlp" and spec.model.init.scheme == "default"
    assert spec.telemetry.bins == 64
    assert set(spec.telemetry.kinds) == {"gradient", "weight", "activation"}
    assert spec.data.augment.enabled is False


@pytest.mark.parametrize(
    ("raw", "field", "needle"),
    [
        ({"model": {"init": {"scheme": "he"}}}, "model.init.scheme", "'he' is not one of"),
        ({"model": {"activation": "swish"}}, "model.activation", "'relu'"),
        ({"optimizer": {"lr": -1}}, "optimizer.lr", "greater than 0"),
        ({"model": {"dropout": 1.0}}, "model.dropout", "less than 1"),
        ({"team": "other"}, "team", "unknown field"),
        ({"data": {"dataset": "imagenet"}}, "data.dataset", "'imagenet' is not one of"),
        ({"data": {"dataset": "spiral", "options": {"noise": -1}}}, "data.options.noise", ">= 0"),
        (
            {"data": {"dataset": "spiral", "options": {"rows": 5}}},
            "data.options.rows",
            "unknown field",
        ),
        ({"training": {"steps": 5, "epochs": 2}}, "training.steps", "exactly one"),
        ({"training": {"steps": 5, "precision": "bf16"}}, "training.precision", "CUDA only"),
        ({"model": {"activation": "maxout", "hidden": [8, 7]}}, "model.hidden.1", "even"),
        (
            {"data": {"dataset": "ctr"}, "model": {"kind": "cnn", "conv": [{"channels": 4}]}},
            "model.kind",
            "embedding_mlp",
        ),
        (
            {"data": {"dataset": "digits"}, "model": {"kind": "embedding_mlp"}},
            "model.kind",
            "categorical",
        ),
        ({"model": {"kind": "cnn"}}, "model.conv", "at least one conv"),
        ({"data": {"dataset": "spiral", "augment": {"hflip": True}}}, "data.augment", "noise_std"),
    ],
)
def test_bad_specs_name_the_field(raw: dict[str, Any], field: str, needle: str) -> None:
    base: dict[str, Any] = {"data": {"dataset": "digits"}, "training": {"steps": 5}}
    merged = {**base, **raw}
    if "training" in raw:
        merged["training"] = raw["training"]
    found = errors_of(merged)
    assert field in found, found
    assert (
        needle.replace(">= ", "greater than or equal to ") in found[field] or needle in found[field]
    )


def test_upload_ids_are_accepted_and_parsed() -> None:
    spec = JobSpec.model_validate({"data": {"dataset": "upload:ab12_-"}, "training": {"steps": 1}})
    assert spec.data.family == "upload" and spec.data.upload_id == "ab12_-"
    assert "data.dataset" in errors_of(
        {"data": {"dataset": "upload:../etc"}, "training": {"steps": 1}}
    )


def test_spec_round_trips_through_json() -> None:
    spec = JobSpec.model_validate(
        {
            "data": {"dataset": "mnist1d"},
            "model": {"kind": "cnn", "conv": [{"channels": 8, "pool": "max"}]},
            "training": {"epochs": 2},
        }
    )
    assert JobSpec.model_validate_json(spec.model_dump_json()) == spec


def test_catalog_describes_exactly_the_spec_enums() -> None:
    for path, literal in ENUMS.items():
        assert set(DESCRIPTIONS[path]) == set(get_args(literal)), path
    assert len(enum_values()["model.activation"]) == 12
