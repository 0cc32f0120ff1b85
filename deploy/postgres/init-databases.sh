#!/bin/sh
# One PostgreSQL database per Tienda service, each owned by a role of its own that no other
# service's role may connect to. Idempotent: run it again and it changes nothing.
#
# In the postgres image: mount into /docker-entrypoint-initdb.d/ (runs on first start).
# On any server:  PGHOST=db.example PGUSER=postgres TIENDA_DB_PASSWORD=... sh init-databases.sh
#
#   TIENDA_DATABASES    the services (default: all eight)
#   TIENDA_DB_PREFIX    names are <prefix><service> for both the role and the database (default tienda_)
#   TIENDA_DB_PASSWORD  the roles' password (required; use one per role in production by running
#                       the script once per service with TIENDA_DATABASES=<service>)
# Each service then gets TIENDA_<SERVICE>_DATABASE_URL=
#   postgresql+asyncpg://<prefix><service>:<password>@<host>:5432/<prefix><service>
set -eu

: "${TIENDA_DB_PASSWORD:?set TIENDA_DB_PASSWORD}"
databases="${TIENDA_DATABASES:-users catalog search carts inventory orders payments notifications}"
prefix="${TIENDA_DB_PREFIX:-tienda_}"
export PGUSER="${PGUSER:-${POSTGRES_USER:-postgres}}"

for service in $databases; do
  name="${prefix}${service}"
  psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --dbname "${TIENDA_DB_ADMIN_DATABASE:-postgres}" \
    -v name="$name" -v password="$TIENDA_DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0', :'name', :'name', 'UTF8')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'name') \gexec
SELECT format('GRANT ALL ON DATABASE %I TO %I', :'name', :'name') \gexec
SQL
  echo "init-databases: ${name} ready"
done
