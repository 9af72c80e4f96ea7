"""The collection loader Ansible itself uses, installed before any test imports the collection, so
templates that call the collection's filters and lookups (neurallog.platform.*) resolve them in-process
(tests/unit/test_reconcile.py renders the real roles)."""

import os

from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

_AnsibleCollectionFinder(paths=[os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "collections")])._install()
