"""Benchmark of the tenant reconcile (``make bench-tenants``).

For each size (default 1, 10 and 100 tenants, 3 organizations each) it
declares that many tenants and times ``playbooks/tenants.yml``: the first run
(creates everything) and a re-run (no-op, must report changed=0). As a
reference it renders the same kind of tenants (other ids) with the same
playbook in render mode and times ``kubectl apply --server-side`` of those
manifests, first and again (no-op).

Needs K8S_AUTH_KUBECONFIG (the Makefile target sets it to the local test
cluster). The tenants are left in the cluster; ``--cleanup`` deletes them.
Results: a table on stdout and JSON in build/bench/tenants.json.
"""

from __future__ import annotations

import argparse
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
VENV_BIN = ROOT / ".venv" / "bin"
# The kubectl the local test cluster was built with (same version as the
# API server), unless KUBECTL names another.
_CACHED_KUBECTL = Path(os.environ.get("NEURALLOG_CACHE_DIR") or Path.home() / ".cache" / "neurallog") / "bin" / "kubectl"
KUBECTL = Path(os.environ.get("KUBECTL") or (_CACHED_KUBECTL if _CACHED_KUBECTL.exists() else shutil.which("kubectl") or "kubectl"))
RENDER_ORDER = ("tenants.yaml", "secrets/tenant-secrets.yaml", "tenant-redis.yaml")
RECAP = re.compile(r"changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def tenants(prefix: str, count: int, orgs: int) -> list[dict]:
    return [
        {
            "id": f"{prefix}{index}",
            "name": f"Benchmark tenant {prefix}{index}",
            "organizations": [{"id": f"o{org}", "mcp": org == 0} for org in range(orgs)],
            "labels": {"neurallog.io/benchmark": "true"},
        }
        for index in range(count)
    ]


def run(cmd: list[str], env: dict, what: str) -> tuple[float, str]:
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"{what} failed (rc={proc.returncode})")
    return elapsed, proc.stdout


def playbook(vars_file: Path, env: dict, what: str, extra: list[str] = ()) -> tuple[float, int]:
    cmd = [str(VENV_BIN / "ansible-playbook"), "playbooks/tenants.yml", "-i", "inventories/local",
           "-e", f"@{vars_file}", "-e", "tenant_wait=false", *extra]
    elapsed, out = run(cmd, env, what)
    changed = sum(int(m.group(1)) for m in RECAP.finditer(out))
    return elapsed, changed


def kubectl_apply(folder: Path, env: dict, what: str) -> float:
    # The playbook's apply order: namespaces and the rest, Secrets, StatefulSets.
    stream = folder / "all.yaml"
    if not stream.exists():
        stream.write_text("".join((folder / name).read_text() for name in RENDER_ORDER))
    cmd = [str(KUBECTL), "apply", "--server-side", "--force-conflicts",
           "--field-manager=neurallog.platform", "-f", str(stream)]
    elapsed, _out = run(cmd, env, what)
    return elapsed


def count_objects(folder: Path) -> int:
    return sum((folder / name).read_text().count("---\n") for name in RENDER_ORDER)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--sizes", default="1,10,100", help="tenant counts (default 1,10,100)")
    parser.add_argument("--orgs", type=int, default=3, help="organizations per tenant")
    parser.add_argument("--cleanup", action="store_true", help="delete the benchmark tenants afterwards")
    args = parser.parse_args()

    kubeconfig = os.environ.get("K8S_AUTH_KUBECONFIG")
    if not kubeconfig:
        raise SystemExit("K8S_AUTH_KUBECONFIG is not set (run through `make bench-tenants`)")
    env = dict(os.environ, KUBECONFIG=kubeconfig, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_DISPLAY_OK_HOSTS="true", ANSIBLE_NOCOLOR="1")
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '')}"
    sizes = [int(size) for size in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-tenants-"))
    results = []
    try:
        for size in sizes:
            ansible_vars = work / f"ansible-{size}.json"
            ansible_vars.write_text(json.dumps({"tenant_list": tenants(f"ba{size}t", size, args.orgs)}))
            log(f"{size} tenant(s): playbooks/tenants.yml, first run")
            first, first_changed = playbook(ansible_vars, env, f"first run of {size}")
            log(f"{size} tenant(s): playbooks/tenants.yml, no-op re-run")
            noop, noop_changed = playbook(ansible_vars, env, f"re-run of {size}")

            kubectl_vars = work / f"kubectl-{size}.json"
            kubectl_vars.write_text(json.dumps({"tenant_list": tenants(f"bk{size}t", size, args.orgs)}))
            render = work / f"render-{size}"
            log(f"{size} tenant(s): rendering the same manifests for kubectl")
            playbook(kubectl_vars, env, f"render of {size}", ["-e", f"neurallog_render_dir={render}"])
            objects = count_objects(render)
            log(f"{size} tenant(s): kubectl apply --server-side ({objects} objects), first and again")
            k_first = kubectl_apply(render, env, f"kubectl first apply of {size}")
            k_noop = kubectl_apply(render, env, f"kubectl re-apply of {size}")
            results.append({
                "tenants": size, "objects": objects,
                "first_s": round(first, 2), "first_changed": first_changed,
                "noop_s": round(noop, 2), "noop_changed": noop_changed,
                "kubectl_first_s": round(k_first, 2), "kubectl_noop_s": round(k_noop, 2),
                "first_per_tenant_s": round(first / size, 3), "noop_per_tenant_s": round(noop / size, 3),
                "first_ratio": round(first / k_first, 2), "noop_ratio": round(noop / k_noop, 2),
            })
    finally:
        if args.cleanup:
            log("deleting the benchmark tenants")
            subprocess.run([str(KUBECTL), "delete", "namespace", "-l",
                            "neurallog.io/benchmark=true", "--wait=false"],
                           env=env, capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)

    header = ("| tenants | objects | first run s | per tenant s | no-op s | per tenant s | no-op changed "
              "| kubectl first s | kubectl no-op s | first / kubectl | no-op / kubectl |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for r in results:
        print(f"| {r['tenants']} | {r['objects']} | {r['first_s']} | {r['first_per_tenant_s']} | {r['noop_s']} "
              f"| {r['noop_per_tenant_s']} | {r['noop_changed']} | {r['kubectl_first_s']} | {r['kubectl_noop_s']} "
              f"| {r['first_ratio']}x | {r['noop_ratio']}x |")
    out = ROOT / "build" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "tenants.json").write_text(json.dumps(results, indent=2) + "\n")
    failed = [r for r in results if r["noop_changed"]]
    if failed:
        log("the re-run was not a no-op for: %s" % ", ".join(str(r["tenants"]) for r in failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
