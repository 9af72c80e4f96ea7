# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pack an installed collection back into a collection artifact (tar.gz).

An installed collection keeps MANIFEST.json and FILES.json. The `ansible`
package leaves out some files FILES.json lists (CI folders, tests), so the
artifact lists only the files present (each with its recorded checksum,
which ansible-galaxy checks on install) and MANIFEST.json carries the new
FILES.json checksum. Used to put the kubernetes.core that ships with the
`ansible` package into a test bundle without contacting Galaxy.

    .venv/bin/python hack/airgap/pack_collection.py .venv/lib/python3.11/site-packages/ansible_collections/kubernetes/core DIR
"""

from __future__ import absolute_import, division, print_function

import hashlib
import io
import json
import os
import sys
import tarfile


def _add_bytes(tar, name, data):
    entry = tarfile.TarInfo(name)
    entry.size = len(data)
    entry.mode = 0o644
    tar.addfile(entry, io.BytesIO(data))


def pack(source, output_dir):
    with open(os.path.join(source, "MANIFEST.json")) as handle:
        manifest = json.load(handle)
    with open(os.path.join(source, "FILES.json")) as handle:
        files = json.load(handle)
    info = manifest["collection_info"]
    present = [f for f in files["files"] if f["name"] == "." or os.path.lexists(os.path.join(source, f["name"]))]
    files["files"] = present
    files_data = json.dumps(files, indent=1).encode("utf-8")
    manifest["file_manifest_file"]["chksum_sha256"] = hashlib.sha256(files_data).hexdigest()
    name = "%s-%s-%s.tar.gz" % (info["namespace"], info["name"], info["version"])
    path = os.path.join(output_dir, name)
    os.makedirs(output_dir, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        _add_bytes(tar, "MANIFEST.json", json.dumps(manifest, indent=1).encode("utf-8"))
        _add_bytes(tar, "FILES.json", files_data)
        for entry in present:
            if entry["name"] == ".":
                continue
            full = os.path.join(source, entry["name"])
            member = tar.gettarinfo(full, arcname=entry["name"])
            member.uid = member.gid = 0
            member.uname = member.gname = ""
            if member.isfile():
                with open(full, "rb") as handle:
                    tar.addfile(member, handle)
            else:
                tar.addfile(member)
    return path


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(pack(sys.argv[1], sys.argv[2]))
