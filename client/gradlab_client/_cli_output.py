"""Text the `gradlab` CLI prints for people: aligned tables and short summaries.

Pure functions from models to strings, so the CLI's human output is tested without a terminal.
Scripts should use `--json` instead of parsing these.
"""

from __future__ import annotations

import csv
import io
import json
import textwrap
from collections.abc import Iterable, Sequence
from datetime import datetime

from gradlab_contract.models import (
    Catalog,
    DatasetInfo,
    Diagnosis,
    Finding,
    Heal,
    Histogram,
    Job,
    Snapshot,
)
from rich.console import Console
from rich.table import Table

from gradlab_client.results import MetricsResult

Cell = str | int | float | None
_BAR_WIDTH = 40


def table(headers: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned, text left-aligned. Drawn by
    rich without borders or colour, so the text is the same on a terminal, in a pipe and in a
    log."""
    raw = [list(row) for row in rows]
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in raw) and bool(raw)
        for i in range(len(headers))
    ]
    drawn = Table(box=None, pad_edge=False, header_style=None)
    for header, right in zip(headers, numeric, strict=True):
        drawn.add_column(header, justify="right" if right else "left", no_wrap=True)
    for row in raw:
        drawn.add_row(*(format_cell(value) for value in row))
    out = io.StringIO()
    # Wide enough never to wrap: a table is read whole, or piped to a file.
    Console(file=out, width=100_000, color_system=None, highlight=False, markup=False,
            emoji=False).print(drawn)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


def format_cell(value: Cell | datetime) -> str:
    if value is None:
        return "-"  # also a non-finite number, which JSON carries as null
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def jobs_table(jobs: Iterable[Job]) -> str:
    rows = [
        [job.id, job.name or "", job.status, f"{job.progress.step}/{job.progress.total_steps}",
         format_cell(job.created_at)]
        for job in jobs
    ]
    return table(["ID", "NAME", "STATUS", "STEP", "CREATED"], rows)


def job_detail(job: Job) -> str:
    """A job's state and, once it has them, its final and best metrics."""
    fields: list[tuple[str, Cell | datetime]] = [
        ("id", job.id),
        ("name", job.name),
        ("status", job.status + (" (cancel requested)" if job.cancel_requested else "")),
        ("progress", f"{job.progress.step}/{job.progress.total_steps}"),
        ("attempt", job.attempt),
        ("dataset", job.spec.data.dataset),
        ("model", f"{job.spec.model.kind} {job.spec.model.activation}"),
        ("optimizer", f"{job.spec.optimizer.name} lr={job.spec.optimizer.lr:g}"),
        ("device", job.device),
        ("created", job.created_at),
        ("started", job.started_at),
        ("finished", job.finished_at),
    ]
    if job.parent_id:
        fields.append(("parent", job.parent_id))
    if job.error:
        fields.append(("error", job.error))
    fields += [(name, value) for name, value in sorted(job.summary.items())]
    width = max(len(name) for name, _ in fields)
    return "\n".join(f"{name.ljust(width)}  {format_cell(value)}" for name, value in fields)


def metrics_summary(result: MetricsResult) -> str:
    rows: list[list[Cell]] = []
    for series in result:
        present = [value for value in series.values if value is not None]
        rows.append([
            series.name,
            len(series.steps),
            series.steps[-1] if series.steps else None,
            series.values[-1] if series.values else None,
            min(present) if present else None,
            max(present) if present else None,
        ])
    return table(["NAME", "POINTS", "LAST STEP", "LAST", "MIN", "MAX"], rows)


def metrics_csv(result: MetricsResult) -> str:
    """Wide CSV: a `step` column, then one column per metric, empty where it has no point."""
    by_step: dict[int, dict[str, float | None]] = {}
    for series in result:
        for step, value in zip(series.steps, series.values, strict=True):
            by_step.setdefault(step, {})[series.name] = value
    names = [series.name for series in result]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["step", *names])
    for step in sorted(by_step):
        values = by_step[step]
        writer.writerow([step, *(_csv_value(values, name) for name in names)])
    return buffer.getvalue().rstrip("\n")


def _csv_value(values: dict[str, float | None], name: str) -> str:
    if name not in values:
        return ""
    value = values[name]
    return "nan" if value is None else repr(value)


def snapshots_table(snapshots: Sequence[Snapshot]) -> str:
    stat_names: list[str] = []
    for snapshot in snapshots:
        stat_names += [name for name in snapshot.stats if name not in stat_names]
    rows = [
        [s.step, s.kind, s.layer, *(s.stats.get(name) for name in stat_names)] for s in snapshots
    ]
    return table(["STEP", "KIND", "LAYER", *(name.upper() for name in stat_names)], rows)


def histogram_bars(histogram: Histogram, title: str) -> str:
    """A histogram as text: one bar per bin, scaled to the fullest bin."""
    peak = max(histogram.counts, default=0) or 1
    lines = [title]
    for index, count in enumerate(histogram.counts):
        low, high = histogram.edges[index], histogram.edges[index + 1]
        bar = "#" * round(_BAR_WIDTH * count / peak)
        lines.append(f"{format_cell(low):>10} .. {format_cell(high):<10} {count:>8} {bar}")
    return "\n".join(lines)


def catalog_text(catalog: Catalog) -> str:
    sections = []
    for path, values in catalog.enums.items():
        width = max((len(value.value) for value in values), default=0)
        lines = [f"{value.value.ljust(width)}  {value.description}" for value in values]
        sections.append("\n".join([f"{path}:", *("  " + line for line in lines)]))
    if catalog.limits:
        rows: list[list[Cell]] = [[name, value] for name, value in sorted(catalog.limits.items())]
        sections.append("limits:\n" + table(["LIMIT", "VALUE"], rows))
    return "\n\n".join(sections)


def datasets_table(datasets: Iterable[DatasetInfo]) -> str:
    rows = [
        [d.id, d.name, d.kind, "x".join(map(str, d.input_shape)), d.num_classes, d.rows]
        for d in datasets
    ]
    return table(["ID", "NAME", "KIND", "INPUT", "CLASSES", "ROWS"], rows)


def latest_values(result: MetricsResult) -> dict[str, float | None]:
    return {series.name: series.values[-1] for series in result if series.values}


def describe_latest(values: dict[str, float | None]) -> str:
    return " ".join(f"{name}={format_cell(value)}" for name, value in sorted(values.items()))


def diagnosis_text(diagnosis: Diagnosis) -> str:
    """Each finding as severity, code and layer@step, its title and detail, what to do and the
    remedy's spec changes; then how to apply the remedies."""
    if diagnosis.updated_at is None:
        return f"{diagnosis.job_id}: not diagnosed yet (the first snapshot step is not reached)"
    when = "final diagnosis" if diagnosis.final else "live diagnosis (the job is running)"
    if not diagnosis.findings:
        return f"{diagnosis.job_id}: {when}: nothing wrong found"
    count = len(diagnosis.findings)
    lines = [f"{diagnosis.job_id}: {when}: {count} finding{'s' if count > 1 else ''}"]
    chain = cause_chain(diagnosis.findings)
    if chain:
        lines += ["", f"chain: {chain}"]
    for finding in diagnosis.findings:
        lines += ["", *_finding_lines(finding)]
    codes = [f.code for f in diagnosis.findings if f.remedy and f.caused_by is None]
    if codes:
        lines += ["", f"apply remedies: gradlab remedy {diagnosis.job_id} {' '.join(codes)}"]
    return "\n".join(lines)


def cause_chain(findings: Sequence[Finding]) -> str:
    """Each root cause and what it explains, by onset: "activation_collapse (step 1) ->
    no_learning (step 1), dead_units (step 50)"; empty when nothing explains anything."""
    parts = []
    for root in (f for f in findings if f.caused_by is None):
        effects = [f for f in findings if f.caused_by == root.code]
        if effects:
            parts.append(f"{_onset(root)} -> " + ", ".join(_onset(f) for f in effects))
    return "; ".join(parts)


def _onset(finding: Finding) -> str:
    at = f" (step {finding.onset_step})" if finding.onset_step is not None else ""
    return f"{finding.code}{at}"


def _finding_lines(finding: Finding) -> list[str]:
    where = f"{finding.layer or '-'}@{finding.step if finding.step is not None else '-'}"
    since = f"  from step {finding.onset_step}" if finding.onset_step is not None else ""
    head = f"{finding.severity.upper():<8} {finding.code}  {where}{since}"
    if finding.caused_by:
        head += f"  (caused by {finding.caused_by})"
    lines = [head, f"  {finding.title}"]
    lines += textwrap.wrap(finding.detail, width=96, initial_indent="  ",
                           subsequent_indent="  ")
    if finding.suggestion:
        lines += textwrap.wrap(finding.suggestion, width=96, initial_indent="  suggestion: ",
                               subsequent_indent="    ")
    if finding.remedy:
        changes = ", ".join(f"{path}={json.dumps(value)}" for path, value in finding.remedy.items())
        lines.append(f"  remedy: {changes}")
    for outcome in finding.outcomes:
        reason = f": {outcome.reason}" if outcome.reason else ""
        lines.append(f"  remedy job {outcome.child_id}: {outcome.outcome}{reason}")
    return lines


def heal_text(heal: Heal) -> str:
    """The heal's status, then one line per round: its job, status, findings and changes."""
    lines = [f"heal {heal.id} of {heal.job_id}: {heal.status}"
             + (f" ({heal.reason})" if heal.reason else "")]
    if heal.healthy_job_id:
        lines.append(f"healthy job: {heal.healthy_job_id}")
    for entry in heal.rounds:
        changes = ", ".join(f"{k}={json.dumps(v)}" for k, v in entry.changes.items())
        found = ", ".join(entry.findings) or ("-" if entry.status else "pending")
        verdict = f" [{entry.outcome}]" if entry.outcome else ""
        lines.append(f"  round {entry.round}: {entry.job_id} {entry.status or 'queued'}{verdict}"
                     f"  findings: {found}" + (f"  changes: {changes}" if changes else ""))
    lines.append(f"training steps of the remedy jobs: {heal.training_steps}")
    return "\n".join(lines)
