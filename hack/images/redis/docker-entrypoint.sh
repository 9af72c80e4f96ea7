#!/bin/sh
# Entrypoint of the Redis image (hack/images/redis): like the official
# image's, arguments starting with '-' or a *.conf file are passed to
# redis-server; started as root, it makes /data redis's and drops to redis.
set -eu
case "${1:-}" in
  -* | *.conf) set -- redis-server "$@" ;;
esac
if [ "${1:-}" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
umask 0077
exec "$@"
