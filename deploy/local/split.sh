#!/usr/bin/env bash
# The split deployment on this machine, without Docker: every module as its own
# `tienda serve --service M` (127.0.0.1:8101-8108) and `tienda worker --service M`, each module
# on its own PostgreSQL database (tienda_split_<module>), the machine's Redis and RabbitMQ,
# and nginx with the gateway's configuration (deploy/nginx) in front on 127.0.0.1:8100.
# tests/e2e/test_split_deployment.py starts the same thing and checks out through it.
#
#   make install && deploy/local/split.sh            # Ctrl-C stops every process it started
#   deploy/local/split.sh --reset                    # drop the databases and data first
#
# Needs: nginx (apt-get install nginx), PostgreSQL, Redis and RabbitMQ (their Debian packages),
# reachable at the URLs below. Logs, data dirs and secrets live in $TIENDA_SPLIT_DIR.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="$ROOT/.venv/bin"
DIR="${TIENDA_SPLIT_DIR:-$ROOT/var/split}"
POSTGRES_URL="${TIENDA_SPLIT_POSTGRES_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/postgres}"
REDIS_URL="${TIENDA_SPLIT_REDIS_URL:-redis://127.0.0.1:6379/0}"
AMQP_URL="${TIENDA_SPLIT_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}"
PORT="${TIENDA_SPLIT_PORT:-8100}"
MODULES=(users catalog search carts inventory orders payments notifications)
CALLED=(users catalog carts inventory payments)  # the modules others call over HTTP
ADMIN_EMAIL="${TIENDA_SPLIT_ADMIN_EMAIL:-admin@example.com}"

say() { printf 'split: %s\n' "$*"; }
die() { printf 'split: %s\n' "$*" >&2; exit 1; }
upper() { printf '%s' "$1" | tr '[:lower:]' '[:upper:]'; }

[ -x "$BIN/tienda" ] || die "no $BIN/tienda: run 'make install' first"
NGINX="$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)"
[ -n "$NGINX" ] || die "nginx is not installed (apt-get install -y nginx)"

RESET=0
case "${1:-}" in
  --reset) RESET=1 ;;
  "") ;;
  *) die "usage: $0 [--reset]" ;;
esac

PIDS=()
stop() {
  trap - EXIT INT TERM
  if [ "${#PIDS[@]}" -gt 0 ]; then
    say "stopping ${#PIDS[@]} processes"
    kill -TERM "${PIDS[@]}" 2>/dev/null || true
    wait "${PIDS[@]}" 2>/dev/null || true
  fi
}
trap stop EXIT
trap 'exit 130' INT TERM

# -- databases, secrets, data dirs ------------------------------------------------------------
if [ "$RESET" = 1 ]; then rm -rf "$DIR"; fi
mkdir -p "$DIR/logs"
"$BIN/python" - "$POSTGRES_URL" "$REDIS_URL" "$AMQP_URL" "$RESET" "$DIR" "${MODULES[@]}" <<'PY'
import asyncio, sys
from pathlib import Path
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from tienda.app import ALL_MODULES
from tienda.platform.runtime import Platform
from tienda.settings import Settings

admin_url, redis_url, amqp_url, reset, work, modules = *sys.argv[1:4], sys.argv[4] == "1", sys.argv[5], sys.argv[6:]

async def main() -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        for module in modules:
            name = f"tienda_split_{module}"
            if reset:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            exists = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not exists:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
                print(f"split: created database {name}")
    await engine.dispose()
    if reset:  # events and keys about the old databases go too
        async with Redis.from_url(redis_url) as redis:
            async for key in redis.scan_iter(match="tienda-split:*", count=1000):
                await redis.delete(key)
        settings = Settings(env="test", data_dir=Path(work) / "names", jwt_secret="names-only",
                            broker_url=amqp_url, broker_prefix="tienda-split")
        platform = Platform.build(settings, ALL_MODULES)
        try:
            await platform.bus.delete_queues(sub.consumer.name for sub in platform.subscriptions)
        finally:
            await platform.close()

asyncio.run(main())
PY
SECRETS="$DIR/secrets.env"
if [ ! -f "$SECRETS" ]; then
  {
    echo "TIENDA_JWT_SECRET=$("$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(48))')"
    echo "TIENDA_SANDBOX_WEBHOOK_SECRET=$("$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(32))')"
    echo "ADMIN_PASSWORD=$("$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(12))')"
  } >"$SECRETS"
  chmod 600 "$SECRETS"
fi
# shellcheck disable=SC1090
. "$SECRETS"

database_url() { "$BIN/python" -c 'import sys; from sqlalchemy import make_url; print(make_url(sys.argv[1]).set(database=sys.argv[2]).render_as_string(hide_password=False))' "$POSTGRES_URL" "tienda_split_$1"; }
port_of() { local i; for i in "${!MODULES[@]}"; do [ "${MODULES[$i]}" = "$1" ] && echo $((PORT + i + 1)); done; }

# The environment every process shares.
export TIENDA_ENV=production TIENDA_JWT_SECRET TIENDA_SANDBOX_WEBHOOK_SECRET
export TIENDA_REDIS_URL="$REDIS_URL" TIENDA_REDIS_PREFIX="tienda-split:"
export TIENDA_BROKER_URL="$AMQP_URL" TIENDA_BROKER_PREFIX="tienda-split"
export TIENDA_SANDBOX_PAYMENTS=true TIENDA_PUBLIC_BASE_URL="http://127.0.0.1:$PORT"
export TIENDA_DB_POOL_SIZE="${TIENDA_DB_POOL_SIZE:-5}"
for module in "${CALLED[@]}"; do export "TIENDA_$(upper "$module")_URL=http://127.0.0.1:$(port_of "$module")"; done
declare -A DB
for module in "${MODULES[@]}"; do DB[$module]="$(database_url "$module")"; done

# `as_service MODULE ARGS... &`: `tienda ARGS` as MODULE's service (its own data dir and
# database), in place of the background subshell, so that $! is tienda's own pid.
as_service() {
  local module="$1"; shift
  exec env "TIENDA_DATA_DIR=$DIR/$module" "TIENDA_$(upper "$module")_DATABASE_URL=${DB[$module]}" "$BIN/tienda" "$@"
}

# -- migrate, then start ------------------------------------------------------------------------
say "migrating ${#MODULES[@]} databases"
MIGRATIONS=()
for module in "${MODULES[@]}"; do
  as_service "$module" migrate --service "$module" >>"$DIR/logs/$module-migrate.log" 2>&1 &
  MIGRATIONS+=("$!")
done
for pid in "${MIGRATIONS[@]}"; do wait "$pid" || die "a migration failed: see $DIR/logs/*-migrate.log"; done

if [ ! -f "$DIR/admin-created" ]; then
  ADMIN_ENV=()
  for module in "${MODULES[@]}"; do ADMIN_ENV+=("TIENDA_$(upper "$module")_DATABASE_URL=${DB[$module]}"); done
  env "${ADMIN_ENV[@]}" "TIENDA_DATA_DIR=$DIR/users" "$BIN/tienda" create-admin \
    --email "$ADMIN_EMAIL" "--password=$ADMIN_PASSWORD" >>"$DIR/logs/create-admin.log" 2>&1 ||
    grep -q "already exists" "$DIR/logs/create-admin.log" || die "create-admin failed: see $DIR/logs/create-admin.log"
  touch "$DIR/admin-created"
fi

ready() { curl -fsS -o /dev/null "http://127.0.0.1:$(port_of "$1")/readyz" 2>/dev/null; }
wait_ready() {
  local module="$1"
  for _ in $(seq 1 600); do ready "$module" && return 0; sleep 0.2; done
  die "$module did not become ready: see $DIR/logs/$module-serve.log"
}

start() {  # start MODULE ROLE ARGS...: in the background, logged, stopped on exit
  local module="$1" role="$2"; shift 2
  as_service "$module" "$@" >>"$DIR/logs/$module-$role.log" 2>&1 &
  PIDS+=("$!")
}

say "starting ${#MODULES[@]} services and their workers (logs: $DIR/logs)"
for module in "${MODULES[@]}"; do
  start "$module" serve serve --service "$module" --host 127.0.0.1 --port "$(port_of "$module")" --workers 1
  # The search worker builds its index from the catalog's API on first start: it waits for the catalog.
  [ "$module" = search ] || start "$module" worker worker --service "$module"
done
wait_ready catalog
start search worker worker --service search

# -- the gateway ----------------------------------------------------------------------------------
GATEWAY="$DIR/gateway"
mkdir -p "$GATEWAY/conf/conf.d" "$GATEWAY/prefix"
cp "$ROOT/deploy/nginx/nginx.conf" "$ROOT/deploy/nginx/tienda.conf" "$GATEWAY/conf/"
export TIENDA_GATEWAY_LISTEN="127.0.0.1:$PORT"
for module in "${MODULES[@]}"; do export "TIENDA_$(upper "$module")_UPSTREAM=127.0.0.1:$(port_of "$module")"; done
for template in "$ROOT"/deploy/nginx/templates/*.template; do
  "$BIN/python" -c 'import os, string, sys; print(string.Template(open(sys.argv[1]).read()).substitute(os.environ), end="")' \
    "$template" >"$GATEWAY/conf/conf.d/$(basename "$template" .template)"
done
GLOBALS="daemon off;"
[ "$(id -u)" = 0 ] && GLOBALS="$GLOBALS user root root;"  # root's workers would run as nobody
"$NGINX" -t -q -p "$GATEWAY/prefix/" -c "$GATEWAY/conf/nginx.conf" -e stderr -g "$GLOBALS"
"$NGINX" -p "$GATEWAY/prefix/" -c "$GATEWAY/conf/nginx.conf" -e stderr -g "$GLOBALS" \
  >>"$DIR/logs/gateway-access.log" 2>>"$DIR/logs/gateway-error.log" &
PIDS+=("$!")

for module in "${MODULES[@]}"; do wait_ready "$module"; done
for module in "${MODULES[@]}"; do
  for _ in $(seq 1 300); do grep -q "Worker running" "$DIR/logs/$module-worker.log" 2>/dev/null && break; sleep 0.2; done
done

cat <<EOF

Tienda, split into ${#MODULES[@]} services, is up behind the gateway:

  Gateway:   http://127.0.0.1:$PORT   (e.g. curl http://127.0.0.1:$PORT/api/v1/products)
  Admin:     $ADMIN_EMAIL  $ADMIN_PASSWORD   (also in $SECRETS)
  Services:  127.0.0.1:$((PORT + 1))-$((PORT + ${#MODULES[@]})) (${MODULES[*]})
  Logs:      $DIR/logs     E-mails: $DIR/notifications/mail

Ctrl-C stops every process. The databases (tienda_split_*) stay; --reset starts afresh.
EOF
wait
