# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of site.yml on a cluster (``make bench``; needs K8S_AUTH_KUBECONFIG).

1. first converge of site.yml (the namespaces are deleted first when
   --fresh is given, otherwise the run converges whatever is there);
2. a no-op re-run of site.yml;
3. ``kubectl apply --server-side`` of the same objects, rendered by site.yml
   in render mode, with the same field manager (so it is a no-op too);
4. the floor of any playbook: one ansible-playbook run with a single
   kubernetes.core.k8s task applying those same objects server-side (no
   preflight, no Secret handling, no waits), to show how much of the ratio
   is ansible-playbook itself.
Secrets are left out of step 3: rendering generates new passwords, and
applying them would rotate the real ones.

Prints the three wall times, the ratio no-op re-run / kubectl and the peak RSS
of ansible-playbook and all its children (sampled with psutil when present,
else the rusage of the children)."""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
KUBECTL = Path(os.environ.get("NEURALLOG_CACHE_DIR") or Path.home() / ".cache" / "neurallog") / "bin" / "kubectl"
FIELD_MANAGER = "neurallog.platform"
FLOOR_PLAYBOOK = """
- name: Floor of a playbook run
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Apply every object server-side in one task
      kubernetes.core.k8s:
        src: %(src)s
        apply: true
        server_side_apply:
          field_manager: %(manager)s
          force_conflicts: true
"""
NAMESPACES = ["neurallog-system", "neurallog-data", "neurallog-ingress", "neurallog-monitoring"]


def _tree_rss(proc) -> int:
    total = 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except Exception:  # the process ended
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except Exception:
            pass
    return total


def run(cmd: list[str], env: dict, quiet: bool = True) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (bytes) of the process tree, and the output."""
    try:
        import psutil
    except ImportError:
        psutil = None
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0]
    if psutil:
        ps = psutil.Process(proc.pid)

        def sample():
            while proc.poll() is None:
                peak[0] = max(peak[0], _tree_rss(ps))
                time.sleep(0.05)
        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
    out, _err = proc.communicate()
    elapsed = time.monotonic() - start
    if psutil:
        thread.join()
    else:
        peak[0] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    if proc.returncode != 0:
        sys.stderr.write(out[-6000:])
        sys.exit("command failed (%d): %s" % (proc.returncode, " ".join(cmd)))
    return elapsed, peak[0], out


def recap(out: str) -> str:
    lines = [line for line in out.splitlines() if line.startswith("localhost") and "ok=" in line]
    return " ".join(lines[-1].split()[2:]) if lines else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--inventory", default="inventories/local")
    parser.add_argument("--fresh", action="store_true", help="delete the platform namespaces before the first converge")
    args = parser.parse_args()
    kubeconfig = os.environ.get("K8S_AUTH_KUBECONFIG")
    if not kubeconfig:
        sys.exit("K8S_AUTH_KUBECONFIG must point at the cluster to benchmark")
    if not KUBECTL.exists():
        sys.exit("kubectl not found at %s (hack/localcluster/build.sh builds it)" % KUBECTL)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), KUBECONFIG=kubeconfig)
    playbook = [str(BIN / "ansible-playbook"), "site.yml", "-i", args.inventory]

    if args.fresh:
        subprocess.run([str(KUBECTL), "delete", "namespace", "--ignore-not-found", "--wait=true"] + NAMESPACES,
                       env=env, check=True, capture_output=True)

    first, first_rss, first_out = run(playbook, env)
    noop, noop_rss, noop_out = run(playbook, env)

    render_dir = Path(tempfile.mkdtemp(prefix="neurallog-bench-"))
    try:
        run(playbook + ["-e", "neurallog_render_dir=%s" % render_dir], env)
        objects = []
        for path in sorted(render_dir.glob("*.yaml")):
            objects += [d for d in yaml.safe_load_all(path.read_text()) if d]
        secrets = [o for o in objects if o["kind"] == "Secret"]
        objects = [o for o in objects if o["kind"] != "Secret"]
        manifest = render_dir / "all.yaml.bench"
        manifest.write_text(yaml.safe_dump_all(objects, sort_keys=False))
        kubectl_cmd = [str(KUBECTL), "apply", "--server-side", "--force-conflicts",
                       "--field-manager=%s" % FIELD_MANAGER, "-f", str(manifest)]
        kubectl, _rc, kubectl_out = run(kubectl_cmd, env)
        floor_playbook = render_dir / "floor.yml"
        floor_playbook.write_text(FLOOR_PLAYBOOK % {"src": manifest, "manager": FIELD_MANAGER})
        floor_cmd = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-e",
                     "ansible_python_interpreter=%s" % sys.executable, str(floor_playbook)]
        floor, _rss, floor_out = run(floor_cmd, env)
    finally:
        shutil.rmtree(render_dir, ignore_errors=True)
    changed = [line for line in kubectl_out.splitlines() if not line.endswith("serverside-applied")]

    kinds = {}
    for obj in objects + secrets:
        kinds[obj["kind"]] = kinds.get(obj["kind"], 0) + 1
    print("objects: %d (%s)" % (len(objects) + len(secrets),
                                ", ".join("%s %d" % kv for kv in sorted(kinds.items()))))
    print("first converge of site.yml:      %7.1f s   %s" % (first, recap(first_out)))
    print("no-op re-run of site.yml:        %7.1f s   %s" % (noop, recap(noop_out)))
    print("kubectl apply --server-side:     %7.1f s   (%d objects, Secrets left out: %d)"
          % (kubectl, len(objects), len(secrets)))
    print("floor: one k8s task, same objects: %5.1f s   %s (%.1fx kubectl)"
          % (floor, recap(floor_out), floor / kubectl))
    print("ratio no-op re-run / kubectl:    %7.1f x   (target <= 4x: %s)"
          % (noop / kubectl, "met" if noop / kubectl <= 4 else "NOT met"))
    try:
        import psutil  # noqa: F401
        how = "sum over ansible-playbook and its children, sampled every 50 ms"
    except ImportError:
        how = "largest single process of the tree, getrusage; install psutil for the tree sum"
    print("ansible-playbook peak RSS:       %7.0f MiB (first converge), %.0f MiB (re-run) [%s]"
          % (first_rss / 2**20, noop_rss / 2**20, how))
    if changed:
        print("kubectl output lines other than 'serverside-applied': %d" % len(changed))


if __name__ == "__main__":
    main()
