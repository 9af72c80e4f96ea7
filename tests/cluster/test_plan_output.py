# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan's result holds the Secrets a run applies: a first run at -vvv
(everything pending, every password generated) prints none of their values."""

import base64

import pytest

from test_interrupted_runs import SCOPE, secrets
from test_safety_rails import Platform

# Identifiers, not secrets (as the Molecule leak check leaves them out).
IDENTIFIERS = {"user", "username", "host", "port", "database", "url"}


@pytest.fixture()
def platform(api_client):
    platform = Platform(api_client)
    yield platform
    platform.cleanup()


def test_a_first_run_at_high_verbosity_prints_no_secret_value(platform):
    proc = platform.site(*SCOPE, "-vvv")
    assert proc.returncode == 0, proc.output[-3000:]
    stored = secrets(platform)
    assert stored, "the run wrote no Secret"
    searched = 0
    for name, data in stored.items():
        for key, value in (data or {}).items():
            if key in IDENTIFIERS:
                continue
            plain = base64.b64decode(value).decode("utf-8", "replace")
            for text in [value, plain] + plain.splitlines():
                if len(text.strip()) >= 12:
                    searched += 1
                    assert text.strip() not in proc.output, "%s key %s appears in the output" % (name, key)
    assert searched
