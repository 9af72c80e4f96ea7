# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of site.yml against kubectl (``make bench``; needs K8S_AUTH_KUBECONFIG).

Paired runs, one right after the other on the same machine, repeated
(--repeat, default 3); the table gives medians and ranges:

1. no-op: site.yml on a converged platform (must report changed=0 and apply
   nothing) against ``kubectl apply --server-side`` of the same objects (the
   render of the same run, with the live Secrets, so kubectl changes nothing);
2. one image changed: site.yml with one workload's image tag overridden;
   the run's own report must name exactly that workload as applied and
   waited for (the change is reverted, untimed, before the next pair);
3. first converge: site.yml into new namespaces against ``kubectl apply
   --server-side`` of the same objects into other new namespaces followed by
   ``kubectl rollout status`` of every Deployment and StatefulSet;
4. peak memory of ansible-playbook and all its children (psutil, every 50 ms).

The workload is the whole site.yml; --site-args adds ansible-playbook
arguments (e.g. tags) to every run and render. The table is printed and
written to build/bench/platform.md."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (BIN, FIELD_MANAGER, KUBECTL, ROOT, applied, environment, header, log,  # noqa: E402
                    median, run, spread, write)

WORKLOADS = ("Deployment", "StatefulSet")
NAMESPACE_VARS = ("system", "data", "ingress", "monitoring")


def namespace_vars(prefix: str) -> dict:
    return dict(("neurallog_namespace_%s" % part, "%s-%s" % (prefix, part)) for part in NAMESPACE_VARS)


class Bench:
    def __init__(self, args, env):
        self.args, self.env = args, env
        self.work = Path(tempfile.mkdtemp(prefix="neurallog-bench-"))
        self.site_args = shlex.split(args.site_args)

    def site(self, what, extra=None, check=True):
        cmd = [BIN / "ansible-playbook", "site.yml", "-i", self.args.inventory,
               "-e", "ansible_python_interpreter=%s" % sys.executable] + self.site_args
        if extra:
            cmd += ["-e", json.dumps(extra)]
        return run(cmd, self.env, what, check=check)

    def render(self, name, extra=None):
        """The objects site.yml would apply (render mode, same arguments)."""
        folder = self.work / name
        self.site("render %s" % name, dict(extra or {}, neurallog_render_dir=str(folder)))
        objects = []
        for path in sorted(folder.glob("*.yaml")) + sorted((folder / "secrets").glob("*.yaml")):
            objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        if not objects:
            raise SystemExit("the render of site.yml %s holds no object" % " ".join(self.site_args))
        # kubectl applies a stream in order: namespaces first.
        return sorted(objects, key=lambda o: (o["kind"] != "Namespace", o["kind"] != "Secret"))

    def kubectl(self, what, *args, check=True):
        return run([KUBECTL] + list(args), self.env, what, check=check)

    def manifest(self, name, objects):
        path = self.work / ("%s.yaml" % name)
        path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
        return path

    def apply_cmd(self, path):
        return ["apply", "--server-side", "--force-conflicts", "--field-manager=%s" % FIELD_MANAGER, "-f", str(path)]

    def live_secrets(self, secrets):
        """The Secrets as stored (their real passwords), for a kubectl no-op."""
        out = []
        for secret in secrets:
            meta = secret["metadata"]
            got = self.kubectl("read Secret", "get", "secret", "-n", meta["namespace"], meta["name"], "-o", "json")
            live = json.loads(got.output)
            out.append({"apiVersion": "v1", "kind": "Secret", "type": live.get("type", "Opaque"),
                        "metadata": dict((key, live["metadata"][key]) for key in ("name", "namespace", "labels",
                                                                                  "annotations")
                                         if live["metadata"].get(key)),
                        "data": live.get("data") or {}})
        return out

    @staticmethod
    def describe(obj):
        return "%s %s/%s" % (obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])

    def image_change(self, objects):
        """(override, "Kind namespace/name") for an image used by exactly one
        workload, a Deployment when there is one."""
        images = {}
        for obj in objects:
            if obj["kind"] in WORKLOADS:
                spec = obj["spec"]["template"]["spec"]
                for container in spec.get("containers", []) + spec.get("initContainers", []):
                    images.setdefault(container["image"], set()).add(self.describe(obj))
        catalogue = yaml.safe_load((ROOT / "roles" / "globals" / "defaults" / "main.yml").read_text())
        repositories = dict((key, value["repository"]) for key, value in catalogue["neurallog_images"].items())
        candidates = []
        for obj in objects:
            if obj["kind"] not in WORKLOADS:
                continue
            image = obj["spec"]["template"]["spec"]["containers"][0]["image"]
            keys = [key for key, repo in repositories.items() if ("/%s:" % repo) in "/" + image]
            if len(images[image]) == 1 and len(keys) == 1:
                candidates.append((obj["kind"] != "Deployment", keys[0], self.describe(obj)))
        if not candidates:
            raise SystemExit("no workload has an image of its own to change")
        _rank, key, workload = sorted(candidates)[0]
        return {"neurallog_image_overrides": {key: {"tag": "bench-image-change"}}}, workload

    def cleanup(self, prefixes):
        namespaces = ["%s-%s" % (prefix, part) for prefix in prefixes for part in NAMESPACE_VARS]
        if namespaces and not self.args.keep:
            self.kubectl("delete bench namespaces", "delete", "namespace", "--ignore-not-found", "--wait=false",
                         *namespaces, check=False)
        shutil.rmtree(self.work, ignore_errors=True)

    # -- the measures ------------------------------------------------------
    def noop(self, objects):
        secrets = [o for o in objects if o["kind"] == "Secret"]
        stream = self.manifest("noop", [o for o in objects if o["kind"] != "Secret"] + self.live_secrets(secrets))
        rows = []
        for rep in range(self.args.repeat):
            log("no-op %d/%d: site.yml" % (rep + 1, self.args.repeat))
            site = self.site("no-op site.yml")
            sent, _waited = applied(site.output)
            if site.changed != 0 or sent:
                raise SystemExit("the no-op run changed something (changed=%d, applied %s)" % (site.changed, sent))
            log("no-op %d/%d: kubectl apply --server-side" % (rep + 1, self.args.repeat))
            kubectl = self.kubectl("kubectl no-op", *self.apply_cmd(stream))
            rows.append((site, kubectl))
        return rows

    def one_image(self, objects):
        override, workload = self.image_change(objects)
        rows = []
        for rep in range(self.args.repeat):
            log("image change %d/%d: %s" % (rep + 1, self.args.repeat, workload))
            site = self.site("image change", override)
            sent, waited = applied(site.output)
            if sent != {workload} or waited != {workload}:
                raise SystemExit("changing the image of %s applied %s and waited for %s" % (
                    workload, sorted(sent) or "nothing", sorted(waited) or "nothing"))
            log("image change %d/%d: revert" % (rep + 1, self.args.repeat))
            self.site("image revert")
            rows.append(site)
        return workload, rows

    def first_converge(self, prefixes):
        rows = []
        for rep in range(self.args.repeat):
            mine, theirs = "bench%da" % rep, "bench%dk" % rep
            prefixes += [mine, theirs]
            log("first converge %d/%d: site.yml into %s-*" % (rep + 1, self.args.repeat, mine))
            site = self.site("first converge", namespace_vars(mine))
            objects = self.render("kubectl-%d" % rep, namespace_vars(theirs))
            stream = self.manifest("first-%d" % rep, objects)
            log("first converge %d/%d: kubectl apply --server-side + rollout status into %s-*" % (
                rep + 1, self.args.repeat, theirs))
            kubectl = self.kubectl_converge(stream, [o for o in objects if o["kind"] in WORKLOADS])
            rows.append((site, kubectl))
        return rows

    def kubectl_converge(self, stream, workloads):
        """kubectl apply, then rollout status of every workload; one timing."""
        cmd = [[KUBECTL] + self.apply_cmd(stream)]
        for obj in workloads:
            cmd.append([KUBECTL, "rollout", "status", "--timeout=600s", "-n", obj["metadata"]["namespace"],
                        "%s/%s" % (obj["kind"].lower(), obj["metadata"]["name"])])
        script = " && ".join(" ".join(shlex.quote(str(part)) for part in c) for c in cmd)
        return run(["bash", "-c", script], self.env, "kubectl apply + rollout status")


def ratio_row(label, site_runs, kubectl_runs, reference, target):
    site_s = [r.seconds for r in site_runs]
    kube_s = [r.seconds for r in kubectl_runs]
    ratios = [a / b for a, b in zip(site_s, kube_s)]
    ratio = median(ratios)
    verdict = "met" if ratio <= target else "NOT met"
    return "| %s | %.1f (%s) | %s: %.1f (%s) | %.1f× (pairs %s) | ≤ %d×: %s |" % (
        label, median(site_s), spread(site_s), reference, median(kube_s), spread(kube_s), ratio,
        ", ".join("%.1f" % r for r in ratios), target, verdict)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--inventory", default="inventories/local")
    parser.add_argument("--repeat", type=int, default=3, help="pairs per measure (the median is reported; >= 3)")
    parser.add_argument("--site-args", default="", help="extra ansible-playbook arguments for every run, e.g. tags")
    parser.add_argument("--keep", action="store_true", help="keep the first-converge namespaces")
    args = parser.parse_args()
    if args.repeat < 3:
        parser.error("--repeat must be at least 3 (a median of fewer runs says little)")
    kubeconfig = os.environ.get("K8S_AUTH_KUBECONFIG")
    if not kubeconfig:
        sys.exit("K8S_AUTH_KUBECONFIG must point at the cluster to benchmark")
    if not shutil.which(str(KUBECTL)) and not KUBECTL.exists():
        sys.exit("kubectl not found at %s (hack/localcluster/build.sh builds it)" % KUBECTL)
    env = environment(kubeconfig)
    bench = Bench(args, env)
    prefixes = []
    try:
        log("converging site.yml %s first (untimed)" % " ".join(bench.site_args))
        bench.site("converge")
        objects = bench.render("noop")
        noop = bench.noop(objects)
        workload, image = bench.one_image(objects)
        first = bench.first_converge(prefixes)
    finally:
        bench.cleanup(prefixes)

    kinds = {}
    for obj in objects:
        kinds[obj["kind"]] = kinds.get(obj["kind"], 0) + 1
    scope = "site.yml %s" % " ".join(bench.site_args) if bench.site_args else "the whole site.yml"
    lines = header("site.yml against kubectl", env, [
        "Workload: %s, `%s`; %d objects (%s). %d pairs per measure, run one right after the other; "
        "seconds, median (range)." % (scope, args.inventory, len(objects),
                                      ", ".join("%s %d" % kv for kv in sorted(kinds.items())), args.repeat)])
    lines += ["| measure | site.yml s | reference s | ratio | target |", "|---|---|---|---|---|"]
    lines.append(ratio_row("no-op re-run (changed=0, nothing applied)", [s for s, _k in noop], [k for _s, k in noop],
                           "`kubectl apply --server-side`", 4))
    image_s = [r.seconds for r in image]
    lines.append("| one image changed: applied and waited for exactly %s | %.1f (%s) | – | – | – |" % (
        workload, median(image_s), spread(image_s)))
    lines.append(ratio_row("first converge (new namespaces)", [s for s, _k in first], [k for _s, k in first],
                           "`kubectl apply --server-side` + `kubectl rollout status`", 3))
    noop_rss = [s.peak_rss / 2**20 for s, _k in noop]
    first_rss = [s.peak_rss / 2**20 for s, _k in first]
    lines.append("| peak RSS of ansible-playbook and its children, MiB: no-op / first converge "
                 "| %.0f / %.0f | – | – | – |" % (max(noop_rss), max(first_rss)))
    write("platform.md", lines)


if __name__ == "__main__":
    main()
