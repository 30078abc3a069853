"""The API's response models: the contract for what the service returns and the SDK parses.

The service and the store build these; the SDK returns them. The training core reports its
records (Snapshot, Histogram, Layer) in these same types. Non-finite numbers (a diverged loss)
are sent as null, since JSON has no NaN.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gradlab_contract.spec import FieldError, JobSpec, SnapshotKind


class JobStatus(StrEnum):
    """Where a job is in its life; the database's check constraint allows these values alone.

    A StrEnum: each member equals (and hashes like) its string, so JSON, SQL and old callers
    that compare with "queued" see no difference.
    """

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DIVERGED = "diverged"


TERMINAL_STATUSES: frozenset[JobStatus] = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.DIVERGED}
)
# A job in one of these still holds a place in its team's quota.
ACTIVE_STATUSES: tuple[JobStatus, ...] = (JobStatus.QUEUED, JobStatus.RUNNING)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Progress(_Model):
    step: int = 0
    total_steps: int = 0


class Job(_Model):
    id: str
    name: str | None = None
    status: JobStatus
    spec: JobSpec
    attempt: int = 0
    progress: Progress = Progress()
    summary: dict[str, float | None] = Field(default_factory=dict)  # final_* and best_* metrics
    error: str | None = None
    cancel_requested: bool = False
    worker: str | None = None
    device: str | None = None
    parent_id: str | None = None  # the job whose diagnosis remedy created this one
    # Exports the worker could not make or check, by artifact name: the job still succeeded.
    artifact_errors: dict[str, str] = Field(default_factory=dict)
    # Why it ended before its last step: training.early_stopping (it succeeded, stopped_early)
    # or a training.stop_on finding; best_step: the best evaluation of early stopping's metric.
    stop_reason: str | None = None
    stopped_early: bool = False
    best_step: int | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATUSES


ArtifactKind = Literal["weights", "torchscript", "onnx", "model_card"]


class Artifact(_Model):
    """A file a finished job keeps: GET /v1/jobs/{id}/artifacts/{name} downloads it."""

    name: str  # weights-best.safetensors, model-best.onnx, model-card.json, ...
    kind: ArtifactKind
    which: Literal["best", "final"] | None = None  # whose weights; None for the model card
    size: int
    sha256: str
    created_at: datetime


class StorageUsage(_Model):
    """GET /v1/usage: the bytes a team keeps, against its quota."""

    artifact_bytes: int
    upload_bytes: int
    used_bytes: int
    quota_bytes: int


class JobPage(_Model):
    items: list[Job]
    next_cursor: str | None = None


class MetricSeries(_Model):
    name: str
    steps: list[int]
    values: list[float | None]


class MetricsResponse(_Model):
    series: list[MetricSeries]


class Histogram(_Model):
    edges: list[float | None]  # bins + 1 edges over [min, max]
    counts: list[int]


class Snapshot(_Model):
    """The distribution of one tensor of one layer at one step, as the training core reports it.

    stats keys: mean, std, min, max, l2, zero_fraction, nan_count, inf_count, p1, p50, p99,
    unit_std (mean over inputs of the std across the layer's units: 0 when every unit is the same,
    i.e. symmetry was never broken); activations add saturated_fraction and dead_fraction.
    log_histogram is the histogram of log10|x| over the non-zero entries (gradients only).
    """

    step: int
    kind: SnapshotKind
    layer: str
    depth: int  # 0 for the first parameterized layer, increasing towards the output
    stats: dict[str, float | None]
    histogram: Histogram
    log_histogram: Histogram | None = None


class SnapshotPage(_Model):
    items: list[Snapshot]
    next_cursor: str | None = None


class Layer(_Model):
    """One parameterized layer of the model the training core built."""

    name: str  # fc1, fc2, ..., conv1, ..., embed1, ..., out
    type: str  # linear | conv1d | conv2d | embedding
    shape: list[int]  # the weight's shape
    parameters: int
    depth: int


class DatasetInfo(_Model):
    id: str  # the value of data.dataset: a built-in name or upload:<id>
    name: str
    builtin: bool
    kind: str  # vector | sequence | image | categorical
    input_shape: list[int]
    num_classes: int
    rows: int | None = None
    description: str = ""
    created_at: datetime | None = None


class CatalogValue(_Model):
    value: str
    description: str


class Catalog(_Model):
    enums: dict[str, list[CatalogValue]]  # dotted spec field -> allowed values
    limits: dict[str, float]


class Problem(_Model):
    """An application/problem+json error body (RFC 9457) with the offending field."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    code: str | None = None
    field: str | None = None
    errors: list[FieldError] = Field(default_factory=list)

    def describe(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{self.status} {self.title}: {where}{self.detail or ''}".rstrip(": ")


class Health(_Model):
    status: Literal["ok", "unavailable"]
    checks: dict[str, Any] = Field(default_factory=dict)


# -- diagnosis ----------------------------------------------------------------------------------

FindingSeverity = Literal["info", "warning", "error"]
# Every code a diagnosis can raise, in the order findings of one severity are listed: causes
# before the symptoms they produce.
FINDING_CODES: tuple[str, ...] = (
    "symmetry",  # the units of a layer are identical: zero or constant init
    "divergence",  # the loss became non-finite, or ended far above where it began
    "exploding_gradients",  # gradients orders of magnitude too large
    "activation_collapse",  # the spread of the activations shrinks towards 0 with depth
    "saturation",  # tanh/sigmoid outputs at their bounds, where the derivative is ~0
    "dead_units",  # ReLU units that output 0 for every input
    "vanishing_gradients",  # the first layer's gradient orders of magnitude below the last's
    "lr_too_high",  # updates far above 1e-3 of the weights, or a loss that spikes or turns NaN
    "lr_too_low",  # updates far below 1e-3 of the weights and a loss that barely moves
    "no_learning",  # the loss stays at chance, ln(number of classes)
    "overfitting",  # validation loss rises while training loss falls
    "not_converged",  # the loss was still falling when training stopped
)


RemedyVerdict = Literal["pending", "cured", "not_cured"]


class RemedyOutcome(_Model):
    """What a remedy job made of a finding: `cured` when the child has no error-level finding
    and its best validation metric clearly beats the parent's, else `not_cured`; `pending`
    while the child has not finished."""

    child_id: str
    codes: list[str]  # the findings whose remedies made the child's spec
    outcome: RemedyVerdict = "pending"
    reason: str | None = None  # in plain words, with the numbers compared
    metric: str | None = None  # best_val_loss or best_val_accuracy
    parent_value: float | None = None
    child_value: float | None = None
    decided_at: datetime | None = None


class Finding(_Model):
    """One thing that went wrong in a run, in plain words, with the numbers that show it."""

    code: str  # one of FINDING_CODES (a newer service may add codes)
    severity: FindingSeverity
    title: str
    detail: str
    layer: str | None = None
    step: int | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)
    suggestion: str | None = None
    # Spec changes that address it, by dotted path: {"model.init.scheme": "kaiming_normal"}.
    remedy: dict[str, Any] | None = None
    onset_step: int | None = None  # the first recorded step where it holds
    caused_by: str | None = None  # the code of the finding that explains it; None: a root cause
    outcomes: list[RemedyOutcome] = Field(default_factory=list)  # remedy jobs that addressed it


class Diagnosis(_Model):
    job_id: str
    findings: list[Finding] = Field(default_factory=list)
    final: bool = False  # True once the job has ended and been diagnosed as a whole
    updated_at: datetime | None = None  # None: not diagnosed yet


class RemedyRequest(_Model):
    codes: list[str] = Field(min_length=1, max_length=len(FINDING_CODES),
                             description="Codes of the job's findings whose remedies to apply, "
                             "in order: where two set the same field, the later wins.")


# -- heal: diagnose -> remedy -> train, until healthy ----------------------------------------------

HealStatus = Literal["running", "healed", "exhausted", "failed", "cancelled"]
MAX_HEAL_ROUNDS = 5


class HealRequest(_Model):
    max_rounds: int = Field(3, ge=1, le=MAX_HEAL_ROUNDS,
                            description="At most this many remedy jobs, one per round.")


class HealRound(_Model):
    round: int  # 0: the job healed; n: the n-th remedy job
    job_id: str
    status: JobStatus | None = None  # the job's status when the round was last looked at
    findings: list[str] = Field(default_factory=list)  # codes of its warnings and errors
    causes: list[str] = Field(default_factory=list)  # the root causes among them
    remedied: list[str] = Field(default_factory=list)  # the previous round's causes addressed
    changes: dict[str, Any] = Field(default_factory=dict)  # what made this round's spec
    outcome: RemedyVerdict | None = None  # this round's job against the previous round's
    best_val_loss: float | None = None


class Heal(_Model):
    id: str
    job_id: str  # the job being healed
    status: HealStatus
    max_rounds: int
    current_job_id: str  # the job of the latest round
    healthy_job_id: str | None = None  # set when status is healed
    reason: str | None = None  # why the heal ended (exhausted, failed, cancelled)
    rounds: list[HealRound] = Field(default_factory=list)
    training_steps: int = 0  # steps trained by all remedy jobs together
    created_at: datetime
    finished_at: datetime | None = None

    @property
    def done(self) -> bool:
        return self.status != "running"


# -- studies ------------------------------------------------------------------------------------

# The summary metrics a comparison reports, as mean and spread over a variant's seeds.
COMPARE_METRICS: tuple[str, ...] = (
    "final_train_loss", "best_train_loss", "final_val_loss", "best_val_loss",
    "final_train_accuracy", "best_train_accuracy", "final_val_accuracy", "best_val_accuracy",
)


class Study(_Model):
    id: str
    name: str | None = None
    template: str | None = None
    varied: list[str]  # the dotted spec paths that differ between variants
    variants: int
    jobs: int
    counts: dict[str, int] = Field(default_factory=dict)  # jobs by status
    created_at: datetime

    @property
    def done(self) -> bool:
        return sum(n for s, n in self.counts.items() if s in TERMINAL_STATUSES) == self.jobs


class StudyPage(_Model):
    items: list[Study]
    next_cursor: str | None = None


class Stat(_Model):
    mean: float
    std: float  # the spread over seeds (population standard deviation; 0 for one seed)
    n: int


class ComparisonRow(_Model):
    variant: int
    values: dict[str, Any]  # dotted path -> this variant's value
    seeds: list[int]
    job_ids: list[str]
    statuses: dict[str, int]
    metrics: dict[str, Stat | None]  # COMPARE_METRICS; None: no seed reported it
    steps_to_target: Stat | None = None  # first step reaching the target, over seeds that did
    reached_target: int = 0  # seeds that reached it
    codes: list[str] = Field(default_factory=list)  # diagnosis codes of its jobs


class StudyComparison(_Model):
    study_id: str
    varied: list[str]
    target: str | None = None  # e.g. "val_accuracy >= 0.9"
    rows: list[ComparisonRow]


class StudyTemplate(_Model):
    name: str
    description: str
    request: dict[str, Any]  # the body POST /v1/studies gets for {"template": name}
    jobs: int


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RangeSpace(_Request):
    low: float
    high: float
    log: bool = False  # sample uniformly in log space (learning rates)


class RandomSearch(_Request):
    kind: Literal["random"] = "random"
    # A ceiling of the contract; the deployment's max_study_jobs is usually far lower.
    n: int = Field(ge=1, le=100_000, description="Variants to sample.")
    space: dict[str, list[Any] | RangeSpace] = Field(min_length=1)
    seed: int = 0  # of the sampler, so a search is repeatable


class StudyCreate(_Request):
    """POST /v1/studies: a base spec and a grid (or a random search) of dotted-path values; or
    a built-in template, optionally with `overrides` (dotted path -> value) of its base."""

    name: str | None = Field(None, max_length=100)
    template: str | None = None
    base: dict[str, Any] | None = None
    grid: dict[str, list[Any]] | None = None
    search: RandomSearch | None = None
    seeds: list[int] | None = Field(None, min_length=1, max_length=20)
    overrides: dict[str, Any] = Field(default_factory=dict)
