# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of the local-cluster tests (a module of its own, not conftest:
several test folders have a conftest)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

import pytest


def wait_until(what, check, timeout=90):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    pytest.fail("timed out after %ss waiting for %s (last: %r)" % (timeout, what, last))
