"""The lecture's central examples, trained for real on the CPU (no fabricated statistics):
the diagnosis must name the cause, and the cause's remedy, run again, must fix it.

- He et al. 2015: a 30-layer ReLU MLP (width 100) with Xavier init does not learn; Kaiming does.
- init_x_activation's normal(0.01) + ReLU on a 6-layer MLP: the same collapse.
- optimizers_on_ctr's Adam run: validation loss rises while training loss falls (overfitting),
  which must never read "train longer".
"""

from __future__ import annotations

from typing import Any

import pytest

from diagnosis import apply_remedies, diagnose
from tests.diagnosis.harness import record_run

TRAINING = {"batch_size": 64, "eval_every": 50, "seed": 0, "device": "cpu"}
TELEMETRY = {"snapshot_every": 50, "bins": 16}
# 300 steps are enough to show it: the collapse is there at step 1, units die by step 50.
HE_2015 = {"data": {"dataset": "mnist1d"},
           "model": {"hidden": [100] * 30, "activation": "relu",
                     "init": {"scheme": "xavier_normal"}},
           "optimizer": {"name": "momentum", "lr": 0.01},
           "training": {"steps": 300, **TRAINING}, "telemetry": TELEMETRY}
SMALL_NORMAL_RELU = {"data": {"dataset": "digits"},
                     "model": {"hidden": [64] * 6, "activation": "relu",
                               "init": {"scheme": "normal", "std": 0.01}},
                     "optimizer": {"name": "momentum", "lr": 0.05},
                     "training": {"steps": 300, **TRAINING}, "telemetry": TELEMETRY}
CTR_ADAM = {"data": {"dataset": "ctr", "options": {"rows": 5000, "cardinality": 500}},
            "model": {"kind": "embedding_mlp", "hidden": [32]},
            "optimizer": {"name": "adam", "lr": 0.01},
            "training": {"steps": 300, **TRAINING}, "telemetry": TELEMETRY}


def alarms(found: list[Any]) -> set[str]:
    return {f.code for f in found if f.severity != "info"}


def best(record: Any, name: str) -> float:
    values = record.series(name)[1]
    return float(values.max() if "accuracy" in name else values.min())


@pytest.mark.parametrize("spec", [HE_2015, SMALL_NORMAL_RELU], ids=["he_2015", "normal_0.01"])
def test_a_deep_relu_net_that_collapses_is_told_to_use_kaiming_and_then_learns(
    spec: dict[str, Any]
) -> None:
    run = record_run(spec)
    found = diagnose(run)
    root = found[0]
    assert root.code == "activation_collapse" and root.caused_by is None
    assert root.onset_step == run.steps("activation")[0]  # from initialization
    assert root.remedy == {"model.init.scheme": "kaiming_normal"}
    assert "kaiming" in (root.suggestion or "").lower()
    symptoms = {f.code: f.caused_by for f in found[1:]}
    assert {"dead_units", "no_learning"} <= set(symptoms)
    assert set(symptoms.values()) == {"activation_collapse"}  # every symptom traced to it
    assert all(f.remedy == root.remedy for f in found)

    healed = record_run(apply_remedies(spec, found, [root.code]))
    assert not {f.code for f in diagnose(healed) if f.severity == "error"}
    assert best(healed, "val_accuracy") > 2 * best(run, "val_accuracy")  # chance is 10%


def test_adam_on_ctr_overfits_and_is_never_told_to_train_longer() -> None:
    run = record_run(CTR_ADAM)
    found = diagnose(run)
    assert [f.code for f in found if f.caused_by is None] == ["overfitting"]
    assert "not_converged" not in alarms([f for f in found if f.caused_by is None])
    overfit = found[0]
    assert overfit.evidence["best_step"] < run.final_step
    assert not any(path.startswith("training.") for path in overfit.remedy or {})
    assert f"stop at step {overfit.evidence['best_step']}" in (overfit.suggestion or "")

    healed = record_run(apply_remedies(CTR_ADAM, found, ["overfitting"]))
    assert "overfitting" not in alarms(diagnose(healed))
    assert best(healed, "val_loss") < best(run, "val_loss")
