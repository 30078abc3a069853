"""`gradlab-server run` (what `make run` starts) on a fresh home: it prints a key, serves the API,
trains a submitted job with its own worker, and stops that worker when it stops."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_key(process: subprocess.Popen[str], lines: list[str], timeout: float = 60) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        found = re.search(r"\b(glk_\S+)", line)
        if found:
            return found.group(1)
        assert process.poll() is None, "".join(lines)
    raise AssertionError("no key printed:\n" + "".join(lines))


def wait_until_healthy(base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the API did not become ready")


def test_run_serves_and_trains_on_a_fresh_home(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADLAB_")}
    env.update(GRADLAB_HOME=str(home), GRADLAB_PORT=str(port), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "gradlab_server.cli", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    lines: list[str] = []
    try:
        key = wait_for_key(process, lines)
        assert (home / "api-key").read_text().strip() == key
        base = f"http://127.0.0.1:{port}"
        wait_until_healthy(base)
        auth = {"Authorization": f"Bearer {key}"}
        spec = {"data": {"dataset": "spiral"}, "training": {"steps": 50}}
        job = httpx.post(f"{base}/v1/jobs", json=spec, headers=auth).json()
        deadline = time.monotonic() + 90
        status = "queued"
        while status in ("queued", "running"):
            assert time.monotonic() < deadline, "job did not finish"
            time.sleep(0.2)
            status = httpx.get(f"{base}/v1/jobs/{job['id']}", headers=auth).json()["status"]
        assert status == "succeeded"
        grads = httpx.get(
            f"{base}/v1/jobs/{job['id']}/snapshots", params={"kind": "gradient"}, headers=auth
        ).json()
        assert grads["items"] and grads["items"][0]["histogram"]["counts"]
        workers = child_pids(process.pid)
        assert workers, "run started no worker process"
        client_env = {**env, "GRADLAB_URL": base, "GRADLAB_API_KEY": key}
        check_readme_pipeline(client_env, tmp_path)
        check_readme_model(client_env, tmp_path)
        check_cli_submit_wait(client_env, tmp_path)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
    assert process.returncode == 0, "".join(lines)
    assert not [pid for pid in workers if alive(pid)], "the worker outlived `run`"


def check_readme_pipeline(env: dict[str, str], tmp_path: Path) -> None:
    """README's "Use it from your pipeline" code, as written, against this server and worker."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Use it from your pipeline", 1)[1].split("\n## ", 1)[0]
    snippet = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)[0]
    result = subprocess.run(
        [sys.executable, "-c", snippet],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "final val accuracy:" in result.stdout and "gradient std by step" in result.stdout


def check_readme_model(env: dict[str, str], tmp_path: Path) -> None:
    """README's "Take the trained model": submit, wait and load, as written."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Take the trained model", 1)[1].split("\n## ", 1)[0]
    snippet = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)[0]
    result = subprocess.run([sys.executable, "-c", snippet], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    found = re.search(r"predicted classes: \[(\d+), (\d+)\]", result.stdout)
    assert found and all(0 <= int(c) < 3 for c in found.groups()), result.stdout  # 3 arms


def check_cli_submit_wait(env: dict[str, str], tmp_path: Path) -> None:
    """`gradlab submit spec.json --wait` prints the outcome; a diverged job exits non-zero."""
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text('{"data": {"dataset": "spiral"}, "training": {"steps": 30}}')
    bad.write_text(
        '{"data": {"dataset": "spiral"}, "optimizer": {"name": "sgd", "lr": 10000},'
        ' "model": {"init": {"scheme": "normal", "std": 50}}, "training": {"steps": 200}}'
    )
    command = [sys.executable, "-m", "gradlab_client.cli", "submit"]
    ok = subprocess.run(
        [*command, str(good), "--wait"], env=env, capture_output=True, text=True, timeout=300
    )
    assert ok.returncode == 0 and "succeeded" in ok.stdout + ok.stderr, ok.stdout + ok.stderr
    diverged = subprocess.run(
        [*command, str(bad), "--wait"], env=env, capture_output=True, text=True, timeout=300
    )
    assert diverged.returncode == 3, diverged.stdout + diverged.stderr
    assert "diverged" in diverged.stdout + diverged.stderr


def child_pids(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(line) for line in out.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/status").read_text().find("State:\tZ") == -1
