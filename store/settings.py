"""The server's one settings class: every knob of the API, the worker and the store.

Read from arguments, then ``GRADLAB_*`` environment variables, then an optional ``.env`` file.
Nothing here is built at import time: callers make ``Settings()`` and pass it along. The field
descriptions are the README's configuration table, so write them for an operator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

GiB = 1024**3
MB = 1000**2
# Paths that default to a place under `home` when not set.
_HOME_DEFAULTS = {"checkpoints_dir": "checkpoints", "uploads_dir": "uploads"}
_DRIVERS = {"sqlite": "pysqlite", "postgresql": "psycopg"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GRADLAB_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    home: Path = Field(
        Path(".gradlab"), description="Directory for the embedded database, broker and files."
    )
    database_url: str = Field(
        "",
        description="SQLAlchemy URL: sqlite:///<file> or postgresql://user:pass@host/db. "
        "Default: sqlite:///{home}/gradlab.db.",
    )
    broker_url: str = Field(
        "filesystem://",
        description="Celery broker. The default needs no server: messages are files under "
        "{home}/broker. Use redis://host:6379/0 for workers on other machines.",
    )
    broker_visibility_timeout_seconds: float | None = Field(
        None, gt=0, description="Redis only: seconds before a message taken but not "
        "acknowledged is delivered again (kombu's visibility_timeout; unset: kombu's default, "
        "one hour). Jobs are acknowledged when they start, so a job may run longer than this."
    )
    host: str = Field("127.0.0.1", description="Address the API listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port the API listens on.")
    lease_seconds: float = Field(
        60, gt=0, description="A running job whose worker sent no heartbeat for this long is "
        "considered lost and retried."
    )
    heartbeat_seconds: float = Field(5, gt=0, description="How often a worker renews its lease.")
    reaper_interval_seconds: float = Field(
        10, gt=0, description="How often lost jobs and jobs lost by the broker are looked for."
    )
    max_attempts: int = Field(
        3, ge=1, description="Times a job may lose its worker (a crash, a killed process, an "
        "expired lease) before it is marked failed. A graceful hand-back by a stopping worker "
        "is not a loss."
    )
    republish_after_seconds: float = Field(
        300, gt=0, description="A job queued this long is sent to the broker again, in case the "
        "broker lost it (a duplicate message is harmless: only one claim succeeds)."
    )
    worker_max_jobs_per_child: int = Field(
        0, ge=0, description="Replace a worker's pool process after this many jobs (0: never). "
        "Each job's GPU memory is released either way; a replacement costs seconds of latency "
        "on Redis.",
    )
    worker_concurrency: int = Field(
        1, ge=1, description="Jobs one worker process trains at once; 1 per GPU is the default."
    )
    job_time_limit_seconds: float = Field(
        6 * 3600, gt=0, description="Wall-clock limit of one job, counted from its first start "
        "over all its attempts (a retried or released job does not start the clock again). A "
        "spec whose estimated training time is longer is refused when submitted."
    )
    checkpoint_every_steps: int = Field(
        500, ge=1, description="Steps between checkpoints a retried job resumes from."
    )
    checkpoints_dir: Path = Field(
        Path(".gradlab/checkpoints"),
        description="Where jobs write checkpoints. Default: {home}/checkpoints.",
    )
    uploads_dir: Path = Field(
        Path(".gradlab/uploads"),
        description="Where uploaded data sets are kept. Default: {home}/uploads.",
    )
    # -- the artifact store (store/artifacts.py): weights, exports, checkpoints, uploads --
    artifact_url: str = Field(
        "", description="Where jobs' artifacts, checkpoints and uploaded data sets are kept: "
        "s3://bucket/prefix (S3-compatible object storage, needed when the API and workers run "
        "on different hosts) or file:///folder. Default: the folder {home}/artifacts."
    )
    artifact_endpoint: str | None = Field(
        None, description="S3 endpoint of a non-AWS server, e.g. http://seaweedfs:8333 "
        "(http:// is allowed for a private network)."
    )
    artifact_region: str = Field("us-east-1", description="S3 region.")
    artifact_access_key_id: str | None = Field(None, description="S3 access key id.")
    artifact_secret_access_key: SecretStr | None = Field(None, description="S3 secret key.")
    max_storage_bytes_per_team: int = Field(
        20 * GiB, ge=1, description="Bytes of artifacts and uploads a team may keep; a job "
        "is refused at submit, and an upload at once, when the team is over it."
    )
    ui_vendor_dir: Path | None = Field(
        None, description="Folder of the dashboard's charting library (echarts' dist). Default: "
        "node_modules/echarts/dist of the checkout, where `make ui` installs it.",
    )
    data_root: Path | None = Field(
        None, description="Directory holding cifar-10-batches-bin (needed for cifar10 only)."
    )
    max_parameters: int = Field(20_000_000, ge=1, description="Largest model a job may build.")
    max_activation_bytes: int = Field(
        2 * GiB, ge=1, description="Estimated activation memory per batch a job may use."
    )
    max_steps: int = Field(1_000_000, ge=1, description="Most training steps of one job.")
    max_batch_size: int = Field(4096, ge=1, description="Largest batch size of a job.")
    max_bins: int = Field(512, ge=2, description="Most histogram bins of a snapshot.")
    max_metric_rows_per_job: int = Field(
        20_000_000, ge=1, description="Most metric rows (one per metric, per step) a job's spec "
        "may make: steps, eval_every and the snapshot steps' update ratios, estimated at submit."
    )
    max_snapshot_rows_per_job: int = Field(
        1_000_000, ge=1, description="Most snapshot rows (one per kind, layer and snapshot step) "
        "a job's spec may make, estimated at submit from steps, snapshot_every, kinds and layers."
    )
    max_snapshot_bytes_per_job: int = Field(
        2 * GiB, ge=1, description="Most bytes of snapshots (statistics and two histograms of "
        "`bins` each) a job's spec may store, estimated at submit."
    )
    max_data_bytes: int = Field(
        2 * GiB, ge=1, description="Most memory a job's data set may take on a worker: the "
        "generated set's options (e.g. ctr rows x fields) or an upload's decompressed arrays, "
        "estimated at submit."
    )
    worker_flops_per_second: float = Field(
        2e10, gt=0, description="Floating-point operations per second a worker is assumed to "
        "train at, for the training time estimated at submit (refused past "
        "job_time_limit_seconds). The CPU default is conservative; raise it for GPU workers."
    )
    max_upload_bytes: int = Field(200 * MB, ge=1, description="Largest data set upload.")
    max_request_bytes: int = Field(1 * MB, ge=1, description="Largest request body but uploads.")
    max_queued_jobs_per_team: int = Field(100, ge=1, description="Queued jobs a team may have.")
    max_running_jobs_per_team: int = Field(8, ge=1, description="Running jobs a team may have.")
    rate_limit_per_minute: int = Field(600, ge=1, description="Requests per API key per minute.")
    task_queue: str = Field("gradlab", min_length=1, description="Celery queue of training jobs.")
    study_queue: str = Field(
        "", description="Celery queue of study jobs, which workers take turns with task_queue, "
        "so that a large study does not starve single jobs. Default: {task_queue}-studies."
    )
    max_study_jobs: int = Field(
        200, ge=1, description="Most jobs (variants times seeds) one study may create."
    )
    max_queued_study_jobs_per_team: int = Field(
        400, ge=1, description="Queued study jobs a team may have, over all its studies (apart "
        "from max_queued_jobs_per_team, which counts its other jobs)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", description="Log level of the API and the worker."
    )
    metrics_max_points_default: int = Field(
        1000, ge=2, description="Points per metric series when a request does not say."
    )
    metrics_max_points_per_request: int = Field(
        200_000, ge=2, description="Points of all series of one GET .../metrics together; a "
        "request for many series gets fewer points of each (downsampled, spikes kept)."
    )
    # -- operations: log format and worker metrics (README "Deploy with docker compose") --
    log_format: Literal["text", "json"] = Field(
        "text", description="`text`: lines for people; `json`: one JSON object per line, with "
        "`job_id` and `attempt` on a job's lines (docker-compose.yml sets json)."
    )
    worker_metrics_port: int | None = Field(
        None, ge=1, le=65535, description="Port where a worker serves Prometheus /metrics "
        "(steps, steps/s, running jobs, GPU memory); unset: not served (docker-compose.yml: 9100)."
    )
    worker_metrics_host: str = Field(
        "127.0.0.1", description="Address of the worker's /metrics (0.0.0.0 in a container)."
    )
    # -- live: event streams, job logs, webhooks (README "Follow a job live") --
    max_event_streams_per_team: int = Field(
        10, ge=1, description="Event streams (GET .../events) one team may hold open at once, "
        "per API process; more get 429."
    )
    event_stream_seconds: float = Field(
        3600, gt=0, description="Longest life of one event stream; the client reconnects with "
        "Last-Event-ID and loses nothing."
    )
    event_poll_seconds: float = Field(
        1.0, gt=0, description="How often a stream reads new events when no Redis announces "
        "them (the embedded default), and at the latest with Redis."
    )
    event_heartbeat_seconds: float = Field(
        15, gt=0, description="Seconds between the comment lines that keep an idle stream open."
    )
    job_log_max_lines: int = Field(
        2000, ge=10, description="Worker log lines kept per job; later ones are dropped, but "
        "errors are kept up to twice as many."
    )
    webhooks_allow_private: bool = Field(
        False, description="Deliver webhooks to loopback, link-local and private addresses too "
        "(off: the resolved address is checked, against requests into your network)."
    )
    max_webhooks_per_team: int = Field(20, ge=1, description="Webhooks one team may register.")

    @model_validator(mode="before")
    @classmethod
    def _derive_from_home(cls, data: Any) -> Any:
        """Fill the defaults that live under `home`, made absolute so that every process agrees."""
        if not isinstance(data, dict):
            return data
        home = Path(data.get("home") or ".gradlab").expanduser().resolve()
        data = {**data, "home": home}
        for name, leaf in _HOME_DEFAULTS.items():
            data[name] = Path(data.get(name) or home / leaf).expanduser().resolve()
        if not data.get("study_queue"):
            data["study_queue"] = f"{data.get('task_queue') or 'gradlab'}-studies"
        if not data.get("database_url"):
            data["database_url"] = f"sqlite:///{home / 'gradlab.db'}"
        return data

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        self.database_url = _checked_database_url(self.database_url)
        if self.lease_seconds < 2 * self.heartbeat_seconds:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds}) must be at least twice heartbeat_seconds "
                f"({self.heartbeat_seconds}), or one late heartbeat retries a healthy job"
            )
        if self.artifact_url and not self.artifact_url.startswith(("s3://", "file:///")):
            raise ValueError(f"artifact_url {self.artifact_url!r}: use s3://bucket/prefix or "
                             "file:///folder")
        if "://" not in self.broker_url:
            raise ValueError(f"broker_url {self.broker_url!r} is not a URL (e.g. redis://host/0)")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def redacted_database_url(self) -> str:
        """database_url with the password masked, for logs and messages."""
        return make_url(self.database_url).render_as_string(hide_password=True)

    @property
    def broker_dir(self) -> Path:
        return self.home / "broker"

    @property
    def broker_transport_options(self) -> dict[str, Any]:
        """Celery's broker_transport_options: folders of the filesystem transport; Redis's
        visibility timeout where one is set; else none."""
        if self.broker_url.startswith("filesystem:"):
            return filesystem_broker_options(self.broker_dir)
        if self.broker_url.startswith(("redis:", "rediss:")) and (
            self.broker_visibility_timeout_seconds is not None
        ):
            return {"visibility_timeout": self.broker_visibility_timeout_seconds}
        return {}

    def ensure_directories(self) -> None:
        """Create home and the folders under it; the CLI calls this before starting anything."""
        folders = [self.home, self.checkpoints_dir, self.uploads_dir]
        if self.broker_url.startswith("filesystem:"):
            options = self.broker_transport_options
            folders += [Path(options[key]) for key in ("data_folder_in", "processed_folder")]
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)


def filesystem_broker_options(broker_dir: Path) -> dict[str, Any]:
    """kombu's filesystem transport (the broker that needs no server) with its folders in
    `broker_dir`. Producer and consumer share one folder; processed messages (bare job ids) are
    deleted rather than archived, since the database, not the broker, is the record."""
    return {
        "data_folder_in": str(broker_dir / "queue"),
        "data_folder_out": str(broker_dir / "queue"),
        "processed_folder": str(broker_dir / "processed"),
        # Without it, kombu puts its control exchange in ./control of whatever the cwd is.
        "control_folder": str(broker_dir / "control"),
        "store_processed": False,
        "polling_interval": 0.1,  # seconds; submit-to-running latency depends on it
    }


def _checked_database_url(raw: str) -> str:
    """Accept SQLite files and PostgreSQL (psycopg 3) only; say what to change otherwise."""
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ValueError(f"database_url {raw!r} is not a SQLAlchemy URL") from None
    backend = url.get_backend_name()
    if backend not in _DRIVERS:
        hint = " (spell it postgresql://)" if backend == "postgres" else ""
        raise ValueError(
            f"database_url must be sqlite:///<file> or postgresql://..., not {backend!r}{hint}"
        )
    if "+" in url.drivername and url.get_driver_name() != _DRIVERS[backend]:
        raise ValueError(f"database_url: use {backend}+{_DRIVERS[backend]}, not {url.drivername}")
    if backend == "sqlite":
        if url.database in (None, "", ":memory:"):
            raise ValueError("database_url: the API and workers share the database, so SQLite "
                             "needs a file, not :memory:")
        return raw
    # Pin the driver: SQLAlchemy before 2.1 picks psycopg2 for a bare postgresql:// URL.
    return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
