"""bench/diagnosis_matrix.py's scenario generator: every scenario is a valid spec, every
pathology comes with a healthy control of the same shape, the held-out set is not the tuning set,
and the same seed makes the same scenarios. (The bench itself trains: it runs on its own.)"""

from __future__ import annotations

from gradlab_contract.spec import JobSpec

from bench.diagnosis_matrix import HELD_OUT_SEEDS, MAKERS, TUNING_SEEDS, generate
from diagnosis import CODES


def test_the_generator_makes_valid_paired_reproducible_scenarios() -> None:
    held_out = generate(HELD_OUT_SEEDS, 20, 0)
    assert len(held_out) == 40 and len({s.name for s in held_out}) >= 2 * len(MAKERS)
    for sick, control in zip(held_out[::2], held_out[1::2], strict=True):
        assert control.healthy and not sick.healthy and control.name == f"{sick.name}:control"
        assert sick.causes <= set(CODES)
        assert len(sick.spec["model"]["hidden"]) == len(control.spec["model"]["hidden"])
        JobSpec.model_validate(sick.spec)
        JobSpec.model_validate(control.spec)
    depths = {len(s.spec["model"]["hidden"]) for s in held_out}
    assert min(depths) <= 3 and max(depths) >= 25
    assert {s.spec["data"]["dataset"] for s in held_out} >= {"spiral", "digits", "mnist1d", "ctr"}
    assert [s.spec for s in generate(HELD_OUT_SEEDS, 20, 0)] == [s.spec for s in held_out]
    tuning = generate(TUNING_SEEDS, 20, 0)
    assert [s.spec for s in tuning] != [s.spec for s in held_out]
