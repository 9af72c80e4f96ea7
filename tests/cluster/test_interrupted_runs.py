# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Interrupted runs, on the local cluster: site.yml killed in the middle of
an apply, and the API server stopped in the middle of a run. The next run
converges, sends only what is missing, and rotates no password.

The runs install the data phase (``--tags data``: the namespaces and the
data services, which hold the passwords) into namespaces of the test's own
(see test_safety_rails.Platform). Network policies are left out: they are
not what these tests are about, and they keep each run shorter. The
outage test stops and starts the API server of a local cluster of its own
(hack/localcluster/cluster.py apiserver-stop/apiserver-start)."""

import base64
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kubernetes import client, config

from ansible_collections.neurallog.platform.plugins.module_utils import tls
from cluster_helpers import wait_until
from test_safety_rails import REPO, Platform

SITE = os.path.join(REPO, "site.yml")
SCOPE = ("--tags", "data", "--skip-tags", "network_policies")
CLUSTER_SCRIPT = os.path.join(REPO, "hack", "localcluster", "cluster.py")
# What the run writes besides the objects it declares: its Lease, and the
# claims the StatefulSet controller makes.
NOT_DECLARED = ("Lease", "PersistentVolumeClaim")


@pytest.fixture()
def platform(api_client):
    platform = Platform(api_client)
    yield platform
    platform.cleanup()


class HoldingWebhook:
    """A validating admission webhook on 127.0.0.1 (the local cluster's API
    server runs on this machine) that holds the first StatefulSet create in
    the data namespace until the test releases it, then refuses it. The run
    is killed while its apply waits on the API server: in the middle of an
    apply, whatever the speed of the machine."""

    def __init__(self, admission, namespace):
        self.admission, self.namespace = admission, namespace
        self.name = "hold-%s" % uuid.uuid4().hex[:8]
        self.seen, self.released = threading.Event(), threading.Event()
        ca = tls._new_ca("neurallog test webhook CA", 1)
        leaf = tls._issue(ca, "127.0.0.1", [], ["127.0.0.1"], 1)
        self.files = tempfile.mkdtemp(prefix="neurallog-webhook-")
        for key in ("tls.crt", "tls.key"):
            with open(os.path.join(self.files, key), "w") as handle:
                handle.write(leaf[key])
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.seen.set()
                hook.released.wait(60)
                body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {
                    "uid": review["request"]["uid"], "allowed": False,
                    "status": {"message": "held by the interrupted-run test"}}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(os.path.join(self.files, "tls.crt"), os.path.join(self.files, "tls.key"))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.admission.create_validating_webhook_configuration({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": self.name},
            "webhooks": [{
                "name": "%s.test.neurallog.io" % self.name,
                "clientConfig": {"url": "https://127.0.0.1:%d/" % self.server.server_address[1],
                                 "caBundle": base64.b64encode(ca["ca.crt"].encode()).decode()},
                "rules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE"],
                           "resources": ["statefulsets"], "scope": "Namespaced"}],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "failurePolicy": "Fail", "sideEffects": "None", "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 30}]})

    def close(self):
        self.released.set()
        try:
            self.admission.delete_validating_webhook_configuration(self.name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
        self.server.shutdown()


def secrets(platform):
    """name -> data of every Secret in the test's namespaces."""
    out = {}
    for namespace in platform.namespaces:
        try:
            items = platform.core.list_namespaced_secret(namespace).items
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            continue
        for item in items:
            out["%s/%s" % (namespace, item.metadata.name)] = item.data
    return out


def applied(output):
    """The objects the run's 'apply:' lines name, as Kind/namespace/name
    (the YAML callback wraps long strings: a line break is a space)."""
    names = set()
    for text in re.findall(r"- 'apply: ([^']*)'", output):
        for part in " ".join(text.split()).split(", "):
            kind, where = part.split(" ", 1)
            namespace, _sep, name = where.rpartition("/")
            names.add("%s/%s/%s" % (kind, namespace, name))
    return names


def declared(versions):
    return dict((key, rv) for key, rv in versions.items() if key.split("/")[0] not in NOT_DECLARED)


def recap(output):
    found = re.findall(r"localhost\s+: ok=\d+\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", output)
    assert found, output[-3000:]
    return int(found[-1][0]), int(found[-1][1])


def start_site(platform, *args, **extra):
    """site.yml in its own process group (ansible-playbook forks workers)."""
    return subprocess.Popen(platform.command(SITE, *(SCOPE + args), **extra), cwd=REPO, env=platform.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def kill_run(proc):
    """SIGKILL ansible-playbook and every process it started: its workers
    call setsid, so the process group alone would leave a worker finishing
    its apply after the playbook is gone (as when the machine dies, nothing
    of the run goes on)."""
    import psutil
    try:
        family = [psutil.Process(proc.pid)] + psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return
    for member in family:
        try:
            member.kill()
        except psutil.NoSuchProcess:
            pass


def finish(proc, timeout=600):
    output, _err = proc.communicate(timeout=timeout)
    proc.output = output
    return proc


def data_secret_written(platform):
    try:
        return [s.metadata.name for s in platform.core.list_namespaced_secret(
            platform.data, label_selector="app.kubernetes.io/managed-by=neurallog.platform").items]
    except client.ApiException as exc:
        if exc.status == 404:
            return []
        raise


def statefulsets(platform):
    try:
        return [s.metadata.name for s in client.AppsV1Api(platform.core.api_client)
                .list_namespaced_stateful_set(platform.data).items]
    except client.ApiException as exc:
        if exc.status == 404:
            return []
        raise


def test_a_run_killed_in_the_middle_of_an_apply_is_completed_by_the_next_run(platform):
    hook = HoldingWebhook(client.AdmissionregistrationV1Api(platform.core.api_client), platform.data)
    try:
        proc = start_site(platform)
        try:
            # The data phase applies its Secrets, then its other objects in
            # order: the run is killed while the API server holds its first
            # StatefulSet, so some of the phase's objects exist and others not.
            wait_until("the first StatefulSet of the data phase held by the webhook",
                       lambda: hook.seen.is_set() or proc.poll() is not None, timeout=240)
        finally:
            if proc.poll() is None:
                kill_run(proc)
            killed = finish(proc)
    finally:
        hook.close()
    assert killed.returncode == -signal.SIGKILL, "the run ended before it could be killed:\n" + killed.output[-3000:]
    assert not statefulsets(platform), "the kill came too late: the StatefulSets were already applied"
    before, passwords = platform.versions(), secrets(platform)
    assert passwords, "the killed run wrote no Secret"

    # The killed run's Lease is still held: a plain re-run is refused and
    # writes nothing; breaking the stale lock lets it through.
    refused = platform.site(*SCOPE)
    assert refused.returncode != 0, refused.output[-3000:]
    assert "Another NeuralLog run holds the lock" in refused.output, refused.output[-3000:]
    assert platform.versions() == before

    rerun = platform.site(*SCOPE, neurallog_lock_break=True)
    assert rerun.returncode == 0, rerun.output[-3000:]
    after = platform.versions()

    missing = set(declared(after)) - set(declared(before))
    assert missing, "nothing was left to do after the kill"
    assert any(key.startswith("StatefulSet/") for key in missing)
    print("re-run applied: %s" % ", ".join(sorted(applied(rerun.output))))
    assert applied(rerun.output) == missing, rerun.output[-3000:]
    # What the killed run had written was not sent again.
    assert dict((key, after[key]) for key in declared(before)) == declared(before)
    assert secrets(platform) == passwords

    again = platform.site(*SCOPE)
    assert again.returncode == 0, again.output[-3000:]
    assert recap(again.output) == (0, 0), again.output[-3000:]
    assert not applied(again.output)
    assert secrets(platform) == passwords


class OutagePlatform(Platform):
    """A Platform on the outage test's own cluster."""

    def __init__(self, api_client, kubeconfig):
        super().__init__(api_client)
        self.kubeconfig = kubeconfig

    def env(self):
        return dict(super().env(), K8S_AUTH_KUBECONFIG=self.kubeconfig, KUBECONFIG=self.kubeconfig)


def cluster_command(command):
    """hack/localcluster/cluster.py <command> for the outage test's cluster:
    a local one of its own, since kwok leaves the pods that existed while
    their node was NotReady unready for good (the outage could mark the
    shared test cluster's nodes NotReady)."""
    env = dict(os.environ, NEURALLOG_CLUSTER_NAME=os.environ.get("NEURALLOG_CLUSTER_PREFIX", "") + "pytest-outage",
               NEURALLOG_CLUSTER_PROVIDER="local")
    proc = subprocess.run([sys.executable, CLUSTER_SCRIPT, command], env=env, check=True, timeout=300,
                          capture_output=True, text=True)
    return proc.stdout.strip()


@pytest.fixture()
def outage_platform():
    kubeconfig = cluster_command("up")
    platform = OutagePlatform(config.new_client_from_config(config_file=kubeconfig), kubeconfig)
    yield platform
    cluster_command("down")


def test_a_run_during_an_api_server_outage_fails_clearly_and_the_next_run_converges(outage_platform):
    platform = outage_platform
    proc = start_site(platform)
    stopped = False
    try:
        wait_until("the first Secret of the data phase", lambda: data_secret_written(platform) or proc.poll() is not None,
                   timeout=240)
        passwords = secrets(platform)
        cluster_command("apiserver-stop")
        stopped = True
        failed = finish(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        if stopped:
            cluster_command("apiserver-start")
    server = platform.core.api_client.configuration.host
    assert failed.returncode not in (0, -signal.SIGKILL), failed.output[-3000:]
    assert recap(failed.output)[1] >= 1, failed.output[-3000:]
    # Clear: the failed task's message names the server and the cause
    # (kubernetes.core's apply names it as host='127.0.0.1', port=N).
    fatal = failed.output[failed.output.index("fatal:"):] if "fatal:" in failed.output else failed.output
    port = int(server.rsplit(":", 1)[1])
    assert re.search(r"127\.0\.0\.1(:|', port=)%d" % port, fatal), failed.output[-3000:]
    assert re.search(r"(?i)connection refused|failed to establish a new connection", fatal), failed.output[-3000:]
    print("outage message: %s" % " ".join(fatal.split("msg:", 1)[-1].split("\n\n")[0].split()))

    wait_until("the API server", lambda: platform.core.read_namespace(platform.data))
    rerun = platform.site(*SCOPE, neurallog_lock_break=True)
    assert rerun.returncode == 0, rerun.output[-3000:]
    assert statefulsets(platform)
    assert dict((k, v) for k, v in secrets(platform).items() if k in passwords) == passwords
    again = platform.site(*SCOPE)
    assert recap(again.output) == (0, 0), again.output[-3000:]
    assert dict((k, v) for k, v in secrets(platform).items() if k in passwords) == passwords
