"""A job's stored log: capped per job (errors get more room), paged by id; host paths stripped
from tracebacks by the worker's handler."""

from __future__ import annotations

import logging

from gradlab_contract.spec import JobSpec

from store import joblogs, jobs, teams
from store.db import Database
from store.joblogs import LogLine
from store.logs import bind_job, clear_job
from worker.joblog import JobLogHandler, strip_paths


def _job(database: Database, spec: JobSpec) -> str:
    with database.transaction() as session:
        team = teams.create_team(session, name="logs")
        return jobs.create_job(session, team_id=team.id, spec=spec, total_steps=10).job.id


def test_lines_past_the_cap_are_dropped_but_errors_get_room(database: Database,
                                                            spec: JobSpec) -> None:
    job_id = _job(database, spec)
    lines = [LogLine(job_id, 1, "INFO", f"line {n}") for n in range(15)]
    lines += [LogLine(job_id, 1, "ERROR", f"error {n}") for n in range(15)]
    with database.transaction() as session:
        joblogs.append_lines(session, lines=lines, cap=10)
    with database.read() as session:
        page = joblogs.read_lines(session, job_id=job_id, limit=100)
    messages = [line.message for line in page.lines]
    assert messages[:10] == [f"line {n}" for n in range(10)]
    assert messages[10] == "log capped at 10 lines: later lines are dropped"
    assert messages[11:] == [f"error {n}" for n in range(9)]  # up to twice the cap in all
    assert page.truncated and len(messages) == 20
    with database.read() as session:
        rest = joblogs.read_lines(session, job_id=job_id, after=page.lines[4].id, limit=3)
    assert [line.message for line in rest.lines] == ["line 5", "line 6", "line 7"]
    assert rest.next_after == rest.lines[-1].id


def test_traceback_paths_keep_the_file_name_only() -> None:
    text = ('Traceback (most recent call last):\n'
            '  File "/srv/app/.venv/lib/python3.11/site-packages/training/data/cifar10.py", '
            'line 40, in load\n'
            "FileNotFoundError: [Errno 2] No such file: '/data/cifar-10-batches-bin/data_1.bin'")
    stripped = strip_paths(text)
    assert 'File "cifar10.py", line 40' in stripped
    assert "/srv" not in stripped and "/data/" not in stripped and "<path>" in stripped


def test_the_handler_stores_only_a_bound_jobs_lines(database: Database, spec: JobSpec) -> None:
    job_id = _job(database, spec)
    handler = JobLogHandler(database, cap=100)
    logger = logging.getLogger("tests.joblog")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("before the job")
        bind_job(job_id, 2)
        logger.info("job %s claimed", job_id)
        try:
            raise ValueError("bad /home/someone/file")
        except ValueError:
            logger.exception("job failed")
        clear_job()
        logger.info("after the job")
        handler.flush()
    finally:
        logger.removeHandler(handler)
    with database.read() as session:
        page = joblogs.read_lines(session, job_id=job_id)
    assert [(line.attempt, line.level) for line in page.lines] == [(2, "INFO"), (2, "ERROR")]
    assert "Traceback" in page.lines[1].message and "/home/someone" not in page.lines[1].message
