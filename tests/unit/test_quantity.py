# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugins/module_utils/quantity.py: the one definition of a Kubernetes
quantity, and its users (roles' preflight test, services, tenants, filters)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "collections"))

from ansible_collections.neurallog.platform.plugins.module_utils import quantity as q  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("given, stored", [
    ("2048Mi", "2Gi"), ("20Gi", "20Gi"), ("1536Mi", "1536Mi"), ("1.5Gi", "1536Mi"), ("1000m", "1"),
    ("1500m", "1500m"), ("0.5", "500m"), ("1.5", "1500m"), ("2", "2"), (2, "2"), (10, "10"), ("2000", "2k"),
    ("1500", "1500"), ("512Mi", "512Mi"), ("1024", "1024"), ("1Ki", "1Ki"), ("512Ki", "512Ki"),
    ("100Mi", "100Mi"), ("100m", "100m"), ("0", "0"), ("0.1", "100m"), ("1e3", "1e3"), ("4G", "4G"),
    ("4000M", "4G"), ("0.5Ki", "512"), ("12000k", "12M"), ("128974848", "128974848"), (2.5, "2500m"),
    ("1024Mi", "1Gi"), ("-1500m", "-1500m"), ("0.0000000001", "1n"), ("1E", "1E"),
])
def test_canonical_form_is_what_the_api_server_stores(given, stored):
    assert q.canonical_quantity(given) == stored


@pytest.mark.parametrize("bad", [
    "", "1.2.3", "ten", "10 Gi", "5 Gi", " 1", "1\n", "1gb", "2gb", "Gi", "1KiB", "1ki", "NaN", "Infinity",
    "1_000", "1e3Mi", "0x10", True, False, None, [], {},
])
def test_non_quantities_are_refused_with_one_message(bad):
    with pytest.raises(ValueError) as err:
        q.parse_quantity(bad)
    assert str(err.value) == "%r is not a Kubernetes quantity (a number with an optional suffix, e.g. %s)" % (
        bad, q.EXAMPLES)
    assert not q.is_quantity(bad)
    assert q.quantity_error(bad) == str(err.value)


def test_values_are_exact():
    assert q.parse_quantity("1Gi") == 1024 ** 3
    assert q.parse_quantity("250m") * 4 == 1
    assert q.parse_quantity("2G") == 2 * 10 ** 9
    assert q.parse_quantity("1e3") == 1000
    assert q.parse_quantity("1.5Ei") == Decimal(3) * 2 ** 59
    assert isinstance(q.parse_quantity("1"), Decimal)


def test_negative_values_count_only_when_asked():
    assert not q.is_quantity("-1")
    assert q.is_quantity("-1", negative=True)
    assert q.is_quantity("0") and q.is_quantity(3) and q.is_quantity("1.5Gi")


def test_resources_are_canonical():
    assert q.canonical_resources({"requests": {"cpu": "1000m", "memory": "1024Mi"}, "limits": {"memory": "3072Mi"}}) == {
        "requests": {"cpu": "1", "memory": "1Gi"},
        "limits": {"memory": "3Gi"},
    }
    assert q.canonical_resources({}) == {}


def test_the_kubernetes_client_reads_the_value(monkeypatch):
    """The value comes from kubernetes.utils.parse_quantity (not a copy of it)."""
    seen = []

    def spy(text):
        seen.append(text)
        return Decimal(7)

    monkeypatch.setattr(q, "_PARSE", [spy])
    assert q.parse_quantity("512Mi") == 7
    assert seen == ["512Mi"]


def test_the_client_loads_without_importing_the_whole_api_client():
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from ansible_collections.neurallog.platform.plugins.module_utils import quantity as q\n"
            "assert q.canonical_quantity('2048Mi') == '2Gi'\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes'))\n"
            % str(ROOT / "collections"))
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "[]"


def test_a_missing_client_fails_with_a_clear_message(tmp_path):
    """Where the kubernetes client is not installed (a target host), the
    message says what is missing and how to install it."""
    blocker = tmp_path / "kubernetes"
    blocker.mkdir()  # a namespace package without utils/: neither the file nor the import exists
    code = ("import sys; sys.path.insert(0, %r); sys.path.insert(0, %r)\n"
            "sys.modules['kubernetes'] = None\n"
            "from ansible_collections.neurallog.platform.plugins.module_utils import quantity as q\n"
            "print(q.kubernetes_client_error())\n"
            "try:\n    q.parse_quantity('1Gi')\nexcept ImportError as exc:\n    print('raised', exc)\n"
            % (str(tmp_path), str(ROOT / "collections")))
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[0].startswith("Kubernetes quantities are read with the kubernetes Python client, "
                               "which is not installed for %s (pip install kubernetes)" % sys.executable)
    assert lines[1].startswith("raised Kubernetes quantities are read with the kubernetes Python client")


def test_no_other_definition_of_a_quantity():
    """One definition: no quantity regex or parser elsewhere in plugins/ or roles/."""
    suffixes = re.compile(r"Ki\|Mi|Mi\|Gi|Ki\|Mi\|Gi")
    offenders = []
    for path in list((ROOT / "plugins").rglob("*.py")) + list((ROOT / "roles").rglob("*.yml")):
        if path.name == "quantity.py" and path.parent.name == "module_utils":
            continue
        text = path.read_text()
        if suffixes.search(text) or re.search(r"def \w*parse_quantity|def \w*quantity_parts", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
