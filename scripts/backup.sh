#!/usr/bin/env bash
# Back up the docker compose database with the db container's own pg_dump (the server's
# version; the app image has no PostgreSQL client) in pg_dump's custom format (compressed,
# what scripts/restore.sh and `manage.py db_restore` read). The schedule: docs/deploy.md.
#
#   scripts/backup.sh [--out FILE] [--keep N]
#
# --out   the file to write (default var/backups/scalpradar-<UTC time>.dump)
# --keep  then keep only the newest N scalpradar-*.dump files of that folder
#
# It runs on the host, in the checkout. No password is needed or shown: pg_dump connects inside
# the db container over its local socket as POSTGRES_USER. The file is written as *.partial,
# readable by its owner only (umask 077: it holds every trade and the users' password hashes),
# and renamed when pg_dump succeeded.
set -euo pipefail

main() {
  local out="" keep="" dir
  while [ $# -gt 0 ]; do
    case "$1" in
    --out)
      [ $# -ge 2 ] || fail "--out needs a file"
      out=$2
      shift 2
      ;;
    --keep)
      if [ $# -lt 2 ] || ! [[ "$2" =~ ^[1-9][0-9]*$ ]]; then
        fail "--keep needs a number >= 1"
      fi
      keep=$2
      shift 2
      ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
      return 0
      ;;
    *) fail "unknown argument: $1 (see --help)" ;;
    esac
  done
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  read -r -a COMPOSE <<<"${DOCKER_COMPOSE:-docker compose}"
  out=${out:-var/backups/scalpradar-$(date -u +%Y%m%dT%H%M%SZ).dump}
  dir=$(dirname "$out")
  umask 077
  mkdir -p "$dir"
  PARTIAL=$out.partial # global: the EXIT trap runs after main returned
  trap 'rm -f "$PARTIAL"' EXIT
  # The single quotes are for the container's shell: its own POSTGRES_USER / POSTGRES_DB.
  # shellcheck disable=SC2016
  "${COMPOSE[@]}" exec -T db sh -c \
    'exec pg_dump --format=custom --username "$POSTGRES_USER" --dbname "$POSTGRES_DB"' \
    >"$PARTIAL" || fail "pg_dump in the db container failed (is it running? ${COMPOSE[*]} ps)"
  [ "$(head -c 5 "$PARTIAL")" = PGDMP ] || fail "pg_dump wrote no custom-format archive"
  mv -f "$PARTIAL" "$out"
  echo "Backed up the compose database to $out ($(wc -c <"$out" | tr -d ' ') bytes)."
  if [ -n "$keep" ]; then
    # Oldest first, beyond the newest $keep (our own names: no spaces, no newlines).
    # shellcheck disable=SC2012
    ls -1t "$dir"/scalpradar-*.dump | tail -n +"$((keep + 1))" | while read -r old; do
      rm -f -- "$old"
      echo "Deleted the old backup $old."
    done
  fi
}

fail() {
  printf 'backup.sh: %s\n' "$1" >&2
  exit 1
}

main "$@"; exit $?
