#!/usr/bin/env bash
# The one Docker engine of the tests (hack/images/build.sh, hack/kind/cluster.sh,
# tests/images, tests/kind): makes sure an engine answers on this machine and
# that no packet a container sends can leave it. Idempotent; run as root on a
# machine of the CI kind (Debian, no internet), or as any user where an
# engine already runs.
#
#   1. the host egress guard (below) is loaded, IPv4 and IPv6 — on every
#      call as root, also when an engine already runs;
#   2. Debian's docker.io is installed when dockerd is missing;
#   3. dockerd is started when `docker info` does not answer, its bridges
#      inside 172.16.0.0/12; the guard is put first again once it answers
#      (dockerd inserts its own jumps when it starts).
#
# The guard is the chain NEURALLOG-EGRESS, jumped to first from FORWARD and
# from DOCKER-USER. A forwarded packet is let through only when it leaves
# through loopback, or through a container bridge (docker0, br-*) towards a
# container (172.16.0.0/12, the only pools dockerd is given) or towards kind's
# pod range (10.244.0.0/16: pod routes between the nodes of a stock kind
# cluster). Everything else is rejected: TCP with a reset, the rest with
# ICMP port unreachable, so a connection fails at once. In particular the
# machine's resolver and gateway (they are reached through the default route)
# are out of reach of every container, and so is 10.0.0.0/8 as a whole apart
# from kind's pod range behind a bridge. IPv6: loopback only (dockerd gets
# no IPv6). `iptables -vnL NEURALLOG-EGRESS` shows the rules and their counters.
# Containers with --network host are not covered (nothing here uses them).
#
# A chain left by an older version of this script (NEURALLOG-HOST-EGRESS) is
# removed, so there is one guard.
set -euo pipefail
chain=NEURALLOG-EGRESS
old_chains=(NEURALLOG-HOST-EGRESS)
bridge_ranges=(172.16.0.0/12 10.244.0.0/16)
lock=/run/lock/neurallog-engine.lock
# Open files of dockerd and so of every container (kind's nodes and their
# pods inherit it): Elasticsearch's bootstrap check wants 65535 at least, and
# a login shell here may have a hard limit of 20000. systemd's docker.service
# sets the same ceiling (LimitNOFILE=1048576).
nofile=1048576
log=/var/log/neurallog-dockerd.log

answers() { docker info >/dev/null 2>&1; }

rules() {
  local ipt=$1 range bridge
  echo "-A $chain -o lo -j RETURN"
  if [ "$ipt" = iptables ]; then
    for bridge in docker0 br-+; do
      for range in "${bridge_ranges[@]}"; do echo "-A $chain -d $range -o $bridge -j RETURN"; done
    done
  fi
  echo "-A $chain -p tcp -j REJECT --reject-with tcp-reset"
  echo "-A $chain -j REJECT"
}

# guard IPTABLES: (re)writes the chain and puts the jumps first; repeating it
# changes nothing (the counters are kept).
guard() {
  local ipt=$1 want have old from
  for old in "${old_chains[@]}"; do
    if $ipt -S "$old" >/dev/null 2>&1; then
      for from in DOCKER-USER FORWARD; do
        while $ipt -D "$from" -j "$old" 2>/dev/null; do :; done
      done
      $ipt -F "$old" && $ipt -X "$old"
    fi
  done
  want=$(rules "$ipt")
  $ipt -N "$chain" 2>/dev/null || true
  have=$($ipt -S "$chain" | grep -v -- "^-N ") || true
  # iptables prints the default reject type (icmp[6]-port-unreachable).
  if [ "$(printf '%s\n' "$have" | sed 's/ --reject-with icmp[6]*-port-unreachable//')" != "$want" ]; then
    # One transaction: the chain is never empty while it is rewritten.
    printf '*filter\n-F %s\n%s\nCOMMIT\n' "$chain" "$want" | "$ipt-restore" --noflush
    # When the guard was (re)loaded: the tests check that every container
    # they judge started after it.
    mkdir -p /run/neurallog && date +%s.%N >"/run/neurallog/host-guard-$ipt.loaded"
  fi
  for from in DOCKER-USER FORWARD; do
    $ipt -N "$from" 2>/dev/null || true
    if [ "$($ipt -S "$from" | grep -v -- '^-[NP] ' | head -1)" != "-A $from -j $chain" ] ||
      [ "$($ipt -S "$from" | grep -c -- "^-A $from -j $chain\$")" != 1 ]; then
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
mkdir -p "$(dirname "$lock")"
exec 9>"$lock"
flock 9
if ! command -v iptables >/dev/null || ! command -v ip6tables >/dev/null; then
  apt-get -o DPkg::Lock::Timeout=900 update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends iptables >&2
fi
for ipt in iptables ip6tables; do guard "$ipt"; done
echo "engine.sh: host egress guard loaded (iptables -vnL $chain)" >&2
if answers; then
  # An engine started before (by hand, or by an older version of this
  # script) with a lower limit is not restarted here (that would stop every
  # container on the machine); say what to do.
  have=$(awk '/^Max open files/ {print $5}' "/proc/$(pgrep -o -x dockerd)/limits" 2>/dev/null || echo unknown)
  hard=$(ulimit -Hn)
  if [ "$have" != unlimited ] && [ "$have" != unknown ] && [ "$have" -lt 65535 ] &&
    { [ "$hard" = unlimited ] || [ "$hard" -gt "$have" ]; }; then
    echo "engine.sh: warning: dockerd runs with an open files limit of $have (Elasticsearch needs 65535):" \
      "stop it and run hack/engine.sh again to restart it with the host's highest ($hard)" >&2
  fi
  exit 0
fi
if ! command -v dockerd >/dev/null; then
  apt-get -o DPkg::Lock::Timeout=900 update -q >&2
  # policy-rc.d keeps the package from starting dockerd itself (without the
  # bridge pools below).
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -q \
    --no-install-recommends docker.io >&2 || { rm -f /usr/sbin/policy-rc.d; exit 1; }
  rm -f /usr/sbin/policy-rc.d
fi
# dockerd must not inherit the lock (fd 9): it would hold it for as long as
# it runs, and every later call would wait for ever.
# Without CAP_SYS_RESOURCE (these machines) the hard limit cannot be raised:
# then the soft limit goes up to the hard one.
ulimit -n "$nofile" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 65535 ] ||
  echo "engine.sh: note: open files limited to $(ulimit -n) on this host (no CAP_SYS_RESOURCE): containers get no more" >&2
setsid dockerd --host unix:///var/run/docker.sock \
  --default-address-pool base=172.16.0.0/12,size=20 >>"$log" 2>&1 </dev/null 9>&- &
for _ in $(seq 60); do
  if answers; then
    for ipt in iptables ip6tables; do guard "$ipt"; done
    echo "engine.sh: dockerd started (log $log)" >&2
    exit 0
  fi
  sleep 1
done
echo "engine.sh: dockerd did not answer within 60 s, see $log" >&2
exit 1
