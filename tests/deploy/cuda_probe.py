"""`gradlab-server worker`, with every call into torch.cuda's entry points recorded as
"<pid> <function>" lines in $GRADLAB_TEST_CUDA_PROBE_LOG (the first line names the parent).

The pool's children are forked from this process and inherit the recording, so the file tells
which process called into CUDA. torch is imported first, as the worker's parent imports it
anyway (worker.runner loads the training core); importing torch does not initialise CUDA.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import torch.cuda

# Every torch.cuda function that initialises CUDA or talks to the driver; torch's own code and
# its C++ side reach CUDA through these module attributes (_lazy_init above all).
PROBED = [
    "_lazy_init", "init", "is_available", "device_count", "current_device", "set_device",
    "get_device_name", "get_device_properties", "mem_get_info", "synchronize", "empty_cache",
    "ipc_collect", "memory_allocated", "memory_reserved", "manual_seed", "manual_seed_all",
]
LOG = os.environ["GRADLAB_TEST_CUDA_PROBE_LOG"]


def record(name: str) -> None:
    with open(LOG, "a") as file:
        file.write(f"{os.getpid()} {name}\n")


def probed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        record(name)
        return function(*args, **kwargs)

    return call


def main() -> int:
    for name in PROBED:
        setattr(torch.cuda, name, probed(name, getattr(torch.cuda, name)))
    with open(LOG, "w") as file:
        file.write(f"parent {os.getpid()}\n")
    from gradlab_server.cli import main as gradlab_server

    return gradlab_server(["worker"])


if __name__ == "__main__":
    sys.exit(main())
