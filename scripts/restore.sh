#!/usr/bin/env bash
# Restore the docker compose database from a pg_dump custom-format archive (scripts/backup.sh,
# deploy.sh's pre-migration backup, or `manage.py db_backup` on PostgreSQL).
#
#   scripts/restore.sh FILE --yes
#
# It REPLACES the database's content, so it asks for --yes. Inside the db container, with its
# own tools over the local socket (no password involved):
#  1. the app services (web, workers, beat, telegram) are stopped: nothing writes meanwhile;
#  2. the archive is restored into a NEW database (pg_restore --no-owner --no-privileges
#     --exit-on-error), with CREATE EXTENSION timescaledb, timescaledb_pre_restore() and
#     timescaledb_post_restore() around it when the archive holds TimescaleDB (the procedure
#     TimescaleDB documents: a restore into a fresh database);
#  3. only then the databases are swapped by renaming: the old one is kept as
#     <POSTGRES_DB>_before_restore_<UTC time> (drop it when satisfied; the message says how);
#  4. docker compose up -d (its migrate service brings an older copy forward).
# A failure before the swap drops the new database, restarts the services on the untouched old
# one and exits 1.
set -euo pipefail

APP_SERVICES=(web worker-feed worker-backtests beat telegram)

main() {
  local file="" yes="" db stamp new old toc timescale=""
  while [ $# -gt 0 ]; do
    case "$1" in
    --yes)
      yes=1
      shift
      ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
      return 0
      ;;
    -*) fail "unknown option: $1 (see --help)" ;;
    *)
      [ -z "$file" ] || fail "one FILE only"
      file=$1
      shift
      ;;
    esac
  done
  [ -n "$file" ] || fail "which FILE? (see --help)"
  [ -f "$file" ] || fail "$file does not exist"
  [ "$(head -c 5 "$file")" = PGDMP ] || fail "$file is not a pg_dump custom-format archive"
  [ -n "$yes" ] || fail "this REPLACES the content of the compose database with $file: run again with --yes"
  file=$(cd "$(dirname "$file")" && pwd)/$(basename "$file")
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  read -r -a COMPOSE <<<"${DOCKER_COMPOSE:-docker compose}"

  echo "Stopping ${APP_SERVICES[*]}."
  compose stop "${APP_SERVICES[@]}"
  compose up -d db
  for _ in $(seq 60); do
    # shellcheck disable=SC2016
    if compose exec -T db sh -c 'pg_isready -q -U "$POSTGRES_USER"'; then
      break
    fi
    sleep 1
  done
  # shellcheck disable=SC2016
  db=$(compose exec -T db sh -c 'printf %s "$POSTGRES_DB"')
  [ -n "$db" ] || fail "the db container has no POSTGRES_DB"
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  new=${db}_restoring_${stamp}
  old=${db}_before_restore_${stamp}
  # The archive's table of contents (a variable, not a pipe into grep -q: with pipefail an
  # early grep exit would fail the pipeline).
  toc=$(compose exec -T db pg_restore --list <"$file") ||
    give_up "the db container's pg_restore cannot read $file"
  if [[ "$toc" =~ [[:space:]]EXTENSION\ -\ timescaledb([[:space:]]|$) ]]; then
    timescale=1
  fi

  echo "Restoring $file into a new database, $new."
  sql postgres "CREATE DATABASE \"$new\"" || give_up "CREATE DATABASE failed"
  if [ -n "$timescale" ]; then
    if ! { sql "$new" "CREATE EXTENSION IF NOT EXISTS timescaledb" &&
      sql "$new" "SELECT timescaledb_pre_restore()"; }; then
      give_up "TimescaleDB could not be prepared in $new" "$new"
    fi
  fi
  # shellcheck disable=SC2016
  if ! compose exec -T db sh -c 'exec pg_restore --no-owner --no-privileges --exit-on-error \
      --username "$POSTGRES_USER" --dbname "$1"' sh "$new" <"$file"; then
    give_up "pg_restore failed" "$new"
  fi
  if [ -n "$timescale" ]; then
    sql "$new" "SELECT timescaledb_post_restore()" ||
      give_up "timescaledb_post_restore() failed" "$new"
  fi

  echo "Swapping: $db becomes $old, $new becomes $db."
  sql postgres "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$db' AND pid <> pg_backend_pid()"
  sql postgres "ALTER DATABASE \"$db\" RENAME TO \"$old\""
  sql postgres "ALTER DATABASE \"$new\" RENAME TO \"$db\""
  compose up -d
  echo "Restored the compose database from $file; the services are starting."
  echo "The replaced database is kept as $old; when satisfied:"
  echo "  ${COMPOSE[*]} exec db sh -c 'dropdb -U \"\$POSTGRES_USER\" $old'"
}

compose() { "${COMPOSE[@]}" "$@"; }

# give_up MESSAGE [NEW_DATABASE]: before the swap nothing was replaced: drop the new database,
# start the services again on the old one, exit 1.
give_up() {
  if [ -n "${2:-}" ]; then
    sql postgres "DROP DATABASE IF EXISTS \"$2\"" || true
  fi
  compose up -d || true
  fail "$1: nothing was replaced; the services run on the database as it was"
}

# sql DATABASE STATEMENT: one statement through psql in the db container (output discarded).
sql() {
  # shellcheck disable=SC2016
  compose exec -T db sh -c \
    'exec psql -q -v ON_ERROR_STOP=1 --no-psqlrc -U "$POSTGRES_USER" -d "$1" -c "$2"' \
    sh "$1" "$2" >/dev/null
}

fail() {
  printf 'restore.sh: %s\n' "$1" >&2
  exit 1
}

main "$@"; exit $?
