"""Onboarding from an AWX / Automation Platform survey (docs/awx.md): the
flat answers (tenant_onboard_*) become the tenant mapping
(module_utils/tenant.py survey_tenant) that playbooks/tenant_onboard.yml
onboards; rendered here, no cluster needed."""

import pytest

from ansible_collections.neurallog.platform.plugins.module_utils.tenant import survey_tenant
from test_render import objects_in, render_into


def test_survey_answers_become_the_tenant_mapping():
    assert survey_tenant({"id": " acme ", "name": "ACME Corp", "tier": "large",
                          "organizations": "ops, dev\nqa", "mcp_organizations": "ops",
                          "admin_groups": "acme-admins", "member_groups": ["acme-devs", "acme-qa"]}) == {
        "id": "acme", "name": "ACME Corp", "tier": "large",
        "organizations": [{"id": "ops", "mcp": True}, {"id": "dev"}, {"id": "qa"}],
        "admin_groups": ["acme-admins"], "member_groups": ["acme-devs", "acme-qa"]}


def test_empty_answers_are_left_to_the_defaults():
    assert survey_tenant({"id": "acme", "name": "", "tier": None, "organizations": "", "mcp_organizations": "",
                          "admin_groups": "", "member_groups": ""}) == {"id": "acme"}
    # an MCP organization not listed among the organizations is one too
    assert survey_tenant({"id": "acme", "mcp_organizations": "ops"})["organizations"] == [{"id": "ops", "mcp": True}]


@pytest.mark.parametrize("answer", ["", "  ", None])
def test_the_id_is_required(answer):
    with pytest.raises(ValueError, match="^tenant_onboard_id"):
        survey_tenant({"id": answer, "organizations": "ops"})


def test_tenant_onboard_takes_the_survey_answers(tmp_path):
    out = tmp_path / "rendered"
    render_into(out, "playbooks/tenant_onboard.yml", "local", "tenant_onboard_id=acme",
                "tenant_onboard_organizations=ops,dev", "tenant_onboard_mcp_organizations=ops",
                "tenant_onboard_tier=small")
    namespaces = sorted(o["metadata"]["name"] for o in objects_in(out, "*.yaml") if o["kind"] == "Namespace")
    assert namespaces == ["tenant-acme", "tenant-acme-org-dev", "tenant-acme-org-ops", "tenant-acme-org-ops-mcp"]
