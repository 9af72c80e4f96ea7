# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of a fleet: site.yml on three clusters in parallel against the
same three runs one after another (``make bench-fleet``).

Three local clusters of the benchmark's own (hack/localcluster/cluster.py,
names <NEURALLOG_CLUSTER_PREFIX>bench-fleet-{a,b,c}, brought down at the
end unless --keep) are the hosts of the group neurallog_clusters of an
inventory written in a temporary folder (inventories/local's settings,
each host its own neurallog_kubeconfig). Paired runs, repeated (--repeat,
default 3), one right after the other:

1. no-op: site.yml on the three converged clusters at once (one
   ansible-playbook, forks) against three runs of site.yml, one per cluster
   (``-e neurallog_hosts=<cluster>``), one after another; every run must
   report changed=0;
2. first converge: the same pair into new namespaces (neurallog_namespace_*),
   deleted after each pair.

The one-cluster figures are the single runs of the sequential side. The
ratio is parallel / sequential (median of the pairs' ratios; target
<= 0.6x). The table is printed and written to build/bench/fleet.md."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BIN, KUBECTL, ROOT, environment, header, log, median, run, spread, write  # noqa: E402

CLUSTERS = ("cluster-a", "cluster-b", "cluster-c")
NAMESPACE_VARS = ("system", "data", "ingress", "monitoring")


def cluster_command(name, command):
    env = dict(os.environ, NEURALLOG_CLUSTER_NAME=os.environ.get("NEURALLOG_CLUSTER_PREFIX", "") + "bench-fleet-"
               + name.rsplit("-", 1)[1], NEURALLOG_CLUSTER_PROVIDER="local")
    proc = subprocess.run([sys.executable, str(ROOT / "hack" / "localcluster" / "cluster.py"), command], env=env,
                          check=True, capture_output=True, text=True, timeout=600)
    return proc.stdout.strip()


def namespace_vars(prefix):
    return dict(("neurallog_namespace_%s" % part, "%s-%s" % (prefix, part)) for part in NAMESPACE_VARS)


class FleetBench:
    def __init__(self, args, kubeconfigs):
        self.args, self.kubeconfigs = args, kubeconfigs
        self.work = Path(tempfile.mkdtemp(prefix="neurallog-bench-fleet-"))
        inventory = self.work / "inventory"
        (inventory / "group_vars").mkdir(parents=True)
        for source in (ROOT / "inventories" / "local" / "group_vars" / "all").glob("*.yml"):
            (inventory / "group_vars" / "all").mkdir(exist_ok=True)
            (inventory / "group_vars" / "all" / source.name).write_text(source.read_text())
        (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"neurallog_clusters": {
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
            "hosts": dict((name, {"neurallog_kubeconfig": path}) for name, path in kubeconfigs.items())}}}}))
        self.inventory = inventory
        # every cluster through its host's neurallog_kubeconfig only
        self.env = dict((k, v) for k, v in environment(kubeconfigs[CLUSTERS[0]]).items()
                        if k not in ("K8S_AUTH_KUBECONFIG", "KUBECONFIG"))
        self.site_args = args.site_args.split()
        if args.strategy:
            self.env["ANSIBLE_STRATEGY"] = args.strategy

    def site(self, what, hosts=None, extra=None):
        cmd = [BIN / "ansible-playbook", "site.yml", "-i", self.inventory] + self.site_args
        values = dict(extra or {})
        if hosts:
            values["neurallog_hosts"] = hosts
        if values:
            cmd += ["-e", json.dumps(values)]
        return run(cmd, self.env, what)

    def parallel(self, what, extra=None):
        return self.site("%s, 3 clusters in parallel" % what, extra=extra)

    def sequential(self, what, extra=None):
        return [self.site("%s, %s alone" % (what, name), hosts=name, extra=extra) for name in CLUSTERS]

    def delete_namespaces(self, prefixes):
        namespaces = ["%s-%s" % (prefix, part) for prefix in prefixes for part in NAMESPACE_VARS]

        # Waited for: a deletion still running on the clusters (the namespace
        # controller removing every object) would slow the next pair's first
        # run, always the parallel one, and not the runs after it.
        def delete(path):
            subprocess.run([str(KUBECTL), "--kubeconfig", path, "delete", "namespace", "--ignore-not-found",
                            "--wait=true", "--timeout=300s"] + namespaces, capture_output=True, check=False)
        threads = [threading.Thread(target=delete, args=(path,)) for path in self.kubeconfigs.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def measure(self, what, fresh):
        """[(parallel Run, [3 sequential Runs])] for ``--repeat`` pairs."""
        pairs = []
        for rep in range(self.args.repeat):
            extra_p = namespace_vars("fleet%dp" % rep) if fresh else None
            extra_s = namespace_vars("fleet%ds" % rep) if fresh else None
            log("%s %d/%d: 3 clusters in parallel" % (what, rep + 1, self.args.repeat))
            par = self.parallel(what, extra_p)
            log("%s %d/%d: 3 clusters one after another" % (what, rep + 1, self.args.repeat))
            seq = self.sequential(what, extra_s)
            for one in [par] + seq:
                if (one.changed == 0) == fresh:
                    raise SystemExit("%s: a run reported changed=%d" % (what, one.changed))
            pairs.append((par, seq))
            if fresh and not self.args.keep:
                self.delete_namespaces(["fleet%dp" % rep, "fleet%ds" % rep])
        return pairs


def rows(label, pairs, target):
    one = [r.seconds for _p, seq in pairs for r in seq]
    par = [p.seconds for p, _s in pairs]
    seq = [sum(r.seconds for r in s) for _p, s in pairs]
    ratios = [a / b for a, b in zip(par, seq)]
    verdict = "met" if median(ratios) <= target else "NOT met"
    return ["| %s | %.1f (%s) | %.1f (%s) | %.1f (%s) | %.2f× (pairs %s) | ≤ %.1f×: %s |" % (
        label, median(one), spread(one), median(par), spread(par), median(seq), spread(seq), median(ratios),
        ", ".join("%.2f" % r for r in ratios), target, verdict)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="pairs per measure (the median is reported; >= 3)")
    parser.add_argument("--site-args", default="", help="extra ansible-playbook arguments for every run, e.g. tags")
    parser.add_argument("--keep", action="store_true", help="keep the clusters and the first-converge namespaces")
    parser.add_argument("--strategy", default="",
                        help="Ansible strategy of every run (ANSIBLE_STRATEGY, e.g. free; default: the playbooks' own)")
    parser.add_argument("--first-only", action="store_true", help="measure the first converge only")
    args = parser.parse_args()
    if args.repeat < 3:
        parser.error("--repeat must be at least 3 (a median of fewer runs says little)")
    log("bringing up %s" % ", ".join(CLUSTERS))
    kubeconfigs = dict((name, cluster_command(name, "up")) for name in CLUSTERS)
    bench = FleetBench(args, kubeconfigs)
    scope = "site.yml %s" % " ".join(bench.site_args) if bench.site_args else "the whole site.yml"
    try:
        log("converging the three clusters first (untimed)")
        bench.parallel("converge")
        # while the clusters are up (the header asks kubectl for the server's version)
        lines = header("A fleet: three clusters in parallel against one after another",
                       environment(kubeconfigs[CLUSTERS[0]]), [
                           "Workload: %s, `inventories/local`'s settings, three local clusters as the hosts of "
                           "`neurallog_clusters` (forks = 10, ansible.cfg). Parallel: one ansible-playbook for the "
                           "three; sequential: three ansible-playbook runs (`-e neurallog_hosts=<cluster>`) one after "
                           "another. %d pairs per measure; seconds, median (range)." % (scope, args.repeat)
                           + (" Strategy: %s (ANSIBLE_STRATEGY)." % args.strategy if args.strategy else "")])
        noop = [] if args.first_only else bench.measure("no-op", fresh=False)
        first = bench.measure("first converge", fresh=True)
    finally:
        if not args.keep:
            for name in CLUSTERS:
                cluster_command(name, "down")

    lines += ["| measure | 1 cluster s | 3 in parallel s | 3 one after another s | parallel / sequential | target |",
              "|---|---|---|---|---|---|"]
    if noop:
        lines += rows("no-op re-run (changed=0)", noop, 0.6)
    lines += rows("first converge (new namespaces)", first, 0.6)
    rss = [p.peak_rss / 2**20 for p, _s in noop + first]
    lines.append("| peak RSS of the parallel ansible-playbook and its children, MiB | – | %.0f | – | – | – |" % max(rss))
    write("fleet%s.md" % ("-" + args.strategy if args.strategy else ""), lines)


if __name__ == "__main__":
    main()
