# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of the tenant reconcile (``make bench-tenants``, part of ``make bench``).

For each size (default 1, 10, 100 and 1000 tenants, 3 organizations each)
it declares that many tenants and runs ``playbooks/tenants.yml`` once to
create them (timed), then, in pairs run one right after the other
(--repeat, default 3), a no-op re-run (must report changed=0) and
``kubectl apply --server-side`` of the same kind of tenants (rendered by the
same playbook for other ids, applied once first). The table gives medians,
the no-op's growth per added tenant between sizes, and the peak memory of
ansible-playbook and all its children.

Needs K8S_AUTH_KUBECONFIG (the Makefile target sets it to the local test
cluster). The tenants are left in the cluster; ``--cleanup`` deletes them.
The table is printed and written to build/bench/tenants.md (JSON beside it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (BIN, FIELD_MANAGER, KUBECTL, OUT, environment, header, log, median, run,  # noqa: E402
                    spread, write)

RENDER_ORDER = ("tenants.yaml", "secrets/tenant-secrets.yaml", "tenant-redis.yaml")


def tenants(prefix: str, count: int, orgs: int) -> list:
    return [
        {
            "id": "%s%d" % (prefix, index),
            "name": "Benchmark tenant %s%d" % (prefix, index),
            "organizations": [{"id": "o%d" % org, "mcp": org == 0} for org in range(orgs)],
            "labels": {"neurallog.io/benchmark": "true"},
        }
        for index in range(count)
    ]


def playbook(vars_file: Path, env: dict, what: str, extra=()):
    return run([BIN / "ansible-playbook", "playbooks/tenants.yml", "-i", "inventories/local",
                "-e", "ansible_python_interpreter=%s" % sys.executable,
                "-e", "@%s" % vars_file, "-e", "tenant_wait=false"] + list(extra), env, what)


def kubectl_apply(stream: Path, env: dict, what: str):
    return run([KUBECTL, "apply", "--server-side", "--force-conflicts", "--field-manager=%s" % FIELD_MANAGER,
                "-f", stream], env, what)


def report(results: list, args, env: dict) -> None:
    """The table so far, printed and written (after every size: a long run
    keeps what it measured)."""
    lines = header("Tenant reconcile against kubectl", env, [
        "`playbooks/tenants.yml` with `tenant_wait=false`, %d organizations per tenant (one with an MCP "
        "namespace); no-op: %d pairs per size (no-op re-run, then `kubectl apply --server-side` of as many "
        "tenants' manifests), seconds, median (range). Growth: added no-op seconds per added tenant from "
        "the size before." % (args.orgs, args.repeat)])
    lines += ["| tenants | objects | first run s | kubectl first s | no-op s | kubectl no-op s | no-op / kubectl "
              "| growth s per tenant | peak RSS MiB (first / no-op) |", "|---|---|---|---|---|---|---|---|---|"]
    previous = None
    for res in results:
        growth = "–"
        if previous is not None:
            growth = "%.3f" % ((median(res["noop_s"]) - median(previous["noop_s"]))
                               / (res["tenants"] - previous["tenants"]))
        lines.append("| %d | %d | %.1f | %.1f | %.1f (%s) | %.1f (%s) | %.2f× | %s | %d / %d |" % (
            res["tenants"], res["objects"], res["first_s"], res["kubectl_first_s"], median(res["noop_s"]),
            spread(res["noop_s"]), median(res["kubectl_noop_s"]), spread(res["kubectl_noop_s"]), res["noop_ratio"],
            growth, res["first_peak_mib"], res["noop_peak_mib"]))
        previous = res
    write("tenants.md", lines)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "tenants.json").write_text(json.dumps(results, indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--sizes", default="1,10,100,1000", help="tenant counts (default 1,10,100,1000)")
    parser.add_argument("--orgs", type=int, default=3, help="organizations per tenant")
    parser.add_argument("--repeat", type=int, default=3, help="no-op pairs per size (median; >= 3)")
    parser.add_argument("--cleanup", action="store_true", help="delete the benchmark tenants afterwards")
    args = parser.parse_args()
    if args.repeat < 3:
        parser.error("--repeat must be at least 3")
    kubeconfig = os.environ.get("K8S_AUTH_KUBECONFIG")
    if not kubeconfig:
        raise SystemExit("K8S_AUTH_KUBECONFIG is not set (run through `make bench-tenants`)")
    env = environment(kubeconfig)
    sizes = [int(size) for size in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-tenants-"))
    results = []
    try:
        for size in sizes:
            ansible_vars = work / ("ansible-%d.json" % size)
            ansible_vars.write_text(json.dumps({"tenant_list": tenants("ba%dt" % size, size, args.orgs)}))
            log("%d tenant(s): playbooks/tenants.yml, first run" % size)
            first = playbook(ansible_vars, env, "first run of %d" % size)

            kubectl_vars = work / ("kubectl-%d.json" % size)
            kubectl_vars.write_text(json.dumps({"tenant_list": tenants("bk%dt" % size, size, args.orgs)}))
            render = work / ("render-%d" % size)
            log("%d tenant(s): rendering the same manifests for kubectl" % size)
            playbook(kubectl_vars, env, "render of %d" % size, ["-e", "neurallog_render_dir=%s" % render])
            stream = render / "all.yaml"
            # The playbook's apply order: namespaces and the rest, Secrets, StatefulSets.
            stream.write_text("".join((render / name).read_text() for name in RENDER_ORDER))
            objects = stream.read_text().count("\n---\n") + 1
            log("%d tenant(s): kubectl apply --server-side, first (%d objects)" % (size, objects))
            k_first = kubectl_apply(stream, env, "kubectl first apply of %d" % size)

            pairs = []
            for rep in range(args.repeat):
                log("%d tenant(s): no-op pair %d/%d" % (size, rep + 1, args.repeat))
                noop = playbook(ansible_vars, env, "re-run of %d" % size)
                if noop.changed != 0:
                    raise SystemExit("the re-run of %d tenants was not a no-op (changed=%d)" % (size, noop.changed))
                pairs.append((noop, kubectl_apply(stream, env, "kubectl re-apply of %d" % size)))
            noop_s = [p[0].seconds for p in pairs]
            kube_s = [p[1].seconds for p in pairs]
            results.append({
                "tenants": size, "objects": objects, "first_s": round(first.seconds, 2),
                "kubectl_first_s": round(k_first.seconds, 2),
                "noop_s": [round(s, 2) for s in noop_s], "kubectl_noop_s": [round(s, 2) for s in kube_s],
                "noop_ratio": round(median([a / b for a, b in zip(noop_s, kube_s)]), 2),
                "first_peak_mib": round(first.peak_rss / 2**20), "noop_peak_mib": round(max(p[0].peak_rss
                                                                                            for p in pairs) / 2**20),
            })
            report(results, args, env)
    finally:
        if args.cleanup:
            log("deleting the benchmark tenants")
            subprocess.run([str(KUBECTL), "delete", "namespace", "-l", "neurallog.io/benchmark=true", "--wait=false"],
                           env=env, capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)

    return 0


if __name__ == "__main__":
    sys.exit(main())
