#!/bin/sh
# The Tienda container's entrypoint. The first argument is the role:
#   serve    (default) `tienda serve` on $PORT with $WEB_CONCURRENCY processes
#   worker   `tienda worker`: outbox relay, event consumers, scheduled jobs
#   migrate  `tienda migrate`: bring the module's database schema up to date, then exit
#   anything else is run as a tienda command (`seed`, `create-admin`, `reindex`, ...)
# TIENDA_SERVICE names the module (or a comma-separated list); empty means all modules,
# the one-process deployment. Further arguments are passed on.
set -eu

role="${1:-serve}"
[ "$#" -gt 0 ] && shift

services=""
old_ifs="$IFS"
IFS=','
for name in ${TIENDA_SERVICE:-}; do
  case "$name" in
    "") ;;
    *[!a-z]*) echo "entrypoint: bad module name in TIENDA_SERVICE: '$name'" >&2; exit 64 ;;
    *) services="$services --service $name" ;;
  esac
done
IFS="$old_ifs"

case "$role" in
  serve)
    # shellcheck disable=SC2086 # module names are single words, checked above
    exec tienda serve --host 0.0.0.0 --port "${PORT:-8000}" --workers "${WEB_CONCURRENCY:-2}" $services "$@"
    ;;
  worker | migrate)
    # shellcheck disable=SC2086
    exec tienda "$role" $services "$@"
    ;;
  *)
    exec tienda "$role" "$@"
    ;;
esac
