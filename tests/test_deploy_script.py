"""deploy.sh, scripts/backup.sh and scripts/restore.sh run for real by bash, against real git
repositories (an "origin" and the server's clone), real curl and a real HTTP /health/ server,
with a STUBBED ``docker`` first on PATH: a small program that logs its arguments and plays
images, containers and the database container's pg_dump / pg_restore from a state folder.

The stub's image model: ``images/<tag>`` holds an image id; ``compose build`` writes a new id
to ``scalpradar:latest``; ``compose up -d`` makes ``running`` the id ``latest`` names. The
health server answers 200 ``"status": "ok"`` when the running id is in ``healthy`` (after
``ok_after`` probes of that image: a web still starting), else 503 ``degraded``.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ["deploy.sh", "scripts/backup.sh", "scripts/restore.sh"]

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("bash", "git", "curl")) or sys.platform == "win32",
    reason="deploy.sh runs on the Linux server: needs bash, git and curl",
)

DOCKER_STUB = r"""
import json, os, sys
from pathlib import Path

state = Path(os.environ["STUB_STATE"])
images = state / "images"
args = sys.argv[1:]
with (state / "calls.jsonl").open("a") as log:
    log.write(json.dumps(args) + "\n")
scenario = json.loads((state / "scenario.json").read_text())


def image(tag):
    path = images / tag
    return path.read_text() if path.exists() else None


if args[:2] == ["image", "inspect"]:
    sys.exit(0 if image(args[2]) else 1)
if args[0] == "tag":
    source = image(args[1])
    if source is None:
        sys.exit(f"Error: No such image: {args[1]}")
    (images / args[2]).write_text(source)
    sys.exit(0)
if args[0] != "compose":
    sys.exit(f"stub docker: unexpected {args}")
sub = args[1:]
if sub == ["config", "--quiet"]:
    sys.exit(0)
if sub == ["build"]:
    if scenario.get("fail_build"):
        sys.exit("failed to solve: process \"/bin/sh -c uv sync\" did not complete")
    built = state / "built"
    count = int(built.read_text()) + 1 if built.exists() else 2
    built.write_text(str(count))
    (images / "scalpradar:latest").write_text(f"img-{count}")
    sys.exit(0)
if sub == ["ps", "--quiet", "db"]:
    print("db0123456789" if scenario.get("db_running") else "")
    sys.exit(0)
if sub[:3] == ["exec", "-T", "db"]:
    command = sub[3:]
    if command[:2] == ["pg_restore", "--list"]:
        sys.stdin.buffer.read()
        extension = scenario.get("archive_extension", "plpgsql")
        print(f"2; 3079 16385 EXTENSION - {extension} ")
        sys.exit(0)
    script, params = command[2], command[4:]  # sh -c SCRIPT sh PARAMS...
    if "pg_dump" in script:
        sys.stdout.buffer.write(b"PGDMP\x01\x0e\x00 a custom-format archive")
    elif "pg_restore" in script:
        (state / "restored").write_bytes(sys.stdin.buffer.read())
        if scenario.get("fail_restore"):
            sys.exit("pg_restore: error: could not execute query")
    elif "printf %s" in script:
        print("scalpradar", end="")
    elif "psql" in script:
        with (state / "sql.log").open("a") as log:
            log.write(json.dumps(params) + "\n")
    sys.exit(0)
if sub == ["run", "--rm", "migrate"]:
    (state / "migrated_with").write_text(image("scalpradar:latest"))
    sys.exit(1 if scenario.get("fail_migrate") else 0)
if sub == ["up", "-d"]:
    (state / "running").write_text(image("scalpradar:latest"))
    (state / "probes").write_text("0")
    sys.exit(0)
if sub[:1] in (["stop"], ["up"]):
    sys.exit(0)
sys.exit(f"stub docker: unexpected {args}")
"""


class HealthServer(ThreadingHTTPServer):
    """/health/ answering for the image the stub last started."""

    def __init__(self, state: Path) -> None:
        super().__init__(("127.0.0.1", 0), HealthHandler)
        self.state = state
        self.hosts: list[str] = []


class HealthHandler(BaseHTTPRequestHandler):
    server: HealthServer

    def do_GET(self) -> None:
        state = self.server.state
        self.server.hosts.append(self.headers["Host"])
        scenario = json.loads((state / "scenario.json").read_text())
        running = (state / "running").read_text() if (state / "running").exists() else ""
        probes = int((state / "probes").read_text()) + 1 if (state / "probes").exists() else 1
        (state / "probes").write_text(str(probes))
        ok = running in scenario["healthy"] and probes > scenario.get("ok_after", 0)
        body = {"status": "ok", "problems": []} if ok else {
            "status": "degraded", "problems": ["database unreachable"]}  # fmt: skip
        payload = json.dumps(body).encode()
        self.send_response(200 if ok else 503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:  # quiet test output
        pass


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=Deployer", "-c", "user.email=deploy@example.com", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


@dataclass
class Server:
    checkout: Path
    state: Path
    health: HealthServer
    env: dict[str, str]
    old_commit: str
    new_commit: str

    def scenario(self, **values: object) -> None:
        values.setdefault("healthy", ["img-1", "img-2"])
        (self.state / "scenario.json").write_text(json.dumps(values))

    def deploy(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """deploy.sh ARGS with the fixture's environment updated by ``env`` (an empty value
        removes that variable)."""
        merged = {k: v for k, v in {**self.env, **env}.items() if v}
        return subprocess.run(
            ["bash", str(self.checkout / "deploy.sh"), *args],
            cwd=self.state,  # not the checkout: the script finds its own folder
            env=merged, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    def calls(self) -> list[str]:
        log = self.state / "calls.jsonl"
        if not log.exists():
            return []
        return [" ".join(json.loads(line)) for line in log.read_text().splitlines()]

    def image(self, tag: str) -> str | None:
        path = self.state / "images" / tag
        return path.read_text() if path.exists() else None

    def running(self) -> str | None:
        path = self.state / "running"
        return path.read_text() if path.exists() else None

    def head(self) -> str:
        return git(self.checkout, "rev-parse", "HEAD")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """An origin with two commits (the second tagged v2) and the server's clone at the first,
    running image img-1 with a .env; the stub docker and the health server ready."""
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    git(upstream, "init", "--quiet", "--initial-branch=main")
    for script in SCRIPTS:
        (upstream / script).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / script, upstream / script)
    (upstream / "docker-compose.yml").write_text("services: {}\n")
    (upstream / ".gitignore").write_text(".env\n/var/\n")
    (upstream / "VERSION").write_text("1\n")
    git(upstream, "add", "-A")
    git(upstream, "commit", "--quiet", "-m", "first")
    old_commit = git(upstream, "rev-parse", "HEAD")
    checkout = tmp_path / "srv" / "scalpradar"
    git(tmp_path, "clone", "--quiet", str(upstream), str(checkout))
    (upstream / "VERSION").write_text("2\n")
    git(upstream, "commit", "--quiet", "-am", "second")
    git(upstream, "tag", "v2")
    new_commit = git(upstream, "rev-parse", "HEAD")
    (checkout / ".env").write_text(
        "SECRET_KEY=s3cret\nALLOWED_HOSTS=radar.example.com, localhost\nPOSTGRES_PASSWORD=pw\n"
    )

    state = tmp_path / "state"
    (state / "images").mkdir(parents=True)
    (state / "images" / "scalpradar:latest").write_text("img-1")
    (state / "running").write_text("img-1")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "docker"
    stub.write_text(f"#!{sys.executable}\n{DOCKER_STUB}")
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)

    health = HealthServer(state)
    thread = threading.Thread(target=health.serve_forever, daemon=True)
    thread.start()
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "GIT_CONFIG_NOSYSTEM": "1",
        "STUB_STATE": str(state),
        "HEALTH_URL": f"http://127.0.0.1:{health.server_address[1]}/health/",
        "DEPLOY_HEALTH_TIMEOUT_S": "1",
        "DEPLOY_HEALTH_INTERVAL_S": "0.05",
    }
    srv = Server(checkout, state, health, env, old_commit, new_commit)
    srv.scenario()
    yield srv
    health.shutdown()
    health.server_close()


def test_a_deploy_builds_backs_up_migrates_restarts_and_waits_for_health(server):
    """The happy path, in this order: config, tag previous, build, backup (the database runs),
    migrate, up; /health/ answers 503 twice (starting) and then ok: exit 0."""
    server.scenario(db_running=True, ok_after=2)
    result = server.deploy(DEPLOY_HEALTH_TIMEOUT_S="30")
    assert result.returncode == 0, result.stderr
    assert server.calls() == [
        "compose config --quiet",
        "image inspect scalpradar:latest",
        "tag scalpradar:latest scalpradar:previous",
        "compose build",
        "compose ps --quiet db",
        'compose exec -T db sh -c exec pg_dump --format=custom --username "$POSTGRES_USER" '
        '--dbname "$POSTGRES_DB"',
        "compose run --rm migrate",
        "compose up -d",
    ]
    assert server.head() == server.new_commit  # origin's default branch, checked out
    assert (server.state / "migrated_with").read_text() == "img-2"  # the NEW code migrates
    assert server.running() == "img-2"
    assert server.image("scalpradar:previous") == "img-1"
    assert int((server.state / "probes").read_text()) == 3  # waited through two 503s
    assert set(server.health.hosts) == {"radar.example.com"}  # the first ALLOWED_HOSTS entry
    assert "deployed origin/main" in result.stdout
    (backup,) = (server.checkout / "var" / "backups").glob("scalpradar-*.dump")
    assert backup.name.endswith(f"-before-{server.new_commit[:12]}.dump")
    assert backup.read_bytes().startswith(b"PGDMP")
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600  # every trade, password hashes
    assert "s3cret" not in result.stdout + result.stderr + "\n".join(server.calls())


def test_a_ref_names_the_tag_or_commit_to_deploy(server):
    server.scenario(healthy=["img-2", "img-3"])
    result = server.deploy("--ref", "v2")
    assert result.returncode == 0, result.stderr
    assert server.head() == server.new_commit
    result = server.deploy(f"--ref={server.old_commit}")
    assert result.returncode == 0, result.stderr
    assert server.head() == server.old_commit


def test_without_health_url_it_probes_the_web_port_of_env_on_loopback(server):
    """WEB_PORT=127.0.0.1:PORT (published on loopback only, behind the proxy): the port part."""
    port = server.health.server_address[1]
    with (server.checkout / ".env").open("a", encoding="utf-8") as env_file:
        env_file.write(f'WEB_PORT="127.0.0.1:{port}"\n')
    result = server.deploy(HEALTH_URL="")
    assert result.returncode == 0, result.stderr
    assert f"http://127.0.0.1:{port}/health/ to report ok" in result.stdout


def test_an_unhealthy_new_image_is_rolled_back_to_the_previous_one(server):
    """img-2 never reports ok: previous retagged as latest, old commit checked out, up again,
    /health/ ok on img-1, exit 1 with the reason and the last answer."""
    server.scenario(healthy=["img-1"])
    result = server.deploy()
    assert result.returncode == 1
    calls = server.calls()
    assert calls[-4:] == [
        "compose run --rm migrate",
        "compose up -d",
        "tag scalpradar:previous scalpradar:latest",
        "compose up -d",
    ]
    assert server.image("scalpradar:latest") == "img-1"
    assert server.running() == "img-1"
    assert server.head() == server.old_commit
    assert "/health/ did not report ok within 1 s" in result.stderr
    assert "HTTP 503" in result.stderr and "database unreachable" in result.stderr
    assert "ROLLED BACK to the previous image" in result.stderr
    assert "/health/ is ok again" in result.stderr


def test_a_rollback_that_stays_unhealthy_exits_2(server):
    server.scenario(healthy=[])
    result = server.deploy()
    assert result.returncode == 2
    assert server.running() == "img-1"
    assert "STILL not ok" in result.stderr
    assert "compose logs" in result.stderr


def test_a_failed_build_restarts_nothing(server):
    server.scenario(fail_build=True)
    result = server.deploy()
    assert result.returncode == 1
    calls = server.calls()
    assert "compose build" in calls
    assert not [c for c in calls if c.startswith(("compose up", "compose run"))]
    assert server.running() == "img-1"
    assert server.image("scalpradar:latest") == "img-1"
    assert server.head() == server.old_commit
    assert "the build failed. Nothing was restarted" in result.stderr


def test_failed_migrations_restart_nothing_and_keep_the_old_image_tagged_latest(server):
    server.scenario(fail_migrate=True, db_running=True)
    result = server.deploy()
    assert result.returncode == 1
    assert "compose up -d" not in server.calls()
    assert server.image("scalpradar:latest") == "img-1"  # a later `up` must not start img-2
    assert server.running() == "img-1"
    assert server.head() == server.old_commit
    assert "the migrations failed (the database as it was before: var/backups/" in result.stderr


def test_a_first_deploy_that_fails_its_health_check_says_there_is_nothing_to_roll_back(server):
    (server.state / "images" / "scalpradar:latest").unlink()
    (server.state / "running").unlink()
    server.scenario(healthy=[])
    result = server.deploy()
    assert result.returncode == 1
    assert "tag scalpradar:latest scalpradar:previous" not in server.calls()
    assert "no previous image to roll back to (first deploy)" in result.stderr


def test_a_checkout_with_local_edits_is_refused_before_any_docker_call(server):
    (server.checkout / "VERSION").write_text("edited on the server\n")
    result = server.deploy()
    assert result.returncode == 1
    assert server.calls() == []
    assert "local changes" in result.stderr


def test_the_backup_script_keeps_the_newest_n(server):
    server.scenario(db_running=True)
    backups = server.checkout / "var" / "backups"
    backups.mkdir(parents=True)
    for age, name in enumerate(["scalpradar-a.dump", "scalpradar-b.dump", "scalpradar-c.dump"]):
        (backups / name).write_bytes(b"PGDMP")
        os.utime(backups / name, (1_000_000 - age * 1000, 1_000_000 - age * 1000))
    result = subprocess.run(
        ["bash", str(server.checkout / "scripts" / "backup.sh"), "--keep", "2"],
        env=server.env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    kept = sorted(p.name for p in backups.iterdir())
    # the new one and the newest old one (a); b and c are older
    assert len(kept) == 2 and "scalpradar-a.dump" in kept
    assert "Deleted the old backup" in result.stdout


def restore(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(server.checkout / "scripts" / "restore.sh"), *args],
        env=server.env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def statements(server: Server) -> list[list[str]]:
    log = server.state / "sql.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    path = tmp_path / "copy.dump"
    path.write_bytes(b"PGDMP the archive's bytes")
    return path


def test_the_restore_script_refuses_without_yes(server, archive):
    refused = restore(server, str(archive))
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert server.calls() == []


def test_the_restore_script_restores_into_a_new_database_then_swaps(server, archive):
    """App stopped; the archive restored into scalpradar_restoring_<t>; only then the renames;
    everything started again; the old database kept."""
    result = restore(server, str(archive), "--yes")
    assert result.returncode == 0, result.stderr
    calls = server.calls()
    assert calls[0] == "compose stop web worker-feed worker-backtests beat telegram"
    assert calls[1] == "compose up -d db"
    assert calls[-1] == "compose up -d"
    assert (server.state / "restored").read_bytes() == archive.read_bytes()
    (create, terminate, rename_old, rename_new) = statements(server)
    new, old = create[1].split('"')[1], rename_old[1].split('"')[3]
    assert create[0] == "postgres" and new.startswith("scalpradar_restoring_")
    assert "pg_terminate_backend" in terminate[1] and "datname = 'scalpradar'" in terminate[1]
    assert rename_old[1] == f'ALTER DATABASE "scalpradar" RENAME TO "{old}"'
    assert old.startswith("scalpradar_before_restore_")
    assert rename_new[1] == f'ALTER DATABASE "{new}" RENAME TO "scalpradar"'
    assert f"kept as {old}" in result.stdout


def test_a_timescaledb_archive_is_restored_the_way_timescaledb_documents(server, archive):
    server.scenario(archive_extension="timescaledb")
    result = restore(server, str(archive), "--yes")
    assert result.returncode == 0, result.stderr
    sql = [statement for _, statement in statements(server)]
    assert sql[1:3] == ["CREATE EXTENSION IF NOT EXISTS timescaledb",
                        "SELECT timescaledb_pre_restore()"]  # fmt: skip
    assert sql[3] == "SELECT timescaledb_post_restore()"  # after pg_restore, before the swap
    assert sql[-1].startswith("ALTER DATABASE")


def test_a_failed_restore_replaces_nothing_and_starts_the_services_again(server, archive):
    server.scenario(fail_restore=True)
    result = restore(server, str(archive), "--yes")
    assert result.returncode == 1
    sql = [statement for _, statement in statements(server)]
    assert not [s for s in sql if "RENAME" in s]
    assert sql[-1].startswith('DROP DATABASE IF EXISTS "scalpradar_restoring_')
    assert server.calls()[-1] == "compose up -d"
    assert "nothing was replaced; the services run on the database as it was" in result.stderr
