# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Profile of a no-op site.yml (``make bench-profile``; needs K8S_AUTH_KUBECONFIG).

Converges once (untimed), then runs site.yml again with the
ansible.posix.profile_tasks callback (time per task) and NEURALLOG_PROFILE,
which makes the plan action run under cProfile. Prints, and writes to
build/bench/profile.md, the tasks by time and the plan's top 10 functions
by cumulative time. --site-args adds ansible-playbook arguments (e.g. tags)."""

from __future__ import annotations

import argparse
import io
import os
import pstats
import re
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BIN, OUT, environment, header, log, run, write  # noqa: E402

TASK_TIME = re.compile(r"^(.*?) -+ (\d+\.\d+)s$")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--inventory", default="inventories/local")
    parser.add_argument("--site-args", default="", help="extra ansible-playbook arguments, e.g. tags")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    kubeconfig = os.environ.get("K8S_AUTH_KUBECONFIG")
    if not kubeconfig:
        sys.exit("K8S_AUTH_KUBECONFIG must point at the cluster to profile")
    env = environment(kubeconfig)
    cmd = [BIN / "ansible-playbook", "site.yml", "-i", args.inventory,
           "-e", "ansible_python_interpreter=%s" % sys.executable] + shlex.split(args.site_args)
    log("converging first (untimed)")
    run(cmd, env, "converge")
    OUT.mkdir(parents=True, exist_ok=True)
    stats_file = OUT / "plan.prof"
    profiled = dict(env, ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks", NEURALLOG_PROFILE=str(stats_file),
                    PROFILE_TASKS_TASK_OUTPUT_LIMIT="all", PROFILE_TASKS_SORT_ORDER="descending")
    log("no-op run with profile_tasks and the plan under cProfile")
    noop = run(cmd, profiled, "profiled no-op")
    if noop.changed != 0:
        sys.exit("the profiled run was not a no-op (changed=%d)" % noop.changed)
    tasks = []
    for line in noop.output.splitlines():
        found = TASK_TIME.match(line.strip())
        if found:
            tasks.append((found.group(1).strip(), float(found.group(2))))
    stream = io.StringIO()
    stats = pstats.Stats(str(stats_file), stream=stream)
    stats.sort_stats("cumulative").print_stats(args.top)
    requests = re.search(r"requests: (\d+)", noop.output)
    scope = "site.yml %s" % args.site_args if args.site_args else "the whole site.yml"
    lines = header("Profile of a no-op site.yml", env, [
        "Workload: %s, `%s`; wall time %.1f s (ansible-playbook, start to end)." % (
            scope, args.inventory, noop.seconds)])
    lines += ["## Tasks (profile_tasks)", "", "| task | s |", "|---|---|"]
    lines += ["| %s | %.2f |" % (name.replace("|", "\\|"), seconds) for name, seconds in tasks[:args.top]]
    lines += ["", "## The plan action, top %d by cumulative time (cProfile)" % args.top, "", "```"]
    body = stream.getvalue().strip().splitlines()
    start = next((i for i, line in enumerate(body) if line.strip().startswith("ncalls")), 0)
    lines += [line.rstrip() for line in body[max(0, start - 2):]] + ["```", ""]
    lines.append("Statistics: `%s` (`python -m pstats`)." % stats_file.relative_to(Path.cwd()) if str(
        stats_file).startswith(str(Path.cwd())) else "Statistics: `%s`." % stats_file)
    if requests:
        lines.append("API requests of the plan: %s." % requests.group(1))
    write("profile.md", lines)


if __name__ == "__main__":
    main()
