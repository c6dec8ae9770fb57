"""``manage.py db_backup`` / ``db_restore`` for real: on the test run's database, SQLite by
default and PostgreSQL when the suite runs with ``DATABASE_URL`` pointing at one (CI's second
pass), through ``pg_dump`` / ``pg_restore`` of this machine.

Each round trip stores rows, backs up, changes the rows, restores, and finds the rows as they
were at the backup.
"""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from scalpradar.management.commands import db_backup

sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="the SQLite path (this run's database is not SQLite)"
)
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql" or shutil.which("pg_dump") is None,
    reason="needs DATABASE_URL on PostgreSQL and pg_dump / pg_restore on PATH",
)


def groups() -> list[str]:
    return sorted(Group.objects.values_list("name", flat=True))


def round_trip(archive: Path) -> str:
    """Two groups backed up; one deleted and another added; restored: the two are back."""
    Group.objects.create(name="backed-up-1")
    Group.objects.create(name="backed-up-2")
    before = groups()
    call_command("db_backup", "--out", str(archive))
    Group.objects.filter(name="backed-up-1").delete()
    Group.objects.create(name="after-the-backup")
    assert groups() != before
    out = _call("db_restore", str(archive), "--yes")
    assert groups() == before
    return out


def _call(*args: str) -> str:
    stream = io.StringIO()
    call_command(*args, stdout=stream)
    return stream.getvalue()


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_a_sqlite_backup_restores_the_rows_it_held(tmp_path):
    archive = tmp_path / "copy.sqlite3"
    out = round_trip(archive)
    assert "Restored the SQLite database" in out
    assert "manage.py migrate" in out


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_a_sqlite_backup_is_one_self_contained_file(tmp_path):
    """Journal mode DELETE: no -wal beside it, readable alone, integrity ok."""
    Group.objects.create(name="in-the-copy")
    archive = tmp_path / "copy.sqlite3"
    call_command("db_backup", "--out", str(archive))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.sqlite3"]  # no .partial either
    if os.name == "posix":
        assert stat.S_IMODE(archive.stat().st_mode) == 0o600  # trades and password hashes
    with closing(sqlite3.connect(archive)) as copy:
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        names = [row[0] for row in copy.execute("SELECT name FROM auth_group")]
    assert names == ["in-the-copy"]


@pytest.mark.django_db(transaction=True)
def test_a_restore_without_yes_changes_nothing(tmp_path):
    archive = tmp_path / f"copy{db_backup.SUFFIX[connection.vendor]}"
    if connection.vendor == "postgresql" and shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    call_command("db_backup", "--out", str(archive))
    Group.objects.create(name="kept")
    after = groups()
    with pytest.raises(CommandError, match=r"REPLACES the content .* run again with --yes"):
        call_command("db_restore", str(archive))
    assert groups() == after


@pytest.mark.django_db
def test_a_file_that_is_no_backup_is_refused(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("not a database", encoding="utf-8")
    with pytest.raises(CommandError, match="neither a SQLite database nor a pg_dump"):
        call_command("db_restore", str(junk), "--yes")
    with pytest.raises(CommandError, match="does not exist"):
        call_command("db_restore", str(tmp_path / "missing.dump"), "--yes")


@pytest.mark.django_db
def test_a_backup_of_the_other_database_kind_is_refused(tmp_path):
    other = tmp_path / "other"
    if connection.vendor == "sqlite":
        other.write_bytes(b"PGDMP\x01\x0e\x00")
        expected = "is a PostgreSQL backup; this database is SQLite"
    else:
        other.write_bytes(b"SQLite format 3\x00" + bytes(100))
        expected = "is a SQLite backup; this database is PostgreSQL"
    with pytest.raises(CommandError, match=expected):
        call_command("db_restore", str(other), "--yes")


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_keep_deletes_the_oldest_backups_beyond_n(tmp_path, settings):
    settings.DATA_DIR = tmp_path
    folder = tmp_path / "backups"
    folder.mkdir()
    for age, name in enumerate(["scalpradar-old-1.sqlite3", "scalpradar-old-2.sqlite3"]):
        path = folder / name
        path.write_bytes(b"")
        os.utime(path, (1_000_000 - age, 1_000_000 - age))
    (folder / "mine.sqlite3").write_bytes(b"")  # not a scalpradar-* name: never touched
    out = _call("db_backup", "--keep", "2")
    kept = sorted(p.name for p in folder.iterdir())
    assert len(kept) == 3 and "mine.sqlite3" in kept and "scalpradar-old-1.sqlite3" in kept
    assert "Deleted the old backup scalpradar-old-2.sqlite3." in out


def test_the_postgresql_password_travels_in_the_environment_not_the_command_line(monkeypatch):
    monkeypatch.setattr(db_backup.shutil, "which", lambda program: f"/usr/bin/{program}")
    args, env = db_backup.pg_command(
        "pg_dump",
        {
            "NAME": "radar",
            "USER": "scalpradar",
            "PASSWORD": "s3cret",
            "HOST": "db",
            "PORT": 5432,
            "OPTIONS": {"sslmode": "require"},
        },
    )
    assert args == ["/usr/bin/pg_dump", "--no-password", "--host", "db", "--port", "5432",
                    "--username", "scalpradar", "--dbname", "radar"]  # fmt: skip
    assert not [a for a in args if "s3cret" in a]
    assert env["PGPASSWORD"] == "s3cret"
    assert env["PGSSLMODE"] == "require"


def test_a_missing_pg_dump_says_what_to_install(monkeypatch):
    monkeypatch.setattr(db_backup.shutil, "which", lambda program: None)
    with pytest.raises(CommandError, match=r"pg_dump not found on PATH.*scripts/backup\.sh"):
        db_backup.pg_command("pg_dump", {"NAME": "radar", "OPTIONS": {}})


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_postgresql_backup_restores_the_rows_it_held(tmp_path):
    archive = tmp_path / "copy.dump"
    out = round_trip(archive)
    assert archive.read_bytes().startswith(b"PGDMP")  # pg_dump's custom format
    assert "Restored the PostgreSQL database" in out


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_postgresql_restore_replaces_a_schema_a_restore_rebuilt(tmp_path):
    """A second restore runs on the public schema the first one recreated."""
    archive = tmp_path / "copy.dump"
    round_trip(archive)
    Group.objects.create(name="between-the-restores")
    call_command("db_restore", str(archive), "--yes")
    assert "between-the-restores" not in groups()
    assert "backed-up-1" in groups()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_truncated_archive_restores_nothing_and_leaves_the_database_as_it_was(tmp_path):
    """Half of a real archive: pg_restore fails on the way, the transaction that dropped the
    schema is never committed, every table and row is still there."""
    Group.objects.create(name="still-here")
    archive = tmp_path / "copy.dump"
    call_command("db_backup", "--out", str(archive))
    data = archive.read_bytes()
    truncated = tmp_path / "truncated.dump"
    truncated.write_bytes(data[: len(data) // 2])
    Group.objects.create(name="after-the-backup")
    before = groups()
    with pytest.raises(CommandError, match="nothing was restored, the database is as it was"):
        call_command("db_restore", str(truncated), "--yes")
    assert groups() == before
