#!/usr/bin/env bash
# Deploy Scalp Radar on THIS server, in this checkout (docs/deploy.md):
#
#   ./deploy.sh [--ref REF]
#
#  1. git fetch, then check out REF detached (a branch of origin, a tag or a commit; default:
#     origin's default branch, or origin/$DEPLOY_BRANCH); a checkout with local edits is refused;
#  2. docker compose config (the compose file and .env are valid);
#  3. tag the image now running, scalpradar:latest, as scalpradar:previous;
#  4. docker compose build (a failed build changes nothing: back to the old checkout, exit 1);
#  5. a backup of the database when it runs (scripts/backup.sh; DEPLOY_BACKUP=0 skips it);
#  6. docker compose run --rm migrate (a failure: old image and checkout back, nothing was
#     restarted, exit 1);
#  7. docker compose up -d, then wait for /health/ to answer 200 with "status": "ok";
#  8. not healthy within the timeout: retag scalpradar:previous as latest, check the old commit
#     out again, docker compose up -d, wait for /health/ again; exit 1 (rolled back and
#     healthy) or 2 (still unhealthy after the rollback: look at `docker compose logs`).
#
# No candle is lost by the restart: the new feed worker starts from the last stored candle and
# fetches the missed ones over REST before any new one (docs/deploy.md, "Zero lost candles").
# Secrets stay in .env (docker-compose.yml's env_file), never on this script's command lines.
#
# Environment:
#   HEALTH_URL               default http://127.0.0.1:${WEB_PORT:-8000}/health/ (WEB_PORT from
#                            the environment or .env; of 127.0.0.1:8000, the port)
#   HEALTH_HOST              Host header of the probe; default the first ALLOWED_HOSTS entry
#                            (environment or .env), as the compose health check sends it
#   DEPLOY_HEALTH_TIMEOUT_S  seconds to wait for a healthy /health/ (default 120)
#   DEPLOY_HEALTH_INTERVAL_S seconds between probes (default 2)
#   DEPLOY_BRANCH            branch deployed without --ref (default: origin's default branch)
#   DEPLOY_BACKUP            0: no backup before migrating (default 1)
#   DEPLOY_BACKUP_KEEP       backups kept in var/backups (default 14)
#   DOCKER_COMPOSE           the compose command (default "docker compose"; "docker-compose")
#
# Everything runs inside main(): bash has parsed the whole script before the checkout of step 1
# can replace this file under it.
set -euo pipefail

IMAGE=scalpradar

log() { printf '==> %s\n' "$*"; }
fail() {
  printf 'deploy.sh: %s\n' "$1" >&2
  exit "${2:-1}"
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

# The value of NAME in .env (the last assignment), without surrounding quotes; empty if none.
dotenv_get() {
  local line
  [ -f .env ] || return 0
  line=$(grep -E "^[[:space:]]*(export[[:space:]]+)?$1=" .env | tail -n 1 || true)
  line=${line#*=}
  line=${line%$'\r'}
  line=${line#\"}
  line=${line%\"}
  line=${line#\'}
  line=${line%\'}
  printf '%s' "$line"
}

setting() { # NAME DEFAULT: the environment's value, else .env's, else DEFAULT
  local value=${!1:-}
  [ -n "$value" ] || value=$(dotenv_get "$1")
  printf '%s' "${value:-$2}"
}

compose() { "${COMPOSE[@]}" "$@"; }

# Probe /health/ until it answers 200 with "status": "ok", or until the timeout.
wait_healthy() {
  local deadline=$((SECONDS + HEALTH_TIMEOUT_S)) code
  log "waiting up to ${HEALTH_TIMEOUT_S} s for ${HEALTH_URL} to report ok (Host: ${HEALTH_HOST})"
  while :; do
    code=$(curl --silent --output "$BODY" --write-out '%{http_code}' --max-time 5 \
      --header "Host: ${HEALTH_HOST}" "$HEALTH_URL" 2>/dev/null) || code=000
    if [ "$code" = 200 ] && grep -Eq '"status": *"ok"' "$BODY"; then
      log "/health/ ok"
      return 0
    fi
    LAST_HEALTH="HTTP ${code}"
    if [ "$code" != 000 ]; then
      LAST_HEALTH+=" $(grep -Eo '"problems": *\[[^]]*\]' "$BODY" | head -n 1 || true)"
    fi
    if ((SECONDS >= deadline)); then
      return 1
    fi
    sleep "$HEALTH_INTERVAL_S"
  done
}

# Before anything was restarted: the old image keeps the latest tag, the old commit the tree.
abandon() {
  if [ -n "$HAVE_PREVIOUS" ]; then
    docker tag "$IMAGE:previous" "$IMAGE:latest"
  fi
  git checkout --quiet --detach "$PREV_COMMIT"
  fail "$1 Nothing was restarted; the checkout is back at ${PREV_COMMIT:0:12}."
}

# After the new image was started: back to the previous image and commit, started again.
rollback() {
  local why=$1
  if [ -z "$HAVE_PREVIOUS" ]; then
    fail "${why} There is no previous image to roll back to (first deploy): see \`${COMPOSE[*]} logs\`." 1
  fi
  log "rolling back to the previous image (commit ${PREV_COMMIT:0:12})"
  docker tag "$IMAGE:previous" "$IMAGE:latest"
  git checkout --quiet --detach "$PREV_COMMIT"
  if compose up -d && wait_healthy; then
    fail "${why} ROLLED BACK to the previous image (commit ${PREV_COMMIT:0:12}); /health/ is ok again. Migrations the new code applied stay applied${BACKUP_NOTE}." 1
  fi
  fail "${why} Rolled back to the previous image (commit ${PREV_COMMIT:0:12}) but /health/ is STILL not ok (last answer: ${LAST_HEALTH}): see \`${COMPOSE[*]} logs\`${BACKUP_NOTE}." 2
}

main() {
  local ref="" target new_commit stamp backup web_port
  while [ $# -gt 0 ]; do
    case "$1" in
    --ref)
      [ $# -ge 2 ] || fail "--ref needs a value (a branch, tag or commit)"
      ref=$2
      shift 2
      ;;
    --ref=*)
      ref=${1#--ref=}
      shift
      ;;
    -h | --help)
      usage
      return 0
      ;;
    *) fail "unknown argument: $1 (see --help)" ;;
    esac
  done

  cd "$(dirname "${BASH_SOURCE[0]}")"
  [ -f .env ] || fail "no .env here: copy .env.example to .env and fill it in (docs/deploy.md)"
  read -r -a COMPOSE <<<"${DOCKER_COMPOSE:-docker compose}"
  # WEB_PORT may bind an address too (127.0.0.1:8000, docs/deploy.md): its port part.
  web_port=$(setting WEB_PORT 8000)
  HEALTH_URL=${HEALTH_URL:-http://127.0.0.1:${web_port##*:}/health/}
  HEALTH_HOST=${HEALTH_HOST:-$(setting ALLOWED_HOSTS localhost)}
  HEALTH_HOST=${HEALTH_HOST%%,*}
  HEALTH_HOST=${HEALTH_HOST//[[:space:]]/}
  HEALTH_HOST=${HEALTH_HOST#\*}
  HEALTH_HOST=${HEALTH_HOST#.}
  HEALTH_HOST=${HEALTH_HOST:-localhost}
  HEALTH_TIMEOUT_S=${DEPLOY_HEALTH_TIMEOUT_S:-120}
  HEALTH_INTERVAL_S=${DEPLOY_HEALTH_INTERVAL_S:-2}
  [[ "$HEALTH_TIMEOUT_S" =~ ^[0-9]+$ ]] || fail "DEPLOY_HEALTH_TIMEOUT_S must be whole seconds"
  HAVE_PREVIOUS=""
  BACKUP_NOTE=""
  LAST_HEALTH="no answer"
  BODY=$(mktemp)
  trap 'rm -f "$BODY"' EXIT

  mkdir -p var
  if command -v flock >/dev/null 2>&1; then
    exec 9>var/deploy.lock
    flock -n 9 || fail "another deploy.sh is running here"
  fi

  # 1. the code
  if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    fail "the checkout has local changes (git status): commit them upstream or discard them"
  fi
  PREV_COMMIT=$(git rev-parse HEAD)
  log "git fetch"
  git fetch --prune --tags --quiet origin || fail "git fetch failed"
  if [ -z "$ref" ]; then
    if [ -n "${DEPLOY_BRANCH:-}" ]; then
      target=origin/$DEPLOY_BRANCH
    else
      target=$(git symbolic-ref --quiet --short refs/remotes/origin/HEAD || echo origin/main)
    fi
  elif git rev-parse --quiet --verify "refs/remotes/origin/$ref^{commit}" >/dev/null; then
    target=origin/$ref
  else
    target=$ref
  fi
  new_commit=$(git rev-parse --quiet --verify "$target^{commit}") || fail "unknown ref: $target"
  log "checking out ${target} (${new_commit:0:12}; was ${PREV_COMMIT:0:12})"
  git checkout --quiet --detach "$new_commit"

  # 2. the configuration
  compose config --quiet || abandon "docker-compose.yml or .env is invalid (${COMPOSE[*]} config)."

  # 3. the image to come back to
  if docker image inspect "$IMAGE:latest" >/dev/null 2>&1; then
    docker tag "$IMAGE:latest" "$IMAGE:previous"
    HAVE_PREVIOUS=1
    log "tagged the running image as $IMAGE:previous"
  else
    log "no $IMAGE:latest yet (first deploy): nothing to roll back to"
  fi

  # 4. build
  log "${COMPOSE[*]} build"
  compose build || abandon "the build failed."

  # 5. backup before the migrations touch the schema
  if [ "${DEPLOY_BACKUP:-1}" != 0 ] && [ -n "$(compose ps --quiet db 2>/dev/null)" ]; then
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    backup=var/backups/scalpradar-${stamp}-before-${new_commit:0:12}.dump
    log "backing up the database to ${backup}"
    bash scripts/backup.sh --out "$backup" --keep "${DEPLOY_BACKUP_KEEP:-14}" ||
      abandon "the backup before migrating failed."
    BACKUP_NOTE=" (the database as it was before: ${backup}, scripts/restore.sh)"
  elif [ "${DEPLOY_BACKUP:-1}" != 0 ]; then
    log "no running db container (first deploy?): no backup before migrating"
  fi

  # 6. migrate
  log "${COMPOSE[*]} run --rm migrate"
  compose run --rm migrate || abandon "the migrations failed${BACKUP_NOTE}."

  # 7. restart on the new image
  log "${COMPOSE[*]} up -d"
  compose up -d || rollback "docker compose up failed."
  if ! wait_healthy; then
    rollback "/health/ did not report ok within ${HEALTH_TIMEOUT_S} s (last answer: ${LAST_HEALTH})."
  fi
  log "deployed ${target} (${new_commit:0:12})"
}

main "$@"; exit $?
