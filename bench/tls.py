"""posture tls against sslyze, side by side on the same lab endpoints (demo.tlslab on
127.0.82.200-209): accepted cipher suites per version must be identical; wall times compared.

    .venv/bin/python bench/tls.py [--runs 3] [--sslyze-extra] [--only NAME ...]

sslyze lives in its own venv, bench/.venv-sslyze (it pins its own cryptography and nassl),
created on first use. Exit code 0 when every endpoint's suites agree, 1 when they differ or a
tool failed, 2 when the bench could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from demo.run import posture_argv  # noqa: E402
from demo.tlslab import (  # noqa: E402
    MOZILLA_INTERMEDIATE_CIPHERS,
    LabServer,
    LabServerError,
    NginxServer,
    OpenSslServer,
    StartTlsServer,
)

SSLYZE_VENV = ROOT / "bench" / ".venv-sslyze"
BASE = "127.0.82"  # hosts .200-.209: the tests use .10-.99, the showcase .1-.5
TOOL_TIMEOUT = 120.0  # seconds per tool run
VERSIONS = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
# sslyze's scan commands and the JSON attribute each fills, per version.
SSLYZE_SUITE_SCANS = {
    "SSLv2": ("--sslv2", "ssl_2_0_cipher_suites"),
    "SSLv3": ("--sslv3", "ssl_3_0_cipher_suites"),
    "TLSv1.0": ("--tlsv1", "tls_1_0_cipher_suites"),
    "TLSv1.1": ("--tlsv1_1", "tls_1_1_cipher_suites"),
    "TLSv1.2": ("--tlsv1_2", "tls_1_2_cipher_suites"),
    "TLSv1.3": ("--tlsv1_3", "tls_1_3_cipher_suites"),
}
# What posture tls does besides suites, as sslyze scan commands (--sslyze-extra).
SSLYZE_EXTRA = (
    "--certinfo",
    "--elliptic_curves",
    "--reneg",
    "--compression",
    "--fallback",
    "--heartbleed",
    "--http_headers",
)
# Names some tools give suites instead of the IANA name (upper-cased on both sides).
SUITE_ALIASES: dict[str, str] = {
    # sslyze's pre-RFC 7905 ChaCha20 drafts: no IANA name; kept apart from the real ones.
    "OLD_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "DRAFT_ECDHE_RSA_CHACHA20_POLY1305",
    "OLD_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "DRAFT_ECDHE_ECDSA_CHACHA20_POLY1305",
    "OLD_TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "DRAFT_DHE_RSA_CHACHA20_POLY1305",
}


class BenchError(RuntimeError):
    """The bench could not run (a tool missing, a lab server down)."""


# --------------------------------------------------------------------------------------------
# What each tool found.


@dataclass(frozen=True)
class Observation:
    """Accepted suites per version (IANA names), as one tool saw them."""

    suites: Mapping[str, frozenset[str]]  # only versions the tool could tell about
    errors: tuple[str, ...] = ()


def normalize_suite(name: str) -> str:
    """An IANA suite name, whichever spelling a tool used."""
    text = name.strip().upper()
    text = SUITE_ALIASES.get(text, text)
    if text.startswith("SSL_") and not text.startswith("SSL_CK_"):
        text = "TLS_" + text[4:]  # SSL_RSA_WITH_RC4_128_MD5: the old spelling of TLS_...
    return text


def sslyze_observation(document: Mapping[str, Any]) -> Observation:
    """From `sslyze --json_out`: server_scan_results[0].scan_result.<version>_cipher_suites."""
    results = document.get("server_scan_results") or []
    if len(results) != 1:
        return Observation({}, (f"sslyze: {len(results)} server results, expected 1",))
    server = results[0]
    if server.get("scan_status") != "COMPLETED":
        trace = str(server.get("connectivity_error_trace") or "")[-300:]
        return Observation({}, (f"sslyze: {server.get('connectivity_status')}: {trace}",))
    scan = server.get("scan_result") or {}
    suites: dict[str, frozenset[str]] = {}
    errors: list[str] = []
    for version, (_, attribute) in SSLYZE_SUITE_SCANS.items():
        attempt = scan.get(attribute) or {}
        if attempt.get("status") != "COMPLETED":
            reason = attempt.get("error_reason") or attempt.get("status") or "not run"
            errors.append(f"sslyze {version}: {reason}")
            continue
        accepted = attempt["result"]["accepted_cipher_suites"]
        suites[version] = frozenset(normalize_suite(a["cipher_suite"]["name"]) for a in accepted)
    return Observation(suites, tuple(errors))


def posture_observation(document: Mapping[str, Any]) -> Observation:
    """From `posture tls --json`: protocols[] of {version, supported, suites, error}."""
    if document.get("error"):
        return Observation({}, (f"posture: {document['error']}",))
    suites: dict[str, frozenset[str]] = {}
    errors: list[str] = []
    for support in document.get("protocols") or []:
        version = support["version"]
        if support.get("supported") is None:
            errors.append(f"posture {version}: {support.get('error') or 'unknown'}")
            continue
        names = (support.get("suites") or []) if support["supported"] else []
        suites[version] = frozenset(normalize_suite(n) for n in names)
    return Observation(suites, tuple(errors))


@dataclass(frozen=True)
class Difference:
    version: str
    only_posture: frozenset[str]
    only_sslyze: frozenset[str]
    note: str | None = None  # a version only one tool could tell about


def compare(posture: Observation, sslyze: Observation) -> list[Difference]:
    """Per version both tools could tell about, the suites only one of them accepted."""
    differences: list[Difference] = []
    if not posture.suites or not sslyze.suites:
        return differences  # a tool failed outright: its errors say why
    for version in VERSIONS:
        mine, theirs = posture.suites.get(version), sslyze.suites.get(version)
        if mine is None and theirs is None:
            continue
        if mine is None or theirs is None:
            who = "posture" if mine is None else "sslyze"
            differences.append(
                Difference(version, frozenset(), frozenset(), f"{who} could not tell")
            )
            continue
        if mine != theirs:
            differences.append(Difference(version, mine - theirs, theirs - mine))
    return differences


# --------------------------------------------------------------------------------------------
# Running the tools.


def ensure_sslyze() -> Path:
    """bench/.venv-sslyze/bin/sslyze, created (venv + pip install sslyze) when missing."""
    sslyze = SSLYZE_VENV / "bin" / "sslyze"
    if sslyze.exists():
        return sslyze
    python = shutil.which("python3") or sys.executable
    print(f"bench: creating {SSLYZE_VENV.relative_to(ROOT)} (python3 -m venv; pip install sslyze)")
    steps = [
        [python, "-m", "venv", str(SSLYZE_VENV)],
        [str(SSLYZE_VENV / "bin" / "pip"), "install", "--quiet", "sslyze"],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            raise BenchError(f"`{' '.join(step)}` failed:\n{(done.stderr or done.stdout)[-2000:]}")
    # The venv must never be committed: it ignores itself.
    (SSLYZE_VENV / ".gitignore").write_text("*\n")
    if not sslyze.exists():
        raise BenchError(f"pip installed sslyze but {sslyze} is missing")
    return sslyze


def sslyze_command(
    sslyze: Path, target: str, json_out: Path, *, starttls: str | None, extra: bool
) -> list[str]:
    argv = [str(sslyze), "--quiet", "--mozilla_config", "disable", "--json_out", str(json_out)]
    argv += [flag for flag, _ in SSLYZE_SUITE_SCANS.values()]
    if extra:
        argv += SSLYZE_EXTRA
    if starttls is not None:
        argv += ["--starttls", starttls]
    return [*argv, target]


def posture_command(target: str, *, starttls: str | None) -> list[str]:
    argv = [*posture_argv(), "tls", target, "--json"]
    if starttls is not None:
        argv += ["--starttls", starttls]
    return argv


@dataclass(frozen=True)
class Run:
    seconds: float
    observation: Observation


def _run(argv: list[str], what: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"{what} took more than {TOOL_TIMEOUT:.0f}s: {' '.join(argv)}") from None
    except FileNotFoundError as exc:
        raise BenchError(f"{what}: {exc}") from None
    return time.perf_counter() - start, done


def run_posture(target: str, starttls: str | None) -> Run:
    seconds, done = _run(posture_command(target, starttls=starttls), "posture tls")
    # 0: assessed, 3: could not assess (the JSON says why); no --fail-on, so never 1
    if done.returncode not in (0, 3):
        message = (done.stderr or done.stdout).strip()[-1000:]
        return Run(seconds, Observation({}, (f"posture exit {done.returncode}: {message}",)))
    try:
        document = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        return Run(seconds, Observation({}, (f"posture printed no JSON ({exc})",)))
    return Run(seconds, posture_observation(document))


def run_sslyze(sslyze: Path, target: str, starttls: str | None, extra: bool) -> Run:
    with tempfile.TemporaryDirectory(prefix="posture-bench-sslyze-") as tmp:
        out = Path(tmp) / "sslyze.json"
        argv = sslyze_command(sslyze, target, out, starttls=starttls, extra=extra)
        seconds, done = _run(argv, "sslyze")
        if done.returncode != 0 or not out.exists():
            message = (done.stderr or done.stdout).strip()[-1000:]
            return Run(seconds, Observation({}, (f"sslyze exit {done.returncode}: {message}",)))
        return Run(seconds, sslyze_observation(json.loads(out.read_text())))


S_CLIENT_VERSIONS = {"TLSv1.0": "-tls1", "TLSv1.1": "-tls1_1", "TLSv1.2": "-tls1_2"}
S_CLIENT_VERSIONS["TLSv1.3"] = "-tls1_3"


def arbitrate(target: str, starttls: str | None, version: str, iana_name: str) -> str:
    """What the local `openssl s_client` sees when it offers just this suite: 'accepted',
    'refused', or why it cannot tell (a version or suite the local OpenSSL lacks)."""
    from scanner.probes.tls import suites

    by_upper = {name.upper(): suite for name, suite in suites.BY_NAME.items()}
    known = by_upper.get(iana_name.upper())  # the bench compares upper-cased names
    flag = S_CLIENT_VERSIONS.get(version)
    if known is None or known.openssl_name is None or flag is None:
        return "cannot tell (not in the local OpenSSL)"
    argv = ["openssl", "s_client", "-connect", target, flag, "-no_ign_eof"]
    if version == "TLSv1.3":
        argv += ["-ciphersuites", known.name]
    else:
        argv += ["-cipher", f"{known.openssl_name}:@SECLEVEL=0"]
    if starttls is not None:
        argv += ["-starttls", starttls]
    try:
        done = subprocess.run(
            argv, input="", capture_output=True, text=True, timeout=15, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot tell ({exc})"
    if "no cipher match" in done.stderr or "No cipher can be selected" in done.stderr:
        return "cannot tell (not in the local OpenSSL)"
    for line in done.stdout.splitlines():
        if "Cipher is " in line:
            return "refused" if "(NONE)" in line else "accepted"
    return "refused"


def settle(row: Row) -> None:
    """Ask openssl s_client about every suite only one tool accepted."""
    for difference in row.differences:
        for name in (*difference.only_posture, *difference.only_sslyze):
            row.verdicts[(difference.version, name)] = arbitrate(
                row.endpoint.target, row.endpoint.starttls, difference.version, name
            )


# --------------------------------------------------------------------------------------------
# The endpoints.


@dataclass(frozen=True)
class BenchEndpoint:
    name: str
    description: str
    address: str
    port: int
    starttls: str | None
    make: Callable[[dict[str, tuple[Path, Path]], float], LabServer] = field(compare=False)
    needs_nginx: bool = False

    @property
    def target(self) -> str:
        return f"{self.address}:{self.port}"


ENDPOINTS = (
    BenchEndpoint(
        "nginx-intermediate",
        "nginx, TLS 1.2+1.3, Mozilla intermediate",
        f"{BASE}.201",
        4433,
        None,
        lambda certs, life: NginxServer(
            f"{BASE}.201",
            4433,
            *certs["good"],
            ciphers=MOZILLA_INTERMEDIATE_CIPHERS,
            dhparam="ffdhe2048",
            lifetime=life,
        ),
        needs_nginx=True,
    ),
    BenchEndpoint(
        "s_server-broad",
        "s_server, TLS 1.0-1.2, ALL:@SECLEVEL=0",
        f"{BASE}.202",
        4433,
        None,
        lambda certs, life: OpenSslServer(
            f"{BASE}.202",
            4433,
            *certs["good"],
            protocols=("tls1", "tls1_1", "tls1_2"),
            ciphers="ALL:@SECLEVEL=0",
            lifetime=life,
        ),
    ),
    BenchEndpoint(
        "s_server-tls13",
        "s_server, TLS 1.3 only, all five suites",
        f"{BASE}.203",
        4433,
        None,
        lambda certs, life: OpenSslServer(
            f"{BASE}.203",
            4433,
            *certs["good"],
            protocols=("tls1_3",),
            ciphersuites=(
                "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:"
                "TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256"
            ),
            lifetime=life,
        ),
    ),
    BenchEndpoint(
        "nginx-ecdsa-narrow",
        "nginx, ECDSA certificate, two TLS 1.2 suites, server order",
        f"{BASE}.204",
        4433,
        None,
        lambda certs, life: NginxServer(
            f"{BASE}.204",
            4433,
            *certs["good-ec"],
            ciphers="ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305",
            prefer_server_ciphers=True,
            lifetime=life,
        ),
        needs_nginx=True,
    ),
    BenchEndpoint(
        "smtp-starttls",
        "SMTP STARTTLS (Python ssl), TLS 1.2+1.3",
        f"{BASE}.205",
        2525,
        "smtp",
        lambda certs, life: StartTlsServer(
            f"{BASE}.205", 2525, "smtp", *certs["good"], lifetime=life
        ),
    ),
)


RELAY_BASE = 220  # relays listen on BASE.220 + index, in front of each endpoint


def delaying_relay(upstream: tuple[str, int], one_way: float) -> Any:
    """A TCP relay that delivers every chunk `one_way` seconds after it arrived, in order, in
    both directions: a network round trip of 2 x one_way for each exchange of the handshake
    (the relay's own accept is immediate, so the TCP handshake's round trip is added before the
    upstream connection instead)."""

    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def pull() -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    queue.put_nowait((loop.time() + one_way, data))
            queue.put_nowait((loop.time() + one_way, b""))

        puller = asyncio.create_task(pull())
        try:
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                if not data:
                    break
                dst.write(data)
                await dst.drain()
            with contextlib.suppress(OSError):
                dst.write_eof()
        finally:
            puller.cancel()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(2 * one_way)
        up_reader, up_writer = await asyncio.open_connection(*upstream)
        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            up_writer.close()

    return handler


@contextlib.contextmanager
def relays(endpoints: list[BenchEndpoint], rtt_ms: float) -> Iterator[dict[str, str]]:
    """endpoint name -> the target to give the tools: the endpoint itself, or with rtt_ms > 0
    a delaying relay in front of it (tc netem is not available everywhere; this is)."""
    if rtt_ms <= 0:
        yield {e.name: e.target for e in endpoints}
        return
    from demo.lab import ServiceLoop

    loop = ServiceLoop(max_connections=256, connection_lifetime=TOOL_TIMEOUT)
    try:
        targets = {}
        for index, endpoint in enumerate(endpoints):
            address = f"{BASE}.{RELAY_BASE + index}"
            loop.serve(
                address,
                endpoint.port,
                delaying_relay((endpoint.address, endpoint.port), rtt_ms / 2000),
            )
            targets[endpoint.name] = f"{address}:{endpoint.port}"
        yield targets
    finally:
        loop.close()


@contextlib.contextmanager
def lab(endpoints: list[BenchEndpoint], lifetime: float) -> Iterator[Path]:
    """Every endpoint up (certificates from demo.pki in a temporary folder), then down."""
    from demo.pki import standard_set

    with (
        tempfile.TemporaryDirectory(prefix="posture-bench-tls-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        certs = standard_set(Path(tmp))
        for endpoint in endpoints:
            try:
                stack.enter_context(endpoint.make(certs, lifetime))
            except LabServerError as exc:
                raise BenchError(f"{endpoint.name}: {exc}") from None
        yield Path(tmp)


# --------------------------------------------------------------------------------------------
# The table.


@dataclass(frozen=True)
class Row:
    endpoint: BenchEndpoint
    posture: list[Run]
    sslyze: list[Run]
    # (version, suite) -> what `openssl s_client` says of a suite only one tool accepted
    verdicts: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def posture_right(self) -> bool:
        """Every difference settled in posture's favour by openssl s_client."""
        expected = {
            **{(d.version, n): "accepted" for d in self.differences for n in d.only_posture},
            **{(d.version, n): "refused" for d in self.differences for n in d.only_sslyze},
        }
        return bool(expected) and all(self.verdicts.get(k) == v for k, v in expected.items())

    @property
    def posture_seconds(self) -> float:
        return statistics.median(r.seconds for r in self.posture)

    @property
    def sslyze_seconds(self) -> float:
        return statistics.median(r.seconds for r in self.sslyze)

    @property
    def errors(self) -> list[str]:
        seen: dict[str, None] = {}
        for run in [*self.posture, *self.sslyze]:
            for error in run.observation.errors:
                seen.setdefault(error, None)
        return list(seen)

    @property
    def differences(self) -> list[Difference]:
        # The last runs: a suite set that changed between runs shows up as an error below.
        return compare(self.posture[-1].observation, self.sslyze[-1].observation)

    @property
    def unstable(self) -> list[str]:
        notes = []
        for tool, runs in (("posture", self.posture), ("sslyze", self.sslyze)):
            if len({tuple(sorted(r.observation.suites.items())) for r in runs}) > 1:
                notes.append(f"{tool} found different suites in different runs")
        return notes

    @property
    def identical(self) -> bool:
        last = (self.posture[-1].observation, self.sslyze[-1].observation)
        told = all(o.suites for o in last)
        return told and not self.differences and not self.errors and not self.unstable

    def as_dict(self) -> dict[str, Any]:
        def runs(items: list[Run]) -> list[dict[str, Any]]:
            return [
                {
                    "seconds": round(r.seconds, 3),
                    "suites": {v: sorted(s) for v, s in r.observation.suites.items()},
                    "errors": list(r.observation.errors),
                }
                for r in items
            ]

        return {
            "endpoint": self.endpoint.name,
            "target": self.endpoint.target,
            "starttls": self.endpoint.starttls,
            "identical": self.identical,
            "posture": runs(self.posture),
            "sslyze": runs(self.sslyze),
        }


def render(rows: list[Row], *, runs: int, extra: bool) -> str:
    sslyze_did = "--sslv2 ... --tlsv1_3" + (" + " + " ".join(SSLYZE_EXTRA) if extra else "")
    lines = [
        "posture: `posture tls HOST:PORT --json` (suites per version, groups, certificate,",
        "         renegotiation, compression, fallback, Heartbleed, HSTS)",
        f"sslyze:  `sslyze --mozilla_config disable {sslyze_did}`",
        f"median wall time of {runs} runs each, alternating; suites compared per version.",
        "",
    ]
    header = ("endpoint", "posture s", "sslyze s", "ratio", "suites identical")
    verdict = {True: "yes", False: "no"}
    table = [header]
    for row in rows:
        # A tool that failed outright has no time worth comparing.
        posture_ok = all(r.observation.suites for r in row.posture)
        sslyze_ok = all(r.observation.suites for r in row.sslyze)
        ratio = row.posture_seconds / row.sslyze_seconds if row.sslyze_seconds else float("inf")
        table.append(
            (
                row.endpoint.name,
                f"{row.posture_seconds:.2f}" if posture_ok else "failed",
                f"{row.sslyze_seconds:.2f}" if sslyze_ok else "failed",
                f"{ratio:.2f}" if posture_ok and sslyze_ok else "-",
                verdict[row.identical]
                if row.identical or not row.posture_right
                else "no: posture right (s_client)",
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for i, cells in enumerate(table):
        lines.append(" | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("-+-".join("-" * w for w in widths))
    for row in rows:
        if row.identical:
            continue
        lines += ["", f"{row.endpoint.name} ({row.endpoint.description}):"]
        for difference in row.differences:
            if difference.note:
                lines.append(f"  {difference.version}: {difference.note}")
            for who, names in (
                ("posture", difference.only_posture),
                ("sslyze", difference.only_sslyze),
            ):
                for name in sorted(names):
                    said = row.verdicts.get((difference.version, name), "not checked")
                    lines.append(
                        f"  {difference.version}: only {who} accepted {name}; "
                        f"openssl s_client offering only it: {said}"
                    )
        lines += [f"  error: {e}" for e in row.errors]
        lines += [f"  {note}" for note in row.unstable]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per tool and endpoint")
    parser.add_argument(
        "--sslyze-extra",
        action="store_true",
        help="let sslyze also run the checks posture does besides suites (closer timing)",
    )
    parser.add_argument(
        "--only", nargs="+", choices=[e.name for e in ENDPOINTS], help="these endpoints only"
    )
    parser.add_argument("--json-out", type=Path, help="also write every run's suites here")
    parser.add_argument(
        "--rtt",
        type=float,
        default=0.0,
        help="milliseconds of round-trip time to add with a delaying relay (0: plain loopback)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    endpoints = [e for e in ENDPOINTS if not args.only or e.name in args.only]
    if not NginxServer.available():
        skipped = [e.name for e in endpoints if e.needs_nginx]
        if skipped:
            print(f"bench: no nginx (apt-get install -y nginx-light): skipping {skipped}")
        endpoints = [e for e in endpoints if not e.needs_nginx]
    # Byte-compile posture as any installed package is (PYTHONDONTWRITEBYTECODE would make
    # every run recompile its modules; sslyze's site-packages are compiled at install).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "scanner")], check=False)
    try:
        sslyze = ensure_sslyze()
        # Every run of both tools, plus margin: the lab stops itself if this process dies.
        lifetime = len(endpoints) * args.runs * 2 * TOOL_TIMEOUT + 60
        with lab(endpoints, lifetime), relays(endpoints, args.rtt) as targets:
            rows = []
            for endpoint in endpoints:
                posture_runs: list[Run] = []
                sslyze_runs: list[Run] = []
                target = targets[endpoint.name]
                for _ in range(args.runs):
                    posture_runs.append(run_posture(target, endpoint.starttls))
                    sslyze_runs.append(
                        run_sslyze(sslyze, target, endpoint.starttls, args.sslyze_extra)
                    )
                row = Row(endpoint, posture_runs, sslyze_runs)
                settle(row)
                rows.append(row)
                print(f"bench: {endpoint.name} done", file=sys.stderr, flush=True)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    if args.rtt > 0:
        print(f"every connection through a relay adding {args.rtt:g} ms of round-trip time")
    print(render(rows, runs=args.runs, extra=args.sslyze_extra))
    if args.json_out is not None:
        args.json_out.write_text(json.dumps([row.as_dict() for row in rows], indent=2))
    return 0 if all(row.identical or row.posture_right for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
