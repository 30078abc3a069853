"""The `gradlab` subcommands: their arguments and what each does with a Client.

Results go to stdout (JSON with --json); progress and messages go to stderr, so
`JOB=$(gradlab submit spec.json)` captures just the job id.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gradlab_contract.models import Job, JobStatus
from gradlab_contract.spec import SNAPSHOT_KINDS
from pydantic import BaseModel

from gradlab_client import _cli_output as text
from gradlab_client._cli_live import logs as _logs
from gradlab_client._cli_live import logs_arguments, watch_until_done
from gradlab_client._progress import ProgressBar, describe_progress
from gradlab_client.client import Client

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
# What `submit --wait` and `watch` return for each way a job can end.
STATUS_EXIT = {"succeeded": EXIT_OK, "diverged": 3, "failed": 4, "cancelled": 5}
LOG_EVERY = 10.0  # seconds between progress lines when stderr is a log, not a terminal


class UsageError(Exception):
    """The command line or its input is wrong (exit 2); `errors` are (field, message) pairs."""

    def __init__(self, message: str, errors: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.errors = list(errors)


@dataclass(frozen=True)
class Command:
    name: str  # "datasets upload" is the subcommand "upload" of the group "datasets"
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Client, argparse.Namespace], int]


def emit(args: argparse.Namespace, human: str, data: BaseModel | Sequence[BaseModel]) -> None:
    if args.json:
        dumped = (
            data.model_dump(mode="json")
            if isinstance(data, BaseModel)
            else [item.model_dump(mode="json") for item in data]
        )
        print(json.dumps(dumped))
    else:
        print(human)


def load_spec(source: str) -> dict[str, Any]:
    """A spec from a .json, .yaml/.yml file, or `-` for stdin (JSON, or YAML if pyyaml is there).

    Only parsed here; the service validates it and names any offending field."""
    try:
        raw = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from exc
    suffix = Path(source).suffix.lower()
    if suffix in {".yaml", ".yml"}:
        spec = _parse_yaml(raw, source)
    else:
        try:
            spec = json.loads(raw)
        except json.JSONDecodeError as exc:
            if source != "-":
                raise UsageError(f"{source} is not valid JSON: {exc}") from exc
            spec = _parse_yaml(raw, source)
    if not isinstance(spec, dict):
        raise UsageError(f"{source} must hold one spec object, not {type(spec).__name__}")
    return spec


def _parse_yaml(raw: str, source: str) -> Any:
    try:
        import yaml
    except ImportError as exc:
        raise UsageError(
            f"reading {source} as YAML needs pyyaml: pip install 'gradlab-client[yaml]'"
        ) from exc
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise UsageError(f"{source} is not valid YAML: {exc}") from exc


def follow(client: Client, job: Job, args: argparse.Namespace) -> int:
    """Show progress and the latest metrics until the job ends; print its summary."""
    job = watch_until_done(client, job, args.interval, poll=_poll_until_done)
    emit(args, text.job_detail(job), job)
    return STATUS_EXIT.get(job.status, EXIT_ERROR)


def _poll_until_done(client: Client, job: Job, interval: float) -> Job:
    bar = ProgressBar(sys.stderr)
    latest: dict[str, float | None] = {}
    since: int | None = None  # metrics are fetched from the last step already seen
    last_line, last_status, last_logged = "", "", 0.0
    try:
        while True:
            result = client.jobs.metrics(job.id, start_step=since)
            latest.update(text.latest_values(result))
            since = max((series.steps[-1] for series in result if series.steps), default=since)
            line = describe_progress(job, text.describe_latest(latest))
            if bar.enabled:
                bar.update(job, text.describe_latest(latest))
            elif job.status != last_status or (
                line != last_line and time.monotonic() - last_logged >= LOG_EVERY
            ):
                print(line, file=sys.stderr)
                last_line, last_status, last_logged = line, job.status, time.monotonic()
            if job.done:
                return job
            time.sleep(interval)
            job = client.jobs.get(job.id)
    finally:
        bar.close()


def _submit(client: Client, args: argparse.Namespace) -> int:
    job = client.jobs.create(load_spec(args.spec), idempotency_key=args.idempotency_key)
    if args.wait:
        return follow(client, job, args)
    print(f"submitted {job.id} ({job.status}); follow it: gradlab watch {job.id}", file=sys.stderr)
    emit(args, job.id, job)
    return EXIT_OK


def _list(client: Client, args: argparse.Namespace) -> int:
    jobs = list(itertools.islice(client.jobs.list(status=args.status, name=args.name), args.limit))
    emit(args, text.jobs_table(jobs), jobs)
    return EXIT_OK


def _show(client: Client, args: argparse.Namespace) -> int:
    job = client.jobs.get(args.id)
    emit(args, text.job_detail(job), job)
    return EXIT_OK


def _watch(client: Client, args: argparse.Namespace) -> int:
    return follow(client, client.jobs.get(args.id), args)


def _cancel(client: Client, args: argparse.Namespace) -> int:
    job = client.jobs.cancel(args.id)
    emit(args, f"cancel requested for {job.id} (now {job.status})", job)
    return EXIT_OK


def _metrics(client: Client, args: argparse.Namespace) -> int:
    names = [name.strip() for name in args.names.split(",") if name.strip()] if args.names else None
    result = client.jobs.metrics(
        args.id, names=names, max_points=args.max_points,
        start_step=args.start_step, end_step=args.end_step,
    )
    if args.csv:  # the command's own flag wins over the global --json
        print(text.metrics_csv(result))
    else:
        emit(args, text.metrics_summary(result), result)
    return EXIT_OK


def _snapshots(client: Client, args: argparse.Namespace) -> int:
    pages = client.jobs.snapshots(args.id, kind=args.kind, layer=args.layer, step=args.step)
    snapshots = list(pages)
    human = text.snapshots_table(snapshots)
    if len(snapshots) == 1:  # one distribution: worth drawing
        only = snapshots[0]
        human += "\n\n" + text.histogram_bars(only.histogram, "histogram")
        if only.log_histogram is not None:
            human += "\n\n" + text.histogram_bars(only.log_histogram, "histogram of log10|x|")
    emit(args, human, snapshots)
    return EXIT_OK


def _diagnose(client: Client, args: argparse.Namespace) -> int:
    diagnosis = client.jobs.diagnosis(args.id)
    emit(args, text.diagnosis_text(diagnosis), diagnosis)
    return EXIT_OK


def _remedy(client: Client, args: argparse.Namespace) -> int:
    job = client.jobs.remedy(args.id, codes=args.codes, idempotency_key=args.idempotency_key)
    print(f"submitted {job.id} ({job.status}), {args.id} with the remedies of "
          f"{', '.join(args.codes)}; follow it: gradlab watch {job.id}", file=sys.stderr)
    emit(args, job.id, job)
    return EXIT_OK


def _heal(client: Client, args: argparse.Namespace) -> int:
    heal = client.jobs.heal(args.id, max_rounds=args.max_rounds)
    if args.wait:
        print(f"healing {args.id} in heal {heal.id} (at most {heal.max_rounds} rounds)",
              file=sys.stderr)
        heal = client.heals.wait(heal.id, poll_interval=args.interval)
    emit(args, text.heal_text(heal), heal)
    return EXIT_OK if heal.status in ("healed", "running") else EXIT_ERROR


def _catalog(client: Client, args: argparse.Namespace) -> int:
    catalog = client.catalog()
    emit(args, text.catalog_text(catalog), catalog)
    return EXIT_OK


def _datasets_upload(client: Client, args: argparse.Namespace) -> int:
    if not Path(args.file).is_file():
        raise UsageError(f"no such file: {args.file}")
    info = client.datasets.upload(args.file, name=args.name, description=args.description)
    emit(args, f"{text.datasets_table([info])}\n\nuse it as data.dataset: {info.id}", info)
    return EXIT_OK


def _datasets_list(client: Client, args: argparse.Namespace) -> int:
    datasets = client.datasets.list()
    emit(args, text.datasets_table(datasets), datasets)
    return EXIT_OK


def _job_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", help="the job id")


def _follow_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--interval", type=float, default=2.0, help="seconds between polls (default 2)"
    )


def _submit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="the job spec: a .json or .yaml file, or - for stdin")
    parser.add_argument("--wait", action="store_true", help="follow the job until it ends")
    parser.add_argument(
        "--idempotency-key", help="submit at most once per key: a retry returns the same job"
    )
    _follow_options(parser)


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", choices=[status.value for status in JobStatus])
    parser.add_argument("--name", help="only jobs with this name")
    parser.add_argument("--limit", type=int, default=None, help="at most this many jobs")


def _watch_arguments(parser: argparse.ArgumentParser) -> None:
    _job_id(parser)
    _follow_options(parser)


def _metrics_arguments(parser: argparse.ArgumentParser) -> None:
    _job_id(parser)
    parser.add_argument("--names", help="comma-separated metric names (default: all)")
    parser.add_argument("--max-points", type=int, default=1000, help="per series (default 1000)")
    parser.add_argument("--start-step", type=int)
    parser.add_argument("--end-step", type=int)
    parser.add_argument("--csv", action="store_true", help="every point as CSV: step, then names")


def _snapshots_arguments(parser: argparse.ArgumentParser) -> None:
    _job_id(parser)
    parser.add_argument("--kind", required=True, choices=SNAPSHOT_KINDS)
    parser.add_argument("--layer", required=True, help="a layer name (see the job's layers)")
    parser.add_argument("--step", type=int, help="only this step (draws its histogram)")


def _remedy_arguments(parser: argparse.ArgumentParser) -> None:
    _job_id(parser)
    parser.add_argument("codes", nargs="+", metavar="CODE",
                        help="codes of the job's findings whose remedies to apply, in order")
    parser.add_argument(
        "--idempotency-key", help="submit at most once per key: a retry returns the same job"
    )


def _heal_arguments(parser: argparse.ArgumentParser) -> None:
    _job_id(parser)
    parser.add_argument("--max-rounds", type=int, default=3,
                        help="remedy jobs at most (default 3)")
    parser.add_argument("--wait", action="store_true",
                        help="follow the heal until it ends; exit non-zero unless healed")
    _follow_options(parser)


def _upload_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="an .npz with arrays x and y (optionally x_test, y_test)")
    parser.add_argument("--name", help="default: the file's name")
    parser.add_argument("--description", default="")


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    pass


COMMANDS = [
    Command("submit", "submit a job spec; print its id (or follow it with --wait)",
            _submit_arguments, _submit),
    Command("list", "list the team's jobs, newest first", _list_arguments, _list),
    Command("show", "show a job's state and summary", _job_id, _show),
    Command("watch", "follow a job: live progress, latest metrics, then its summary",
            _watch_arguments, _watch),
    Command("cancel", "ask a job to stop", _job_id, _cancel),
    Command("logs", "the worker's lines about a job (-f: follow them)", logs_arguments, _logs),
    Command("metrics", "a job's metric series", _metrics_arguments, _metrics),
    Command("snapshots", "a layer's distribution snapshots", _snapshots_arguments, _snapshots),
    Command("diagnose", "what went wrong in a job: findings, evidence and remedies",
            _job_id, _diagnose),
    Command("remedy", "submit a job again with its findings' remedies applied",
            _remedy_arguments, _remedy),
    Command("heal", "run diagnose -> remedy -> train rounds until a job is healthy",
            _heal_arguments, _heal),
    Command("catalog", "every allowed spec value, described, and the service limits",
            _no_arguments, _catalog),
    Command("datasets upload", "upload a data set (.npz)", _upload_arguments, _datasets_upload),
    Command("datasets list", "the built-in and uploaded data sets", _no_arguments, _datasets_list),
]
