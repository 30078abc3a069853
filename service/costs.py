"""What one job will cost the deployment, estimated from its spec before a row exists, and the
caps it is refused over (store.settings: max_metric_rows_per_job, max_snapshot_rows_per_job,
max_snapshot_bytes_per_job, max_data_bytes, job_time_limit_seconds).

The counts follow the training core's schedule (training/loop.py): every step records the
train metrics, every `eval_every` steps (and the last) the validation metrics, every
`snapshot_every` steps (and the first and last) one snapshot per kind and layer plus an update
ratio per layer. Bytes and seconds are estimates, stated as such in the refusal; the counts of
rows are upper bounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gradlab_contract.shapes import Estimate, LayerPlan
from gradlab_contract.spec import JobSpec

from service.errors import LimitExceeded
from store.settings import Settings

STEP_METRICS = 5  # train_loss, train_accuracy, grad_norm, lr, step_time
EVAL_METRICS = 3  # val_loss, val_accuracy, val_auc (ctr only)
SNAPSHOT_STATS = 16  # mean, std, min, max, norm, zeros, NaN and Inf counts, percentiles
JSON_NUMBER_BYTES = 12  # a float written in a JSON column, with its separator
SNAPSHOT_ROW_BYTES = 300  # keys, names, indexes per row
STEP_OVERHEAD_SECONDS = 1e-3  # a small model's step on a CPU (training/metrics.py)
FLOAT_BYTES = 4  # float32 tensors of the data set
ID_BYTES = 8  # int64 ids of a categorical set
UPLOAD_LOADED_BYTES = 8  # an upload's arrays as numpy loads them (float64 at most), before float32
# The option that sizes each generated data set: the field to name when it is too large.
DATA_FIELDS = {"spiral": "data.options.points", "ctr": "data.options.rows",
               "mnist1d": "data.options.samples", "cifar10": "data.options.limit"}


@dataclass(frozen=True)
class JobCost:
    metric_rows: int
    snapshot_rows: int
    snapshot_bytes: int
    data_bytes: int
    seconds: float  # training time on a worker at settings.worker_flops_per_second
    metric_rows_field: str  # the spec field behind most of the metric rows: the one to change


def job_cost(spec: JobSpec, plan: Estimate, *, flops_per_second: float) -> JobCost:
    steps = plan.total_steps
    telemetry = spec.telemetry
    snapshot_steps = min(steps, steps // telemetry.snapshot_every + 2) if telemetry.kinds else 0
    evals = min(steps, steps // spec.training.eval_every + 1)
    layers, hidden = len(plan.layers), sum(layer.hidden for layer in plan.layers)
    per_snapshot_step = sum(hidden if kind == "activation" else layers for kind in telemetry.kinds)
    snapshot_rows = snapshot_steps * per_snapshot_step
    row_values = 2 * (2 * telemetry.bins + 1) + SNAPSHOT_STATS  # linear and log10 histograms
    maxout = spec.model.activation == "maxout"
    forward = sum(_forward_flops(layer, maxout) for layer in plan.layers)
    train_seconds = steps * (3 * forward * spec.training.batch_size / flops_per_second
                             + STEP_OVERHEAD_SECONDS)
    eval_seconds = evals * forward * plan.shape.n_val / flops_per_second
    terms = {"training.steps" if spec.training.steps is not None else "training.epochs":
             steps * STEP_METRICS, "training.eval_every": evals * EVAL_METRICS,
             "telemetry.snapshot_every": snapshot_steps * layers}  # update ratios
    return JobCost(
        metric_rows=sum(terms.values()),
        metric_rows_field=max(terms, key=lambda name: terms[name]),
        snapshot_rows=snapshot_rows,
        snapshot_bytes=snapshot_rows * (row_values * JSON_NUMBER_BYTES + SNAPSHOT_ROW_BYTES),
        data_bytes=_data_bytes(spec, plan),
        seconds=train_seconds + eval_seconds,
    )


def check_cost(spec: JobSpec, plan: Estimate, settings: Settings) -> JobCost:
    """The job's cost, or LimitExceeded naming the field to change and giving the estimate."""
    cost = job_cost(spec, plan, flops_per_second=settings.worker_flops_per_second)
    steps_field = "training.steps" if spec.training.steps is not None else "training.epochs"
    _over(cost.snapshot_rows, settings.max_snapshot_rows_per_job, "telemetry.snapshot_every",
          "snapshot rows")
    _over(cost.snapshot_bytes, settings.max_snapshot_bytes_per_job, "telemetry.bins",
          "bytes of snapshots")
    _over(cost.metric_rows, settings.max_metric_rows_per_job, cost.metric_rows_field,
          "metric rows")
    data_field = DATA_FIELDS.get(spec.data.family, "data.dataset")
    _over(cost.data_bytes, settings.max_data_bytes, data_field, "bytes of data in memory")
    limit = settings.job_time_limit_seconds
    if cost.seconds > limit:
        raise LimitExceeded(f"the job trains for an estimated {cost.seconds:,.0f} seconds; the "
                            f"time limit is {limit:,.0f}", field=steps_field)
    return cost


def _over(value: int, limit: int, field: str, unit: str) -> None:
    if value > limit:
        raise LimitExceeded(f"the job makes an estimated {value:,} {unit}; the limit is "
                            f"{limit:,}", field=field)


def _forward_flops(layer: LayerPlan, maxout: bool) -> int:
    """Multiply-adds of one example through the layer, times two (an embedding is a lookup)."""
    weights = math.prod(layer.weight_shape)
    if layer.type == "embedding":
        return layer.output_elements
    if layer.type == "linear":
        return 2 * weights
    channels = max(1, layer.weight_shape[0] // (2 if maxout else 1))
    return 2 * weights * max(1, layer.output_elements // channels)  # per output position


def _data_bytes(spec: JobSpec, plan: Estimate) -> int:
    shape = plan.shape
    rows = shape.n_train + shape.n_val
    if shape.kind == "categorical":
        return rows * len(shape.cardinalities) * ID_BYTES
    values = rows * math.prod(shape.input_shape)
    if spec.data.upload_id is not None:  # the arrays as loaded, then their float32 tensors
        return values * (UPLOAD_LOADED_BYTES + FLOAT_BYTES)
    return values * FLOAT_BYTES
