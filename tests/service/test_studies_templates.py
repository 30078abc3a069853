"""The templates teach what they say: a template's variants, trained by the training core as a
worker would train them, show the lecture's effect (shared/design/lecture.md)."""

from __future__ import annotations

from gradlab_contract.models import StudyCreate

from service.studies.expand import expand
from service.studies.submit import resolve_request
from training import train


def train_template(name: str) -> dict[tuple[object, ...], float]:
    """final_val_accuracy of each variant of the template (its own seed), keyed by its values."""
    request = resolve_request(StudyCreate(template=name))
    assert request.base is not None
    expansion = expand(request.base, grid=request.grid, search=None, seeds=request.seeds,
                       max_jobs=100)
    accuracy: dict[tuple[object, ...], float] = {}
    for run in expansion.runs:
        result = train(run.spec)
        values = expansion.variants[run.variant].values
        accuracy[tuple(values[path] for path in expansion.varied)] = (
            result.summary["final_val_accuracy"])
    return accuracy


def test_batch_norm_makes_the_templates_high_learning_rate_train() -> None:
    # Lecture section 4: batch norm tolerates larger learning rates. Four 300-step jobs: seconds.
    accuracy = train_template("batch_norm_x_lr")
    low, high = sorted({lr for _, lr in accuracy})
    assert accuracy[(False, high)] < 0.3, accuracy  # chance is 0.1 (10 digits)
    assert accuracy[(True, high)] > 0.9, accuracy
    assert accuracy[(True, high)] >= accuracy[(True, low)], accuracy
    assert accuracy[(False, low)] < accuracy[(True, low)], accuracy  # and it speeds training up
