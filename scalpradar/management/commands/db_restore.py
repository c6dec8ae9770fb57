"""``manage.py db_restore FILE --yes``: put a ``db_backup`` copy back into the database.

It REPLACES the configured database's content, so it asks for ``--yes``; stop the radar (and,
in production, the web, workers, beat and telegram services) first, so that nothing writes
while the content is swapped.

* **SQLite**: the online backup API again, from the copy into the radar's own connection: every
  page is replaced in one step (no file is moved, so it works on Windows too, where an open
  file cannot be replaced). The copy is checked first (SQLite header, ``integrity_check``, a
  ``django_migrations`` table).
* **PostgreSQL**: the public schema is dropped and rebuilt from the archive in ONE transaction
  (``pg_restore --file=-`` piped into ``psql``, :func:`restore_postgresql`): a failure at any
  point leaves the database as it was. ``--no-owner --no-privileges``: the restoring role owns
  what it creates, so a dump moves between servers whose roles differ; the password travels
  in ``PGPASSWORD`` as for the backup. A database with the TimescaleDB extension is refused
  with the procedure it needs (a fresh database, which ``scripts/restore.sh`` builds under
  docker compose).

A copy older than the code is brought forward by ``manage.py migrate`` afterwards (the command
says so). On PostgreSQL everything of the public schema is replaced, tables the copy does not
know included; SQLite's copy replaces the whole file's content.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import IO, Any, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, connections

from scalpradar.management.commands.db_backup import (
    PG_CUSTOM_MAGIC,
    SQLITE_MAGIC,
    VENDOR_NAME,
    describe_database,
    error_tail,
    pg_command,
    pg_tool,
)


def backup_kind(path: Path) -> str:
    """``"sqlite"`` or ``"postgresql"`` from the file's first bytes."""
    with path.open("rb") as file:
        head = file.read(len(SQLITE_MAGIC))
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_CUSTOM_MAGIC):
        return "postgresql"
    raise CommandError(
        f"{path} is neither a SQLite database nor a pg_dump custom-format archive "
        "(db_backup writes one of those)"
    )


def restore_sqlite(path: Path) -> None:
    """Replace the connected SQLite database's pages with those of the copy at ``path``."""
    with closing(sqlite3.connect(path)) as copy:
        (verdict,) = copy.execute("PRAGMA integrity_check").fetchone()
        if verdict != "ok":
            raise CommandError(f"{path} fails SQLite's integrity check: {verdict}")
        has_migrations = copy.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'django_migrations'"
        ).fetchone()
        if not has_migrations:
            raise CommandError(f"{path} is a SQLite file but not a Scalp Radar database")
        connection.ensure_connection()
        if connection.in_atomic_block:
            raise CommandError("db_restore cannot run inside a transaction")
        copy.backup(connection.connection)
    connection.close()  # nothing cached from the content it had before


def _has_timescaledb() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
        return cursor.fetchone() is not None


# Sent to psql before the archive's SQL: the whole public schema is replaced (the database is
# Scalp Radar's alone), in ONE transaction that is committed only when the archive was read to
# its end. pg_restore --clean cannot do this on a partitioned candle table: it drops each
# partition's primary key alone, which PostgreSQL refuses ("cannot drop inherited constraint").
REPLACE_SCHEMA = b"BEGIN;\nDROP SCHEMA public CASCADE;\nCREATE SCHEMA public;\n"


def restore_postgresql(path: Path, settings_dict: dict[str, Any]) -> None:
    """The archive at ``path`` as SQL (``pg_restore --file=-``) piped into ``psql``, after
    :data:`REPLACE_SCHEMA`; ``COMMIT`` only once ``pg_restore`` ended well (else psql reaches
    the end of its input inside the transaction and the server rolls it back)."""
    if _has_timescaledb():
        raise CommandError(
            "this database has the TimescaleDB extension, which restores into a FRESH database "
            "(CREATE EXTENSION timescaledb; SELECT timescaledb_pre_restore(); pg_restore; "
            "SELECT timescaledb_post_restore()). Under docker compose scripts/restore.sh does "
            "exactly that and swaps the databases; by hand: docs/deploy.md, Backups."
        )
    reader_args = [pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--file=-", str(path)]
    psql_args, env = pg_command("psql", settings_dict)
    writer_args = [*psql_args, "--quiet", "--no-psqlrc", "--set=ON_ERROR_STOP=1"]
    connections.close_all()  # no lock of ours in the way of DROP SCHEMA
    with tempfile.TemporaryFile() as reader_err, tempfile.TemporaryFile() as writer_err:
        reader = subprocess.Popen(  # noqa: S603 - pg_restore found on PATH, no shell
            reader_args, stdout=subprocess.PIPE, stderr=reader_err
        )
        writer = subprocess.Popen(  # noqa: S603 - psql found on PATH, no shell
            writer_args, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=writer_err,
        )  # fmt: skip
        sql, into_psql = cast(IO[bytes], reader.stdout), cast(IO[bytes], writer.stdin)
        try:
            into_psql.write(REPLACE_SCHEMA)
            shutil.copyfileobj(sql, into_psql, 1 << 20)
            if reader.wait() == 0:
                into_psql.write(b"COMMIT;\n")
        except BrokenPipeError:  # psql stopped at an error: its exit code and message say so
            pass
        finally:
            with contextlib.suppress(BrokenPipeError):
                into_psql.close()
            sql.close()
            if reader.poll() is None:
                reader.kill()
            reader.wait()
            writer.wait()
        for process, errors, what in ((writer, writer_err, "psql"),
                                      (reader, reader_err, "pg_restore")):  # fmt: skip
            if process.returncode != 0:
                errors.seek(0)
                raise CommandError(
                    f"{what} failed (exit code {process.returncode}); nothing was restored, "
                    f"the database is as it was:\n{error_tail(errors.read())}"
                )
    connections.close_all()


class Command(BaseCommand):
    help = "Replace the database's content with a db_backup copy (asks for --yes)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="a file written by manage.py db_backup")
        parser.add_argument(
            "--yes", action="store_true", help="yes, replace the database's content"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        path: Path = opts["file"]
        if not path.is_file():
            raise CommandError(f"{path} does not exist or is not a file")
        kind = backup_kind(path)
        vendor = connection.vendor
        if kind != vendor:
            raise CommandError(
                f"{path} is a {VENDOR_NAME[kind]} backup; this database is "
                f"{VENDOR_NAME.get(vendor, vendor)}"
            )
        where = describe_database(connection.settings_dict)
        if not opts["yes"]:
            raise CommandError(
                f"db_restore REPLACES the content of the {where} with {path}. Stop the radar "
                "and everything writing to it, then run again with --yes."
            )
        started = time.monotonic()
        if vendor == "sqlite":
            restore_sqlite(path)
        else:
            restore_postgresql(path, connection.settings_dict)
        self.stdout.write(
            f"Restored the {where} from {path} ({time.monotonic() - started:.1f} s). "
            "Run `manage.py migrate` if the copy is older than the code."
        )
