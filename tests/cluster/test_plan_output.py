"""The plan's result holds the Secrets it applies (passwords, TLS keys): no
verbosity shows them. A first install of Elasticsearch on the local cluster
at -vvv, then every stored secret value is looked for in the output."""

import base64

from kubernetes import client

from test_safety_rails import Platform


def test_no_secret_value_in_a_first_install_at_vvv(api_client):
    platform = Platform(api_client)
    for name in (platform.system, platform.data):
        platform.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    platform.wait_for_namespace_defaults()
    try:
        run = platform.site("-t", "elasticsearch", "-vvv")
        assert run.returncode == 0, run.output[-3000:]
        values = []
        for namespace in (platform.data, platform.system):
            for secret in platform.core.list_namespaced_secret(namespace).items:
                for encoded in (secret.data or {}).values():
                    values.extend([encoded, base64.b64decode(encoded).decode("utf-8")])
        secrets = [v for v in values if len(v) >= 16]
        assert len(secrets) >= 10  # the password, the CA and both certificates, the credentials
        leaked = [v[:8] + "..." for v in secrets if v in run.output
                  or any(line.strip() and line.strip() in run.output for line in v.splitlines()[1:-1])]
        assert not leaked, "secret values in the output: %s" % leaked
    finally:
        for name in (platform.system, platform.data):
            platform.core.delete_namespace(name)
