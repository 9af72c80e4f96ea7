# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`make security`: render every inventory (site.yml) and a set of tenants
(playbooks/tenants.yml) without a cluster, run checkov on each render and
print failed/total checks per render and the failed checks by id.

Exits non-zero when a check fails that the "Static analysis (checkov)"
section of docs/security.md does not list with its reason. checkov runs
offline: --skip-download, no update check, and a proxy on a closed loopback
port catches any request it would still make.

    python hack/security/checkov.py [--keep DIR] [--json FILE] [--only NAME...]
"""

from __future__ import absolute_import, division, print_function

import argparse
import collections
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DOC = ROOT / "docs" / "security.md"
SECTION = "## Static analysis (checkov)"

# name -> (playbook, inventory, extra vars)
RENDERS = collections.OrderedDict([
    ("platform onprem", ("site.yml", "inventories/onprem", [])),
    ("platform kind", ("site.yml", "inventories/kind", [])),
    ("platform local", ("site.yml", "inventories/local", [])),
    ("tenants local", ("playbooks/tenants.yml", "inventories/local", [])),
    ("tenants examples", ("playbooks/tenants.yml", "inventories/onprem", ["@" + str(HERE / "tenants.yml")])),
])


def render(name, playbook, inventory, extra, out):
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "K8S_AUTH_KUBECONFIG": str(out / "no-such-kubeconfig"),
        "KUBECONFIG": str(out / "no-such-kubeconfig"),
    })
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), playbook, "-i", inventory,
           "-e", "neurallog_render_dir=%s" % out]
    for arg in extra:
        cmd += ["-e", arg]
    proc = subprocess.run(cmd, cwd=str(ROOT), env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError("render of %s failed:\n%s" % (name, proc.stdout[-3000:] + proc.stderr[-1000:]))
    return out


def checkov(binary, directory):
    env = dict(os.environ)
    env.update({
        "BC_SKIP_MAPPING": "TRUE",
        "CKV_SKIP_PACKAGE_UPDATE_CHECK": "TRUE",
        "LOG_LEVEL": "ERROR",
        # Nothing may leave the machine: any request checkov still makes
        # goes to a closed local port and fails at once.
        "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": "",
    })
    proc = subprocess.run([binary, "-d", str(directory), "--framework", "kubernetes", "--skip-download",
                           "--output", "json", "--quiet", "--compact"],
                          env=env, capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 1):
        raise RuntimeError("checkov failed on %s:\n%s" % (directory, proc.stderr[-3000:]))
    report = json.loads(proc.stdout) if proc.stdout.strip() else []
    reports = report if isinstance(report, list) else [report]
    summary = {"passed": 0, "failed": 0, "resources": 0}
    failed = []
    for item in reports:
        if "summary" not in item:  # checkov's "no resources" report
            continue
        summary["passed"] += item["summary"]["passed"]
        summary["failed"] += item["summary"]["failed"]
        summary["resources"] += item["summary"]["resource_count"]
        for check in item["results"]["failed_checks"]:
            failed.append({"id": check["check_id"], "name": check["check_name"],
                           "resource": check["resource"], "file": os.path.relpath(check["file_abs_path"], str(directory))})
    return summary, failed


def documented_checks():
    """Check ids listed in the checkov section of docs/security.md."""
    if not DOC.exists():
        return set()
    text = DOC.read_text()
    if SECTION not in text:
        return set()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"\bCKV2?_K8S_\d+\b", section))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--keep", help="render into this folder (kept) instead of a temporary one")
    parser.add_argument("--json", help="write the figures and failed checks to this file")
    parser.add_argument("--only", nargs="*", help="renders to run (%s)" % ", ".join(RENDERS))
    parser.add_argument("--checkov", help="checkov command (default: hack/security/checkov-venv.sh creates it)")
    args = parser.parse_args(argv)

    binary = args.checkov or subprocess.run([str(HERE / "checkov-venv.sh")], capture_output=False, check=True,
                                            stdout=subprocess.PIPE, text=True).stdout.strip()
    names = args.only or list(RENDERS)
    unknown = [n for n in names if n not in RENDERS]
    if unknown:
        parser.error("unknown render(s) %s; allowed: %s" % (", ".join(unknown), ", ".join(RENDERS)))
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="neurallog-security-"))
    start = time.time()
    results = collections.OrderedDict()
    try:
        # Two renders at a time: ansible-playbook is mostly one busy core.
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            futures = collections.OrderedDict()
            for name in names:
                playbook, inventory, extra = RENDERS[name]
                out = base / name.replace(" ", "-")
                if out.exists():
                    shutil.rmtree(str(out))
                futures[name] = pool.submit(render, name, playbook, inventory, extra, out)
            for name, future in futures.items():
                results[name] = checkov(binary, future.result())
    finally:
        if not args.keep:
            shutil.rmtree(str(base), ignore_errors=True)

    listed = documented_checks()
    undocumented = set()
    print("checkov %s (kubernetes framework), %d renders in %.0f s" % (
        subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout.strip(), len(results),
        time.time() - start))
    print("%-18s %8s %8s %10s" % ("render", "failed", "total", "resources"))
    for name, (summary, _failed) in results.items():
        print("%-18s %8d %8d %10d" % (name, summary["failed"], summary["failed"] + summary["passed"],
                                      summary["resources"]))
    for name, (_summary, failed) in results.items():
        if not failed:
            continue
        print("\n%s: failed checks" % name)
        counts = collections.Counter((f["id"], f["name"]) for f in failed)
        for (check_id, check_name), count in sorted(counts.items()):
            mark = "" if check_id in listed else "   <- not in docs/security.md"
            if check_id not in listed:
                undocumented.add(check_id)
            print("  %3d %-11s %s%s" % (count, check_id, check_name, mark))
    if args.json:
        Path(args.json).write_text(json.dumps(
            dict((name, {"summary": s, "failed": f}) for name, (s, f) in results.items()), indent=2, sort_keys=True))
    if undocumented:
        print("\nFailed checks without a reason in %s (%s): %s" % (
            DOC.relative_to(ROOT), SECTION.lstrip("# "), ", ".join(sorted(undocumented))))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
