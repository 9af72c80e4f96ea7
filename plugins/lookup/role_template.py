# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: role_template
author: NeuralLog Platform Engineering (@neurallog)
version_added: 0.2.0
short_description: A role's template, rendered with the current variables without copying them
description:
  - Like P(ansible.builtin.template#lookup) for a file in a role's C(templates/) folder, but the
    template sees the caller's variables as they are instead of a deep copy of all of them (which costs
    tens of milliseconds a call with the platform's variables). Used by the roles' templates to include
    configuration files (C(redis.conf.j2), C(start.sh.j2) …) while the reconcile engine renders them.
  - The template cannot change the caller's variables (Jinja C(set) stays inside the template).
options:
  _terms:
    description: File names, searched in C(templates/) of each entry of C(ansible_search_path), then of the role.
    required: true
"""

EXAMPLES = r"""
- name: A configuration file of the role
  ansible.builtin.debug:
    msg: "{{ lookup('neurallog.platform.role_template', 'redis.conf.j2') }}"
"""

RETURN = r"""
_raw:
  description: The rendered files.
  type: list
  elements: str
"""

import os

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase
from ansible.template import trust_as_template


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        from ansible._internal._templating._engine import TemplateOptions  # pylint: disable=import-outside-toplevel
        self.set_options(var_options=variables, direct=kwargs)
        out = []
        for term in terms:
            path = self.find_file_in_search_path(variables, "templates", term)
            if not path:
                raise AnsibleError("neurallog.platform.role_template: %s not found" % term)
            text = trust_as_template(self._loader.get_text_file_contents(path))
            templar = self._templar.copy_with_new_env(searchpath=[os.path.dirname(path)])
            out.append(templar._engine.template(text, options=TemplateOptions(escape_backslashes=False)))
        return out
