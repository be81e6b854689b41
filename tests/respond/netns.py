"""Hosts in network namespaces for the response tests and bench/playbook.py: a bridge namespace,
a management namespace (where posture runs), an "other" namespace (anyone else on the network),
and N host namespaces each running a real sshd that lets root in with the lab's key.

Addresses are 10.231.0.0/16 inside the namespaces only; the root namespace's interfaces and
routes are never touched. Names carry a per-process tag, leftovers of the same tag are removed
first, and everything is torn down on exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SSHD = "/usr/sbin/sshd"
MGMT_ADDRESS = "10.231.0.1"
OTHER_ADDRESS = "10.231.0.2"


def host_address(i: int) -> str:
    return f"10.231.1.{i + 1}"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)


def _in(
    ns: str, *argv: str, check: bool = True, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=timeout,
        check=check,
    )  # fmt: skip


def lab_unavailable() -> str | None:
    """Why the lab cannot run here (None: it can)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, nftables, sshd)"
    for tool in ("ip", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"needs {tool}: apt-get install -y iproute2 openssh-client"
    if not Path(SSHD).exists():
        return "needs sshd: apt-get install -y openssh-server"
    if shutil.which("nft") is None and not Path("/usr/sbin/nft").exists():
        return "needs nft: apt-get install -y nftables"
    probe = f"pstprobe{os.getpid()}"
    try:
        _ip("netns", "add", probe)
    except subprocess.CalledProcessError as exc:
        return f"ip netns does not work here: {exc.stderr.strip()}"
    finally:
        _ip("netns", "del", probe, check=False)
    return None


@dataclass
class NetnsLab:
    tag: str
    hosts: int
    folder: Path
    namespaces: list[str] = field(default_factory=list)
    sshd: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def mgmt(self) -> str:
        return f"{self.tag}-m"

    @property
    def other(self) -> str:
        return f"{self.tag}-o"

    def host_ns(self, i: int) -> str:
        return f"{self.tag}-h{i}"

    @property
    def addresses(self) -> list[str]:
        return [host_address(i) for i in range(self.hosts)]

    @property
    def management(self) -> str:
        return MGMT_ADDRESS

    @property
    def key(self) -> Path:
        return self.folder / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.folder / "known_hosts"

    # --- checks from the namespaces ---------------------------------------------------

    def connects(self, ns: str, address: str, port: int = 22, timeout: float = 2.0) -> bool:
        """Whether a TCP connection from namespace `ns` reaches address:port."""
        code = (
            "import socket,sys\n"
            "s=socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)\n"
            f"s.settimeout({timeout})\n"
            "try:\n s.connect((sys.argv[1], int(sys.argv[2]))); print('yes')\n"
            "except OSError: print('no')\n"
        )
        done = _in(ns, sys.executable, "-c", code, address, str(port), timeout=timeout + 10)
        return done.stdout.strip() == "yes"

    def host_reaches_other(self, i: int) -> bool:
        """Whether host i can open a connection to the other namespace (its sshd-less port
        answers a refusal when reachable, which still counts as reaching it)."""
        code = (
            "import socket,sys\n"
            "s=socket.socket(); s.settimeout(2)\n"
            "try:\n s.connect((sys.argv[1], 9)); print('yes')\n"
            "except ConnectionRefusedError: print('yes')\n"
            "except OSError: print('no')\n"
        )
        return (
            _in(self.host_ns(i), sys.executable, "-c", code, OTHER_ADDRESS).stdout.strip() == "yes"
        )

    def nft_tables(self, i: int) -> list[str]:
        done = _in(self.host_ns(i), "nft", "-j", "list", "tables", check=False)
        if done.returncode != 0:
            return []
        items = json.loads(done.stdout or "{}").get("nftables", [])
        return [f"{t['table']['family']} {t['table']['name']}" for t in items if "table" in t]

    def connector_args(self) -> dict[str, object]:
        return {"user": "root", "port": 22, "identity": self.key,
                "known_hosts": self.known_hosts, "netns": self.mgmt}  # fmt: skip

    # --- set-up ------------------------------------------------------------------------

    def _add_ns(self, name: str) -> None:
        _ip("netns", "del", name, check=False)
        _ip("netns", "add", name)
        self.namespaces.append(name)
        _in(name, "ip", "link", "set", "lo", "up")

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "posture-lab", "-f",
             str(self.key)], check=True, timeout=30,
        )  # fmt: skip
        bridge = f"{self.tag}-br"
        self._add_ns(bridge)
        _in(bridge, "ip", "link", "add", "br0", "type", "bridge")
        _in(bridge, "ip", "link", "set", "br0", "up")
        peers = [(self.mgmt, MGMT_ADDRESS), (self.other, OTHER_ADDRESS)]
        peers += [(self.host_ns(i), host_address(i)) for i in range(self.hosts)]
        for n, (ns, address) in enumerate(peers):
            self._add_ns(ns)
            outside, inside = f"{self.tag}v{n}", f"{self.tag}p{n}"
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            _ip("link", "set", outside, "netns", bridge)
            _ip("link", "set", inside, "netns", ns)
            _in(bridge, "ip", "link", "set", outside, "master", "br0")
            _in(bridge, "ip", "link", "set", outside, "up")
            _in(ns, "ip", "link", "set", inside, "name", "eth0")
            _in(ns, "ip", "addr", "add", f"{address}/16", "dev", "eth0")
            _in(ns, "ip", "link", "set", "eth0", "up")
        public = self.key.with_suffix(".pub").read_text()
        for i in range(self.hosts):
            self._start_sshd(i, public)
        deadline = time.monotonic() + 30
        for i in range(self.hosts):
            while not self.connects(self.mgmt, host_address(i), timeout=1.0):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"sshd of {self.host_ns(i)} did not come up")
                time.sleep(0.1)

    def _start_sshd(self, i: int, public: str) -> None:
        home = self.folder / f"h{i}"
        home.mkdir(mode=0o700)
        hostkey = home / "ssh_host_ed25519_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(hostkey)],
                       check=True, timeout=30)  # fmt: skip
        with open(self.known_hosts, "a") as known:
            known.write(f"{host_address(i)} {hostkey.with_suffix('.pub').read_text()}")
        keys = home / "authorized_keys"
        keys.write_text(public)
        keys.chmod(0o600)
        config = home / "sshd_config"
        config.write_text(
            f"ListenAddress {host_address(i)}\nPort 22\nHostKey {hostkey}\n"
            f"PidFile {home}/sshd.pid\nAuthorizedKeysFile {keys}\n"
            "PermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            "StrictModes no\nLogLevel ERROR\nMaxStartups 100:30:200\n"
        )
        Path("/run/sshd").mkdir(exist_ok=True)
        self.sshd.append(
            subprocess.Popen(
                ["ip", "netns", "exec", self.host_ns(i), SSHD, "-D", "-e", "-f", str(config)],
                stdout=subprocess.DEVNULL, stderr=open(home / "sshd.log", "wb"),  # noqa: SIM115
            )
        )  # fmt: skip

    def stop(self) -> None:
        for proc in self.sshd:
            proc.terminate()
        for proc in self.sshd:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for ns in reversed(self.namespaces):
            # Kills whatever a test left inside (dead-man timers) before the namespace goes.
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                                  timeout=30).stdout.split()  # fmt: skip
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), 9)
            _ip("netns", "del", ns, check=False)


def _tag(label: str) -> str:
    return f"p{label}{os.getpid() % 100000}"


@contextlib.contextmanager
def netns_lab(folder: Path, hosts: int, label: str = "t") -> Iterator[NetnsLab]:
    lab = NetnsLab(_tag(label), hosts, folder)
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsLab]:
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    with netns_lab(tmp_path_factory.mktemp("netns"), hosts=2) as made:
        yield made


@dataclass
class BenchLab:
    """The lab as bench/playbook.py drives it: posture's CLI run inside the management
    namespace, with the lab's key as the playbooks' ssh credential."""

    lab: NetnsLab
    journal: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def addresses(self) -> list[str]:
        return self.lab.addresses

    @property
    def management(self) -> str:
        return self.lab.management

    @property
    def posture_argv(self) -> list[str]:
        return ["ip", "netns", "exec", self.lab.mgmt, sys.executable, "-m", "scanner"]

    def check_isolated(self, isolated: bool) -> None:
        for i in range(self.lab.hosts):
            other = self.lab.connects(self.lab.other, host_address(i), timeout=1.0)
            mgmt = self.lab.connects(self.lab.mgmt, host_address(i), timeout=2.0)
            if not mgmt or other == isolated:
                raise SystemExit(f"host {i}: management {mgmt}, other {other}")


@contextlib.contextmanager
def bench_lab(hosts: int) -> Iterator[BenchLab]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="posture-netns-") as tmp, netns_lab(
        Path(tmp), hosts, label="b"
    ) as lab:  # fmt: skip
        journal = Path(tmp) / "journal" / "respond.sqlite"
        env = {**os.environ, "POSTURE_JOURNAL": str(journal), "PYTHONPATH": str(ROOT)}
        yield BenchLab(lab, journal, env)
