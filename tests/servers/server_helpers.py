# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of the real-server tests: find a server binary, pick a free
loopback port, wait until a server listens. (A module of its own, not
conftest: several test folders have a conftest.)"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import shutil
import socket
import time

import pytest


def find_binary(name, patterns=()):
    """Path of a server binary; fails (never skips) when it is missing."""
    path = shutil.which(name)
    if not path:
        for pattern in patterns:
            found = sorted(glob.glob(pattern))
            if found:
                path = found[-1]
                break
    if not path:
        pytest.fail(
            "%s not found: install the Debian packages (apt-get install -y redis-server postgresql)" % name
        )
    return path


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, process, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError("server exited with %s before listening on %d" % (process.returncode, port))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError("nothing listens on 127.0.0.1:%d after %ss" % (port, timeout))
