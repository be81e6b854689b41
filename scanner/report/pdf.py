"""HTML reports as PDF through a real browser engine: Debian's Chromium, headless, printing the
self-contained page from a temporary file.

The page already forbids every fetch (its Content-Security-Policy), and Chromium is started so
that it cannot reach the network either: every request, loopback included, goes to a proxy that
is not there, every host name resolves to nothing, and its background services (updates, sync,
safe browsing, metrics) are off. Its profile is a temporary folder, removed afterwards, and the
whole process group is killed when it overruns its time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from scanner.errors import ScanFailedError, ToolMissingError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = "install it: apt-get install -y chromium (or set $POSTURE_CHROMIUM to a Chrome)"
TIMEOUT = 120.0
# A closed port on loopback: with <-loopback> even loopback URLs go there, so nothing connects.
DEAD_PROXY = "127.0.0.1:9"
NO_NETWORK = (
    f"--proxy-server={DEAD_PROXY}",
    "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-component-extensions-with-background-pages",
    "--disable-client-side-phishing-detection",
    "--disable-domain-reliability",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-breakpad",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--no-pings",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--safebrowsing-disable-auto-update",
)
STDERR_TAIL = 300  # characters of Chromium's last stderr line quoted in an error


def chromium() -> str:
    """The browser binary: $POSTURE_CHROMIUM, else the first of BROWSERS on PATH."""
    chosen = os.environ.get("POSTURE_CHROMIUM")
    if chosen:
        if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
            raise ToolMissingError(
                f"$POSTURE_CHROMIUM={chosen} is not an executable file: point it at a Chromium "
                f"or unset it to use chromium from PATH"
            )
        return chosen
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise ToolMissingError(f"PDF reports are printed by Chromium, which is missing: {INSTALL_HINT}")


def browser_argv(binary: str, profile: Path, *extra: str) -> list[str]:
    """Headless Chromium with no network and a throw-away profile; no sandbox only as root
    (Chromium refuses to start its sandbox as root)."""
    argv = [binary, "--headless", "--disable-gpu", f"--user-data-dir={profile}", *NO_NETWORK]
    if os.geteuid() == 0:
        argv.append("--no-sandbox")
    return [*argv, *extra]


@contextlib.contextmanager
def browser_folder() -> Iterator[Path]:
    """A private temporary folder for one Chromium run (its profile and files), removed after."""
    with tempfile.TemporaryDirectory(prefix="posture-browser-") as tmp:
        yield Path(tmp)


def run_browser(page: Path, *extra: str, timeout: float = TIMEOUT) -> bytes:
    """Load the local file `page` in headless Chromium with `extra` switches (--print-to-pdf=,
    --screenshot=, --dump-dom) and return what it wrote to stdout.

    Chromium and every process it started are killed when it overruns `timeout` seconds.
    """
    binary = chromium()
    with browser_folder() as folder:
        argv = browser_argv(binary, folder / "profile", *extra, page.resolve().as_uri())
        # its own session, so a timeout kills the zygote and renderers too, not only the wrapper
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=folder,
            start_new_session=True,
        )  # fmt: skip
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(process)
            raise ScanFailedError(
                f"Chromium ({binary}) did not finish {page.name} within {timeout:g}s: a very "
                f"large report takes long to lay out; narrow it (--scan, --status) or use html"
            ) from None
        except BaseException:  # interrupted: never leave a browser behind
            _stop(process)
            raise
        _kill_group(process)  # helpers it left behind would keep the profile folder busy
        if process.returncode != 0:
            raise ScanFailedError(
                f"Chromium ({binary}) failed on {page.name} (exit {process.returncode}): "
                f"{_last_line(err)}"
            )
        return out


def html_to_pdf(html: str, *, timeout: float = TIMEOUT) -> bytes:
    """The PDF Chromium prints of `html`: no header or footer lines; paper size and margins are
    the page's own (@page in the report templates: A4)."""
    chromium()  # a missing browser is reported before anything is written
    with browser_folder() as folder:
        page = folder / "report.html"
        page.write_text(html, encoding="utf-8")
        out = folder / "report.pdf"
        run_browser(page, f"--print-to-pdf={out}", "--no-pdf-header-footer", timeout=timeout)
        if not out.exists() or out.stat().st_size == 0:
            raise ScanFailedError(
                "Chromium exited without printing the PDF: run the same report with --format "
                "html and open it in a browser to see whether the page loads"
            )
        return out.read_bytes()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Kill Chromium's process group and reap it; pipes a stray helper still holds are left."""
    _kill_group(process)
    try:
        process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.wait()


def _last_line(err: bytes) -> str:
    lines = err.decode("utf-8", "replace").strip().splitlines()
    return (lines or ["no message"])[-1][:STDERR_TAIL]
