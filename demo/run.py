"""`make demo`: start the demo lab on 127.0.77.x and the TLS showcase on 127.0.78.1-5, scan
them with the real `posture` CLI (TLS ports are assessed and graded as part of the scan), show one
endpoint with `posture tls`, print the findings, write report.html, stop everything. Only the
labs' own addresses and ports are scanned.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from demo.lab import Lab
from demo.pki import standard_set
from demo.tlslab import showcase


def posture_argv() -> list[str]:
    """How to run this environment's `posture` (the venv's script, else the module)."""
    exe = Path(sys.executable).with_name("posture")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "scanner"]


def _run(args: list[str], *, check: bool = True) -> int:
    print(f"\n$ posture {' '.join(args)}", flush=True)
    code = subprocess.run([*posture_argv(), *args], check=False).returncode
    if check and code not in (0, 1):
        raise SystemExit(f"demo: `posture {' '.join(args)}` failed with exit code {code}")
    return code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default="127.0.77", help="lab address prefix (a /24)")
    parser.add_argument("--tls-base", default="127.0.78", help="TLS showcase prefix (.1-.5)")
    parser.add_argument("--out", default="demo-out", help="folder for the demo database")
    parser.add_argument("--report", default="report.html", help="HTML report to write")
    args = parser.parse_args()

    if os.geteuid() != 0:
        print("demo: the lab serves well-known ports (21, 23, 445 ...): run `make demo` as root")
        return 2
    if shutil.which("nmap") is None:
        print("demo: nmap is missing: run `apt-get install -y nmap` (make demo does this as root)")
        return 2

    out = Path(args.out)
    out.mkdir(exist_ok=True)
    db = out / "posture.db"
    db.unlink(missing_ok=True)

    with (
        tempfile.TemporaryDirectory(prefix="posture-demo-pki-") as pki_dir,
        Lab(args.base) as lab,
        showcase(args.tls_base, standard_set(Path(pki_dir)), lifetime=600) as tls_endpoints,
    ):
        print(f"demo lab up: {len(lab.endpoints)} services on {len(lab.addresses)} hosts")
        for ep in lab.endpoints:
            print(f"  {ep.address:>14}:{ep.port:<5}/{ep.proto}  {ep.name}")
        print(f"TLS showcase up: {len(tls_endpoints)} endpoints")
        for tls in tls_endpoints:
            print(f"  {tls.address:>14}:{tls.port:<5}/tcp  {tls.name}: {tls.description}")
        hosts = f"{lab.addresses[0]}-{lab.addresses[-1].rsplit('.', 1)[1]}"
        tls_hosts = f"{tls_endpoints[0].address}-{tls_endpoints[-1].address.rsplit('.', 1)[1]}"
        tls_ports = ",".join(sorted({str(t.port) for t in tls_endpoints}))
        ports = f"{lab.port_list()},{tls_ports}"
        # The showcase's certificates come from a test CA: trust it as a site CA would be.
        ca = str(Path(pki_dir) / "ca.pem")
        _run(["scan", hosts, tls_hosts, "--ports", ports, "--ca-file", ca, "--db", str(db)])
        legacy = next(t for t in tls_endpoints if t.name == "legacy")
        _run(["tls", f"{legacy.address}:{legacy.port}", "--ca-file", ca])
        _run(["findings", "--db", str(db), "--severity", "low"])
        _run(["report", "--format", "html", "--db", str(db), "-o", args.report])
        summary = Path(args.report).with_name("executive.html")
        _run(["report", "--profile", "executive", "--db", str(db), "-o", str(summary)])
        _run(["compliance", "--framework", "pci-dss-4.0", "--db", str(db)])
    print(
        f"\nreports written to {Path(args.report).resolve()} and {summary.resolve()}; labs stopped."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
