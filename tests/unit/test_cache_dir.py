"""The cache folder rule: the Python one and the shell one (hack/lib/cache.sh) agree."""

import subprocess
from pathlib import Path

import pytest

from ansible_collections.neurallog.platform.plugins.plugin_utils.cache_dir import cache_dir

CACHE_SH = Path(__file__).resolve().parents[2] / "hack" / "lib" / "cache.sh"

CASES = [
    ({"HOME": "/home/u"}, "/home/u/.cache/neurallog"),
    ({"HOME": "/home/u", "XDG_CACHE_HOME": "/xdg"}, "/xdg/neurallog"),
    ({"HOME": "/home/u", "XDG_CACHE_HOME": ""}, "/home/u/.cache/neurallog"),
    ({"HOME": "/home/u", "XDG_CACHE_HOME": "/xdg", "NEURALLOG_CACHE_DIR": "/nl"}, "/nl"),
    ({"HOME": "/home/u", "NEURALLOG_CACHE_DIR": ""}, "/home/u/.cache/neurallog"),
]


@pytest.mark.parametrize("env,expected", CASES)
def test_python_rule(env, expected):
    assert cache_dir(env) == expected


@pytest.mark.parametrize("env,expected", CASES)
def test_shell_rule_is_the_same(env, expected):
    out = subprocess.run(["bash", "-c", '. "$0"; printf %s "$neurallog_cache"', str(CACHE_SH)],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert out == expected == cache_dir(env)


def test_no_script_spells_the_rule_itself():
    """Every hack/ script takes the folder from hack/lib/cache.sh or cache_dir.py."""
    root = CACHE_SH.parents[2]
    offenders = [str(p.relative_to(root)) for p in list((root / "hack").rglob("*.sh")) + list((root / "hack").rglob("*.py"))
                 + list((root / "tests").rglob("*.py"))
                 if p != CACHE_SH and "XDG_CACHE_HOME" in p.read_text() and p.name != "test_cache_dir.py"]
    assert offenders == []
