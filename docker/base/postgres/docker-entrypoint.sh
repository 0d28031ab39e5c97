#!/usr/bin/env bash
# The official postgres image's entry point, reduced to what the compose file uses: first start initialises
# PGDATA with POSTGRES_USER/POSTGRES_PASSWORD, creates POSTGRES_DB, runs /docker-entrypoint-initdb.d; then
# `postgres` runs as the postgres user.
set -Eeuo pipefail

if [[ "${1:0:1}" == "-" ]]; then
    set -- postgres "$@"
fi

if [[ "$1" == "postgres" && "$(id -u)" == "0" ]]; then
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA" "$(dirname "$PGDATA")"
    chmod 0700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [[ "$1" == "postgres" && ! -s "$PGDATA/PG_VERSION" ]]; then
    POSTGRES_USER=${POSTGRES_USER:-postgres}
    POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
    auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
    if [[ -z "${POSTGRES_PASSWORD:-}" && "$auth" != "trust" ]]; then
        echo "Error: Database is uninitialized and superuser password is not specified." >&2
        echo "       Set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust)." >&2
        exit 1
    fi
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a word list, as in the official image
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "${POSTGRES_PASSWORD:-}") \
        --auth-local=trust --auth-host="$auth" --encoding=UTF8 --locale=C.UTF-8 \
        ${POSTGRES_INITDB_ARGS:-} -D "$PGDATA" >/dev/null
    printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
    printf 'host all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start >/dev/null
    psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres)
    if [[ "$POSTGRES_DB" != "postgres" ]]; then
        "${psql[@]}" --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";' >/dev/null
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh) echo "running $f" >&2; bash "$f" ;;
            *.sql) echo "running $f" >&2; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
            *) ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "PostgreSQL init process complete; ready for start up." >&2
fi

exec "$@"
