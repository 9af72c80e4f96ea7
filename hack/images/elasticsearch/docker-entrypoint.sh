#!/usr/bin/env bash
# Entrypoint of the Elasticsearch image (hack/images/elasticsearch), with the
# behaviour of the official image's that roles/elasticsearch relies on:
# - `eswrapper` (or no argument, or arguments starting with '-') starts
#   Elasticsearch; anything else is run as a command;
# - ELASTIC_PASSWORD, or ELASTIC_PASSWORD_FILE (a file of mode 400 or 600),
#   becomes bootstrap.password in the keystore (created when missing);
# - environment variables whose name has a dot (discovery.type=single-node)
#   are passed as -E settings.
set -euo pipefail
cd /usr/share/elasticsearch

case "${1:-eswrapper}" in
  eswrapper) shift $(($# > 0 ? 1 : 0)) ;;
  -*) ;;
  *) exec "$@" ;;
esac

if [ -n "${ELASTIC_PASSWORD_FILE:-}" ]; then
  if [ -n "${ELASTIC_PASSWORD:-}" ]; then
    echo "ERROR: both ELASTIC_PASSWORD_FILE and ELASTIC_PASSWORD are set (they are exclusive)" >&2
    exit 1
  fi
  mode=$(stat -L -c '%a' "$ELASTIC_PASSWORD_FILE")
  if [ "$mode" != 400 ] && [ "$mode" != 600 ]; then
    echo "ERROR: File $ELASTIC_PASSWORD_FILE from ELASTIC_PASSWORD_FILE must have file permissions 400 or 600, not $mode" >&2
    exit 1
  fi
  ELASTIC_PASSWORD=$(<"$ELASTIC_PASSWORD_FILE")
fi
unset ELASTIC_PASSWORD_FILE

if [ -n "${ELASTIC_PASSWORD:-}" ]; then
  [ -f config/elasticsearch.keystore ] || elasticsearch-keystore create >/dev/null
  if ! elasticsearch-keystore list | grep -qx 'bootstrap.password'; then
    printf '%s' "$ELASTIC_PASSWORD" | elasticsearch-keystore add -x bootstrap.password
  fi
fi
unset ELASTIC_PASSWORD

settings=()
while IFS='=' read -r -d '' name value; do
  if [[ "$name" =~ ^[a-z0-9_]+\.[a-z0-9_]+[a-z0-9_.-]*$ ]]; then
    settings+=("-E$name=$value")
  fi
done < <(env -0)

exec elasticsearch ${settings[@]+"${settings[@]}"} "$@"
