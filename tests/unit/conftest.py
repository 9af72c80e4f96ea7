"""The collection loader Ansible itself uses, installed before any test imports the collection, so
templates that call the collection's filters and lookups (neurallog.platform.*) resolve them in-process
(tests/unit/test_reconcile.py renders the real roles)."""

import os
import socket
import ssl
import threading

import pytest
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

_AnsibleCollectionFinder(paths=[os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "collections")])._install()


class SilentServer(object):
    """Accepts every connection on 127.0.0.1 and never sends a byte (or,
    with ``tls_dir``, completes the TLS handshake and then never answers)."""

    def __init__(self, tls_dir=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        self.context = None
        if tls_dir is not None:
            from ansible_collections.neurallog.platform.plugins.module_utils.tls import generate_self_signed
            pem = generate_self_signed(["localhost"])
            (tls_dir / "tls.crt").write_text(pem["tls.crt"])
            (tls_dir / "tls.key").write_text(pem["tls.key"])
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(str(tls_dir / "tls.crt"), str(tls_dir / "tls.key"))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            if self.context is not None:
                try:
                    conn = self.context.wrap_socket(conn, server_side=True)
                except (OSError, ssl.SSLError):
                    pass
            self.accepted.append(conn)

    def close(self):
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture()
def silent_server_factory():
    """SilentServer(tls_dir=None) factory; every server is closed after the test."""
    servers = []

    def make(tls_dir=None):
        servers.append(SilentServer(tls_dir))
        return servers[-1]
    yield make
    for server in servers:
        server.close()


@pytest.fixture()
def silent_server(silent_server_factory):
    return silent_server_factory()
