#!/usr/bin/env bash
# Makes sure a Docker engine answers on this machine, without letting any
# packet leave it. The guard is (re)loaded on every call as root, also when
# `docker info` already answers; dockerd is started only when none does.
# Otherwise (as root): installs Debian's docker.io when missing, loads a host
# egress guard FIRST, then starts dockerd with its bridges inside 172.16.0.0/12.
#
# The guard (chain NEURALLOG-EGRESS, jumped to from DOCKER-USER and FORWARD,
# IPv4 and IPv6) accepts forwarded packets only to loopback and
# 172.16.0.0/12 (the docker bridges, the only pools dockerd is given) and
# rejects everything else, 10.0.0.0/8 included: the machine's resolver lives
# there, so a container can never reach an
# address outside the machine even with the default network.
set -euo pipefail
lock=/run/lock/neurallog-dockerd.lock
log=/var/log/neurallog-dockerd.log

answers() { docker info >/dev/null 2>&1; }

guard() {
  local ipt=$1; shift
  $ipt -N NEURALLOG-EGRESS 2>/dev/null || $ipt -F NEURALLOG-EGRESS
  local range
  for range in "$@"; do $ipt -A NEURALLOG-EGRESS -d "$range" -j RETURN; done
  $ipt -A NEURALLOG-EGRESS -j REJECT
  local chain
  for chain in DOCKER-USER FORWARD; do
    $ipt -N "$chain" 2>/dev/null || true
    $ipt -C "$chain" -j NEURALLOG-EGRESS 2>/dev/null || $ipt -I "$chain" 1 -j NEURALLOG-EGRESS
  done
}

# An engine that already runs gets the guard too (as root), before any
# image is built or any container started through it.
if [ "$(id -u)" = 0 ] && command -v iptables >/dev/null && command -v ip6tables >/dev/null; then
  guard iptables 127.0.0.0/8 172.16.0.0/12
  guard ip6tables ::1/128
fi
answers && exit 0
[ "$(id -u)" = 0 ] || { echo "engine.sh: no Docker engine answers and this is not root: start dockerd first" >&2; exit 1; }
exec 9>"$lock"
flock 9
answers && exit 0
if ! command -v dockerd >/dev/null; then
  apt-get -o DPkg::Lock::Timeout=900 update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends docker.io >&2
fi
guard iptables 127.0.0.0/8 172.16.0.0/12
guard ip6tables ::1/128
echo "engine.sh: egress guard loaded (iptables/ip6tables chain NEURALLOG-EGRESS)" >&2
setsid dockerd --host unix:///var/run/docker.sock \
  --default-address-pool base=172.16.0.0/12,size=20 >>"$log" 2>&1 </dev/null &
for _ in $(seq 60); do answers && { echo "engine.sh: dockerd started (log $log)" >&2; exit 0; }; sleep 1; done
echo "engine.sh: dockerd did not answer within 60 s, see $log" >&2
exit 1
