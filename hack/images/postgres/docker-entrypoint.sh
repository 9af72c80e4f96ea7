#!/usr/bin/env bash
# Entrypoint of the PostgreSQL image (hack/images/postgres). It honours the
# documented interface of the official image:
# - POSTGRES_PASSWORD, POSTGRES_USER (default postgres), POSTGRES_DB (default
#   the user), POSTGRES_INITDB_ARGS, each also as <NAME>_FILE (read from the
#   file; setting both is an error); POSTGRES_HOST_AUTH_METHOD (default
#   scram-sha-256) for the pg_hba.conf rule of every other host;
# - PGDATA: initialised only when it holds no database (no PG_VERSION): initdb,
#   the database, then every /docker-entrypoint-initdb.d/ script (*.sh run
#   or sourced, *.sql / *.sql.gz through psql) against a temporary server that
#   listens on the socket only; an initialised PGDATA is started as it is;
# - arguments starting with '-' go to postgres; as root it drops to postgres;
# - started under a UID that /etc/passwd does not name (OpenShift's
#   restricted-v2 assigns one of the namespace's range, group 0), initdb and
#   postgres, which look their user up, get one from nss_wrapper (files in
#   /tmp, so a read-only root file system is fine), as in the official image.
set -Eeo pipefail

nss_wrapper_user() {
  local uid wrapper
  uid=$(id -u)
  getent passwd "$uid" >/dev/null 2>&1 && return 0
  for wrapper in /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so; do
    [ -s "$wrapper" ] || continue
    NSS_WRAPPER_PASSWD=$(mktemp)
    NSS_WRAPPER_GROUP=$(mktemp)
    export LD_PRELOAD="$wrapper" NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
    printf 'postgres:x:%s:%s:PostgreSQL:%s:/bin/false\n' "$uid" "$(id -g)" "$PGDATA" > "$NSS_WRAPPER_PASSWD"
    printf 'postgres:x:%s:\n' "$(id -g)" > "$NSS_WRAPPER_GROUP"
    return 0
  done
  echo "warning: uid $uid has no passwd entry and libnss_wrapper.so is missing: initdb will fail" >&2
}

file_env() {
  local var=$1 file_var="${1}_FILE" default=${2:-}
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    echo "error: both $var and $file_var are set (they are exclusive)" >&2
    exit 1
  fi
  local value=$default
  if [ -n "${!var:-}" ]; then
    value=${!var}
  elif [ -n "${!file_var:-}" ]; then
    value=$(<"${!file_var}")
  fi
  export "$var"="$value"
  unset "$file_var"
}

psql_init() {
  psql -v ON_ERROR_STOP=1 --no-password --no-psqlrc --username "$POSTGRES_USER" "$@"
}

run_init_scripts() {
  local script
  for script in /docker-entrypoint-initdb.d/*; do
    case "$script" in
      *.sh)
        if [ -x "$script" ]; then
          echo "$0: running $script"; "$script"
        else
          echo "$0: sourcing $script"; . "$script"
        fi ;;
      *.sql) echo "$0: running $script"; psql_init --dbname "$POSTGRES_DB" -f "$script"; echo ;;
      *.sql.gz) echo "$0: running $script"; gunzip -c "$script" | psql_init --dbname "$POSTGRES_DB"; echo ;;
      *.sql.xz) echo "$0: running $script"; xzcat "$script" | psql_init --dbname "$POSTGRES_DB"; echo ;;
      */\*) ;;
      *) echo "$0: ignoring $script" ;;
    esac
  done
}

initialise() {
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]; then
    cat >&2 <<'MSG'
error: the database is uninitialised and no superuser password is given:
  set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE (or POSTGRES_HOST_AUTH_METHOD=trust, unsafe)
MSG
    exit 1
  fi
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of options
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") $POSTGRES_INITDB_ARGS
  printf '\nhost all all all %s\n' "${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" >> "$PGDATA/pg_hba.conf"
  export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start
  if [ "$POSTGRES_DB" != postgres ]; then
    psql_init --dbname postgres --set db="$POSTGRES_DB" <<'SQL'
SELECT format('CREATE DATABASE %I', :'db') WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db')
\gexec
SQL
  fi
  run_init_scripts
  pg_ctl -D "$PGDATA" -m fast -w stop
  unset PGPASSWORD
  echo
  echo 'PostgreSQL init process complete; ready for start up.'
  echo
}

case "${1:-}" in
  -*) set -- postgres "$@" ;;
esac

if [ "${1:-}" = postgres ]; then
  if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
  fi
  nss_wrapper_user
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER postgres
  file_env POSTGRES_DB "$POSTGRES_USER"
  file_env POSTGRES_INITDB_ARGS
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA" 2>/dev/null || true
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    initialise
  else
    echo 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
  fi
  unset POSTGRES_PASSWORD
fi
exec "$@"
