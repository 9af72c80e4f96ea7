#!/usr/bin/env bash
# NeuralLog air-gapped install: verify the bundle, build the virtualenv from
# the bundled wheels, install the bundled collections, push the bundled
# images into the private registry and deploy the platform from it.
# Nothing is downloaded. Run ./install.sh --help for the options.
set -euo pipefail

BUNDLE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SIG_NAMESPACE=neurallog-bundle

REGISTRY=""
REGISTRY_USERNAME=""
REGISTRY_PASSWORD_FILE=""
REGISTRY_CA_FILE=""
REGISTRY_INSECURE=false
INVENTORY="$BUNDLE_DIR/inventories/local"
ALLOWED_SIGNERS=""
ALLOW_UNSIGNED=false
PYTHON=python3
VENV=""
MIN_FREE_MB=""
VERIFY_ONLY=false
PLAYBOOK_ARGS=()

usage() {
  cat <<'USAGE'
Usage: install.sh --registry HOST[:PORT] [options] [-- ansible-playbook options]

  --registry HOST[:PORT]       private registry the images are pushed to and pulled from
  --registry-username USER     registry login (with --registry-password-file)
  --registry-password-file F   file holding the registry password (or NEURALLOG_REGISTRY_PASSWORD)
  --registry-ca-file FILE      CA bundle (PEM) the registry's certificate is checked against
  --registry-insecure          registry without TLS (plain HTTP) or with an unverifiable certificate
  --inventory PATH             Ansible inventory of the target cluster (default: inventories/local)
  --allowed-signers FILE       ssh allowed_signers file with the release key(s) SHA256SUMS.sig
                               must be signed with (required unless --allow-unsigned)
  --allow-unsigned             install a bundle whose signature is absent or not checked
                               (no --allowed-signers); prints a warning
  --python PYTHON              Python for the virtualenv (default: python3)
  --venv DIR                   virtualenv folder (default: ~/.local/share/neurallog/venv-<bundle>)
  --min-free-mb N              free space required for the virtualenv (default: from the bundle)
  --verify-only                verify checksums and signature, then stop
USAGE
}

warn() { echo "neurallog install: WARNING: $*" >&2; }
fail() {
  echo "neurallog install: ERROR: $1" >&2
  exit "${2:-1}"
}
say() { echo "neurallog install: $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --registry) REGISTRY=${2:?--registry needs a value}; shift 2 ;;
    --registry-username) REGISTRY_USERNAME=${2:?}; shift 2 ;;
    --registry-password-file) REGISTRY_PASSWORD_FILE=${2:?}; shift 2 ;;
    --registry-ca-file) REGISTRY_CA_FILE=${2:?}; shift 2 ;;
    --registry-insecure) REGISTRY_INSECURE=true; shift ;;
    --inventory) INVENTORY=${2:?}; shift 2 ;;
    --allowed-signers) ALLOWED_SIGNERS=${2:?}; shift 2 ;;
    --allow-unsigned) ALLOW_UNSIGNED=true; shift ;;
    --python) PYTHON=${2:?}; shift 2 ;;
    --venv) VENV=${2:?}; shift 2 ;;
    --min-free-mb) MIN_FREE_MB=${2:?}; shift 2 ;;
    --verify-only) VERIFY_ONLY=true; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; PLAYBOOK_ARGS=("$@"); break ;;
    *) usage >&2; fail "unknown option $1" 2 ;;
  esac
done

# Paths given relative to where install.sh was started.
abspath() { case "$1" in ''|/*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac; }
INVENTORY=$(abspath "$INVENTORY")
ALLOWED_SIGNERS=$(abspath "$ALLOWED_SIGNERS")
REGISTRY_CA_FILE=$(abspath "$REGISTRY_CA_FILE")
REGISTRY_PASSWORD_FILE=$(abspath "$REGISTRY_PASSWORD_FILE")
VENV=$(abspath "$VENV")
cd "$BUNDLE_DIR"

# 1. Checksums: every file listed, none changed, none added.
[ -f SHA256SUMS ] || fail "$BUNDLE_DIR has no SHA256SUMS: not a NeuralLog bundle" 3
if ! sums_out=$(sha256sum --check --strict --quiet SHA256SUMS 2>&1); then
  fail "bundle verification FAILED, the bundle is corrupt or has been tampered with; nothing was installed:
$sums_out" 3
fi
unlisted=$(comm -13 <(sed 's/^[0-9a-f]*  //' SHA256SUMS | LC_ALL=C sort) \
  <(find . -type f ! -path ./SHA256SUMS ! -path ./SHA256SUMS.sig -printf '%P\n' | LC_ALL=C sort))
[ -z "$unlisted" ] || fail "bundle verification FAILED, files not listed in SHA256SUMS (added after the build?); nothing was installed:
$unlisted" 3
say "checksums verified ($(wc -l < SHA256SUMS) files)"

# 2. Signature. Checked by default: without a trusted key (--allowed-signers)
#    a bundle whose checksums were re-computed after tampering, or whose
#    signature was deleted, cannot be told from the real one, so installing
#    it unverified takes --allow-unsigned and is announced.
if [ -n "$ALLOWED_SIGNERS" ] && [ "$ALLOW_UNSIGNED" = true ]; then
  fail "give --allowed-signers or --allow-unsigned, not both" 2
fi
# The build records in manifest.json (covered by SHA256SUMS) that it signed.
manifest_signed=false
grep -Eq '"signed": *true' manifest.json 2>/dev/null && manifest_signed=true
if [ -n "$ALLOWED_SIGNERS" ]; then
  [ -f "$ALLOWED_SIGNERS" ] || fail "--allowed-signers $ALLOWED_SIGNERS does not exist" 2
  [ -f SHA256SUMS.sig ] || fail "signature check FAILED: the bundle is not signed (no SHA256SUMS.sig) but --allowed-signers requires a signature; nothing was installed" 3
  signer=$(ssh-keygen -Y find-principals -s SHA256SUMS.sig -f "$ALLOWED_SIGNERS" 2>/dev/null | head -n1) ||
    fail "signature check FAILED: SHA256SUMS.sig was not made by a key in $ALLOWED_SIGNERS; nothing was installed" 3
  [ -n "$signer" ] ||
    fail "signature check FAILED: SHA256SUMS.sig was not made by a key in $ALLOWED_SIGNERS; nothing was installed" 3
  ssh-keygen -Y verify -f "$ALLOWED_SIGNERS" -I "$signer" -n "$SIG_NAMESPACE" -s SHA256SUMS.sig < SHA256SUMS >/dev/null 2>&1 ||
    fail "signature check FAILED for SHA256SUMS (signer $signer): SHA256SUMS was changed after signing; nothing was installed" 3
  say "signature verified (signer $signer)"
elif [ -f SHA256SUMS.sig ]; then
  [ "$ALLOW_UNSIGNED" = true ] ||
    fail "signature check FAILED: the bundle is signed (SHA256SUMS.sig) but there is no key to check it against: give --allowed-signers FILE with the release key (or --allow-unsigned to install it unverified); nothing was installed" 3
  warn "the bundle's signature was NOT checked (--allow-unsigned): nothing proves who built it or that SHA256SUMS was not re-computed after tampering"
elif [ "$manifest_signed" = true ]; then
  fail "signature check FAILED: manifest.json says the bundle was signed but SHA256SUMS.sig is missing (removed after the build?); nothing was installed" 3
else
  [ "$ALLOW_UNSIGNED" = true ] ||
    fail "signature check FAILED: the bundle is not signed (no SHA256SUMS.sig), so its origin cannot be checked: install a signed bundle with --allowed-signers FILE, or pass --allow-unsigned to install it anyway; nothing was installed" 3
  warn "installing an UNSIGNED bundle (--allow-unsigned): nothing proves who built it; the checksums only catch accidental corruption"
fi
[ "$VERIFY_ONLY" = true ] && exit 0

# 3. Settings, tools, Python and disk, before anything is created.
[ -n "$REGISTRY" ] || fail "--registry HOST[:PORT] is required (the private registry to push to)" 2
command -v skopeo >/dev/null || fail "skopeo is not installed (it copies the images into the registry)" 2
command -v "$PYTHON" >/dev/null || fail "$PYTHON not found (--python)" 2
[ -e "$INVENTORY" ] || fail "inventory $INVENTORY does not exist (--inventory)" 2
if [ -n "$REGISTRY_CA_FILE" ] && [ "$REGISTRY_INSECURE" = true ]; then
  fail "give --registry-ca-file or --registry-insecure, not both" 2
fi
[ -z "$REGISTRY_CA_FILE" ] || [ -f "$REGISTRY_CA_FILE" ] || fail "--registry-ca-file $REGISTRY_CA_FILE does not exist" 2
REGISTRY_PASSWORD=${NEURALLOG_REGISTRY_PASSWORD:-}
if [ -n "$REGISTRY_PASSWORD_FILE" ]; then
  REGISTRY_PASSWORD=$(cat "$REGISTRY_PASSWORD_FILE") || fail "cannot read --registry-password-file" 2
fi
if [ -n "$REGISTRY_USERNAME" ] && [ -z "$REGISTRY_PASSWORD" ]; then
  fail "--registry-username needs --registry-password-file (or NEURALLOG_REGISTRY_PASSWORD)" 2
fi

read -r BUNDLE_NAME TARGET_PYTHON < <("$PYTHON" -c \
  'import json; m = json.load(open("manifest.json")); print(m["name"], m["target"]["python_version"])')
HAVE_PYTHON=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$HAVE_PYTHON" = "$TARGET_PYTHON" ] ||
  fail "the bundle's wheels are for Python $TARGET_PYTHON but $PYTHON is $HAVE_PYTHON: use --python python$TARGET_PYTHON or build a bundle with airgap_bundle_python_version=$HAVE_PYTHON" 2

VENV=${VENV:-${XDG_DATA_HOME:-$HOME/.local/share}/neurallog/venv-$BUNDLE_NAME}
# The virtualenv unpacks the wheels (about three times their size).
if [ -z "$MIN_FREE_MB" ]; then
  MIN_FREE_MB=$(( $(du -sk python/wheels collections | awk '{s += $1} END {print s}') * 3 / 1024 + 128 ))
fi
probe=$VENV
while [ ! -e "$probe" ]; do probe=$(dirname "$probe"); done
free_mb=$(( $(df -Pk "$probe" | awk 'NR == 2 {print $4}') / 1024 ))
[ "$free_mb" -ge "$MIN_FREE_MB" ] ||
  fail "not enough disk space for the virtualenv in $VENV: ${free_mb} MiB free, ${MIN_FREE_MB} MiB needed (--venv elsewhere, or free space)" 4

# 4. Virtualenv and collections from the bundle only; reused when it was
#    built from this very bundle. Only the bundle's Ansible configuration
#    and collections are used, whatever the environment says.
while IFS= read -r name; do unset "$name"; done < <(env | sed -n 's/^\(ANSIBLE_[A-Za-z0-9_]*\)=.*/\1/p')
export ANSIBLE_CONFIG="$BUNDLE_DIR/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH="$VENV/collections"
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
export PATH="$VENV/bin:$PATH"
stamp=$(sha256sum manifest.json | cut -d' ' -f1)
if [ "$(cat "$VENV/.neurallog-bundle" 2>/dev/null)" != "$stamp" ]; then
  say "creating the virtualenv $VENV from the bundled wheels"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-index \
    --find-links python/wheels -r python/requirements.txt
  "$VENV/bin/ansible-galaxy" collection install --offline --force -p "$VENV/collections" collections/*.tar.gz >/dev/null
  echo "$stamp" > "$VENV/.neurallog-bundle"
else
  say "reusing the virtualenv $VENV"
fi

# 5. The install playbook: verify, push the images, deploy.

vars_dir=$(mktemp -d)
trap 'rm -rf "$vars_dir"' EXIT
umask 077
# Settings go to the playbook in a private file, so the password is on no
# command line.
B="$BUNDLE_DIR" R="$REGISTRY" U="$REGISTRY_USERNAME" P="$REGISTRY_PASSWORD" C="$REGISTRY_CA_FILE" \
I="$REGISTRY_INSECURE" "$VENV/bin/python" -c '
import json, os, sys
e = os.environ
json.dump({
    "airgap_install_bundle_dir": e["B"],
    "airgap_install_verify_checksums": False,
    "airgap_install_registry": e["R"],
    "airgap_install_registry_username": e["U"],
    "airgap_install_registry_password": e["P"],
    "airgap_install_registry_ca_file": e["C"],
    "airgap_install_registry_insecure": e["I"] == "true",
}, open(sys.argv[1], "w"))
' "$vars_dir/install.json"
say "pushing images to $REGISTRY and deploying"
rc=0
"$VENV/bin/ansible-playbook" neurallog.platform.airgap_install -i "$INVENTORY" \
  -e "@$vars_dir/install.json" ${PLAYBOOK_ARGS[@]+"${PLAYBOOK_ARGS[@]}"} || rc=$?
exit "$rc"
