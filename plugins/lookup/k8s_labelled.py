# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: k8s_labelled
author: NeuralLog Platform Engineering (@neurallog)
version_added: 0.1.0
short_description: The objects of some kinds that carry a label, in some namespaces
description:
  - Lists each given kind once, cluster-wide, with a label selector, and returns the objects that are in
    one of O(namespaces) (metadata only, plus apiVersion and kind). Kinds the cluster does not serve
    (an optional API that is not installed) are skipped.
  - Connection settings follow kubernetes.core (C(K8S_AUTH_KUBECONFIG), C(~/.kube/config), in-cluster)
    unless O(kubeconfig) or O(context) are given; every request is bounded by O(request_timeout).
options:
  _terms:
    description: The kinds, as mappings with C(api_version) and C(kind).
    required: true
  label_selector:
    description: Label selector.
    type: str
    required: true
  namespaces:
    description: Namespaces to keep (empty keeps every namespace).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - neurallog.platform.cluster
requirements:
  - kubernetes (Python)
  - kubernetes.core
"""

EXAMPLES = r"""
- name: The platform's HPAs and Deployments
  ansible.builtin.set_fact:
    live: >-
      {{ query('neurallog.platform.k8s_labelled',
               [{'api_version': 'autoscaling/v2', 'kind': 'HorizontalPodAutoscaler'}, {'api_version': 'apps/v1', 'kind': 'Deployment'}],
               label_selector='app.kubernetes.io/managed-by=neurallog.platform', namespaces=['neurallog-system']) }}
"""

RETURN = r"""
_list:
  description: The objects (apiVersion, kind and metadata).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase

from ansible_collections.neurallog.platform.plugins.module_utils.k8s_client import ClusterUnreachable, get_client

try:
    from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError
except ImportError:  # pragma: no cover - depends on the control node; get_client says what is missing
    class NotFoundError(Exception):
        pass

    class ResourceNotFoundError(Exception):
        pass


def _flatten(terms):
    out = []
    for term in terms:
        if isinstance(term, (list, tuple)):
            out.extend(term)
        else:
            out.append(term)
    return out


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        try:
            client = get_client(self.get_option("kubeconfig"), self.get_option("context"),
                                self.get_option("request_timeout"))
        except (ClusterUnreachable, ValueError) as exc:
            raise AnsibleError("neurallog.platform.k8s_labelled: %s" % exc)
        selector = self.get_option("label_selector")
        namespaces = set(self.get_option("namespaces") or [])
        out = []
        for kind in _flatten(terms):
            api_version, name = kind.get("api_version", "v1"), kind["kind"]
            try:
                resource = client.resource(name, api_version)
                items = client.get(resource, label_selector=selector).to_dict().get("items") or []
            except (NotFoundError, ResourceNotFoundError):
                continue  # an optional API that is not installed: nothing of that kind exists
            except ClusterUnreachable as exc:
                raise AnsibleError("neurallog.platform.k8s_labelled: %s" % exc)
            except Exception as exc:  # pylint: disable=broad-exception-caught
                raise AnsibleError("Listing %s %s with %r failed: %s" % (api_version, name, selector, exc))
            for item in items:
                metadata = item.get("metadata") or {}
                if namespaces and metadata.get("namespace") not in namespaces:
                    continue
                out.append({"apiVersion": api_version, "kind": name,
                            "metadata": dict((k, metadata.get(k)) for k in
                                             ("name", "namespace", "labels", "ownerReferences") if metadata.get(k))})
        return out
