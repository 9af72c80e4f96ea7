# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a tenant admin may and may not do, proven on the local cluster.

Tenants are onboarded by the real role (playbooks/tenants.yml), which also
applies the admission policies. Every request below is then made *as a
tenant admin*: a user impersonated into the tenant's admin group (the
RoleBinding the role creates), or the token of a ServiceAccount bound to
the tenant-admin Role. Refusals are the API server's own answers (RBAC,
ResourceQuota admission, ValidatingAdmissionPolicy); set
NEURALLOG_PRINT_REFUSALS=1 and run with -s to print them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from cluster_helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "inventories" / "local"
RUN = uuid.uuid4().hex[:5]
ACME, BETA, GAMMA = "acme%s" % RUN, "beta%s" % RUN, "gamma%s" % RUN
SECURITY = client.V1SecurityContext(
    run_as_non_root=True, run_as_user=1000, allow_privilege_escalation=False,
    capabilities=client.V1Capabilities(drop=["ALL"]),
    seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"))


def _domain():
    with open(INVENTORY / "group_vars" / "all" / "main.yml") as handle:
        return yaml.safe_load(handle)["ingress_domain"]


DOMAIN = _domain()


def _kubeconfig():
    return os.environ.get("K8S_AUTH_KUBECONFIG") or os.environ.get("KUBECONFIG")


def onboard(tenants):
    """Run playbooks/tenants.yml for ``tenants`` (the role applies the policies too)."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), K8S_AUTH_KUBECONFIG=_kubeconfig())
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/tenants.yml",
           "-i", str(INVENTORY), "-e", json.dumps({"tenant_list": tenants, "tenant_wait": False})]
    proc = subprocess.run(cmd, cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def _wait_for_quota(core, namespace):
    # Quota admission needs the usage the quota controller computes first.
    wait_until("quota status in %s" % namespace,
               lambda: core.read_namespaced_resource_quota("tenant-quota", namespace).status.hard)


def _policies(api_client):
    admission = client.AdmissionregistrationV1Api(api_client)
    return ([p.metadata.name for p in admission.list_validating_admission_policy(
        label_selector="app.kubernetes.io/component=tenant-admission").items],
        [b.metadata.name for b in admission.list_validating_admission_policy_binding(
            label_selector="app.kubernetes.io/component=tenant-admission").items])


def _external_ip_service(name="probe"):
    return client.V1Service(metadata=client.V1ObjectMeta(name=name), spec=client.V1ServiceSpec(
        external_ips=["203.0.113.10"], ports=[client.V1ServicePort(port=80, protocol="TCP")]))


@pytest.fixture(scope="module")
def tenants(core, api_client):
    # Policies left by an earlier run would hide a role that applies none.
    admission = client.AdmissionregistrationV1Api(api_client)
    selector = "app.kubernetes.io/component=tenant-admission"
    admission.delete_collection_validating_admission_policy_binding(label_selector=selector)
    admission.delete_collection_validating_admission_policy(label_selector=selector)
    onboard([{"id": ACME, "redis": {"enabled": False}}, {"id": BETA, "redis": {"enabled": False}}])
    for tenant in (ACME, BETA):
        _wait_for_quota(core, "tenant-" + tenant)

    # The admission plugin loads new policies asynchronously: wait until the
    # policy refuses a dry run, whoever sends it (whether the role applied
    # the policies at all is test_the_role_applies_the_admission_policies).
    def policy_active():
        try:
            core.create_namespaced_service("tenant-" + ACME, _external_ip_service(), dry_run="All")
        except ApiException as exc:
            return exc.status == 422 or exc.status == 403
        return False
    if "neurallog-tenant-services" in _policies(api_client)[1]:
        wait_until("the tenant Service policy to be active", policy_active)
    yield {"acme": ACME, "beta": BETA}
    for tenant in (ACME, BETA):
        core.delete_namespace("tenant-" + tenant)


def _admin_client(tenant, user="alice"):
    """The cluster administrator's credentials, impersonating ``user`` in
    the tenant's admin group (tenant_admin_group_format)."""
    api = config.new_client_from_config(config_file=_kubeconfig())
    api.set_default_header("Impersonate-User", "%s@%s" % (user, tenant))
    api.set_default_header("Impersonate-Group", "tenant-%s-admins" % tenant)
    return api


@pytest.fixture(scope="module")
def acme_admin(tenants):
    return _admin_client(tenants["acme"])


def refusal(call, *args, **kwargs):
    """The API server's refusal of ``call``: (HTTP status, message)."""
    with pytest.raises(ApiException) as info:
        call(*args, **kwargs)
    message = json.loads(info.value.body)["message"]
    if os.environ.get("NEURALLOG_PRINT_REFUSALS"):
        print("\nREFUSED %s: %s" % (info.value.status, message))
    return info.value.status, message


def _service(name, **spec):
    return client.V1Service(metadata=client.V1ObjectMeta(name=name), spec=client.V1ServiceSpec(
        selector={"app": name}, ports=[client.V1ServicePort(port=80, target_port=8080, protocol="TCP")], **spec))


def _ingress(name, host, annotations=None, tls_hosts=None):
    rule = client.V1IngressRule(http=client.V1HTTPIngressRuleValue(paths=[client.V1HTTPIngressPath(
        path="/", path_type="Prefix", backend=client.V1IngressBackend(service=client.V1IngressServiceBackend(
            name="web", port=client.V1ServiceBackendPort(number=80))))]))
    if host is not None:
        rule.host = host
    spec = client.V1IngressSpec(ingress_class_name="nginx", rules=[rule])
    if tls_hosts:
        spec.tls = [client.V1IngressTLS(hosts=tls_hosts, secret_name="web-tls")]
    return client.V1Ingress(metadata=client.V1ObjectMeta(name=name, annotations=annotations), spec=spec)


def test_the_role_applies_the_admission_policies(api_client, tenants):
    names = ["neurallog-tenant-ingresses", "neurallog-tenant-services"]
    assert _policies(api_client) == (names, names)


# --- refused -----------------------------------------------------------------

def test_loadbalancer_service_is_refused_by_the_quota(acme_admin, tenants):
    status, message = refusal(client.CoreV1Api(acme_admin).create_namespaced_service,
                              "tenant-" + tenants["acme"], _service("lb", type="LoadBalancer"))
    assert status == 403
    assert 'exceeded quota: tenant-quota' in message and "services.loadbalancers=0" in message, message


def test_nodeport_service_is_refused_by_the_quota(acme_admin, tenants):
    status, message = refusal(client.CoreV1Api(acme_admin).create_namespaced_service,
                              "tenant-" + tenants["acme"], _service("np", type="NodePort"))
    assert status == 403
    assert 'exceeded quota: tenant-quota' in message and "services.nodeports=0" in message, message


def test_external_ips_are_refused_by_the_policy(acme_admin, tenants):
    status, message = refusal(client.CoreV1Api(acme_admin).create_namespaced_service,
                              "tenant-" + tenants["acme"], _external_ip_service("ext"))
    assert status == 403
    assert "ValidatingAdmissionPolicy 'neurallog-tenant-services'" in message
    assert "spec.externalIPs is not allowed" in message, message


def test_external_ips_added_later_are_refused(acme_admin, tenants):
    core = client.CoreV1Api(acme_admin)
    namespace = "tenant-" + tenants["acme"]
    core.create_namespaced_service(namespace, _service("later"))
    status, message = refusal(core.patch_namespaced_service, "later", namespace,
                              {"spec": {"externalIPs": ["203.0.113.11"]}})
    assert status == 403 and "spec.externalIPs is not allowed" in message, message


def test_external_name_service_is_refused_by_the_policy(acme_admin, tenants):
    service = client.V1Service(metadata=client.V1ObjectMeta(name="alias"), spec=client.V1ServiceSpec(
        type="ExternalName", external_name="redis.tenant-%s.svc.cluster.local" % tenants["beta"]))
    status, message = refusal(client.CoreV1Api(acme_admin).create_namespaced_service,
                              "tenant-" + tenants["acme"], service)
    assert status == 403 and "type ExternalName are not allowed" in message, message


def test_endpoints_are_read_only(acme_admin, tenants):
    core = client.CoreV1Api(acme_admin)
    namespace = "tenant-" + tenants["acme"]
    core.list_namespaced_endpoints(namespace)
    endpoints = client.V1Endpoints(metadata=client.V1ObjectMeta(name="web"), subsets=[client.V1EndpointSubset(
        addresses=[client.V1EndpointAddress(ip="10.0.0.1")], ports=[client.CoreV1EndpointPort(port=80)])])
    status, message = refusal(core.create_namespaced_endpoints, namespace, endpoints)
    assert status == 403
    assert 'cannot create resource "endpoints"' in message and "alice@" in message, message


def test_deletecollection_is_refused(acme_admin, tenants):
    core = client.CoreV1Api(acme_admin)
    namespace = "tenant-" + tenants["acme"]
    core.list_namespaced_secret(namespace)
    status, message = refusal(core.delete_collection_namespaced_secret, namespace)
    assert status == 403 and 'cannot deletecollection resource "secrets"' in message, message
    status, message = refusal(core.delete_collection_namespaced_persistent_volume_claim, namespace)
    assert status == 403 and 'cannot deletecollection resource "persistentvolumeclaims"' in message, message


def test_impersonating_a_service_account_is_refused(core, api_client, tenants):
    """A ServiceAccount bound to tenant-admin (as a tenant's automation would
    be) cannot act as another ServiceAccount of its namespace."""
    namespace = "tenant-" + tenants["acme"]
    core.create_namespaced_service_account(namespace, client.V1ServiceAccount(
        metadata=client.V1ObjectMeta(name="deployer")))
    client.RbacAuthorizationV1Api(api_client).create_namespaced_role_binding(namespace, client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="deployer-admin"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="tenant-admin"),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name="deployer", namespace=namespace)]))
    token = core.create_namespaced_service_account_token(
        "deployer", namespace, client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
    ).status.token
    cfg = client.Configuration()
    cfg.host = api_client.configuration.host
    cfg.ssl_ca_cert = api_client.configuration.ssl_ca_cert
    cfg.api_key = {"authorization": "Bearer " + token}
    with client.ApiClient(cfg) as as_deployer:
        # The binding works: the ServiceAccount acts as a tenant admin ...
        wait_until("the deployer's RoleBinding to be effective",
                   lambda: _allowed(client.CoreV1Api(as_deployer).list_namespaced_config_map, namespace))
        as_deployer.set_default_header("Impersonate-User", "system:serviceaccount:%s:default" % namespace)
        status, message = refusal(client.CoreV1Api(as_deployer).list_namespaced_config_map, namespace)
    assert status == 403
    assert 'cannot impersonate resource "serviceaccounts"' in message, message


def _allowed(call, *args):
    try:
        call(*args)
    except ApiException as exc:
        if exc.status == 403:
            return False
        raise
    return True


def test_ingress_for_the_platform_host_is_refused(acme_admin, tenants):
    status, message = refusal(client.NetworkingV1Api(acme_admin).create_namespaced_ingress,
                              "tenant-" + tenants["acme"], _ingress("steal-api", "api." + DOMAIN))
    assert status == 403
    assert "ValidatingAdmissionPolicy 'neurallog-tenant-ingresses'" in message
    assert "Ingress host api.%s is not allowed for tenant %s" % (DOMAIN, tenants["acme"]) in message, message


def test_ingress_for_another_tenants_host_is_refused(acme_admin, tenants):
    host = "%s.api.%s" % (tenants["beta"], DOMAIN)
    status, message = refusal(client.NetworkingV1Api(acme_admin).create_namespaced_ingress,
                              "tenant-" + tenants["acme"], _ingress("steal-beta", host))
    assert status == 403
    assert ("Ingress host %s is not allowed for tenant %s; allowed: %s.api.%s, *.%s.api.%s"
            % (host, tenants["acme"], tenants["acme"], DOMAIN, tenants["acme"], DOMAIN)) in message, message


def test_ingress_host_that_only_ends_like_the_tenants_is_refused(acme_admin, tenants):
    host = "x%s.api.%s" % (tenants["acme"], DOMAIN)
    status, message = refusal(client.NetworkingV1Api(acme_admin).create_namespaced_ingress,
                              "tenant-" + tenants["acme"], _ingress("lookalike", host))
    assert status == 403 and "Ingress host %s is not allowed" % host in message, message


def test_ingress_tls_for_another_host_is_refused(acme_admin, tenants):
    own = "%s.api.%s" % (tenants["acme"], DOMAIN)
    status, message = refusal(client.NetworkingV1Api(acme_admin).create_namespaced_ingress,
                              "tenant-" + tenants["acme"], _ingress("tls", own, tls_hosts=["api." + DOMAIN]))
    assert status == 403 and "Ingress TLS hosts must be among the hosts of tenant" in message, message


def test_ingress_without_host_or_with_default_backend_is_refused(acme_admin, tenants):
    networking = client.NetworkingV1Api(acme_admin)
    namespace = "tenant-" + tenants["acme"]
    status, message = refusal(networking.create_namespaced_ingress, namespace, _ingress("catch-all", None))
    assert status == 403 and "every rule of a tenant Ingress must name a host" in message, message
    ingress = _ingress("default-backend", "%s.api.%s" % (tenants["acme"], DOMAIN))
    ingress.spec.default_backend = client.V1IngressBackend(service=client.V1IngressServiceBackend(
        name="web", port=client.V1ServiceBackendPort(number=80)))
    status, message = refusal(networking.create_namespaced_ingress, namespace, ingress)
    assert status == 403 and "spec.defaultBackend is not allowed" in message, message


@pytest.mark.parametrize("annotation", [
    "nginx.ingress.kubernetes.io/configuration-snippet",
    "nginx.ingress.kubernetes.io/server-snippet",
    "nginx.ingress.kubernetes.io/server-alias",
])
def test_dangerous_ingress_annotations_are_refused(acme_admin, tenants, annotation):
    own = "%s.api.%s" % (tenants["acme"], DOMAIN)
    ingress = _ingress("snippet", own, annotations={annotation: "return 200 'owned';",
                                                    "nginx.ingress.kubernetes.io/proxy-body-size": "1m"})
    status, message = refusal(client.NetworkingV1Api(acme_admin).create_namespaced_ingress,
                              "tenant-" + tenants["acme"], ingress)
    assert status == 403
    assert "Ingress annotation %s is not allowed in tenant namespaces" % annotation in message, message


def test_another_tenants_admin_cannot_act_here(tenants):
    beta_admin = _admin_client(tenants["beta"], user="bob")
    status, message = refusal(client.CoreV1Api(beta_admin).list_namespaced_secret, "tenant-" + tenants["acme"])
    assert status == 403 and 'cannot list resource "secrets"' in message, message


# --- still allowed -----------------------------------------------------------

def test_own_ingress_clusterip_service_and_deployment_work(acme_admin, tenants):
    namespace = "tenant-" + tenants["acme"]
    core, apps = client.CoreV1Api(acme_admin), client.AppsV1Api(acme_admin)
    networking = client.NetworkingV1Api(acme_admin)
    service = core.create_namespaced_service(namespace, _service("web"))
    assert service.spec.type == "ClusterIP" and service.spec.cluster_ip
    own = "%s.api.%s" % (tenants["acme"], DOMAIN)
    networking.create_namespaced_ingress(namespace, _ingress(
        "web", own, annotations={"nginx.ingress.kubernetes.io/proxy-body-size": "10m"}, tls_hosts=[own]))
    networking.create_namespaced_ingress(namespace, _ingress("www", "www." + own))
    # Updating an allowed Ingress into a forbidden one is refused too.
    status, message = refusal(networking.patch_namespaced_ingress, "web", namespace, {"metadata": {"annotations": {
        "nginx.ingress.kubernetes.io/configuration-snippet": "more_set_headers 'X: y';"}}})
    assert status == 403 and "configuration-snippet is not allowed" in message, message
    labels = {"app": "web"}
    apps.create_namespaced_deployment(namespace, client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(replicas=1, selector=client.V1LabelSelector(match_labels=labels),
                                     template=client.V1PodTemplateSpec(
                                         metadata=client.V1ObjectMeta(labels=labels),
                                         spec=client.V1PodSpec(containers=[client.V1Container(
                                             name="web", image="registry.example/web:1.0.0",
                                             security_context=SECURITY)])))))
    wait_until("Deployment web to be available",
               lambda: apps.read_namespaced_deployment("web", namespace).status.available_replicas == 1)
    apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 2}})
    core.delete_namespaced_service("web", namespace)


# --- a tenant's own extra hosts ------------------------------------------------

@pytest.fixture(scope="module")
def gamma(core, tenants):
    onboard([{"id": GAMMA, "redis": {"enabled": False}, "ingress_hosts": ["logs.%s.example" % GAMMA]}])
    yield GAMMA
    core.delete_namespace("tenant-" + GAMMA)


def test_allow_listed_host_works_and_only_for_its_tenant(gamma, tenants):
    gamma_admin, acme_admin = _admin_client(gamma), _admin_client(tenants["acme"])
    host = "logs.%s.example" % gamma
    client.NetworkingV1Api(gamma_admin).create_namespaced_ingress("tenant-" + gamma, _ingress("logs", host))
    status, message = refusal(client.NetworkingV1Api(acme_admin).create_namespaced_ingress,
                              "tenant-" + tenants["acme"], _ingress("logs", host))
    assert status == 403 and "Ingress host %s is not allowed for tenant %s" % (host, tenants["acme"]) in message
    status, message = refusal(client.NetworkingV1Api(gamma_admin).create_namespaced_ingress,
                              "tenant-" + gamma, _ingress("other", "other.%s.example" % gamma))
    assert status == 403 and "allowed: %s.api.%s, *.%s.api.%s, %s" % (gamma, DOMAIN, gamma, DOMAIN, host) in message


def test_tenant_admin_cannot_widen_its_own_allow_list(gamma):
    status, message = refusal(client.CoreV1Api(_admin_client(gamma)).patch_namespace, "tenant-" + gamma,
                              {"metadata": {"annotations": {"neurallog.io/ingress-hosts": "api.%s" % DOMAIN}}})
    assert status == 403 and 'cannot patch resource "namespaces"' in message, message
