"""The deployment's resource caps, checked against a spec before a job row exists.

estimate() (client/shapes.py) computes what the spec will build without torch; the training core
builds exactly those layers, so a spec under the caps here cannot grow past them on a worker.
"""

from __future__ import annotations

from gradlab_contract.shapes import Estimate, UploadInfo, estimate
from gradlab_contract.spec import JobSpec

from service.errors import InvalidSpec, LimitExceeded
from store.settings import Settings

# The field that sizes each kind of layer; the output layer is sized by the last hidden width.
LAYER_FIELDS = {"embedding": "model.embedding_dim", "conv1d": "model.conv", "conv2d": "model.conv",
                "linear": "model.hidden"}


def check_limits(spec: JobSpec, settings: Settings, upload: UploadInfo | None = None) -> Estimate:
    """The spec's estimate, or LimitExceeded naming the field to change and both numbers
    (InvalidSpec when the layers cannot be built at all)."""
    _check(spec.training.batch_size, settings.max_batch_size, "training.batch_size",
           "the batch size is")
    _check(spec.telemetry.bins, settings.max_bins, "telemetry.bins", "histograms have", "bins")
    try:
        result = estimate(spec, upload)
    except ValueError as error:
        # estimate() starts its message with the field ("model.conv.2: the input shrinks ...").
        field, _, message = str(error).partition(": ")
        raise InvalidSpec(message or field, field=field if message else "model") from None
    _check(result.parameters, settings.max_parameters, _largest_layer_field(result),
           "the model has", "parameters")
    _check(result.activation_bytes, settings.max_activation_bytes, "training.batch_size",
           "one batch keeps an estimated", "bytes of activations")
    steps_field = "training.steps" if spec.training.steps is not None else "training.epochs"
    _check(result.total_steps, settings.max_steps, steps_field, "the job runs", "steps")
    return result


def _check(value: int, limit: int, field: str, subject: str, unit: str = "") -> None:
    if value > limit:
        amount = f"{value:,} {unit}".rstrip()
        raise LimitExceeded(f"{subject} {amount}; the limit is {limit:,}", field=field)


def _largest_layer_field(result: Estimate) -> str:
    """The spec field behind the layer holding the most parameters: the one to shrink."""
    largest = max(result.layers, key=lambda layer: layer.parameters)
    return largest.field or LAYER_FIELDS.get(largest.type, "model.hidden")
