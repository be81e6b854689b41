"""HTML reports as PDF through a real browser engine: Debian's Chromium, headless, printing the
self-contained page from a temporary file.

The page already forbids every fetch (its Content-Security-Policy), and Chromium is started so
that it cannot reach the network either: every host name resolves to nothing, every request
goes to a proxy that is not there, and its background services (updates, sync, safe browsing)
are off. Its profile is a temporary folder, removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from scanner.errors import ScanFailedError, ToolMissingError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT = 120.0
NO_NETWORK = (
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--safebrowsing-disable-auto-update",
)


def chromium() -> str:
    """The browser binary: $POSTURE_CHROMIUM, else the first of BROWSERS on PATH."""
    chosen = os.environ.get("POSTURE_CHROMIUM")
    if chosen:
        if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
            raise ToolMissingError(f"$POSTURE_CHROMIUM={chosen} is not an executable file")
        return chosen
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise ToolMissingError(
        "PDF reports are printed by Chromium, which is missing: apt-get install -y chromium"
    )


def browser_argv(binary: str, profile: Path, *extra: str) -> list[str]:
    """Headless Chromium with no network, a throw-away profile, and no sandbox only as root
    (Chromium refuses to run its sandbox as root)."""
    argv = [binary, "--headless", "--disable-gpu", f"--user-data-dir={profile}", *NO_NETWORK]
    if os.geteuid() == 0:
        argv.append("--no-sandbox")
    return [*argv, *extra]


def html_to_pdf(html: str, *, timeout: float = TIMEOUT) -> bytes:
    """The PDF Chromium prints of `html` (A4, no header or footer lines, backgrounds kept)."""
    binary = chromium()
    with tempfile.TemporaryDirectory(prefix="posture-pdf-") as tmp:
        folder = Path(tmp)
        page = folder / "report.html"
        page.write_text(html, encoding="utf-8")
        out = folder / "report.pdf"
        argv = browser_argv(binary, folder / "profile", f"--print-to-pdf={out}",
                            "--no-pdf-header-footer", page.as_uri())  # fmt: skip
        try:
            done = subprocess.run(argv, capture_output=True, timeout=timeout, cwd=folder)
        except subprocess.TimeoutExpired:
            raise ScanFailedError(f"Chromium did not print the PDF within {timeout:g}s") from None
        if not out.exists() or out.stat().st_size == 0:
            lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise ScanFailedError(
                f"Chromium printed no PDF (exit {done.returncode}): {(lines or ['?'])[-1][:300]}"
            )
        return out.read_bytes()
