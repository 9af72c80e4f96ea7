# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenShift (OKD): how the collection recognises it and what changes there.

The one place for the setting ``neurallog_openshift`` (auto | true | false)
and the API groups that prove a cluster is OpenShift; the platform's plan
(plugins/action/plan.py) and the tenant plan (plugins/action/tenant_plan.py)
both decide with ``resolve``. What the flavour changes in the objects is in
the templates (no fixed runAsUser/runAsGroup/fsGroup, Routes) and in
``restricted_pod_security`` below for the objects built in Python.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Both must be served: Routes (route.openshift.io) and the
# SecurityContextConstraints (security.openshift.io) that assign each
# namespace its own UID range.
APIS = (
    ("route.openshift.io/v1", "Route"),
    ("security.openshift.io/v1", "SecurityContextConstraints"),
)
CHOICES = ("auto", "true", "false")


class OpenShiftSettingError(ValueError):
    pass


def forced(value):
    """``neurallog_openshift`` as True, False or None (auto: detect). A bool
    or its text (-e neurallog_openshift=true) is accepted."""
    if isinstance(value, bool):
        return value
    text = str(value if value is not None else "auto").strip().lower()
    if text not in CHOICES:
        raise OpenShiftSettingError("neurallog_openshift must be one of auto, true, false (got %r)" % (value,))
    return None if text == "auto" else text == "true"


def resolve(value, served=None):
    """Whether the objects are OpenShift's: the setting when it forces it,
    else what the cluster serves (``served(api_version, kind)``); with no
    cluster (render mode) auto means no. Returns (enabled, detected), where
    ``detected`` is None without a cluster."""
    force = forced(value)
    detected = None if served is None else all(served(api, kind) for api, kind in APIS)
    if force is not None:
        return force, detected
    return bool(detected), detected


def missing_message(value):
    """The failure of ``neurallog_openshift`` forced on for a cluster that
    is not OpenShift."""
    return "neurallog_openshift is %s but the cluster does not serve %s (not OpenShift/OKD); use auto or false." % (
        value, " and ".join("%s %s" % (api, kind) for api, kind in APIS))


def restricted_pod_security(pod_security, container_security, openshift):
    """The pod and container securityContext for OpenShift's restricted-v2
    SCC: without runAsUser, runAsGroup and fsGroup (the SCC assigns them
    from the namespace's range); everything else is kept (fsGroupChangePolicy
    too: it applies to the fsGroup the SCC assigns). Unchanged when
    ``openshift`` is false."""
    if not openshift:
        return pod_security, container_security
    fixed = ("runAsUser", "runAsGroup", "fsGroup")
    return (dict((k, v) for k, v in pod_security.items() if k not in fixed),
            dict((k, v) for k, v in container_security.items() if k not in fixed))
