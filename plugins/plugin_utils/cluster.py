# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One read of the cluster per run, on the controller.

``Cluster`` talks to the API server with the kubernetes client and keeps
what it read: the API discovery (two requests, aggregated discovery), and
every list it made (one request per kind and namespace or label selector).
A later question about one object is answered from a list already made.
Every request has a timeout; a failure names the server and the cause."""

from __future__ import annotations

import json
import os
import time
from urllib.parse import urlencode

DISCOVERY_ACCEPT = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList")


class ClusterError(Exception):
    """A request to the API server failed; the message names the server."""


def _env(name):
    value = os.environ.get(name)
    return value if value else None


def api_client(kubeconfig=None, context=None):
    """A kubernetes ApiClient configured like kubernetes.core: the given
    kubeconfig/context, else K8S_AUTH_KUBECONFIG/K8S_AUTH_CONTEXT, else
    ~/.kube/config (KUBECONFIG), else the in-cluster service account."""
    try:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException
    except ImportError as exc:  # pragma: no cover - depends on the control node
        raise ClusterError("the kubernetes Python package is needed on the control node: %s" % exc)
    kubeconfig = kubeconfig or _env("K8S_AUTH_KUBECONFIG")
    context = context or _env("K8S_AUTH_CONTEXT")
    configuration = client.Configuration()
    try:
        if kubeconfig or os.path.exists(os.path.expanduser(os.environ.get("KUBECONFIG", "~/.kube/config"))):
            config.load_kube_config(config_file=kubeconfig and os.path.expanduser(kubeconfig), context=context,
                                    client_configuration=configuration, persist_config=False)
        else:
            config.load_incluster_config(client_configuration=configuration)
    except (ConfigException, OSError, TypeError, ValueError) as exc:
        raise ClusterError("no usable Kubernetes connection (kubeconfig %s%s): %s. Set K8S_AUTH_KUBECONFIG, or "
                           "neurallog_kubeconfig/neurallog_context." % (
                               kubeconfig or os.environ.get("KUBECONFIG", "~/.kube/config"),
                               (", context %s" % context) if context else "", exc))
    # One try per request: urllib3 retries three times by default, which
    # multiplies every timeout by four against a server that never answers.
    configuration.retries = False
    return client.ApiClient(configuration)


THROTTLE_RETRIES = 5
THROTTLE_MAX_PAUSE = 2.0


def _headers(response):
    """The response's headers as a dict, whatever the REST layer's version."""
    getheaders = getattr(response, "getheaders", None)
    try:
        return dict(getheaders() if getheaders else getattr(response, "headers", None) or {})
    except (TypeError, ValueError):
        return {}


def _first_line(exc):
    text = str(getattr(exc, "reason", None) or exc)
    return " ".join(text.split())[:400]


def _seconds(value):
    return ("%.1f" % value).rstrip("0").rstrip(".")


class Cluster:
    """The cluster as read by one run (see the module description)."""

    def __init__(self, kubeconfig=None, context=None, timeout=20.0, client=None):
        self.client = client or api_client(kubeconfig, context)
        self.host = self.client.configuration.host
        self.timeout = float(timeout)
        # A client made elsewhere: its connection pools retry no more either.
        pool_kw = getattr(getattr(self.client.rest_client, "pool_manager", None), "connection_pool_kw", None)
        if isinstance(pool_kw, dict):
            pool_kw["retries"] = False
        self._resources = None
        self._lists = {}
        self.requests = 0

    # -- transport ---------------------------------------------------------
    def request(self, method, path, query=None, body=None, accept="application/json", content_type=None,
                missing_ok=False):
        """JSON of one request; None for a 404 when missing_ok. Uses the
        client's REST layer directly (its signature is the same in every
        kubernetes client release), with a connect (TLS handshake included)
        and a read timeout. A GET answered 429 (API priority and fairness,
        or a resource the server is still setting up, e.g. a CRD just
        Established) is tried again after its Retry-After, at most
        ``THROTTLE_RETRIES`` times and never longer than the read timeout in
        all; nothing else is retried."""
        waited = 0.0
        for attempt in range(THROTTLE_RETRIES + 1):
            status, data, retry_after = self._send(method, path, query, body, accept, content_type)
            if status != 429 or method != "GET" or attempt == THROTTLE_RETRIES:
                break
            pause = min(max(retry_after, 0.2), THROTTLE_MAX_PAUSE)
            if waited + pause > self.timeout:
                break
            time.sleep(pause)
            waited += pause
        if status == 404 and missing_ok:
            return None
        if not 200 <= int(status) < 300:
            detail = ""
            try:
                detail = json.loads(data).get("message") or ""
            except (TypeError, ValueError, AttributeError):
                detail = str(data[:200])
            raise ClusterError("%s %s%s: HTTP %s %s" % (method, self.host, path, status, detail))
        return json.loads(data) if data else {}

    def _send(self, method, path, query, body, accept, content_type):
        """(status, body, Retry-After seconds) of one request."""
        configuration = self.client.configuration
        headers = {"Accept": accept, "User-Agent": "neurallog.platform"}
        if content_type or body is not None:
            headers["Content-Type"] = content_type or "application/json"
        token = configuration.get_api_key_with_prefix("BearerToken") if hasattr(
            configuration, "get_api_key_with_prefix") else None
        if token:
            headers["Authorization"] = token
        url = self.host + path
        if query:
            url += "?" + urlencode(query)
        self.requests += 1
        connect_timeout = min(self.timeout, 10.0)
        try:
            response = self.client.rest_client.request(
                method, url, headers=headers, body=body, _request_timeout=(connect_timeout, self.timeout))
            if getattr(response, "data", None) is None and hasattr(response, "read"):
                response.read()
            status, data, headers = response.status, response.data, _headers(response)
        except Exception as exc:  # pylint: disable=broad-exception-caught  # urllib3, socket and API errors
            status = getattr(exc, "status", None)
            if not status:
                raise ClusterError("the Kubernetes API server %s did not answer %s %s (connect timeout %ss, read "
                                   "timeout %ss): %s" % (self.host, method, path, _seconds(connect_timeout),
                                                         _seconds(self.timeout), _first_line(exc)))
            data, headers = getattr(exc, "body", None) or b"", getattr(exc, "headers", None) or {}
        try:
            retry_after = float(headers.get("Retry-After") or headers.get("retry-after") or 1)
        except (TypeError, ValueError, AttributeError):
            retry_after = 1.0
        return int(status), data, retry_after

    # -- discovery ---------------------------------------------------------
    def resources(self):
        """{(apiVersion, kind): (plural, namespaced)} of every served resource."""
        if self._resources is None:
            found = {}
            for path in ("/api", "/apis"):
                doc = self.request("GET", path, accept=DISCOVERY_ACCEPT)
                if doc.get("kind") != "APIGroupDiscoveryList":
                    raise ClusterError("%s%s: the API server does not serve aggregated discovery "
                                       "(Kubernetes 1.30 or later is needed)" % (self.host, path))
                for group in doc.get("items") or []:
                    name = (group.get("metadata") or {}).get("name") or ""
                    for version in group.get("versions") or []:
                        api_version = "%s/%s" % (name, version["version"]) if name else version["version"]
                        for res in version.get("resources") or []:
                            kind = (res.get("responseKind") or {}).get("kind")
                            if kind and (api_version, kind) not in found:
                                found[(api_version, kind)] = (res["resource"], res.get("scope") == "Namespaced")
            self._resources = found
        return self._resources

    def served(self, api_version, kind):
        return (api_version, kind) in self.resources()

    def version(self):
        return self.request("GET", "/version")

    def path(self, api_version, kind, namespace=None, name=None):
        plural, namespaced = self.resources()[(api_version, kind)]
        base = "/api/%s" % api_version if "/" not in api_version else "/apis/%s" % api_version
        if namespaced and namespace:
            base += "/namespaces/%s" % namespace
        base += "/%s" % plural
        return base + ("/%s" % name if name else "")

    # -- reads -------------------------------------------------------------
    def list(self, api_version, kind, namespace=None, label_selector=None):
        """The objects of a kind (in a namespace, or everywhere), each with
        apiVersion and kind set; [] when the API is not served."""
        key = (api_version, kind, namespace or "", label_selector or "")
        if key not in self._lists:
            if not self.served(api_version, kind):
                self._lists[key] = []
            else:
                query = {"labelSelector": label_selector} if label_selector else {}
                doc = self.request("GET", self.path(api_version, kind, namespace), query=query, missing_ok=True)
                items = (doc or {}).get("items") or []
                for item in items:
                    item.setdefault("apiVersion", api_version)
                    item.setdefault("kind", kind)
                self._lists[key] = items
        return self._lists[key]

    def get(self, api_version, kind, namespace, name):
        """The object, or None; from the namespace's list of that kind."""
        for item in self.list(api_version, kind, namespace):
            if (item.get("metadata") or {}).get("name") == name:
                return item
        return None

    # -- writes ------------------------------------------------------------
    def apply(self, obj, field_manager, force=True, dry_run=False):
        """Server-side apply of one object (our field manager; conflicts
        forced when asked; dryRun=All when dry_run); the object the server
        returns. The namespace of a namespaced object must be set."""
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        metadata = obj.get("metadata") or {}
        if (api_version, kind) not in self.resources():
            raise ClusterError("%s %s is not served by the API server %s" % (kind, api_version, self.host))
        if self.resources()[(api_version, kind)][1] and not metadata.get("namespace"):
            raise ClusterError("a namespaced %s needs metadata.namespace" % kind)
        query = {"fieldManager": field_manager}
        if force:
            query["force"] = "true"
        if dry_run:
            query["dryRun"] = "All"
        path = self.path(api_version, kind, metadata.get("namespace"), metadata["name"])
        return self.request("PATCH", path, query=query, body=json.dumps(obj),
                            content_type="application/apply-patch+yaml")

    def forget(self):
        """Drop every list (after writes, before reading again)."""
        self._lists = {}


class ClusterLeaseStore:
    """module_utils.run_lock's LeaseStore over a Cluster (no discovery of
    its own: the Lease and Namespace paths are fixed)."""

    def __init__(self, cluster, labels=None):
        self.cluster = cluster
        self.labels = labels or {}

    @staticmethod
    def _path(namespace, name=None):
        return "/apis/coordination.k8s.io/v1/namespaces/%s/leases%s" % (namespace, ("/" + name) if name else "")

    def get(self, name, namespace):
        return self.cluster.request("GET", self._path(namespace, name), missing_ok=True)

    def _write(self, method, path, body, conflict, missing_ok=False):
        from ansible_collections.neurallog.platform.plugins.module_utils.run_lock import LockConflict
        try:
            return self.cluster.request(method, path, body=body, content_type="application/json",
                                        missing_ok=missing_ok)
        except ClusterError as exc:
            if " HTTP 409 " in str(exc) + " " or "HTTP 409" in str(exc):
                raise LockConflict(str(exc))
            raise

    def create(self, body):
        namespace = body["metadata"]["namespace"]
        created = self._write("POST", self._path(namespace), body, True, missing_ok=True)
        if created is None:  # first install: the namespace does not exist yet
            ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": self.labels}}
            try:
                self.cluster.request("POST", "/api/v1/namespaces", body=ns, content_type="application/json")
            except ClusterError as exc:
                if "HTTP 409" not in str(exc):
                    raise
            created = self._write("POST", self._path(namespace), body, True)
        return created

    def replace(self, body):
        meta = body["metadata"]
        replaced = self._write("PUT", self._path(meta["namespace"], meta["name"]), body, True, missing_ok=True)
        if replaced is None:
            from ansible_collections.neurallog.platform.plugins.module_utils.run_lock import LockConflict
            raise LockConflict("the Lease %s/%s is gone" % (meta["namespace"], meta["name"]))
        return replaced

    def delete(self, name, namespace, resource_version):
        body = {"preconditions": {"resourceVersion": resource_version}}
        self._write("DELETE", self._path(namespace, name), body, True, missing_ok=True)
