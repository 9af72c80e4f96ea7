# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Monitoring: whether a Prometheus Operator's Prometheus picks up the
platform's ServiceMonitors and PrometheusRule, and the Grafana dashboards'
ConfigMaps.

A Prometheus resource (monitoring.coreos.com/v1) selects ServiceMonitors by
``serviceMonitorSelector`` among the namespaces ``serviceMonitorNamespaceSelector``
selects, and rules by ``ruleSelector``/``ruleNamespaceSelector``. As the
operator documents them: a null object selector matches no object, an empty
one every object; a null namespace selector means the Prometheus' own
namespace only, an empty one every namespace. ``selection_warnings`` says,
per Prometheus, which label (on the objects or on their namespace) is
missing when none of them would pick ours up: the most common reason
ServiceMonitors silently scrape nothing."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json

# (kind, the Prometheus fields that select it, the setting that fixes the object labels)
SELECTED_KINDS = (
    ("ServiceMonitor", "serviceMonitorSelector", "serviceMonitorNamespaceSelector"),
    ("PrometheusRule", "ruleSelector", "ruleNamespaceSelector"),
)


def _requirements(selector):
    """[(text, test(labels))] of a LabelSelector's requirements."""
    out = []
    for key, value in sorted(((selector or {}).get("matchLabels") or {}).items()):
        out.append(("%s=%s" % (key, value), lambda labels, k=key, v=value: labels.get(k) == str(v)))
    for expr in (selector or {}).get("matchExpressions") or []:
        key, operator = expr.get("key"), expr.get("operator")
        values = [str(v) for v in expr.get("values") or []]
        if operator == "In":
            out.append(("%s in (%s)" % (key, ", ".join(values)),
                        lambda labels, k=key, v=values: k in labels and labels[k] in v))
        elif operator == "NotIn":
            out.append(("%s not in (%s)" % (key, ", ".join(values)),
                        lambda labels, k=key, v=values: labels.get(k) not in v))
        elif operator == "Exists":
            out.append(("a label %s" % key, lambda labels, k=key: k in labels))
        elif operator == "DoesNotExist":
            out.append(("no label %s" % key, lambda labels, k=key: k not in labels))
        else:
            out.append(("%s %s (an unknown operator)" % (key, operator), lambda labels: False))
    return out


def unmet(selector, labels):
    """The requirements of a LabelSelector that ``labels`` do not meet, as
    text ("release=kube-prometheus-stack"); [] when it matches. A null
    selector is not handled here (its meaning depends on the field)."""
    labels = dict((str(k), str(v)) for k, v in (labels or {}).items())
    return [text for text, test in _requirements(selector) if not test(labels)]


def _name(prometheus):
    meta = prometheus.get("metadata") or {}
    return "%s/%s" % (meta.get("namespace"), meta.get("name"))


def why_not_selected(prometheus, kind, object_labels, namespace, namespace_labels):
    """Why ``prometheus`` would not pick up objects of ``kind`` with
    ``object_labels`` in ``namespace`` (whose labels are ``namespace_labels``):
    a list of reasons, [] when it would."""
    fields = dict((k, (sel, ns_sel)) for k, sel, ns_sel in SELECTED_KINDS)
    field, ns_field = fields[kind]
    spec = prometheus.get("spec") or {}
    own_namespace = (prometheus.get("metadata") or {}).get("namespace")
    reasons = []
    ns_selector = spec.get(ns_field)
    if ns_selector is None:
        if namespace != own_namespace:
            reasons.append("its %s is unset, so it reads %ss only from its own namespace %s, not from %s" % (
                ns_field, kind, own_namespace, namespace))
    else:
        missing = unmet(ns_selector, namespace_labels)
        if missing:
            reasons.append("its %s needs %s on the namespace %s, which lacks it" % (
                ns_field, " and ".join(missing), namespace))
    selector = spec.get(field)
    if selector is None:
        reasons.append("its %s is unset, so it selects no %s" % (field, kind))
    else:
        missing = unmet(selector, object_labels)
        if missing:
            reasons.append("its %s needs the label %s, which the platform's %ss lack" % (
                field, " and ".join(missing), kind))
    return reasons


def selection_warnings(prometheuses, kinds, object_labels, namespace, namespace_labels,
                       labels_setting="monitoring_selector_labels",
                       namespace_setting="namespaces_extra_labels.monitoring"):
    """Warnings (text) when no Prometheus of ``prometheuses`` (the listed
    monitoring.coreos.com/v1 Prometheus objects; None when they could not be
    read) would pick up the platform's objects of each of ``kinds``; one
    warning per Prometheus and kind, naming the Prometheus and the missing
    label, and the setting that adds it."""
    if not kinds:
        return []
    if prometheuses is None:
        return ["Could not read the Prometheus resources (monitoring.coreos.com/v1 Prometheus): not checked "
                "whether they select the platform's %s (labels %s)." % (
                    " and ".join("%ss" % k for k in kinds), _labels_text(object_labels))]
    if not prometheuses:
        return ["No Prometheus resource (monitoring.coreos.com/v1 Prometheus) in the cluster: nothing will use the "
                "platform's %s in %s until one selects the labels %s." % (
                    " and ".join("%ss" % k for k in kinds), namespace, _labels_text(object_labels))]
    out = []
    for kind in kinds:
        reasons = [(p, why_not_selected(p, kind, object_labels, namespace, namespace_labels))
                   for p in sorted(prometheuses, key=_name)]
        if any(not why for _p, why in reasons):
            continue
        for prometheus, why in reasons:
            hints = []
            if any("which the platform's" in r for r in why):
                hints.append("add the label to %s" % labels_setting)
            if any("on the namespace" in r for r in why):
                hints.append("add it to the namespace with %s" % namespace_setting)
            out.append("Prometheus %s would not pick up the platform's %ss in %s: %s%s." % (
                _name(prometheus), kind, namespace, "; ".join(why),
                (" (%s)" % "; ".join(hints)) if hints else ""))
    return out


def _labels_text(labels):
    return ", ".join("%s=%s" % (k, v) for k, v in sorted((labels or {}).items())) or "(none)"


# -- Grafana dashboards --------------------------------------------------------

DATASOURCE_VARIABLE = "datasource"
DATASOURCE_REF = "${%s}" % DATASOURCE_VARIABLE


def set_constants(dashboard, constants):
    """A copy of ``dashboard`` whose templating variables of type constant
    hold the values ``constants`` gives them (the install's namespace
    names); a constant variable with no value given is an error, so a
    dashboard cannot ship with another install's namespaces."""
    out = copy.deepcopy(dashboard)
    constants = constants or {}
    for variable in (out.get("templating") or {}).get("list") or []:
        if variable.get("type") != "constant":
            continue
        name = variable.get("name")
        if name not in constants:
            raise ValueError("dashboard %s: no value for its constant variable %s (known: %s)" % (
                out.get("uid"), name, ", ".join(sorted(constants)) or "none"))
        value = str(constants[name])
        variable["query"] = value
        variable["current"] = {"selected": False, "text": value, "value": value}
        variable["options"] = [{"selected": True, "text": value, "value": value}]
    return out


def dashboard_configmap(dashboard, name, namespace, labels=None, annotations=None, constants=None):
    """The ConfigMap holding one dashboard (key ``<name>.json``, as the
    Grafana sidecar writes it to a file), with the labels and annotations
    the sidecar selects by. The JSON is written with sorted keys, so the
    same dashboard always gives the same bytes."""
    body = set_constants(dashboard, constants)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {}),
                     "annotations": dict(annotations or {})},
        "data": {"%s.json" % name: json.dumps(body, sort_keys=True, indent=1)},
    }


def _walk(node, path=""):
    """(path, key, value) of every dict entry in a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key, value
            yield from _walk(value, "%s.%s" % (path, key) if path else key)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, "%s[%d]" % (path, index))


def dashboard_problems(dashboard):
    """What makes a dashboard unfit to ship: no uid, import inputs
    (``__inputs``, ``${DS_...}``), a datasource other than the
    ``${datasource}`` variable (a fixed uid or name), or no such variable."""
    problems = []
    uid = dashboard.get("uid")
    if not uid or len(str(uid)) > 40:
        problems.append("uid %r must be set and at most 40 characters" % (uid,))
    if "__inputs" in dashboard or "__requires" in dashboard:
        problems.append("import inputs (__inputs/__requires) instead of the %s variable" % DATASOURCE_REF)
    text = json.dumps(dashboard)
    if "DS_" in text:
        problems.append("a DS_* input is referenced")
    variables = (dashboard.get("templating") or {}).get("list") or []
    sources = [v for v in variables if v.get("type") == "datasource"]
    if [v.get("name") for v in sources] != [DATASOURCE_VARIABLE]:
        problems.append("needs exactly one datasource variable named %s, has %s" % (
            DATASOURCE_VARIABLE, [v.get("name") for v in sources]))
    elif sources[0].get("query") != "prometheus":
        problems.append("the %s variable must be of the prometheus type" % DATASOURCE_VARIABLE)
    for path, key, value in _walk(dashboard):
        if key != "datasource":
            continue
        if path.startswith("annotations"):
            # Grafana's built-in annotation query
            if isinstance(value, dict) and value.get("type") == "grafana":
                continue
        if isinstance(value, dict):
            if value.get("uid") != DATASOURCE_REF:
                problems.append("%s.datasource uses %r instead of %s" % (path, value.get("uid"), DATASOURCE_REF))
        elif value != DATASOURCE_REF:
            problems.append("%s.datasource is %r instead of %s" % (path, value, DATASOURCE_REF))
    return problems
