"""Safety rails against data loss, on the local cluster: the run lock (a
Lease), the refusal to generate passwords for data that already exists, and
the report (and opt-in removal) of objects no longer declared.

Each test installs into namespaces of its own (neurallog_namespace_*), so
the tests do not see each other's objects or locks."""

import base64
import datetime
import json
import os
import re
import subprocess
import sys
import uuid

import pytest
from kubernetes import client
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

from cluster_helpers import wait_until

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.dirname(sys.executable)
PLAYBOOK = os.path.join(BIN, "ansible-playbook")
HOLD_LOCK = os.path.join(os.path.dirname(__file__), "playbooks", "hold_lock.yml")
LABELS = {"app.kubernetes.io/part-of": "neurallog", "app.kubernetes.io/managed-by": "neurallog.platform"}
# Every kind the platform writes into its namespaces (what "nothing
# changed" is checked against), plus the Lease.
KINDS = [("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "Service"), ("v1", "ServiceAccount"),
         ("v1", "PersistentVolumeClaim"), ("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"),
         ("autoscaling/v2", "HorizontalPodAutoscaler"), ("policy/v1", "PodDisruptionBudget"),
         ("networking.k8s.io/v1", "Ingress"), ("networking.k8s.io/v1", "NetworkPolicy"),
         ("coordination.k8s.io/v1", "Lease")]


class Platform:
    """Namespaces of one test and how to run the playbooks against them."""

    def __init__(self, api_client):
        self.prefix = "s" + uuid.uuid4().hex[:6]
        self.system, self.data = self.prefix + "-system", self.prefix + "-data"
        self.ingress, self.monitoring = self.prefix + "-ingress", self.prefix + "-monitoring"
        self.namespaces = [self.system, self.data, self.ingress, self.monitoring]
        self.core = client.CoreV1Api(api_client)
        self.dynamic = DynamicClient(api_client)
        self.leases = self.dynamic.resources.get(api_version="coordination.k8s.io/v1", kind="Lease")

    def extra_vars(self, **more):
        values = {"neurallog_namespace_system": self.system, "neurallog_namespace_data": self.data,
                  "neurallog_namespace_ingress": self.ingress, "neurallog_namespace_monitoring": self.monitoring}
        values.update(more)
        return json.dumps(values)

    def command(self, playbook, *args, **extra):
        return [PLAYBOOK, "-i", os.path.join(REPO, "inventories", "local"), playbook,
                "-e", "ansible_python_interpreter=%s" % sys.executable, "-e", self.extra_vars(**extra)] + list(args)

    @staticmethod
    def env():
        return dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                    ANSIBLE_FORCE_COLOR="0")

    def run(self, playbook, *args, **extra):
        proc = subprocess.run(self.command(playbook, *args, **extra), cwd=REPO, env=self.env(),
                              capture_output=True, text=True, timeout=1500, check=False)
        proc.output = proc.stdout + proc.stderr
        return proc

    def site(self, *args, **extra):
        return self.run(os.path.join(REPO, "site.yml"), *args, **extra)

    def lease(self):
        try:
            return self.dynamic.get(self.leases, name="neurallog-lock", namespace=self.system).to_dict()
        except NotFoundError:
            return None

    def hold_lease(self, holder, renewed, duration):
        try:
            self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=self.system)))
        except client.ApiException as exc:
            if exc.status != 409:
                raise
        self.wait_for_namespace_defaults()
        stamp = renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self.dynamic.create(self.leases, namespace=self.system, body={
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "neurallog-lock", "namespace": self.system, "labels": LABELS},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration,
                     "acquireTime": stamp, "renewTime": stamp}})

    def wait_for_namespace_defaults(self):
        """The controllers add a default ServiceAccount and the
        kube-root-ca.crt ConfigMap to a new namespace shortly after it is
        created; wait for both so that they are not taken for writes of the
        run under test."""
        def present():
            names = ([sa.metadata.name for sa in self.core.list_namespaced_service_account(self.system).items]
                     + [cm.metadata.name for cm in self.core.list_namespaced_config_map(self.system).items])
            return "default" in names and "kube-root-ca.crt" in names
        wait_until("the default ServiceAccount and CA ConfigMap of %s" % self.system, present)

    def versions(self):
        """kind/namespace/name -> resourceVersion of everything in the namespaces."""
        out = {}
        for namespace in self.namespaces:
            try:
                out["Namespace//" + namespace] = self.core.read_namespace(namespace).metadata.resource_version
            except client.ApiException as exc:
                if exc.status != 404:
                    raise
                continue
            for api_version, kind in KINDS:
                try:
                    resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
                except ResourceNotFoundError:
                    continue
                for item in self.dynamic.get(resource, namespace=namespace).items:
                    out["%s/%s/%s" % (kind, namespace, item.metadata.name)] = item.metadata.resourceVersion
        return out

    def exists(self, api_version, kind, namespace, name):
        resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
        try:
            self.dynamic.get(resource, name=name, namespace=namespace)
            return True
        except NotFoundError:
            return False

    def cleanup(self):
        for namespace in self.namespaces:
            try:
                self.core.delete_namespace(namespace)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise


@pytest.fixture()
def platform(api_client):
    platform = Platform(api_client)
    yield platform
    platform.cleanup()


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _print_message(title, output, marker):
    """Show the refusal (pytest -s) for the record."""
    for line in output.splitlines():
        if marker in line:
            print("%s: %s" % (title, line.strip()))
            return


def test_a_run_is_refused_while_another_holder_has_the_lock_and_nothing_changes(platform):
    platform.hold_lease("alice@build-7 pid 4242 site.yml", _now(), 900)
    before = platform.versions()

    proc = platform.site()

    assert proc.returncode != 0, proc.output[-3000:]
    assert "Another NeuralLog run holds the lock" in proc.output
    assert "holder 'alice@build-7 pid 4242 site.yml'" in proc.output
    assert "neurallog_lock_break=true" in proc.output
    _print_message("lock refusal", proc.output, "Another NeuralLog run holds the lock")
    # Not one object was written: same objects, same resourceVersions, the
    # Lease untouched and still held by alice.
    assert platform.versions() == before
    assert platform.lease()["spec"]["holderIdentity"] == "alice@build-7 pid 4242 site.yml"


@pytest.mark.parametrize("extra,words", [
    ({"monitoring_scrape_interval": "often"}, ["Invalid monitoring settings", "scrape_interval=often"]),
    ({"ingress_tls_mode": "secret"}, ["ingress_tls_mode 'secret' needs ingress_tls_certificate and ingress_tls_key"]),
    ({"core_services_overrides": {"no-such-service": {"replicas": 1}}}, ["no-such-service"]),
], ids=["monitoring", "ingress", "core_services"])
def test_a_bad_setting_on_a_new_cluster_writes_nothing_not_even_the_lock(platform, extra, words):
    """The roles' checks run before the run lock, whose first Lease would
    create the system namespace."""
    proc = platform.site(**extra)

    assert proc.returncode != 0, proc.output[-3000:]
    reported = " ".join(proc.output.split())
    for word in words:
        assert word in reported, proc.output[-3000:]
    assert platform.versions() == {}


def test_no_secret_in_the_output_of_a_run_that_applies_secrets_at_vvv(platform):
    """The plan's result holds the pending Secrets (here the generated TLS
    certificate and key): it is registered, never shown."""
    proc = platform.site("--tags", "ingress", "-vvv")

    assert proc.returncode == 0, proc.output[-3000:]
    secret = platform.core.read_namespaced_secret("neurallog-tls", platform.system)
    key = base64.b64decode(secret.data["tls.key"]).decode()
    material = [secret.data["tls.key"]] + [line for line in key.splitlines() if "-----" not in line]
    leaked = [value[:6] + "..." for value in material if value in proc.output]
    assert not leaked, "the TLS key is in the output: %s" % leaked
    assert "TLS: self-signed" in proc.output


@pytest.mark.parametrize("playbook,extra", [
    ("tenants.yml", {}),
    ("tenant_onboard.yml", {"tenant": {"id": "acme"}}),
    ("tenant_offboard.yml", {"tenant_offboard_id": "acme", "tenant_offboard_confirm": "acme"}),
    ("uninstall.yml", {}),
])
def test_every_writing_playbook_is_refused_while_the_lock_is_held(platform, playbook, extra):
    platform.hold_lease("alice@build-7 pid 4242 site.yml", _now(), 900)
    before = platform.versions()

    proc = platform.run(os.path.join(REPO, "playbooks", playbook), **extra)

    assert proc.returncode != 0, proc.output[-3000:]
    assert "Another NeuralLog run holds the lock" in proc.output
    assert "holder 'alice@build-7 pid 4242 site.yml'" in proc.output
    assert platform.versions() == before


def test_an_expired_lock_is_taken_over_with_a_warning_and_released(platform):
    platform.hold_lease("killed@build-3 pid 77 site.yml", _now() - datetime.timedelta(hours=1), 60)

    proc = platform.site("--tags", "namespaces")

    assert proc.returncode == 0, proc.output[-3000:]
    assert "held by 'killed@build-3 pid 77 site.yml' expired" in proc.output
    assert "taking it over" in proc.output
    _print_message("takeover warning", proc.output, "expired at")
    # the run did its work under the lock, then released it
    assert platform.core.read_namespace(platform.data).metadata.name == platform.data
    assert platform.lease() is None


def test_a_live_lock_is_broken_only_when_asked(platform):
    platform.hold_lease("stuck@build-1 pid 5 site.yml", _now(), 900)

    proc = platform.run(HOLD_LOCK, hold_lock_seconds=0, neurallog_lock_break=True)

    assert proc.returncode == 0, proc.output[-3000:]
    assert "Breaking the run lock" in proc.output and "stuck@build-1 pid 5 site.yml" in proc.output
    assert platform.lease() is None


def test_of_two_runs_started_at_the_same_moment_exactly_one_proceeds(platform):
    commands = [platform.command(HOLD_LOCK, hold_lock_seconds=20) for _run in range(2)]
    procs = [subprocess.Popen(command, cwd=REPO, env=platform.env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for command in commands]
    outputs = [proc.communicate(timeout=600)[0] for proc in procs]
    codes = [proc.returncode for proc in procs]

    assert sorted(codes) == [0, 2], "\n\n".join(outputs)[-6000:]
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    # the refusal names the winner: its user@host and its ansible-playbook pid
    assert "Another NeuralLog run holds the lock" in outputs[loser]
    assert "pid %d hold_lock.yml" % procs[winner].pid in outputs[loser]
    _print_message("simultaneous run refused", outputs[loser], "Another NeuralLog run holds the lock")
    assert platform.lease() is None


def test_the_lock_is_released_after_a_failed_run(platform):
    # a namespace name the API server refuses: the run fails after the lock was
    # taken (the NetworkPolicies, left out, would refuse the name in the plan)
    proc = platform.site("--tags", "namespaces", "--skip-tags", "network_policies",
                         neurallog_namespace_monitoring="Not_A_Valid_Name")

    assert proc.returncode != 0, proc.output[-3000:]
    # the plan took the lock (the namespaces were pending), the apply failed
    assert re.search(r"TASK \[neurallog.platform.reconcile : Plan the run\][^\n]*\n(ok|changed):", proc.output)
    assert "Not_A_Valid_Name" in proc.output
    assert re.search(r"TASK \[neurallog.platform.reconcile : Release the run lock\][^\n]*\n(ok|changed):",
                     proc.output), proc.output[-3000:]
    assert platform.lease() is None


def _claims(platform):
    return [claim.metadata.name for claim in platform.core.list_namespaced_persistent_volume_claim(platform.data).items]


def test_a_lost_password_secret_with_its_volume_kept_is_refused_and_nothing_changes(platform):
    proc = platform.site("--tags", "namespaces,postgresql")
    assert proc.returncode == 0, proc.output[-3000:]
    wait_until("the PostgreSQL volume", lambda: "data-postgresql-0" in _claims(platform))

    platform.core.delete_namespaced_secret("postgresql", platform.data)
    platform.core.delete_namespaced_secret("database-credentials", platform.system)
    before = platform.versions()

    proc = platform.site("--tags", "namespaces,postgresql")

    assert proc.returncode != 0, proc.output[-3000:]
    assert "the Secret %s/postgresql that keeps its password(s) (postgres-password, password) is missing" % (
        platform.data) in proc.output
    assert "data-postgresql-0" in proc.output
    assert "kubectl -n %s create secret generic postgresql" % platform.data in proc.output
    assert '"neurallog_reset_credentials": ["postgresql"]' in proc.output
    _print_message("lost credentials refusal", proc.output, "that keeps its password(s)")
    after = platform.versions()
    assert after == before
    assert "Secret/%s/postgresql" % platform.data not in after
    assert "Secret/%s/database-credentials" % platform.system not in after
    assert platform.lease() is None


def test_objects_no_longer_declared_are_reported_and_removed_only_with_prune(platform):
    log_hpa = ("autoscaling/v2", "HorizontalPodAutoscaler", platform.system, "log-service-hpa")
    action = ("apps/v1", "Deployment", platform.system, "action-service")

    proc = platform.site()
    assert proc.returncode == 0, proc.output[-3000:]
    assert "Objects no longer declared: none" in proc.output
    assert platform.exists(*log_hpa) and platform.exists(*action)
    # a volume nobody declares any more (its StatefulSet is gone), with our labels
    platform.core.create_namespaced_persistent_volume_claim(platform.data, client.V1PersistentVolumeClaim(
        metadata=client.V1ObjectMeta(name="data-retired-0", labels=LABELS),
        spec=client.V1PersistentVolumeClaimSpec(access_modes=["ReadWriteOnce"], resources=client.V1VolumeResourceRequirements(
            requests={"storage": "1Gi"}))))

    # log-service without its autoscaler, and action-service removed
    services = {"api-gateway": {"credentials": ["redis"]}, "tenant-router": {"credentials": ["database", "redis"]},
                "api-service": {"replicas": 3, "credentials": ["database", "redis"]},
                "log-service": {"replicas": 3, "credentials": ["elasticsearch", "redis"]},
                "rule-service": {"credentials": ["database", "redis"]}, "mcp-service": {"credentials": ["database", "redis"]},
                "auth-service": {"credentials": ["database", "redis"]}}
    proc = platform.site(core_services_services=services, core_services_overrides={})
    assert proc.returncode == 0, proc.output[-3000:]
    reported = " ".join(proc.output.split())  # the summary wraps long lines
    _print_message("undeclared report", proc.output, "No longer declared")
    assert "No longer declared, still in the cluster (-e neurallog_prune=true removes them)" in reported
    for kind, name in (("HorizontalPodAutoscaler", "log-service-hpa"), ("Deployment", "action-service")):
        assert "%s %s/%s" % (kind, platform.system, name) in reported
    assert "PersistentVolumeClaim %s/data-retired-0 (data volume)" % platform.data in reported
    assert platform.exists(*log_hpa) and platform.exists(*action)

    proc = platform.site(core_services_services=services, core_services_overrides={}, neurallog_prune=True)
    assert proc.returncode == 0, proc.output[-3000:]
    assert "Removed, no longer declared (neurallog_prune)" in " ".join(proc.output.split())
    _print_message("prune report", proc.output, "Removed, no longer declared")
    assert not platform.exists(*log_hpa)
    wait_until("action-service deleted", lambda: not platform.exists(*action))
    # volumes are never pruned: the retired one and the data services' own
    claims = _claims(platform)
    assert "data-retired-0" in claims and "data-postgresql-0" in claims
    assert platform.exists("v1", "Secret", platform.data, "postgresql")
