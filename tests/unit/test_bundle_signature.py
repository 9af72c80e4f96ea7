# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The signature policy of the install.sh every bundle ships.

Each case runs the real script (``--verify-only``: checksums and signature,
then stop) on a small bundle made here with sha256sum and ssh-keygen, the
tools the script itself uses, so the expectations do not come from the
collection's own code."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import subprocess

import pytest

INSTALL_SH = os.path.join(os.path.dirname(__file__), "..", "..", "roles", "airgap_bundle", "files", "install.sh")
NAMESPACE = "neurallog-bundle"


def _run(argv, **kwargs):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)


def _resum(root):
    files = sorted(
        os.path.relpath(os.path.join(folder, name), root)
        for folder, _dirs, names in os.walk(root) for name in names
        if name not in ("SHA256SUMS", "SHA256SUMS.sig"))
    sums = _run(["sha256sum"] + files, cwd=root).stdout
    with open(os.path.join(root, "SHA256SUMS"), "w") as handle:
        handle.write(sums)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    made = {}
    for who in ("release", "stranger"):
        key = str(folder / who)
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", who, "-f", key])
        with open(key + ".pub") as handle:
            public = " ".join(handle.read().split()[:2])
        signers = str(folder / (who + "_allowed_signers"))
        with open(signers, "w") as handle:
            handle.write("%s@neurallog.example %s\n" % (who, public))
        made[who] = {"key": key, "allowed_signers": signers}
    return made


def make_bundle(tmp_path, keys, signed=True, sign_with="release"):
    root = tmp_path / "neurallog-9.9.9-bundle"
    root.mkdir()
    shutil.copy(INSTALL_SH, str(root / "install.sh"))
    (root / "images").mkdir()
    (root / "images" / "layer").write_bytes(b"the real layer\n")
    manifest = {"name": root.name, "bundle_format": 1, "signed": signed,
                "target": {"python_version": "3.11"}, "images": []}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    _resum(str(root))
    if signed:
        _run(["ssh-keygen", "-Y", "sign", "-f", keys[sign_with]["key"], "-n", NAMESPACE, str(root / "SHA256SUMS")])
    return root


def tamper_and_resum(root):
    """What an attacker does: change a file, then re-compute SHA256SUMS."""
    (root / "images" / "layer").write_bytes(b"a malicious layer\n")
    _resum(str(root))


def install(root, *options):
    return subprocess.run(["bash", str(root / "install.sh"), "--verify-only"] + list(options),
                          capture_output=True, text=True, cwd=str(root.parent), check=False)


def test_signed_bundle_verifies_with_the_release_key(tmp_path, keys):
    result = install(make_bundle(tmp_path, keys), "--allowed-signers", keys["release"]["allowed_signers"])
    assert result.returncode == 0, result.stderr
    assert "signature verified (signer release@neurallog.example)" in result.stdout
    assert "WARNING" not in result.stderr


def test_signed_bundle_without_allowed_signers_is_refused(tmp_path, keys):
    result = install(make_bundle(tmp_path, keys))
    assert result.returncode == 3
    assert "the bundle is signed (SHA256SUMS.sig) but there is no key to check it against" in result.stderr
    assert "--allowed-signers FILE" in result.stderr and "--allow-unsigned" in result.stderr


def test_resummed_signed_bundle_is_refused_by_default(tmp_path, keys):
    root = make_bundle(tmp_path, keys)
    tamper_and_resum(root)
    result = install(root)
    assert result.returncode == 3
    assert "signature check FAILED" in result.stderr


def test_resummed_signed_bundle_is_refused_with_the_release_key(tmp_path, keys):
    root = make_bundle(tmp_path, keys)
    tamper_and_resum(root)
    result = install(root, "--allowed-signers", keys["release"]["allowed_signers"])
    assert result.returncode == 3
    assert "signature check FAILED for SHA256SUMS (signer release@neurallog.example)" in result.stderr


def test_bundle_signed_by_an_unknown_key_is_refused(tmp_path, keys):
    root = make_bundle(tmp_path, keys, sign_with="stranger")
    result = install(root, "--allowed-signers", keys["release"]["allowed_signers"])
    assert result.returncode == 3
    assert "SHA256SUMS.sig was not made by a key in" in result.stderr


def test_deleted_signature_is_noticed_without_any_option(tmp_path, keys):
    root = make_bundle(tmp_path, keys)
    (root / "SHA256SUMS.sig").unlink()
    result = install(root)
    assert result.returncode == 3
    assert "manifest.json says the bundle was signed but SHA256SUMS.sig is missing" in result.stderr


def test_deleted_signature_is_noticed_even_with_allow_unsigned(tmp_path, keys):
    root = make_bundle(tmp_path, keys)
    (root / "SHA256SUMS.sig").unlink()
    result = install(root, "--allow-unsigned")
    assert result.returncode == 3
    assert "manifest.json says the bundle was signed but SHA256SUMS.sig is missing" in result.stderr


def test_deleted_signature_and_rewritten_manifest_is_refused_by_default(tmp_path, keys):
    # A thorough attacker also flips "signed" and re-computes SHA256SUMS:
    # only the default (a signature is required) stops that.
    root = make_bundle(tmp_path, keys)
    (root / "SHA256SUMS.sig").unlink()
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["signed"] = False
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    _resum(str(root))
    result = install(root)
    assert result.returncode == 3
    assert "the bundle is not signed (no SHA256SUMS.sig)" in result.stderr


def test_deleted_signature_with_allowed_signers_is_refused(tmp_path, keys):
    root = make_bundle(tmp_path, keys)
    (root / "SHA256SUMS.sig").unlink()
    result = install(root, "--allowed-signers", keys["release"]["allowed_signers"])
    assert result.returncode == 3
    assert "signature check FAILED" in result.stderr


def test_unsigned_bundle_is_refused_without_the_flag(tmp_path, keys):
    result = install(make_bundle(tmp_path, keys, signed=False))
    assert result.returncode == 3
    assert ("signature check FAILED: the bundle is not signed (no SHA256SUMS.sig), so its origin cannot be "
            "checked") in result.stderr
    assert "--allow-unsigned" in result.stderr


def test_unsigned_bundle_installs_with_the_flag_and_a_warning(tmp_path, keys):
    result = install(make_bundle(tmp_path, keys, signed=False), "--allow-unsigned")
    assert result.returncode == 0, result.stderr
    assert "neurallog install: WARNING: installing an UNSIGNED bundle (--allow-unsigned)" in result.stderr


def test_signed_bundle_with_the_flag_installs_unverified_with_a_warning(tmp_path, keys):
    result = install(make_bundle(tmp_path, keys), "--allow-unsigned")
    assert result.returncode == 0, result.stderr
    assert "neurallog install: WARNING: the bundle's signature was NOT checked (--allow-unsigned)" in result.stderr


def test_allowed_signers_and_allow_unsigned_together_are_refused(tmp_path, keys):
    result = install(make_bundle(tmp_path, keys), "--allow-unsigned",
                     "--allowed-signers", keys["release"]["allowed_signers"])
    assert result.returncode == 2
    assert "give --allowed-signers or --allow-unsigned, not both" in result.stderr


def test_checksums_are_still_checked_first(tmp_path, keys):
    root = make_bundle(tmp_path, keys)
    (root / "images" / "layer").write_bytes(b"a malicious layer\n")
    result = install(root, "--allowed-signers", keys["release"]["allowed_signers"])
    assert result.returncode == 3
    assert "bundle verification FAILED" in result.stderr
