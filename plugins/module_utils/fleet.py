# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleets: one inventory, many clusters (each an inventory host).

What a playbook run did on each cluster is kept in that host's fact
``neurallog_fleet_result`` (result, objects changed, URLs, the failure's
first line); the last play of site.yml prints one table over every cluster
of the run with ``summary_table``."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

RESULTS = ("ok", "failed", "unreachable")

# How the collection's clients (plugin_utils/cluster.py, module_utils/k8s_client.py)
# and kubernetes.core say that the API server did not answer at all.
_UNREACHABLE = re.compile(
    r"API server \S+ (did not answer|could not be reached)|connection refused|failed to establish a new connection"
    r"|no usable Kubernetes connection",
    re.IGNORECASE)


# What Ansible puts before a task's own message.
_ANSIBLE_PREFIX = re.compile(r"^((Task|Action) failed: )+")


def failure_result(message):
    """'unreachable' when ``message`` says the cluster's API server did not
    answer (refused, timed out, no connection configured), else 'failed'."""
    return "unreachable" if _UNREACHABLE.search(str(message or "")) else "failed"


def first_line(message, limit=200):
    """The first non-empty line of a failure message, at most ``limit`` characters."""
    for line in str(message or "").splitlines():
        line = _ANSIBLE_PREFIX.sub("", " ".join(line.split()))
        if line:
            return line if len(line) <= limit else line[:limit - 1] + "…"
    return ""


def summary_rows(results):
    """Rows (cluster, result, changed, urls) of a mapping cluster -> fact
    ``neurallog_fleet_result``, sorted by cluster name. A cluster whose run
    never recorded an outcome (its connection failed before) is
    'unreachable'."""
    rows = []
    for cluster in sorted(results):
        report = results[cluster] or {}
        result = report.get("result") or "unreachable"
        if result not in RESULTS:
            result = "unreachable" if result == "started" else "failed"
        changed = report.get("changed")
        rows.append({
            "cluster": str(cluster),
            "result": result,
            "changed": "-" if changed in (None, "") or result != "ok" else str(int(changed)),
            "urls": ", ".join(report.get("urls") or []) or ("-" if result == "ok" else first_line(report.get("message"))),
        })
    return rows


def summary_table(results):
    """The closing table of a fleet run, as lines: a header, a rule and one
    line per cluster (see summary_rows), then a count per result. The URLs
    column holds the failure's first line for a cluster that did not
    converge."""
    rows = summary_rows(results)
    headers = {"cluster": "cluster", "result": "result", "changed": "objects changed", "urls": "URLs"}
    columns = ["cluster", "result", "changed", "urls"]
    widths = dict((c, max([len(headers[c])] + [len(r[c]) for r in rows])) for c in columns)

    def line(values):
        return " | ".join(values[c].ljust(widths[c]) for c in columns).rstrip()

    lines = [line(headers), "-+-".join("-" * widths[c] for c in columns)]
    lines.extend(line(row) for row in rows)
    counts = dict((name, sum(1 for row in rows if row["result"] == name)) for name in RESULTS)
    lines.append("%d cluster(s): %s" % (len(rows), ", ".join("%d %s" % (counts[n], n) for n in RESULTS)))
    return lines
