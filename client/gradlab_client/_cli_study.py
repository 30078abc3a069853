"""The `gradlab study` subcommands: run a study (from a file or a template), compare its
variants in a table, list the templates."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from gradlab_contract.models import TERMINAL_STATUSES, ComparisonRow, Stat, Study, StudyComparison

from gradlab_client import _cli_output as text
from gradlab_client._cli_commands import EXIT_OK, Command, UsageError, emit, load_spec
from gradlab_client.client import Client

# The summary columns of the table, as (header, metric); --json carries all of them.
TABLE_METRICS = (("val_acc", "final_val_accuracy"), ("best_val_acc", "best_val_accuracy"),
                 ("train_loss", "final_train_loss"), ("val_loss", "final_val_loss"))
POLL_SECONDS = 2.0
LOG_EVERY = 10.0


def stat_cell(value: Stat | None) -> text.Cell:
    if value is None:
        return None
    if value.n == 1:
        return value.mean
    return f"{value.mean:.4g}±{value.std:.2g}"


def value_cell(value: Any) -> text.Cell:
    if isinstance(value, str | int | float) or value is None:
        return value
    return json.dumps(value, separators=(",", ":"))


def comparison_table(comparison: StudyComparison) -> str:
    """One line per variant: its values, seed-averaged metrics, target steps, codes."""
    headers = [*comparison.varied, *(header for header, _ in TABLE_METRICS)]
    if comparison.target:
        headers.append("steps_to_target")
    headers += ["status", "codes"]
    rows = [_table_row(comparison, row) for row in comparison.rows]
    title = f"target: {comparison.target}\n" if comparison.target else ""
    return title + text.table(headers, rows)


def _table_row(comparison: StudyComparison, row: ComparisonRow) -> list[text.Cell]:
    cells: list[text.Cell] = [value_cell(row.values.get(path)) for path in comparison.varied]
    cells += [stat_cell(row.metrics.get(metric)) for _, metric in TABLE_METRICS]
    if comparison.target:
        reached = stat_cell(row.steps_to_target)
        cells.append(None if reached is None else f"{text.format_cell(reached)} "
                     f"({row.reached_target}/{len(row.job_ids)})")
    cells.append(", ".join(f"{n} {status}" for status, n in sorted(row.statuses.items())))
    cells.append(", ".join(row.codes) or "-")
    return cells


def _progress(study: Study) -> str:
    done = sum(n for status, n in study.counts.items() if status in TERMINAL_STATUSES)
    return f"study {study.id}: {done}/{study.jobs} jobs done ({study.counts})"


def wait_for(client: Client, study: Study) -> Study:
    """Poll until every job ended, with a progress line on stderr now and then."""
    last_log = 0.0
    while not study.done:
        if time.monotonic() - last_log >= LOG_EVERY:
            print(_progress(study), file=sys.stderr)
            last_log = time.monotonic()
        time.sleep(POLL_SECONDS)
        study = client.studies.get(study.id)
    print(_progress(study), file=sys.stderr)
    return study


def _run(client: Client, args: argparse.Namespace) -> int:
    if (args.file is None) == (args.template is None):
        raise UsageError("give a study FILE or --template NAME (one of them)")
    body = load_spec(args.file) if args.file else {"template": args.template}
    overrides = dict(_parse_override(item) for item in args.set)
    if overrides:
        body["overrides"] = {**body.get("overrides", {}), **overrides}
    if args.seeds:
        body["seeds"] = [int(seed) for seed in args.seeds.split(",")]
    study = client.studies.create(body, idempotency_key=args.idempotency_key)
    print(f"study {study.id}: {study.jobs} jobs over {study.variants} variants "
          f"({', '.join(study.varied)})", file=sys.stderr)
    if not args.wait:
        emit(args, study.id, study)
        return EXIT_OK
    wait_for(client, study)
    return _print_comparison(client, study.id, args)


def _parse_override(item: str) -> tuple[str, Any]:
    path, sep, raw = item.partition("=")
    if not sep or not path:
        raise UsageError(f"--set takes PATH=VALUE, not {item!r}")
    try:
        return path, json.loads(raw)
    except json.JSONDecodeError:
        return path, raw  # a bare word: a string value (--set model.activation=tanh)


def _print_comparison(client: Client, study_id: str, args: argparse.Namespace) -> int:
    comparison = client.studies.compare(
        study_id, sort=args.sort, order=args.order, target_metric=args.target_metric,
        target_value=args.target_value,
    )
    emit(args, comparison_table(comparison), comparison)
    return EXIT_OK


def _compare(client: Client, args: argparse.Namespace) -> int:
    return _print_comparison(client, args.id, args)


def _templates(client: Client, args: argparse.Namespace) -> int:
    found = client.studies.templates()
    rows: list[list[text.Cell]] = [[t.name, t.jobs, t.description] for t in found]
    emit(args, text.table(["name", "jobs", "description"], rows), found)
    return EXIT_OK


def _show(client: Client, args: argparse.Namespace) -> int:
    study = client.studies.get(args.id)
    emit(args, _progress(study), study)
    return EXIT_OK


def _cancel(client: Client, args: argparse.Namespace) -> int:
    study = client.studies.cancel(args.id)
    emit(args, _progress(study), study)
    return EXIT_OK


def _compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sort", help="a column: a varied path, a metric such as "
                        "final_val_accuracy, steps_to_target or variant")
    parser.add_argument("--order", choices=["asc", "desc"], default="asc")
    parser.add_argument("--target-metric", help="e.g. val_accuracy (with --target-value)")
    parser.add_argument("--target-value", type=float, help="e.g. 0.9: steps to reach it")


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", help="a study (.json/.yaml): base, grid or search, "
                        "seeds")
    parser.add_argument("--template", help="a built-in study (gradlab study templates)")
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                        help="override a template's base spec (JSON value), repeatable")
    parser.add_argument("--seeds", help="comma-separated seeds, e.g. 0,1,2")
    parser.add_argument(
        "--idempotency-key", help="create at most once per key: a retry returns the same study"
    )
    parser.add_argument("--wait", action="store_true", help="wait for every job, then print "
                        "the comparison table")
    _compare_arguments(parser)


def _study_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", help="the study's id")


def _id_and_compare(parser: argparse.ArgumentParser) -> None:
    _study_id(parser)
    _compare_arguments(parser)


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    pass


STUDY_COMMANDS = [
    Command("study run", "create a study from a file or --template; --wait prints its "
            "comparison table", _run_arguments, _run),
    Command("study compare", "a study's variants side by side", _id_and_compare, _compare),
    Command("study show", "a study's jobs counted by status", _study_id, _show),
    Command("study cancel", "cancel a study's queued and running jobs", _study_id, _cancel),
    Command("study templates", "the built-in studies", _no_arguments, _templates),
]
