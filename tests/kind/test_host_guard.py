"""The host egress guard of the one Docker engine (hack/engine.sh).

Checked on this machine (root, Docker), never by reaching anything outside:

* the chain NEURALLOG-EGRESS has exactly its rules, IPv4 and IPv6, and is
  jumped to first (and once) from FORWARD and DOCKER-USER; no older guard
  chain is left;
* walking the loaded rules for the machine's own resolver (resolv.conf) and
  gateway (the default route), through the interface the kernel routes them
  to, ends in a reject: no container can reach them;
* a container on docker's default bridge and one on a network of its own
  connect to 198.51.100.1 (TEST-NET-2, standing for "outside"): refused at
  once by the guard, whose reject counters move (TCP and UDP) — the packets
  never left the machine;
* two containers on one network still reach each other (the guard lets
  container traffic through).
"""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "hack" / "engine.sh"
CHAIN = "NEURALLOG-EGRESS"
OLD_CHAINS = ("NEURALLOG-HOST-EGRESS",)
OUTSIDE = "198.51.100.1"
PREFIX = os.environ.get("NEURALLOG_CLUSTER_PREFIX", "")
EXPECTED_V4 = [
    f"-A {CHAIN} -o lo -j RETURN",
    f"-A {CHAIN} -d 172.16.0.0/12 -o docker0 -j RETURN",
    f"-A {CHAIN} -d 10.244.0.0/16 -o docker0 -j RETURN",
    f"-A {CHAIN} -d 172.16.0.0/12 -o br-+ -j RETURN",
    f"-A {CHAIN} -d 10.244.0.0/16 -o br-+ -j RETURN",
    f"-A {CHAIN} -p tcp -j REJECT --reject-with tcp-reset",
    f"-A {CHAIN} -j REJECT --reject-with icmp-port-unreachable",
]
EXPECTED_V6 = [
    f"-A {CHAIN} -o lo -j RETURN",
    f"-A {CHAIN} -p tcp -j REJECT --reject-with tcp-reset",
    f"-A {CHAIN} -j REJECT --reject-with icmp6-port-unreachable",
]

# In a container: connect to OUTSIDE over TCP and UDP, print what happened
# and how long it took.
PROBE = r"""
import socket, sys, time
host = sys.argv[1]
t0 = time.monotonic()
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.settimeout(10)
try:
    s.connect((host, 443)); print("tcp connected")
except OSError as e:
    print("tcp", type(e).__name__)
print("tcp_ms", int((time.monotonic() - t0) * 1000))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)
u.connect((host, 53))
try:
    u.send(b"probe"); u.recv(64); print("udp answered")
except OSError as e:
    print("udp", type(e).__name__)
"""


def run(*args: str, check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=timeout)


def chain_rules(ipt: str, chain: str) -> list[str]:
    return [line for line in run(ipt, "-w", "-S", chain).stdout.splitlines() if line.startswith("-A ")]


def guard_comes_first(ipt: str) -> bool:
    """Nothing is evaluated before the guard in FORWARD: it is first there,
    or FORWARD starts with DOCKER-USER (dockerd moves its jump to the top
    whenever it creates a network) and the guard is first in DOCKER-USER."""
    forward, user = chain_rules(ipt, "FORWARD"), chain_rules(ipt, "DOCKER-USER")
    return user[0] == f"-A DOCKER-USER -j {CHAIN}" and (
        forward[0] == f"-A FORWARD -j {CHAIN}" or forward[0] == "-A FORWARD -j DOCKER-USER"
    )


def counters() -> dict[str, int]:
    """Packets of the two reject rules: 'tcp' and 'other'."""
    out = run("iptables", "-w", "-vxnL", CHAIN).stdout.splitlines()[2:]
    found = {}
    for line in out:
        fields = line.split()
        if fields[2] == "REJECT":
            found["tcp" if "tcp-reset" in line else "other"] = int(fields[0])
    return found


def verdict(dst: str, oif: str, proto: str = "udp") -> str:
    """What the loaded IPv4 chain does with a forwarded packet (RETURN lets
    it go on to docker's own rules, REJECT stops it)."""
    for rule in chain_rules("iptables", CHAIN):
        args = dict(re.findall(r"-(\w) (\S+)", rule.split(" ", 2)[2]))
        if "o" in args:
            pattern = args["o"]
            if not (oif == pattern or (pattern.endswith("+") and oif.startswith(pattern[:-1]))):
                continue
        if "d" in args and ipaddress.ip_address(dst) not in ipaddress.ip_network(args["d"]):
            continue
        if "p" in args and args["p"] != proto:
            continue
        return args["j"]
    return "RETURN"


@pytest.fixture(scope="module")
def engine():
    if os.geteuid() != 0:
        pytest.fail("the host guard tests need root (iptables, dockerd)")
    started = run("bash", str(ENGINE), check=False, timeout=300)
    assert started.returncode == 0, started.stderr
    return True


@pytest.fixture(scope="module")
def python_image(engine):
    """The services' stand-in (Debian's Python), built when missing."""
    refs = run(sys.executable, str(ROOT / "hack" / "images" / "refs.py")).stdout
    image = dict(line.split() for line in refs.splitlines())["api-gateway"]
    if run("docker", "image", "inspect", image, check=False).returncode != 0:
        built = run("bash", str(ROOT / "hack" / "images" / "build.sh"), "standin", check=False)
        assert built.returncode == 0, built.stderr[-4000:]
    return image


@pytest.fixture(scope="module")
def network(engine):
    name = f"{PREFIX}guard-{os.getpid()}"
    run("docker", "network", "create", name)
    yield name
    run("docker", "network", "rm", name, check=False)


def test_guard_rules_and_jumps(engine):
    assert chain_rules("iptables", CHAIN) == EXPECTED_V4
    assert chain_rules("ip6tables", CHAIN) == EXPECTED_V6
    for ipt in ("iptables", "ip6tables"):
        assert guard_comes_first(ipt), (chain_rules(ipt, "FORWARD"), chain_rules(ipt, "DOCKER-USER"))
        for source in ("FORWARD", "DOCKER-USER"):
            rules = chain_rules(ipt, source)
            assert rules.count(f"-A {source} -j {CHAIN}") == 1, (ipt, rules)
        for old in OLD_CHAINS:
            assert run(ipt, "-w", "-S", old, check=False).returncode != 0, f"{ipt}: {old} still exists"
    # Idempotent: a second call rewrites nothing (the stamp stays), and
    # returns at once (dockerd must not hold the script's lock).
    stamp = Path("/run/neurallog/host-guard-iptables.loaded").read_text()
    assert run("bash", str(ENGINE), check=False, timeout=30).returncode == 0
    assert Path("/run/neurallog/host-guard-iptables.loaded").read_text() == stamp
    assert chain_rules("iptables", CHAIN) == EXPECTED_V4


def test_resolver_and_gateway_are_rejected(engine):
    resolvers = re.findall(r"^nameserver\s+(\d+\.\d+\.\d+\.\d+)", Path("/etc/resolv.conf").read_text(), re.M)
    gateways = re.findall(r"^default via (\d+\.\d+\.\d+\.\d+)", run("ip", "-4", "route", "show", "default").stdout, re.M)
    targets = [a for a in resolvers + gateways if not ipaddress.ip_address(a).is_loopback]
    assert targets, "no resolver or gateway found"
    for address in targets + [OUTSIDE]:
        route = run("ip", "-4", "route", "get", address).stdout
        oif = re.search(r"\bdev (\S+)", route).group(1)
        for proto in ("tcp", "udp"):
            assert verdict(address, oif, proto) == "REJECT", (address, oif, proto, route)
    # The checker itself tells a container's address from an outside one.
    assert verdict("172.16.16.2", "br-0123456789ab") == "RETURN"
    assert verdict("172.16.16.2", "eth0") == "REJECT"


def _probe(image: str, network: str | None) -> str:
    args = ["docker", "run", "--rm", "--user", "10001", "--entrypoint", "python3"]
    if network:
        args += ["--network", network]
    return run(*args, image, "-c", PROBE, OUTSIDE).stdout


@pytest.mark.parametrize("on", ["default bridge", "network of its own"])
def test_outside_address_is_rejected_from_containers(engine, python_image, network, on):
    assert guard_comes_first("iptables")
    before = counters()
    out = _probe(python_image, None if on == "default bridge" else network)
    after = counters()
    assert "tcp ConnectionRefusedError" in out, out
    assert int(re.search(r"tcp_ms (\d+)", out).group(1)) < 3000, out
    assert "udp ConnectionRefusedError" in out, out
    assert after["tcp"] > before["tcp"], (before, after)
    assert after["other"] > before["other"], (before, after)


def test_containers_still_reach_each_other(engine, python_image, network):
    server = f"{PREFIX}guard-server-{os.getpid()}"
    run("docker", "run", "-d", "--rm", "--name", server, "--network", network, "--user", "10001",
        "--entrypoint", "python3", python_image, "-m", "http.server", "8000")
    try:
        out = ""
        for _attempt in range(30):
            out = run("docker", "run", "--rm", "--network", network, "--user", "10001", "--entrypoint", "python3",
                      python_image, "-c",
                      f"import urllib.request; print(urllib.request.urlopen('http://{server}:8000/', timeout=5).status)",
                      check=False).stdout
            if out.strip() == "200":
                break
            time.sleep(1)
        assert out.strip() == "200", out
    finally:
        run("docker", "rm", "-f", server, check=False)
