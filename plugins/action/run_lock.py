# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of neurallog.platform.run_lock (documented in
plugins/modules/run_lock.py): the decisions are in module_utils/run_lock.py,
this file only talks to the API server through the bounded client of
module_utils/k8s_client.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import getpass
import os
import socket

from ansible.errors import AnsibleError

from ansible_collections.neurallog.platform.plugins.module_utils.k8s_client import get_client
from ansible_collections.neurallog.platform.plugins.module_utils.run_lock import (
    LockConflict, LockRefused, LeaseStore, acquire, check, release)
from ansible_collections.neurallog.platform.plugins.plugin_utils.controller_action import ControllerAction

try:
    from kubernetes.dynamic.exceptions import ConflictError, NotFoundError
except ImportError:  # pragma: no cover - depends on the control node; get_client says what is missing
    class ConflictError(Exception):
        pass

    class NotFoundError(Exception):
        pass


def default_holder(run, cluster=""):
    """user@host pid <ansible-playbook pid> <run> on <cluster>: the worker
    running this task is a child of the ansible-playbook process, which is
    the same for every task of one run and differs between runs; the cluster
    (inventory host) tells apart the clusters of one fleet run, so two hosts
    of an inventory that name the same cluster cannot both hold its lock."""
    try:
        user = getpass.getuser()
    except Exception:  # pylint: disable=broad-exception-caught
        user = str(os.getuid())
    holder = ("%s@%s pid %s %s" % (user, socket.gethostname(), os.getppid(), run)).strip()
    return ("%s on %s" % (holder, cluster)) if cluster else holder


class KubernetesLeaseStore(LeaseStore):
    def __init__(self, client, labels):
        self.client = client
        self.leases = client.resource("Lease", "coordination.k8s.io/v1")
        self.labels = labels

    def get(self, name, namespace):
        try:
            return self.client.get(self.leases, name=name, namespace=namespace).to_dict()
        except NotFoundError:
            return None

    def _ensure_namespace(self, namespace):
        namespaces = self.client.resource("Namespace", "v1")
        try:
            self.client.create(namespaces, {"apiVersion": "v1", "kind": "Namespace",
                                            "metadata": {"name": namespace, "labels": self.labels}})
        except ConflictError:
            pass

    def create(self, body):
        namespace = body["metadata"]["namespace"]
        try:
            return self.client.create(self.leases, body, namespace=namespace).to_dict()
        except ConflictError as exc:
            raise LockConflict(str(exc))
        except NotFoundError:
            # first install: the platform namespace does not exist yet
            self._ensure_namespace(namespace)
            try:
                return self.client.create(self.leases, body, namespace=namespace).to_dict()
            except ConflictError as exc:
                raise LockConflict(str(exc))

    def replace(self, body):
        try:
            return self.client.replace(self.leases, body, namespace=body["metadata"]["namespace"]).to_dict()
        except (ConflictError, NotFoundError) as exc:
            raise LockConflict(str(exc))

    def delete(self, name, namespace, resource_version):
        try:
            self.client.delete(self.leases, name=name, namespace=namespace,
                               body={"preconditions": {"resourceVersion": resource_version}})
        except NotFoundError:
            return
        except ConflictError as exc:
            raise LockConflict(str(exc))


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


class ActionModule(ControllerAction):
    NAME = "run_lock"

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        try:
            args = self.validated_args()
        except AnsibleError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        if args["duration"] < 30:
            result.update(failed=True, msg="run_lock: duration (neurallog_lock_duration) must be at least 30 "
                                           "seconds, got %s" % args["duration"])
            return result
        holder = args["holder"] or default_holder(args["run"], (task_vars or {}).get("inventory_hostname", ""))
        try:
            store = KubernetesLeaseStore(get_client(args["kubeconfig"], args["context"], args["request_timeout"]),
                                         args["labels"])
            if args["state"] == "absent" and self._task.check_mode:
                outcome = {"action": "absent" if store.get(args["name"], args["namespace"]) is None else "not_held"}
            elif args["state"] == "absent":
                outcome = release(store, args["name"], args["namespace"], holder)
            elif self._task.check_mode:
                outcome = check(store, args["name"], args["namespace"], holder, _now)
            else:
                outcome = acquire(store, args["name"], args["namespace"], holder, args["duration"], _now,
                                  labels=args["labels"], break_lock=args["break_lock"])
        except LockRefused as exc:
            result.update(failed=True, msg=str(exc), lock_holder=exc.holder)
            return result
        except Exception as exc:  # pylint: disable=broad-exception-caught
            result.update(failed=True, msg="run_lock: the Lease %s/%s could not be read or written: %s"
                          % (args["namespace"], args["name"], exc))
            return result
        for warning in outcome.get("warnings", []):
            self._display.warning(warning)
        # The Lease is bookkeeping of the run, not platform state: never "changed".
        result.update(changed=False, action=outcome["action"], holder=holder,
                      previous_holder=outcome.get("previous_holder", ""),
                      renewed_at=_now().timestamp(), duration=args["duration"])
        return result
