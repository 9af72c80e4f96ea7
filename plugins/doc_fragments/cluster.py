# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """Connection options of the controller-side plugins (module_utils/k8s_client.py)."""

    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path of the kubeconfig. Without it and O(context), the cluster is found as kubernetes.core finds it
        (the C(K8S_AUTH_*) environment variables such as C(K8S_AUTH_KUBECONFIG), C(K8S_AUTH_HOST) and
        C(K8S_AUTH_API_KEY), in-cluster configuration, then C(~/.kube/config)).
    type: str
  context:
    description: Context of the kubeconfig.
    type: str
  request_timeout:
    description:
      - Seconds each request to the API server may wait for its answer; connecting (TLS handshake
        included) may take at most 10 of them. A request whose answer timed out is not retried.
      - A server that cannot be reached fails the task with a message naming its URL and the
        underlying error (connection refused, timed out, TLS).
    type: float
    default: 20
"""
