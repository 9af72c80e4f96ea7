# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-in for the eight NeuralLog services (hack/images/standin).

An HTTP server on PORT (8080) whose /health answers 200 only while it can
connect and authenticate to every data service given in its environment,
and 503 naming what fails otherwise:

- DATABASE_URL       postgresql://user:password@host:port/db?sslmode=...
                     (psycopg: a connection and ``SELECT current_user``)
- REDIS_URL          redis[s]://user:password@host:port/db (AUTH, SELECT, PING)
- ELASTICSEARCH_URL  http[s]://user:password@host:port (basic auth,
                     GET /_cluster/health must answer 200, status not red)

A CA certificate file for a TLS connection is given in DATABASE_CA_CERT,
REDIS_CA_CERT or ELASTICSEARCH_CA_CERT (core_services mounts the platform's
CA for Elasticsearch). A service given none of the URLs is healthy at once.
The checks run in the background every STANDIN_CHECK_INTERVAL seconds (5),
each with a timeout of STANDIN_CHECK_TIMEOUT seconds (5), so a probe never
waits for them. No password is printed: reasons are redacted.

    python3 standin.py           # serves until SIGTERM
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os
import signal
import ssl
import sys
import threading
import time

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit, urlunsplit
from urllib.request import Request, urlopen


# Environment variable of the URL, of its CA file, and the check's name.
DEPENDENCIES = (
    ("DATABASE_URL", "DATABASE_CA_CERT", "postgresql"),
    ("REDIS_URL", "REDIS_CA_CERT", "redis"),
    ("ELASTICSEARCH_URL", "ELASTICSEARCH_CA_CERT", "elasticsearch"),
)


class CheckFailed(Exception):
    """A dependency cannot be reached or refused the credentials."""


def url_password(url):
    """The (decoded) password inside ``url``, or ''."""
    try:
        return unquote(urlsplit(url).password or "")
    except ValueError:
        return ""


def redact(text, secrets):
    """``text`` with every non-empty secret (raw and percent-encoded forms) replaced."""
    text = str(text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def check_postgresql(url, ca_file, timeout):
    """Connect with psycopg and ask who we are."""
    import psycopg  # pylint: disable=import-outside-toplevel
    options = {"connect_timeout": max(1, int(timeout))}
    if ca_file:
        options["sslrootcert"] = ca_file
    with psycopg.connect(url, **options) as connection:
        user = connection.execute("SELECT current_user").fetchone()[0]
    return "connected as %s" % user


def check_redis(url, ca_file, timeout):
    """AUTH (user and password of the URL), SELECT its database, PING."""
    import redis  # pylint: disable=import-outside-toplevel
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if ca_file and url.startswith("rediss:"):
        options["ssl_ca_certs"] = ca_file
    client = redis.Redis.from_url(url, **options)
    try:
        if not client.ping():
            raise CheckFailed("PING was not answered with PONG")
    finally:
        client.close()
    return "PING answered"


def elasticsearch_request(url, ca_file):
    """A GET request of ``url``/_cluster/health with the URL's credentials
    as basic authentication (not in the URL) and the SSL context to use."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = "[%s]" % host
    if parts.port:
        host += ":%d" % parts.port
    target = urlunsplit((parts.scheme, host, parts.path.rstrip("/") + "/_cluster/health", "", ""))
    request = Request(target, headers={"Accept": "application/json"})
    if parts.username is not None:
        token = "%s:%s" % (unquote(parts.username), unquote(parts.password or ""))
        request.add_header("Authorization", "Basic " + base64.b64encode(token.encode()).decode())
    context = None
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=ca_file or None)
    return request, context


def check_elasticsearch(url, ca_file, timeout):
    """GET /_cluster/health with basic auth: 200 and a status that is not red."""
    request, context = elasticsearch_request(url, ca_file)
    with urlopen(request, timeout=timeout, context=context) as response:  # nosec B310 - http(s) only
        body = json.loads(response.read().decode("utf-8"))
    status = body.get("status")
    if status not in ("green", "yellow"):
        raise CheckFailed("cluster health is %s" % status)
    return "cluster health %s" % status


CHECKS = {"postgresql": check_postgresql, "redis": check_redis, "elasticsearch": check_elasticsearch}


def dependencies_from(environ):
    """[(name, url, ca_file)] for every URL variable that is set and not empty."""
    found = []
    for url_var, ca_var, name in DEPENDENCIES:
        url = environ.get(url_var, "").strip()
        if url:
            found.append((name, url, environ.get(ca_var, "").strip()))
    return found


class Health:
    """The latest result of every check; healthy when all passed."""

    def __init__(self, dependencies, checks=None, timeout=5.0):
        self.dependencies = dependencies
        self.checks = checks or CHECKS
        self.timeout = timeout
        urls = [dependency[1] for dependency in dependencies]
        self.secrets = [s for s in [url_password(url) for url in urls] + [urlsplit(url).password for url in urls] if s]
        self.lock = threading.Lock()
        self.results = {dependency[0]: (False, "not checked yet") for dependency in dependencies}

    def run_once(self):
        """Run every check once, record ok/reason; returns the results."""
        results = {}
        for name, url, ca_file in self.dependencies:
            try:
                results[name] = (True, redact(self.checks[name](url, ca_file, self.timeout), self.secrets))
            except Exception as exc:  # pylint: disable=broad-except
                reason = "%s: %s" % (type(exc).__name__, str(exc).strip() or repr(exc))
                results[name] = (False, redact(reason, self.secrets))
        with self.lock:
            changed = results != self.results
            self.results = results
        if changed:
            log("health: %s" % json.dumps(self.report()[1], sort_keys=True))
        return results

    def report(self):
        """(HTTP status, body): 200 when every check passed, 503 otherwise."""
        with self.lock:
            results = dict(self.results)
        healthy = all(result[0] for result in results.values())
        body = {
            "status": "ok" if healthy else "unavailable",
            "checks": {name: {"ok": ok, "detail": detail} for name, (ok, detail) in sorted(results.items())},
        }
        return (200 if healthy else 503), body

    def loop(self, interval, stop):
        """Check every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            self.run_once()
            stop.wait(interval)


def log(message):
    sys.stderr.write("%s standin: %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), message))
    sys.stderr.flush()


def make_handler(health, service_name):
    """The request handler class serving ``health``."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "neurallog-standin"

        def _send(self, status, body, content_type="application/json"):
            data = body if isinstance(body, bytes) else (json.dumps(body, sort_keys=True) + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # pylint: disable=invalid-name
            path = self.path.split("?", 1)[0]
            if path in ("/health", "/healthz", "/ready"):
                self._send(*health.report())
            elif path == "/metrics":
                status, body = health.report()
                lines = ["# TYPE neurallog_standin_healthy gauge",
                         "neurallog_standin_healthy %d" % (status == 200)]
                lines += ['neurallog_standin_dependency_up{dependency="%s"} %d' % (name, check["ok"])
                          for name, check in body["checks"].items()]
                self._send(200, ("\n".join(lines) + "\n").encode(), "text/plain; version=0.0.4")
            elif path == "/":
                self._send(200, {"service": service_name, "standin": True})
            else:
                self._send(404, {"error": "not found"})

        def log_message(self, format, *args):  # pylint: disable=redefined-builtin
            pass  # probes every few seconds: only changes of health are logged

    return Handler


def serve(environ, ready=None, stop=None):
    """Serve until ``stop`` is set (SIGTERM/SIGINT set it in main)."""
    stop = stop or threading.Event()
    dependencies = dependencies_from(environ)
    health = Health(dependencies, timeout=float(environ.get("STANDIN_CHECK_TIMEOUT", "5")))
    address = (environ.get("LISTEN_ADDRESS", "0.0.0.0"), int(environ.get("PORT", "8080")))  # nosec B104
    server = ThreadingHTTPServer(address, make_handler(health, environ.get("SERVICE_NAME", "neurallog-standin")))
    server.daemon_threads = True
    checked = ", ".join(dependency[0] for dependency in dependencies) or "nothing"
    log("listening on %s:%d, checking %s" % (server.server_address[0], server.server_address[1], checked))
    checker = threading.Thread(target=health.loop, args=(float(environ.get("STANDIN_CHECK_INTERVAL", "5")), stop),
                               daemon=True)
    checker.start()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    if ready is not None:
        ready(server)
    stop.wait()
    server.shutdown()
    server.server_close()


def main():
    stop = threading.Event()

    def on_signal(signum, frame):  # pylint: disable=unused-argument
        log("signal %d, stopping" % signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    serve(dict(os.environ), stop=stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
