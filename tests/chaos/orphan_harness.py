"""Run one job the way a Celery pool process does, under a parent the test can kill.

    python tests/chaos/orphan_harness.py <job id> <outcome file>

Settings come from GRADLAB_* variables. The parent builds the worker context and forks; the
child sets up what worker_process_init sets up in a pool process (worker/shutdown.py: the stop
signal and the parent watch) and runs worker.runner.run_job, then writes its outcome. Unlike a
Celery pool process the child does not ask the kernel to kill it with its parent
(PR_SET_PDEATHSIG), which is the case the test needs: an orphan that lives on.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> int:
    job_id, outcome_file = sys.argv[1], Path(sys.argv[2])
    from store.logs import configure_logging
    from store.settings import Settings
    from worker import shutdown
    from worker.context import WorkerContext
    from worker.runner import run_job

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    context = WorkerContext.from_settings(settings)
    child = os.fork()
    if child == 0:
        shutdown.install_in_pool_process()
        outcome = run_job(context, job_id)
        outcome_file.write_text(outcome)
        os._exit(0)
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
