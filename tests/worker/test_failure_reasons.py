"""A failed job's reason is one line for the user: no traceback and no path on the worker."""

from worker.runner import _reason


def test_paths_on_the_worker_are_hidden() -> None:
    missing = FileNotFoundError(2, "No such file or directory", "/srv/gradlab/uploads/ab12.npz")
    assert _reason(missing) == "FileNotFoundError: [Errno 2] No such file or directory: '<path>'"
    assert "/data" not in _reason(
        FileNotFoundError("no data_batch_1.bin in /data/cifar-10-batches-bin")
    )


def test_the_message_stays_readable_and_one_line() -> None:
    reason = _reason(ValueError("labels must be integers >= 0, got 3/4 of rows\nsecond line"))
    assert reason == "ValueError: labels must be integers >= 0, got 3/4 of rows"
