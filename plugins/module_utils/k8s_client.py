# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kubernetes client of the controller-side plugins (lookups, actions).

``get_client()`` finds the cluster exactly as kubernetes.core does (its own
code reads O(kubeconfig)/O(context), the C(K8S_AUTH_*) environment,
in-cluster config, then ``~/.kube/config``) and returns kubernetes.core's
client object, with two differences:

- every request, discovery included, has a timeout: ``CONNECT_TIMEOUT``
  seconds to connect (TLS handshake included) and ``READ_TIMEOUT`` seconds
  for each answer, and a request whose answer timed out is not retried, so a
  server that accepts connections and never answers fails in well under 30 s
  instead of hanging the run;
- a failure to reach the server (refused, timed out, TLS, DNS, a bad
  kubeconfig) raises ``ClusterUnreachable``, whose message names the server
  URL and the underlying error. HTTP answers (404, 409 …) keep the
  kubernetes client's own exceptions.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket

CONNECT_TIMEOUT = 10
READ_TIMEOUT = 20

try:
    import urllib3
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s import client as _core_client
except ImportError as exc:  # pragma: no cover - depends on the control node
    _core_client = None
    IMPORT_ERROR = exc
else:
    IMPORT_ERROR = None


class ClusterUnreachable(Exception):
    """The API server could not be reached; the message names it and why."""


def _reason(exc):
    """The innermost useful cause of a transport error, in plain words."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "reason", None)
        if isinstance(inner, BaseException):
            exc = inner
            continue
        break
    text = str(exc)
    lowered = text.lower()
    if isinstance(exc, ConnectionRefusedError) or "connection refused" in lowered:
        return "connection refused"
    if "timed out" in lowered or isinstance(exc, socket.timeout):
        return "no answer in time (%s)" % text
    return "%s: %s" % (type(exc).__name__, text)


def describe_failure(host, exc, timeout=None):
    """One message for a failed call: the server URL and the underlying error."""
    bound = ""
    if timeout:
        bound = " (timeouts: %ss to connect, %ss to answer)" % tuple(timeout)
    return "The Kubernetes API server %s could not be reached: %s%s" % (
        host or "(no server configured)", _reason(exc), bound)


def _bounded(rest_client, host, timeout):
    """Wrap ``rest_client.request`` so every call has ``timeout`` and a
    transport failure becomes ClusterUnreachable."""
    if getattr(rest_client, "_neurallog_bounded", False):
        return
    request = rest_client.request

    def bounded_request(method, url, *args, **kwargs):
        if not kwargs.get("_request_timeout"):
            kwargs["_request_timeout"] = timeout
        try:
            return request(method, url, *args, **kwargs)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterUnreachable(describe_failure(host, exc, timeout))

    rest_client.request = bounded_request
    rest_client._neurallog_bounded = True


def request_timeout(value=None):
    """``(connect, read)`` seconds from a number, a pair or None (the defaults)."""
    if value in (None, ""):
        return (CONNECT_TIMEOUT, READ_TIMEOUT)
    if isinstance(value, (list, tuple)):
        pair = tuple(float(v) for v in value)
    else:
        pair = (min(float(CONNECT_TIMEOUT), float(value)), float(value))
    if len(pair) != 2 or min(pair) <= 0:
        raise ValueError("request_timeout: must be a number of seconds above 0 or a pair [connect, read], "
                         "got %r" % (value,))
    return tuple(int(v) if v == int(v) else v for v in pair)


def get_client(kubeconfig=None, context=None, timeout=None, **auth):
    """kubernetes.core's client for the cluster, every request bounded.

    ``timeout`` is ``(connect, read)`` in seconds, or one number: the read
    timeout, with a connect timeout of at most ``CONNECT_TIMEOUT``. ``auth`` takes any other
    kubernetes.core connection option (host, api_key, validate_certs …)."""
    if _core_client is None:
        raise ClusterUnreachable("Talking to Kubernetes needs the kubernetes.core collection and the kubernetes "
                                 "Python package: %s" % IMPORT_ERROR)
    import kubernetes

    timeout = request_timeout(timeout)
    options = dict((key, value) for key, value in auth.items() if value not in (None, ""))
    if kubeconfig:
        options["kubeconfig"] = kubeconfig
    if context:
        options["context"] = context
    spec = _core_client._create_auth_spec(None, **options)
    where = spec.get("host") or spec.get("kubeconfig") or "~/.kube/config"
    try:
        configuration = _core_client._create_configuration(spec)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        raise ClusterUnreachable("No Kubernetes API server could be configured from %s (context %s): %s" % (
            where, spec.get("context") or "current", exc))
    # Answers that timed out are not retried (each retry would wait again);
    # refused connections are retried once.
    configuration.retries = urllib3.util.Retry(total=1, connect=1, read=0, status=0, redirect=0)
    host = configuration.host
    api_client = kubernetes.client.ApiClient(configuration)
    _bounded(api_client.rest_client, host, timeout)
    set_header = getattr(_core_client, "_set_header", None)  # not in every kubernetes.core release
    for header, value in _core_client._create_headers(None, **options).items():
        if set_header is not None:
            set_header(api_client, header, value)
        else:
            api_client.set_default_header(header, value)
    try:
        dynamic = _core_client.k8sdynamicclient.K8SDynamicClient(api_client, discoverer=_core_client.LazyDiscoverer)
    except ClusterUnreachable:
        raise
    except Exception as exc:  # pylint: disable=broad-exception-caught
        raise ClusterUnreachable(describe_failure(host, exc, timeout))
    return _core_client.K8SClient(configuration=configuration, client=dynamic)
