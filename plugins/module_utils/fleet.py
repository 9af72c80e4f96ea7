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


_BOOLEANS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def serial_batches(value):
    """neurallog_serial as the play keyword ``serial`` takes it: 0 (every
    cluster at once), a number of clusters, a percentage ("50%") or a list of
    those (batches in turn, the last repeated: [1, "50%"] is a canary, then
    halves). ValueError naming the setting otherwise."""
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        text = str(item).strip() if item is not None else "0"
        if isinstance(item, bool) or not re.match(r"^(\d+|(100|[1-9]\d?)%)$", text or "0"):
            raise ValueError("neurallog_serial must be 0 (every cluster at once), a number of clusters, a percentage "
                             "from 1%% to 100%% or a list of those (e.g. [1, \"50%%\"]: a canary, then halves); got %r"
                             % (value,))
        out.append(text if text.endswith("%") else int(text or 0))
    if isinstance(value, (list, tuple)) and (not out or 0 in out):
        raise ValueError("neurallog_serial: a list of batches needs sizes above 0 (e.g. [1, \"50%%\"]); got %r" % (value,))
    return out if isinstance(value, (list, tuple)) else out[0]


def max_fail_percentage(value, any_errors_fatal=False):
    """The play keyword ``max_fail_percentage`` from neurallog_max_fail_percentage
    (0 to 100: the run stops once more than that share of the clusters of a
    batch failed; 100 never stops it) and neurallog_any_errors_fatal (true:
    the first failed cluster stops the run, as 0 does). ValueError naming the
    setting otherwise."""
    fatal = any_errors_fatal
    if not isinstance(fatal, bool):
        fatal = _BOOLEANS.get(str(fatal).strip().lower())
        if fatal is None:
            raise ValueError("neurallog_any_errors_fatal must be true or false, got %r" % (any_errors_fatal,))
    text = str(value).strip()
    if isinstance(value, bool) or not re.match(r"^\d+$", text) or int(text) > 100:
        raise ValueError("neurallog_max_fail_percentage must be a whole number from 0 to 100 (the share of the "
                         "clusters of a batch that may fail before the run stops; 100: never), got %r" % (value,))
    return 0 if fatal else int(text)
