"""``manage.py db_backup [--out FILE] [--keep N]``: one consistent copy of the database.

* **SQLite** (the embedded default): SQLite's online backup API through the radar's own
  connection (``sqlite3.Connection.backup``), a consistent snapshot even while the radar
  writes (WAL), written as one self-contained file (journal mode DELETE, no ``-wal`` beside it).
* **PostgreSQL**: ``pg_dump --format=custom`` (compressed, restorable table by table with
  ``pg_restore``), run with the parts of ``DATABASE_URL``; the password travels in the
  ``PGPASSWORD`` environment variable of that one process, never on a command line (where
  ``ps`` would show it). ``pg_dump`` must be on ``PATH`` and of the server's major version or
  newer; under docker compose the app image has none: ``scripts/backup.sh`` runs the database
  container's own (docs/deploy.md).

The copy is written next to its destination as ``*.partial`` (mode 600 on POSIX) and renamed
into place only when complete, so an interrupted backup never looks like a good one.
``--keep N`` then deletes the oldest ``scalpradar-*`` backups of the same kind in that folder
beyond the newest N (a schedule's retention). ``manage.py db_restore`` puts a copy back.

The helpers below are shared with ``db_restore``: the two commands agree on formats by
construction.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_CUSTOM_MAGIC = b"PGDMP"
SUFFIX = {"sqlite": ".sqlite3", "postgresql": ".dump"}
VENDOR_NAME = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}

# DATABASES OPTIONS that libpq also reads from the environment (as Django's dbshell passes them).
_PG_OPTION_ENV = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
}


def describe_database(settings_dict: dict[str, Any]) -> str:
    """The database in words for messages: its name and where it is, never its password."""
    engine = settings_dict["ENGINE"].rsplit(".", 1)[-1]
    if engine == "sqlite3":
        return f"SQLite database {settings_dict['NAME']}"
    host = settings_dict.get("HOST") or "the local socket"
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"{VENDOR_NAME.get(engine, engine)} database {settings_dict['NAME']!r} on {host}{port}"


def pg_tool(program: str) -> str:
    """The PostgreSQL client ``program`` (``pg_dump``, ``pg_restore``, ``psql``) on PATH."""
    executable = shutil.which(program)
    if executable is None:
        raise CommandError(
            f"{program} not found on PATH: install the PostgreSQL client tools of the server's "
            "major version (or newer). Under docker compose use scripts/backup.sh and "
            "scripts/restore.sh, which run the database container's own (docs/deploy.md)."
        )
    return executable


def pg_command(program: str, settings_dict: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """``program`` (``pg_dump`` / ``psql``) with the connection options of ``settings_dict``,
    and the environment to run it in (the password as ``PGPASSWORD``).

    ``--no-password``: a missing or wrong password fails at once instead of waiting at a prompt
    no one sees (a cron job)."""
    args = [pg_tool(program), "--no-password"]
    if settings_dict.get("HOST"):
        args += ["--host", str(settings_dict["HOST"])]
    if settings_dict.get("PORT"):
        args += ["--port", str(settings_dict["PORT"])]
    if settings_dict.get("USER"):
        args += ["--username", str(settings_dict["USER"])]
    args += ["--dbname", str(settings_dict["NAME"])]
    env = dict(os.environ)
    if settings_dict.get("PASSWORD"):
        env["PGPASSWORD"] = str(settings_dict["PASSWORD"])
    for option, variable in _PG_OPTION_ENV.items():
        value = (settings_dict.get("OPTIONS") or {}).get(option)
        if value:
            env[variable] = str(value)
    return args, env


def error_tail(text: str | bytes, lines: int = 8) -> str:
    """The last lines of a tool's error output (where the reason is)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return "\n".join(text.strip().splitlines()[-lines:])


def run_pg(args: list[str], env: dict[str, str], what: str) -> None:
    """Run a PostgreSQL client tool; its own error text (last lines) on failure."""
    result = subprocess.run(  # noqa: S603 - the PostgreSQL tool found on PATH, no shell
        args, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        tail = error_tail(result.stderr)
        raise CommandError(f"{what} failed (exit code {result.returncode}):\n{tail}")


def backup_sqlite(target: Path) -> None:
    """Copy the connected SQLite database into ``target`` with the online backup API."""
    connection.ensure_connection()
    source: sqlite3.Connection = connection.connection
    with closing(sqlite3.connect(target)) as copy:
        source.backup(copy)  # all pages in one step: one consistent snapshot
        copy.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal / -shm beside it
        (verdict,) = copy.execute("PRAGMA integrity_check").fetchone()
    if verdict != "ok":
        raise CommandError(f"the copy failed SQLite's integrity check: {verdict}")


def backup_postgresql(target: Path, settings_dict: dict[str, Any]) -> None:
    """``pg_dump --format=custom`` of the configured database into ``target``."""
    args, env = pg_command("pg_dump", settings_dict)
    run_pg([*args, "--format=custom", "--file", str(target)], env, "pg_dump")


def default_backup_path(vendor: str) -> Path:
    """``DATA_DIR/backups/scalpradar-<UTC time>.<sqlite3|dump>``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path(settings.DATA_DIR) / "backups" / f"scalpradar-{stamp}{SUFFIX[vendor]}"


def prune_backups(folder: Path, suffix: str, keep: int) -> list[Path]:
    """Delete the oldest ``scalpradar-*<suffix>`` files of ``folder`` beyond the newest
    ``keep`` (by modification time); the deleted paths."""
    backups = sorted(folder.glob(f"scalpradar-*{suffix}"), key=lambda p: p.stat().st_mtime)
    doomed = backups[: max(len(backups) - keep, 0)]
    for path in doomed:
        path.unlink()
    return doomed


class Command(BaseCommand):
    help = "Write a consistent copy of the database (SQLite backup API, or pg_dump -Fc)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--out",
            type=Path,
            default=None,
            help="file to write (default: DATA_DIR/backups/scalpradar-<UTC time>.sqlite3|.dump)",
        )
        parser.add_argument(
            "--keep",
            type=int,
            default=None,
            help="then keep only the newest N scalpradar-* backups of the output folder",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        vendor = connection.vendor
        if vendor not in SUFFIX:
            raise CommandError(f"db_backup supports SQLite and PostgreSQL, not {vendor}")
        if opts["keep"] is not None and opts["keep"] < 1:
            raise CommandError("--keep must be at least 1")
        target: Path = opts["out"] or default_backup_path(vendor)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        partial.unlink(missing_ok=True)
        # Readable by its owner only (POSIX; Windows keeps the folder's rights): it holds every
        # trade and the users' password hashes.
        partial.touch(mode=0o600)
        started = time.monotonic()
        try:
            if vendor == "sqlite":
                backup_sqlite(partial)
            else:
                backup_postgresql(partial, connection.settings_dict)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        size_mb = target.stat().st_size / 1e6
        self.stdout.write(
            f"Backed up the {describe_database(connection.settings_dict)} to {target} "
            f"({size_mb:.1f} MB, {time.monotonic() - started:.1f} s)."
        )
        if opts["keep"] is not None:
            for path in prune_backups(target.parent, SUFFIX[vendor], opts["keep"]):
                self.stdout.write(f"Deleted the old backup {path.name}.")
