"""PDF reports printed by headless Chromium (scanner/report/pdf.py): every profile through
`posture report --format pdf`, each page turned into an image that must not be blank and its text
read back; a browser that is missing, fails or hangs; and proof that Chromium sends no packet."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pypdfium2
import pytest
from hostile_store import EXPECTED_OVERDUE, hostile_store, report  # noqa: F401 - the fixture
from pixels import SEVERITY_COLOURS, assert_not_blank, has_run
from report_data import SCRIPT

from scanner.errors import ScanFailedError, ToolMissingError
from scanner.report.pdf import DEAD_PROXY, chromium, html_to_pdf

HAVE_CHROMIUM = any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome"))
needs_chromium = pytest.mark.skipif(
    not HAVE_CHROMIUM,
    reason="needs Chromium: apt-get install -y chromium (make test installs it)",
)
A4 = (595.3, 841.9)  # points
# what each profile's PDF must say: its title and a finding's title (all whitespace removed,
# as PDF text comes back broken into lines wherever the page wrapped it)
PROFILES = {
    "technical": ("Security posture: technical report", "Service banner discloses its version"),
    "executive": ("Security posture: executive summary", EXPECTED_OVERDUE[0]),
    "compliance": ("PCI DSS 4.0: control status", "Redis answers without authentication"),
}


def _flat(text: str) -> str:
    return "".join(text.split())


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tempfile's folder for this test only, so what the renderer leaves behind can be seen."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@needs_chromium
@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_as_pdf(hostile_store: Path, profile: str) -> None:  # noqa: F811
    title, finding = PROFILES[profile]
    args = ["--profile", profile, "-o", f"{profile}.pdf"]  # the extension says pdf
    if profile == "technical":
        args += ["--format", "pdf"]
    result = report(*args)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    data = (hostile_store / f"{profile}.pdf").read_bytes()
    assert data.startswith(b"%PDF-")
    document = pypdfium2.PdfDocument(io.BytesIO(data))
    try:
        assert len(document) >= 1
        text = ""
        for index in range(len(document)):
            page = document[index]
            width, height = page.get_size()
            assert (round(width, 1), round(height, 1)) == pytest.approx(A4, abs=1), "not A4"
            image = page.render(scale=1).to_pil()
            assert_not_blank(image, f"{profile} page {index + 1}", min_ink=0.005)
            if index == 0 and profile in ("technical", "executive"):
                # summary cards' edges and the severity chart's bars are printed in colour
                for severity, colour in SEVERITY_COLOURS.items():
                    assert has_run(image, colour, 40), f"{profile}: no {severity} colour printed"
            textpage = page.get_textpage()
            text += textpage.get_text_bounded()
            textpage.close()
            page.close()
    finally:
        document.close()
    flat = _flat(text)
    assert _flat(title) in flat
    assert _flat(finding) in flat
    if profile != "compliance":  # the hostile title or host name, printed as the text it is
        assert _flat(SCRIPT) in flat


def test_pdf_needs_a_file(hostile_store: Path) -> None:  # noqa: F811
    result = report("--format", "pdf")
    assert result.exit_code == 2
    assert "a PDF report needs -o FILE (it is not written to a terminal)" in result.output
    assert "%PDF" not in result.output


def test_a_missing_browser_is_named(
    hostile_store: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POSTURE_CHROMIUM", str(hostile_store / "no-such-browser"))
    with pytest.raises(ToolMissingError, match=r"POSTURE_CHROMIUM=.*no-such-browser is not an"):
        html_to_pdf("<p>x</p>")
    result = report("--format", "pdf", "-o", "x.pdf")
    assert result.exit_code == 2 and "is not an executable file" in result.output
    assert not (hostile_store / "x.pdf").exists()
    monkeypatch.delenv("POSTURE_CHROMIUM")
    monkeypatch.setenv("PATH", str(hostile_store))  # no browser of any name on it
    with pytest.raises(ToolMissingError, match=r"apt-get install -y chromium"):
        chromium()


def test_a_failing_browser_is_reported(monkeypatch: pytest.MonkeyPatch, private_tmp: Path) -> None:
    false = shutil.which("false")
    assert false is not None
    monkeypatch.setenv("POSTURE_CHROMIUM", false)
    with pytest.raises(ScanFailedError, match=r"failed on report\.html \(exit 1\)"):
        html_to_pdf("<p>x</p>")
    assert list(private_tmp.iterdir()) == []  # page and profile folders removed


def test_a_hanging_browser_is_killed_with_its_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, private_tmp: Path
) -> None:
    """A browser that never finishes (here a script standing in for a hung Chromium, with a
    child of its own) is killed, children included, when the timeout expires."""
    pid_file = tmp_path / "child.pid"
    hung = tmp_path / "hung-browser"
    hung.write_text(f"#!/bin/sh\nsleep 60 &\necho $! > {pid_file}\nwait\n", encoding="utf-8")
    hung.chmod(0o755)
    monkeypatch.setenv("POSTURE_CHROMIUM", str(hung))
    with pytest.raises(ScanFailedError, match=r"did not finish report\.html within 3s"):
        html_to_pdf("<p>x</p>", timeout=3)
    child = int(pid_file.read_text())
    assert not _alive(child), f"the browser's child {child} outlived the timeout"
    assert list(private_tmp.iterdir()) == []


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting for init to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


# --- Chromium sends nothing -------------------------------------------------------------------

# A page without the reports' CSP that asks for everything a page can: names to resolve (DNS),
# addresses of the namespace's own "outside" network over IPv4 and IPv6, and a loopback server.
# Only Chromium's own switches stand between it and the network.
LEAK_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="https://fonts.leak.example/css?family=Roboto">
<link rel="dns-prefetch" href="//prefetch.leak.example"><link rel="preconnect" href="https://10.232.0.2">
</head><body><h1>Leak test page</h1>
<img src="http://10.232.0.2/a.png"><img src="http://[fd00:232::2]/b.png">
<img src="http://127.0.0.1:8000/c.png"><img src="http://localhost:8001/d.png">
<iframe src="https://www.leak.example/"></iframe>
</body></html>"""
# Every TCP/UDP packet leaving the namespace (to its "outside") is counted and dropped; on
# loopback, connection attempts and datagrams to anything but the dead proxy are counted.
PROXY_PORT = DEAD_PROXY.rsplit(":", 1)[1]
LEAK_RULES = f"""
table inet posture_leak {{
  set out4 {{ type ipv4_addr . inet_service; size 256; flags dynamic; }}
  set out6 {{ type ipv6_addr . inet_service; size 256; flags dynamic; }}
  chain out {{
    type filter hook output priority 0; policy accept;
    oifname "lo" tcp dport {PROXY_PORT} accept
    oifname "lo" tcp flags & (syn | ack) == syn counter
    oifname "lo" meta l4proto udp counter
    oifname "lo" accept
    meta nfproto ipv4 meta l4proto {{ tcp, udp }} add @out4 {{ ip daddr . th dport }} counter drop
    meta nfproto ipv6 meta l4proto {{ tcp, udp }} add @out6 {{ ip6 daddr . th dport }} counter drop
  }}
}}
"""
PRINT_IN_NAMESPACE = """
import sys
from scanner.report.pdf import html_to_pdf
page, out = sys.argv[1:]
with open(page, encoding="utf-8") as f:
    html = f.read()
with open(out, "wb") as f:
    f.write(html_to_pdf(html, timeout=60))
"""


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=90, check=True)


@pytest.fixture
def leak_trap() -> Iterator[str]:
    """A network namespace whose only way out is a veth pair that leads nowhere (its own
    10.232.0.0/24 and fd00:232::/64), its DNS server on that side, and nftables counting."""
    if os.geteuid() != 0:
        pytest.skip("needs root (a network namespace and nftables)")
    nft = shutil.which("nft") or "/usr/sbin/nft"
    if shutil.which("ip") is None or not os.path.exists(nft):
        pytest.skip("needs ip and nft: apt-get install -y iproute2 nftables")
    name = f"pstpdf{os.getpid()}"
    etc = Path("/etc/netns") / name
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
    try:
        _run("ip", "netns", "add", name)
        steps = (
            ("link", "set", "lo", "up"),
            ("link", "add", "leak0", "type", "veth", "peer", "name", "leak1"),
            ("link", "set", "leak0", "up"),
            ("link", "set", "leak1", "up"),
            ("addr", "add", "10.232.0.1/24", "dev", "leak0"),
            ("route", "add", "default", "via", "10.232.0.2", "dev", "leak0", "onlink"),
            ("addr", "add", "fd00:232::1/64", "dev", "leak0", "nodad"),
            ("-6", "route", "add", "default", "via", "fd00:232::2", "dev", "leak0", "onlink"),
        )
        for step in steps:
            _run("ip", "-n", name, *step)
        subprocess.run(
            ["ip", "netns", "exec", name, nft, "-f", "-"],
            input=LEAK_RULES, capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        etc.mkdir(parents=True, exist_ok=True)  # `ip netns exec` mounts it over /etc/resolv.conf
        (etc / "resolv.conf").write_text("nameserver 10.232.0.2\n", encoding="utf-8")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
        shutil.rmtree(etc, ignore_errors=True)


def _leaks(namespace: str) -> tuple[int, str]:
    """Packets the trap counted, and its listing (counters, destinations) for a message."""
    nft = shutil.which("nft") or "/usr/sbin/nft"
    listing = _run("ip", "netns", "exec", namespace, nft, "-j", "list", "table", "inet",
                   "posture_leak").stdout  # fmt: skip
    packets = 0
    for item in json.loads(listing)["nftables"]:
        for expr in item.get("rule", {}).get("expr", []):
            if "counter" in expr:
                packets += expr["counter"]["packets"]
    return packets, listing


@needs_chromium
def test_chromium_sends_no_packet(leak_trap: str, tmp_path: Path) -> None:
    page, out = tmp_path / "leak.html", tmp_path / "leak.pdf"
    page.write_text(LEAK_PAGE, encoding="utf-8")
    _run("ip", "netns", "exec", leak_trap, sys.executable, "-c", PRINT_IN_NAMESPACE,
         str(page), str(out))  # fmt: skip
    packets, listing = _leaks(leak_trap)
    assert packets == 0, f"Chromium sent {packets} packet(s):\n{listing}"
    document = pypdfium2.PdfDocument(out)
    try:
        textpage = document[0].get_textpage()
        assert "Leak test page" in textpage.get_text_bounded()  # it did print the page
        textpage.close()
    finally:
        document.close()
    # the trap is live: a datagram to the namespace's outside is counted
    probe = "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('10.232.0.2', 53))"  # noqa: E501
    with contextlib.suppress(subprocess.CalledProcessError):  # dropped: sendto fails with EPERM
        _run("ip", "netns", "exec", leak_trap, sys.executable, "-c", probe)
    assert _leaks(leak_trap)[0] == 1
