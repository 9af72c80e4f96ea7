# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tenant_resources module: argument handling, results, failures."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "collections"))

from ansible.module_utils.testing import patch_module_args  # noqa: E402
from ansible_collections.neurallog.platform.plugins.modules import tenant_resources  # noqa: E402

IMAGE = "docker.io/library/redis:7.0.15-alpine"


def run(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as info:
            tenant_resources.main()
    return info.value.code, json.loads(capsys.readouterr().out)


def test_one_tenant(capsys):
    code, result = run({"tenant": {"id": "acme", "organizations": ["ops"]}, "redis_image": IMAGE,
                        "redis_passwords": {"acme": "s3cretPassw0rdThatIsLongEnough"}}, capsys)
    assert code == 0
    assert result["changed"] is False
    assert result["namespaces"] == ["tenant-acme", "tenant-acme-org-ops"]
    assert result["generated_passwords"] == []
    secret = [o for o in result["resources"] if o["kind"] == "Secret"][0]
    assert base64.b64decode(secret["data"]["password"]).decode() == "s3cretPassw0rdThatIsLongEnough"
    # Module output is unmasked: no value was mistaken for a no_log one.
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" not in json.dumps([result["resources"], result["tenants"]])
    assert result["resources"][0]["apiVersion"] == "v1"


def test_several_tenants_and_settings(capsys):
    code, result = run({"tenants": [{"id": "a"}, {"id": "b", "tier": "small"}], "redis_image": IMAGE,
                        "pod_security_level": "baseline", "redis": {"storage_size": "5Gi"}}, capsys)
    assert code == 0
    assert sorted(result["generated_passwords"]) == ["a", "b"]
    assert [t["tier"] for t in result["tenants"]] == ["standard", "small"]
    ns = result["resources"][0]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    sts = [o for o in result["resources"] if o["kind"] == "StatefulSet"][0]
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "5Gi"


def test_check_mode_gives_the_same_objects(capsys):
    args = {"tenant": {"id": "acme"}, "redis_image": IMAGE, "redis_passwords": {"acme": "x" * 32}}
    _code, normal = run(args, capsys)
    _code, checked = run(dict(args, _ansible_check_mode=True), capsys)
    assert checked["resources"] == normal["resources"]


def test_invalid_tenant_fails_naming_the_field(capsys):
    code, result = run({"tenant": {"id": "acme", "organizations": ["ops", "ops"], "tier": "gold"},
                        "redis_image": IMAGE}, capsys)
    assert code == 1
    assert result["failed"] is True
    assert result["msg"] == ("Invalid tenant settings: tenants[acme].organizations[1].id: duplicate organization id "
                             "'ops'; tenants[acme].tier: 'gold' is not one of large, small, standard")
    assert len(result["errors"]) == 2
    assert "resources" not in result


def test_tenant_and_tenants_are_exclusive(capsys):
    code, result = run({"tenant": {"id": "a"}, "tenants": [{"id": "b"}], "redis_image": IMAGE}, capsys)
    assert code == 1 and "mutually exclusive" in result["msg"]
    code, result = run({"redis_image": IMAGE}, capsys)
    assert code == 1 and "one of the following is required" in result["msg"]


def test_choices_are_enforced(capsys):
    code, result = run({"tenant": {"id": "a"}, "redis_image": IMAGE, "pod_security_level": "strict"}, capsys)
    assert code == 1 and "pod_security_level" in result["msg"]


def test_short_passwords_are_refused(capsys):
    code, result = run({"tenant": {"id": "a"}, "redis_image": IMAGE, "password_length": 8}, capsys)
    assert code == 1 and result["msg"] == "password_length: must be at least 16, got 8"


def test_admission_settings_reach_the_policies_and_quotas(capsys):
    code, result = run({"tenant": {"id": "acme", "ingress_hosts": ["logs.acme.example"]}, "redis_image": IMAGE,
                        "ingress_domain": "logs.example.org", "quota_defaults": {"services.nodeports": 2},
                        "ingress_denied_annotations": ["example\\.com/.*"]}, capsys)
    assert code == 0
    kinds = [(o["kind"], o["metadata"]["name"]) for o in result["admission_resources"]]
    assert ("ValidatingAdmissionPolicy", "neurallog-tenant-ingresses") in kinds
    assert "ValidatingAdmissionPolicy" not in [o["kind"] for o in result["resources"]]
    policy = json.dumps(result["admission_resources"])
    assert "'logs.example.org'" in policy and "example\\\\\\\\.com/.*" in policy
    quota = [o for o in result["resources"] if o["kind"] == "ResourceQuota"][0]["spec"]["hard"]
    assert quota["services.nodeports"] == "2" and quota["services.loadbalancers"] == "0"
    assert result["tenants"][0]["ingress_hosts"] == ["logs.acme.example"]


def test_invalid_ingress_domain_fails(capsys):
    code, result = run({"tenant": {"id": "acme"}, "redis_image": IMAGE, "ingress_domain": "not a domain"}, capsys)
    assert code == 1
    assert "ingress_domain: 'not a domain' is not a DNS name" in result["msg"]
