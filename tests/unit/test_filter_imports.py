# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resolving any neurallog.platform filter loads every filter file of the
collection (and calls its filters()), in every task that uses one. Those
files import nothing heavy at module level: each filter imports its
module_utils when it is called. Checked in a fresh interpreter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import importlib, json, pkgutil, sys
sys.path.insert(0, %(collections)r)
import ansible.errors  # loaded in every Ansible process
before = set(sys.modules)
import ansible_collections.neurallog.platform.plugins.filter as package
filters = {}
for info in pkgutil.iter_modules(package.__path__):
    module = importlib.import_module(package.__name__ + "." + info.name)
    filters.update(module.FilterModule().filters())
loaded = sorted(set(sys.modules) - before)
filters["data_quantity"]("2048Mi")
after_call = sorted(set(sys.modules) - before - set(loaded))
print(json.dumps({"loaded": loaded, "after_call": after_call, "filters": sorted(filters)}))
"""


def test_loading_every_filter_file_imports_no_module_utils():
    ran = subprocess.run([sys.executable, "-c", PROBE % {"collections": str(ROOT / "collections")}],
                         capture_output=True, text=True, check=False)
    assert ran.returncode == 0, ran.stderr
    seen = json.loads(ran.stdout)
    assert len(seen["filters"]) > 20
    heavy = [name for name in seen["loaded"]
             if ".module_utils" in name or name.split(".")[0] in ("kubernetes", "cryptography", "yaml", "urllib3")]
    assert heavy == []
    # a filter imports what it uses, when it is called
    assert "ansible_collections.neurallog.platform.plugins.module_utils.quantity" in seen["after_call"]
    assert not [name for name in seen["after_call"] if name.endswith(("module_utils.bundle", "module_utils.tenant"))]
