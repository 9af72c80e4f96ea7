# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tenant filters.

Resolving any neurallog.platform filter loads every filter file of the
collection, so this file imports nothing at module level beyond Ansible's
errors: each filter imports its module_utils when it is first called."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def tenant_offboard_plan(live_namespaces, tenant_ids):
    """Namespaces that offboarding ``tenant_ids`` deletes, and the conflicts
    that forbid it (module_utils/tenant.py offboard_plan)."""
    from ansible_collections.neurallog.platform.plugins.module_utils.tenant import offboard_plan

    if isinstance(tenant_ids, str):
        tenant_ids = [tenant_ids]
    return offboard_plan(list(tenant_ids or []), live_namespaces)


def tenant_prune_plan(live_namespaces, declared_ids):
    """Tenants in the cluster that ``declared_ids`` lacks, with what
    offboarding them deletes (module_utils/tenant.py prune_plan)."""
    from ansible_collections.neurallog.platform.plugins.module_utils.tenant import prune_plan

    return prune_plan(list(declared_ids or []), live_namespaces)


def tenant_prune_check(live_namespaces, declared_ids, prune=False, threshold=1, confirm=""):
    """tenant_prune_plan plus ``report`` and ``refusal`` (module_utils/tenant.py
    prune_check, the check the tenant plan makes)."""
    from ansible_collections.neurallog.platform.plugins.module_utils.tenant import prune_check

    return prune_check(list(declared_ids or []), live_namespaces, prune, threshold, confirm)


def tenant_from_survey(answers):
    """The tenant mapping from a job template survey's flat answers
    (module_utils/tenant.py survey_tenant)."""
    from ansible.errors import AnsibleFilterError
    from ansible_collections.neurallog.platform.plugins.module_utils.tenant import survey_tenant

    try:
        return survey_tenant(dict(answers or {}))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    """Tenant helpers."""

    def filters(self):
        return {"tenant_offboard_plan": tenant_offboard_plan, "tenant_prune_plan": tenant_prune_plan,
                "tenant_prune_check": tenant_prune_check, "tenant_from_survey": tenant_from_survey}
