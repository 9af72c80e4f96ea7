"""The local test cluster behaves like a real one where the collection
relies on it: nodes, workloads reaching Ready, volumes, quotas, RBAC and
Pod Security admission."""

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from cluster_helpers import wait_until

POD_SECURITY_CONTEXT = client.V1SecurityContext(
    run_as_non_root=True,
    run_as_user=1000,
    allow_privilege_escalation=False,
    capabilities=client.V1Capabilities(drop=["ALL"]),
    seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
)


def _container(name="app", resources=None):
    return client.V1Container(
        name=name,
        image="registry.example/app:1.0.0",
        resources=resources,
        security_context=POD_SECURITY_CONTEXT,
    )


def _template(labels, **spec):
    return client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels=labels),
        spec=client.V1PodSpec(containers=[_container()], **spec),
    )


def test_at_least_two_ready_nodes(core):
    nodes = core.list_node().items
    ready = [
        n.metadata.name
        for n in nodes
        if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
    ]
    assert len(ready) >= 2, [n.metadata.name for n in nodes]


def test_api_server_version(api_client):
    info = client.VersionApi(api_client).get_code()
    assert info.major == "1" and int(info.minor.rstrip("+")) >= 30, info


def test_default_storage_class(api_client):
    classes = client.StorageV1Api(api_client).list_storage_class().items
    defaults = [
        sc.metadata.name
        for sc in classes
        if (sc.metadata.annotations or {}).get("storageclass.kubernetes.io/is-default-class") == "true"
    ]
    assert len(defaults) == 1, defaults


def test_deployment_with_three_replicas_becomes_available(apps, namespace):
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1DeploymentSpec(
                replicas=3,
                selector=client.V1LabelSelector(match_labels=labels),
                template=_template(labels),
            ),
        ),
    )

    def available():
        dep = apps.read_namespaced_deployment_status("web", namespace)
        conds = {c.type: c.status for c in dep.status.conditions or []}
        return dep.status.ready_replicas == 3 and conds.get("Available") == "True"

    wait_until("Deployment web to be Available with 3 ready replicas", available)


def test_statefulset_with_volume_claims_rolls_out(core, apps, namespace):
    labels = {"app": "db"}
    core.create_namespaced_service(
        namespace,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="db"),
            spec=client.V1ServiceSpec(
                cluster_ip="None", selector=labels, ports=[client.V1ServicePort(port=5432)]
            ),
        ),
    )
    template = _template(labels)
    template.spec.containers[0].volume_mounts = [client.V1VolumeMount(name="data", mount_path="/data")]
    apps.create_namespaced_stateful_set(
        namespace,
        client.V1StatefulSet(
            metadata=client.V1ObjectMeta(name="db"),
            spec=client.V1StatefulSetSpec(
                service_name="db",
                replicas=2,
                selector=client.V1LabelSelector(match_labels=labels),
                template=template,
                volume_claim_templates=[
                    client.V1PersistentVolumeClaim(
                        metadata=client.V1ObjectMeta(name="data"),
                        spec=client.V1PersistentVolumeClaimSpec(
                            access_modes=["ReadWriteOnce"],
                            resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"}),
                        ),
                    )
                ],
            ),
        ),
    )
    wait_until(
        "StatefulSet db to have 2 ready replicas",
        lambda: apps.read_namespaced_stateful_set_status("db", namespace).status.ready_replicas == 2,
    )
    claims = core.list_namespaced_persistent_volume_claim(namespace).items
    assert sorted(c.metadata.name for c in claims) == ["data-db-0", "data-db-1"]
    assert all(c.status.phase == "Bound" for c in claims), [(c.metadata.name, c.status.phase) for c in claims]
    # The headless Service got endpoints from the ready pods.
    slices = client.DiscoveryV1Api(core.api_client).list_namespaced_endpoint_slice(
        namespace, label_selector="kubernetes.io/service-name=db"
    ).items
    addresses = [a for s in slices for e in s.endpoints or [] for a in e.addresses]
    assert len(addresses) == 2, addresses


def test_resource_quota_rejects_pod_without_requests(core, namespace):
    core.create_namespaced_resource_quota(
        namespace,
        client.V1ResourceQuota(
            metadata=client.V1ObjectMeta(name="quota"),
            spec=client.V1ResourceQuotaSpec(hard={"requests.cpu": "1", "requests.memory": "1Gi", "pods": "5"}),
        ),
    )
    # The quota controller must have computed usage before admission enforces it.
    wait_until(
        "quota status",
        lambda: core.read_namespaced_resource_quota("quota", namespace).status.hard is not None,
    )
    pod = client.V1Pod(metadata=client.V1ObjectMeta(name="no-requests"), spec=client.V1PodSpec(containers=[_container()]))
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(namespace, pod)
    assert err.value.status == 403
    assert "must specify requests.cpu" in err.value.body or "failed quota" in err.value.body, err.value.body

    within = client.V1Pod(
        metadata=client.V1ObjectMeta(name="with-requests"),
        spec=client.V1PodSpec(
            containers=[_container(resources=client.V1ResourceRequirements(requests={"cpu": "100m", "memory": "64Mi"}))]
        ),
    )
    core.create_namespaced_pod(namespace, within)


def test_rbac_refuses_service_account_without_binding(api_client, core, namespace):
    core.create_namespaced_service_account(namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="nobody")))
    user = "system:serviceaccount:%s:nobody" % namespace
    review = client.AuthorizationV1Api(api_client).create_subject_access_review(
        client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=user,
                groups=["system:serviceaccounts", "system:serviceaccounts:%s" % namespace, "system:authenticated"],
                resource_attributes=client.V1ResourceAttributes(namespace=namespace, verb="list", resource="secrets"),
            )
        )
    )
    assert review.status.allowed is False, review.status

    # A real token of that ServiceAccount, used against the API server, is refused too.
    token = core.create_namespaced_service_account_token(
        "nobody", namespace, client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
    ).status.token
    cfg = client.Configuration()
    cfg.host = api_client.configuration.host
    cfg.ssl_ca_cert = api_client.configuration.ssl_ca_cert
    cfg.api_key = {"authorization": "Bearer " + token}
    with client.ApiClient(cfg) as as_sa:
        with pytest.raises(ApiException) as err:
            client.CoreV1Api(as_sa).list_namespaced_secret(namespace)
    assert err.value.status == 403
    assert user in err.value.body


def test_pod_security_admission_enforces_restricted(core, namespace):
    core.patch_namespace(namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    privileged = client.V1Pod(
        metadata=client.V1ObjectMeta(name="privileged"),
        spec=client.V1PodSpec(
            containers=[client.V1Container(name="c", image="registry.example/app:1.0.0",
                                           security_context=client.V1SecurityContext(privileged=True))]
        ),
    )
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(namespace, privileged)
    assert err.value.status == 403 and "violates PodSecurity" in err.value.body
