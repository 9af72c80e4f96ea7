#!/usr/bin/env bash
# Makes sure a Docker engine answers on this machine and that no packet a
# container sends can leave it. Idempotent; run as root on a machine of the
# CI kind (Debian, no internet), or as any user where an engine already runs.
#
#   1. the host egress guard (below) is loaded, IPv4 and IPv6;
#   2. Debian's docker.io is installed when dockerd is missing (apt-get update
#      first);
#   3. dockerd is started when `docker info` does not answer.
#
# The guard comes first, so no container ever runs without it. It is the
# chain NEURALLOG-HOST-EGRESS, jumped to first from DOCKER-USER and from
# FORWARD (dockerd keeps a DOCKER-USER chain that exists before it starts):
# a forwarded packet may only go out through loopback or a container bridge
# (docker0, br-*); every other forwarded packet is rejected. Pods and
# Services only exist inside the kind nodes (the host has no route to the
# pod or service ranges), so a forwarded packet towards them, or towards any
# address that is not a container on this machine, would take the default
# route and is rejected here. `iptables -S NEURALLOG-HOST-EGRESS` shows it.
set -euo pipefail
chain=NEURALLOG-HOST-EGRESS
lock=/run/lock/neurallog-engine.lock
log=/var/log/neurallog-dockerd.log

answers() { docker info >/dev/null 2>&1; }

# guard IPTABLES: (re)writes the chain and puts the jumps first; repeating it
# changes nothing.
guard() {
  local ipt=$1 want have
  want=$(printf '%s\n' \
    "-A $chain -o lo -j RETURN" \
    "-A $chain -o docker0 -j RETURN" \
    "-A $chain -o br-+ -j RETURN" \
    "-A $chain -p tcp -j REJECT --reject-with tcp-reset" \
    "-A $chain -j REJECT")
  $ipt -N "$chain" 2>/dev/null || true
  have=$($ipt -S "$chain" | grep -v -- "^-N ") || true
  # ip6tables prints the default reject type as icmp6-port-unreachable.
  if [ "$(printf '%s\n' "$have" | sed 's/ --reject-with icmp[6]*-port-unreachable//')" != "$want" ]; then
    # One transaction: the chain is never empty while it is rewritten.
    printf '*filter\n-F %s\n%s\nCOMMIT\n' "$chain" "$want" | "$ipt-restore" --noflush
    # When the guard was (re)loaded: the kind tests check that every node
    # container started after it.
    mkdir -p /run/neurallog && date +%s.%N >"/run/neurallog/host-guard-$ipt.loaded"
  fi
  local from
  for from in DOCKER-USER FORWARD; do
    $ipt -N "$from" 2>/dev/null || true
    if [ "$($ipt -S "$from" | grep -v -- '^-[NP] ' | head -1)" != "-A $from -j $chain" ]; then
      while $ipt -D "$from" -j "$chain" 2>/dev/null; do :; done
      $ipt -I "$from" 1 -j "$chain"
    fi
  done
}

if [ "$(id -u)" != 0 ]; then
  answers && exit 0
  echo "engine.sh: no Docker engine answers and this is not root: start dockerd (with the guard) first" >&2
  exit 1
fi
exec 9>"$lock"
flock 9
for ipt in iptables ip6tables; do guard "$ipt"; done
echo "engine.sh: host egress guard loaded (iptables -S $chain)" >&2
answers && exit 0
if ! command -v dockerd >/dev/null; then
  apt-get -o DPkg::Lock::Timeout=900 update -q >&2
  # policy-rc.d keeps the package from starting dockerd itself.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -q \
    --no-install-recommends docker.io >&2 || { rm -f /usr/sbin/policy-rc.d; exit 1; }
  rm -f /usr/sbin/policy-rc.d
fi
setsid dockerd --host unix:///var/run/docker.sock \
  --default-address-pool base=172.16.0.0/12,size=20 >>"$log" 2>&1 </dev/null &
for _ in $(seq 60); do
  if answers; then
    # dockerd inserts its own jumps at start: put the guard first again.
    for ipt in iptables ip6tables; do guard "$ipt"; done
    echo "engine.sh: dockerd started (log $log)" >&2
    exit 0
  fi
  sleep 1
done
echo "engine.sh: dockerd did not answer within 60 s, see $log" >&2
exit 1
