#!/usr/bin/env bash
# Debian packages the test suite needs, installed when missing (apt-get as
# root, or through sudo): real servers for the tests (redis-server,
# postgresql; Elasticsearch's distribution through maven, run by Java 17), the registry and image tooling of the air-gapped bundle
# (docker-registry, skopeo), ssh-keygen for bundle signatures, debootstrap and
# iptables for the real images and kind (Debian's docker.io is installed by
# hack/engine.sh, after its egress guard is loaded). The packages'
# own services are stopped: the tests start their servers on 127.0.0.1.
set -euo pipefail
packages=(redis-server postgresql docker-registry skopeo openssh-client make git time maven openjdk-17-jre-headless curl unzip
  debootstrap iptables)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -gt 0 ] || exit 0
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
echo "deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for svc in redis-server postgresql docker-registry; do
  $sudo service "$svc" stop >/dev/null 2>&1 || true
done
