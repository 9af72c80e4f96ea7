# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the benchmarks share (not named after a standard module: the
scripts' folder comes first on sys.path, and platform.py is one of them): timed runs with the peak memory of the whole
process tree, medians, the run's own report of what it applied, and the
markdown table written to build/bench/."""

from __future__ import annotations

import datetime
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
OUT = ROOT / "build" / "bench"
sys.path.insert(0, str(ROOT / "collections"))
from ansible_collections.neurallog.platform.plugins.plugin_utils.cache_dir import cache_dir  # noqa: E402

_CACHED_KUBECTL = Path(cache_dir()) / "bin" / "kubectl"
KUBECTL = Path(os.environ.get("KUBECTL") or (_CACHED_KUBECTL if _CACHED_KUBECTL.exists()
                                             else shutil.which("kubectl") or "kubectl"))
FIELD_MANAGER = "neurallog.platform"
RECAP = re.compile(r"ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


def log(msg: str) -> None:
    print("[bench] %s" % msg, file=sys.stderr, flush=True)


def environment(kubeconfig: str) -> dict:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), KUBECONFIG=kubeconfig,
               K8S_AUTH_KUBECONFIG=kubeconfig, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    env["PATH"] = "%s:%s" % (BIN, env.get("PATH", ""))
    return env


class Run:
    """One finished command: seconds, peak RSS of its process tree, output."""

    def __init__(self, seconds, peak_rss, output, returncode):
        self.seconds, self.peak_rss, self.output, self.returncode = seconds, peak_rss, output, returncode

    @property
    def changed(self) -> int:
        found = RECAP.findall(self.output)
        return sum(int(m[1]) for m in found) if found else -1


def _tree_rss(proc) -> int:
    total = 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except Exception:  # pylint: disable=broad-exception-caught  # the process ended
        return 0
    for child in procs:
        try:
            total += child.memory_info().rss
        except Exception:  # pylint: disable=broad-exception-caught
            pass
    return total


def run(cmd: list, env: dict, what: str, check: bool = True) -> Run:
    """Run ``cmd``; the peak RSS is the sum over the process and all its
    children, sampled every 50 ms (psutil, a requirement of make test)."""
    import psutil
    start = time.monotonic()
    proc = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    peak = [0]
    watched = psutil.Process(proc.pid)

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss(watched))
            time.sleep(0.05)
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    output, _err = proc.communicate()
    seconds = time.monotonic() - start
    thread.join()
    if check and proc.returncode != 0:
        sys.stderr.write(output[-6000:])
        raise SystemExit("%s failed (rc=%d): %s" % (what, proc.returncode, " ".join(str(c) for c in cmd)))
    return Run(seconds, peak[0], output, proc.returncode)


def median(values) -> float:
    return statistics.median(values)


def spread(values) -> str:
    return "%.1f–%.1f" % (min(values), max(values))


def applied(output: str) -> tuple:
    """(applied, waited for) as the run's "List what is applied and waited for in phase X" tasks
    name them: sets of "Kind namespace/name" (the YAML callback wraps long
    strings; a line break is a space)."""
    def names(label):
        out = set()
        for text in re.findall(r"- '%s: ([^']*)'" % label, output):
            out.update(part for part in " ".join(text.split()).split(", ") if part)
        return out
    return names("apply"), names("wait for")


def kubectl_version(env: dict) -> str:
    proc = subprocess.run([str(KUBECTL), "version", "-o", "json"], env=env, capture_output=True, text=True,
                          check=False)
    try:
        import json
        doc = json.loads(proc.stdout)
        return "kubectl %s, server %s" % (doc["clientVersion"]["gitVersion"], doc["serverVersion"]["gitVersion"])
    except (ValueError, KeyError):
        return "kubectl %s" % KUBECTL


def header(title: str, env: dict, notes: list) -> list:
    lines = ["# %s" % title, "",
             "Measured %s on %s (%s CPUs, Python %s), %s." % (
                 datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), socket.gethostname(),
                 os.cpu_count(), sys.version.split()[0], kubectl_version(env)), ""]
    return lines + notes + [""]


def write(name: str, lines: list) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    text = "\n".join(lines).rstrip() + "\n"
    path.write_text(text)
    print(text)
    log("written to %s" % path.relative_to(ROOT))
    return path
