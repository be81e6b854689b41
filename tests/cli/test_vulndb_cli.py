"""`posture vulndb import|status|lookup` as users run them."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from scanner.cli import cli

DATA = Path(__file__).resolve().parents[1] / "vulndb" / "data"
FILES = [str(DATA / n) for n in ("nvd-sample.json", "osv-debian-openssh.json")]
FILES += [str(DATA / n) for n in ("kev-sample.json", "epss-sample.csv")]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_import_status_and_lookup(tmp_path: Path) -> None:
    db = str(tmp_path / "v.sqlite")
    code, out = run("vulndb", "import", *FILES, "--vulndb", db)
    assert code == 0 and "4 advisories" in out
    code, out = run("vulndb", "status", "--vulndb", db, "--json")
    assert code == 0 and json.loads(out)["counts"]["kev"] == 2
    code, out = run("vulndb", "lookup", "openssh", "9.3p1", "--vulndb", db)
    assert code == 0 and "CVE-2024-6387: CVSS 8.1" in out and "fixed in 9.8" in out
    code, out = run(
        "vulndb",
        "lookup",
        "openssh",
        "1:9.2p1-2+deb12u2",
        "--ecosystem",
        "debian",
        "--vulndb",
        db,
        "--json",
    )
    [match] = json.loads(out)
    assert match["fixed_version"] == "1:9.2p1-2+deb12u3"
    assert match["cvss_score"] == 8.1  # the distro advisory borrows its CVE's NVD score
    code, out = run("vulndb", "lookup", "nginx", "1.25.3", "--vulndb", db)
    assert code == 0 and "no known advisory" in out


def test_errors_exit_2_and_stale_status_exits_1(tmp_path: Path) -> None:
    db = str(tmp_path / "v.sqlite")
    code, out = run("vulndb", "status", "--vulndb", db)
    assert code == 2 and "no advisory database" in out
    bad = tmp_path / "bad.json"
    bad.write_text('{"vulnerabilities": [{"cve": {"id": "CVE-1"')
    code, out = run("vulndb", "import", str(bad), "--vulndb", db)
    assert code == 2 and "truncated in record 0" in out
    config = tmp_path / "posture.toml"
    config.write_text(f'vulndb = "{db}"\nvulndb_max_age_days = 1e-9\n')
    assert run("vulndb", "import", FILES[0], "--vulndb", db)[0] == 0
    code, out = run("--config", str(config), "vulndb", "status")
    assert code == 1 and "days old" in out
