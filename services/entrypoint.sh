#!/bin/sh
# Container entry point: `api`, `worker CAMERA`, `migrate`, `purge` (daily retention), or any
# trafficprn command.
# Settings come from the environment (TRAFFICPRN_DATABASE_URL, TRAFFICPRN_SITE_PATH, ...).
set -eu
role="${1:-api}"
[ $# -gt 0 ] && shift
case "$role" in
  api)
    exec trafficprn serve --host 0.0.0.0 --port "${TRAFFICPRN_API_PORT:-8000}" \
      ${TRAFFICPRN_SITE_PATH:+--site "$TRAFFICPRN_SITE_PATH"} "$@" ;;
  worker)
    camera="${1:?usage: worker CAMERA}"; shift
    exec trafficprn run --site "${TRAFFICPRN_SITE_PATH:?TRAFFICPRN_SITE_PATH must be set}" \
      --camera "$camera" --http-port "${TRAFFICPRN_WORKER_PORT:-9100}" "$@" ;;
  migrate)
    # alembic upgrade head on TRAFFICPRN_DATABASE_URL, retried while the server starts
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
      if trafficprn db upgrade "$@"; then exit 0; fi
      echo "migrate: attempt $attempt failed; retrying in 3 s" >&2
      sleep 3
    done
    exit 1 ;;
  purge)
    # retention: delete what is older than the site's retention_days, once a day
    while true; do
      trafficprn db purge --site "${TRAFFICPRN_SITE_PATH:?TRAFFICPRN_SITE_PATH must be set}" "$@" \
        || echo "purge failed; trying again at the next run" >&2
      sleep "${TRAFFICPRN_PURGE_EVERY_S:-86400}"
    done ;;
  *)
    exec trafficprn "$role" "$@" ;;
esac
