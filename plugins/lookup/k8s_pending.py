# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: k8s_pending
author: NeuralLog Platform Engineering (@neurallog)
version_added: 0.1.0
short_description: The declared Kubernetes objects that applying could change
description:
  - Lists every kind of the given objects once, cluster-wide, with a label selector, and returns
    the objects that are missing, drifted or declared differently, in their order. An object is
    left out only when it exists with the same C(neurallog.io/applied-hash) annotation and every
    declared field has its declared value (see P(neurallog.platform.pending_objects#filter)), so
    applying the result is equivalent to applying every object.
  - The objects must be stamped with P(neurallog.platform.stamp_applied_hash#filter).
  - The listing and the comparison happen in this process; only the pending objects are returned,
    so a run where nothing changed costs one request per kind instead of two per object.
  - Connection settings follow kubernetes.core (C(K8S_AUTH_KUBECONFIG), C(~/.kube/config), in-cluster)
    unless O(kubeconfig) or O(context) are given; every request is bounded by O(request_timeout).
options:
  _terms:
    description: The stamped objects (a list of dicts).
    required: true
  label_selector:
    description: Selects, cluster-wide, every object that the given objects can be.
    type: str
    required: true
extends_documentation_fragment:
  - neurallog.platform.cluster
requirements:
  - kubernetes (Python)
  - kubernetes.core
"""

EXAMPLES = r"""
- name: Apply only what changed
  kubernetes.core.k8s:
    definition: "{{ query('neurallog.platform.k8s_pending', stamped, label_selector='app.kubernetes.io/managed-by=neurallog.platform') }}"
    apply: true
    server_side_apply: {field_manager: neurallog.platform}
  vars:
    stamped: "{{ manifests | neurallog.platform.stamp_applied_hash }}"
"""

RETURN = r"""
_list:
  description: The objects to apply, in the given order.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase

from ansible_collections.neurallog.platform.plugins.module_utils.k8s_client import ClusterUnreachable, get_client
from ansible_collections.neurallog.platform.plugins.module_utils.manifests import pending_objects

try:
    from kubernetes.dynamic.exceptions import NotFoundError
except ImportError:  # pragma: no cover - depends on the control node; get_client says what is missing
    class NotFoundError(Exception):
        pass


def _flatten(terms):
    objects = []
    for term in terms:
        if isinstance(term, (list, tuple)):
            objects.extend(term)
        else:
            objects.append(term)
    return objects


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        objects = _flatten(terms)
        if not objects:
            return []
        try:
            client = get_client(self.get_option("kubeconfig"), self.get_option("context"),
                                self.get_option("request_timeout"))
        except (ClusterUnreachable, ValueError) as exc:
            raise AnsibleError("neurallog.platform.k8s_pending: %s" % exc)
        selector = self.get_option("label_selector")
        groups, seen = [], set()
        for obj in objects:
            kind, api_version = obj.get("kind"), obj.get("apiVersion", "v1")
            if (api_version, kind) in seen:
                continue
            seen.add((api_version, kind))
            try:
                resource = client.resource(kind, api_version)
                items = client.get(resource, label_selector=selector).to_dict().get("items") or []
            except NotFoundError:
                # the API is not served yet (a CRD installed by this run):
                # nothing of that kind exists, everything is pending
                items = []
            except ClusterUnreachable as exc:
                raise AnsibleError("neurallog.platform.k8s_pending: %s" % exc)
            except Exception as exc:  # pylint: disable=broad-exception-caught
                raise AnsibleError("Listing %s %s with %r failed: %s" % (api_version, kind, selector, exc))
            groups.append({"kind": kind, "items": items})
        return pending_objects(objects, groups)
