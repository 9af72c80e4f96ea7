"""Stand-in for the get-pip bootstrap script ansible-test downloads from
ci-files.testing.ansible.com, which a closed network cannot reach. ansible-test
runs it with the sanity virtualenv's Python and get-pip's arguments (e.g.
``--disable-pip-version-check pip==24.2 --no-setuptools --no-wheel``): pip
comes from the standard library's ensurepip, then installs the asked pip from
the package index; setuptools is removed when get-pip would not install it."""

import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel", "--no-pip"}
args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
subprocess.check_call([sys.executable, "-m", "pip", "install", *args])
if "--no-setuptools" in sys.argv:
    subprocess.check_call([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", "setuptools"])
