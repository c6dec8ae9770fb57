"""Deployment files: docker-compose.yml structure, Dockerfile essentials, .env.example coverage.

The docker engine may be missing (it is here), so the compose file is checked as YAML, and by
``docker compose config`` or Debian's ``docker-compose config`` (which needs no engine; .ci/run
installs it) when one of them is present.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = {"migrate", "web", "worker-feed", "worker-backtests", "beat", "telegram"}
SETTINGS_VARIABLE = re.compile(
    r"""(?:os\.environ\.get|env_bool|env_list|env_str)\(\s*["']([A-Z0-9_]+)["']"""
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def healthcheck_command(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else test


# --- docker-compose.yml ---------------------------------------------------------------------------


def test_compose_declares_every_service(services: dict[str, Any]) -> None:
    assert set(services) == {"db", "redis", *APP_SERVICES}


def test_database_and_redis_have_health_checks(services: dict[str, Any]) -> None:
    assert services["db"]["image"] == "timescale/timescaledb:latest-pg16"
    assert "pg_isready" in healthcheck_command(services["db"])
    assert services["redis"]["image"].startswith("redis:7")
    assert "redis-cli ping" in healthcheck_command(services["redis"])


def test_database_data_lives_in_a_named_volume(compose: dict[str, Any]) -> None:
    mounts = compose["services"]["db"]["volumes"]
    assert "db-data:/var/lib/postgresql/data" in mounts
    assert "db-data" in compose["volumes"]


def test_one_image_is_built_once_and_shared(services: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        assert services[name]["image"] == "scalpradar:latest", name
    builders = [name for name, service in services.items() if "build" in service]
    assert builders == ["web"]


def test_app_services_run_in_production_against_the_compose_services(
    services: dict[str, Any],
) -> None:
    for name in APP_SERVICES:
        service = services[name]
        assert service["env_file"] == ".env", name
        environment = service["environment"]
        assert environment["SCALPRADAR_ENV"] == "production", name
        assert re.match(r"postgres://[^@]+@db:5432/", environment["DATABASE_URL"]), name
        assert environment["REDIS_URL"].startswith("redis://redis:6379/"), name


def test_app_services_wait_for_healthy_database_and_redis(services: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        depends_on = services[name]["depends_on"]
        assert depends_on["db"]["condition"] == "service_healthy", name
        assert depends_on["redis"]["condition"] == "service_healthy", name


def test_everything_but_migrate_waits_for_migrations(services: dict[str, Any]) -> None:
    migrate = services["migrate"]
    assert "migrate" in migrate["command"]
    assert migrate["restart"] == "no"
    for name in APP_SERVICES - {"migrate"}:
        condition = services[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name


def test_web_serves_daphne_and_checks_health(services: dict[str, Any]) -> None:
    web = services["web"]
    command = " ".join(web["command"])
    assert command.startswith("daphne ")
    assert "scalpradar.asgi:application" in command
    assert "--port 8000" in command
    assert any(str(port).endswith(":8000") for port in web["ports"])
    assert "/health/" in healthcheck_command(web)


def test_health_check_script_is_valid_python(services: dict[str, Any]) -> None:
    test = services["web"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    compile(test[3], "<healthcheck>", "exec")


@pytest.mark.parametrize(
    ("service", "words"),
    [
        # 2 processes: the long-running radar_feed task holds one, the pollers use the other.
        ("worker-feed", ["-Q feed", "--concurrency 2"]),
        ("worker-backtests", ["-Q backtests"]),
        ("beat", [" beat"]),
    ],
)
def test_celery_processes_consume_their_queue(
    services: dict[str, Any], service: str, words: list[str]
) -> None:
    command = " ".join(services[service]["command"])
    assert command.startswith("celery -A scalpradar ")
    for word in words:
        assert word in command


def test_settings_routes_match_the_worker_queues(services: dict[str, Any]) -> None:
    settings_source = (ROOT / "scalpradar" / "settings.py").read_text(encoding="utf-8")
    routed = set(re.findall(r'\{"queue": "(\w+)"\}', settings_source))
    consumed = {
        command[command.index("-Q") + 1]
        for service in services.values()
        if "-Q" in (command := service.get("command") or [])
    }
    assert routed <= consumed


def compose_command() -> list[str] | None:
    """``docker compose`` (v2 plugin) when present, else Debian's ``docker-compose`` (v1.29, the
    compose-spec validator .ci/run installs; ``config`` needs no engine), else None."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy is not None else None


def compose_config(tmp_path: Path, compose_text: str) -> subprocess.CompletedProcess[str]:
    """``compose config --quiet`` on ``compose_text`` beside a .env copied from .env.example,
    as a user sets it up, with POSTGRES_PASSWORD given (the file requires it)."""
    command = compose_command()
    assert command is not None
    (tmp_path / "docker-compose.yml").write_text(compose_text, encoding="utf-8")
    (tmp_path / ".env").write_text(
        (ROOT / ".env.example").read_text(encoding="utf-8"), encoding="utf-8"
    )
    return subprocess.run(
        [*command, "-f", "docker-compose.yml", "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={"POSTGRES_PASSWORD": "check-only", "PATH": "/usr/bin:/usr/local/bin:/bin"},
    )


needs_compose = pytest.mark.skipif(
    compose_command() is None, reason="neither `docker compose` nor `docker-compose` installed"
)


@needs_compose
def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    compose_text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    result = compose_config(tmp_path, compose_text)
    assert result.returncode == 0, result.stderr


@needs_compose
def test_docker_compose_rejects_a_broken_file(tmp_path: Path) -> None:
    """The validator above is live: an unknown service option is refused."""
    compose_text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    service = "\n  redis:\n    image:"
    typo = service.replace("image:", "restart_typo: no\n    image:")
    broken = compose_text.replace(service, typo)
    assert broken != compose_text
    result = compose_config(tmp_path, broken)
    assert result.returncode != 0
    assert "restart_typo" in result.stderr


# --- Dockerfile and .dockerignore -----------------------------------------------------------------


def test_dockerfile_builds_a_non_root_daphne_image() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.12-slim\b", dockerfile, re.MULTILINE)
    assert re.search(r"pip install [^\n]*\buv\b", dockerfile)
    assert "uv sync --frozen --no-dev" in dockerfile
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}
    assert "collectstatic --noinput" in dockerfile
    cmd = re.findall(r"^CMD\s+(.+)$", dockerfile, re.MULTILINE)
    assert cmd and "daphne" in cmd[-1] and "scalpradar.asgi:application" in cmd[-1]


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".env", "var/"} <= ignored
    assert "data/" not in ignored and "data" not in ignored, "the bundled sample is needed"


# --- .env.example ---------------------------------------------------------------------------------


def settings_variables() -> set[str]:
    source = (ROOT / "scalpradar" / "settings.py").read_text(encoding="utf-8")
    return set(SETTINGS_VARIABLE.findall(source))


def env_example_lines() -> list[str]:
    return (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()


def test_settings_variables_are_found() -> None:
    assert {"SCALPRADAR_ENV", "SECRET_KEY", "DATABASE_URL", "ALLOWED_HOSTS", "DEBUG"} <= (
        settings_variables()
    )


def test_env_example_lists_every_variable_settings_reads_with_a_comment() -> None:
    lines = env_example_lines()
    for name in sorted(settings_variables()):
        assignment = re.compile(rf"^#?\s*{name}=")
        indexes = [i for i, line in enumerate(lines) if assignment.match(line)]
        assert indexes, f"{name} is read by settings.py but missing from .env.example"
        above = lines[indexes[0] - 1] if indexes[0] else ""
        commented = above.startswith("#") or lines[indexes[0]].startswith("#")
        assert commented, f"{name} in .env.example has no comment above it"


def test_env_example_as_is_gives_loadable_settings(tmp_path: Path) -> None:
    """Copying .env.example to .env must not break start-up (empty values included)."""
    values = {k: v for k, v in dotenv_values(ROOT / ".env.example").items() if v is not None}
    environment = {
        "PATH": "/usr/bin:/bin",
        "SCALPRADAR_DATA_DIR": str(tmp_path),
        **values,
        "DJANGO_SETTINGS_MODULE": "scalpradar.settings",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=environment,
    )
    assert result.returncode == 0, result.stderr


def test_every_celery_route_matches_a_task_and_every_consumed_queue_gets_one(
    services: dict[str, Any],
) -> None:
    """A route matching no task, or a worker consuming a queue nothing is sent to, is dead
    configuration (the first wave had a ``strategies`` worker waiting on an empty queue)."""
    from fnmatch import fnmatch

    from celery import Task
    from django.conf import settings

    import backtests.tasks
    import radar.tasks
    import trading.tasks

    tasks = [
        task.name
        for module in (backtests.tasks, radar.tasks, trading.tasks)
        for task in vars(module).values()
        if isinstance(task, Task)
    ]
    routed: dict[str, str] = {}
    for pattern, route in settings.CELERY_TASK_ROUTES.items():
        matching = [name for name in tasks if fnmatch(name, pattern)]
        assert matching, f"route {pattern} matches no task (tasks: {sorted(tasks)})"
        routed.update(dict.fromkeys(matching, route["queue"]))
    consumed = set()
    for service in services.values():
        words = service.get("command") or []
        if "worker" in words:
            consumed.add(words[words.index("-Q") + 1])
    assert consumed == set(routed.values()), (consumed, routed)
