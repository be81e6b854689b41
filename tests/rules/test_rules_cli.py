"""`posture rules list|validate|test` through the real `posture` command group."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from scanner.cli import cli

DATA = Path(__file__).parent / "data"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_validate_builtin_packs() -> None:
    code, out, err = run("rules", "validate")
    assert (code, err) == (0, "")
    assert out.startswith("ok: 4 packs, ") and out.endswith(" rules\n")


def test_validate_given_packs() -> None:
    code, out, _ = run("rules", "validate", str(DATA / "good.yaml"), str(DATA / "evaluate.yaml"))
    assert (code, out) == (0, "ok: 2 packs, 7 rules\n")


def test_validate_broken_packs_exits_2_with_file_line_reason() -> None:
    code, out, err = run(
        "rules", "validate", str(DATA / "unknown_operator.yaml"), str(DATA / "duplicate_key.yaml")
    )
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert lines[0].startswith(
        f"{DATA / 'unknown_operator.yaml'}:9: rule 'ops.a': unknown operator"
    )
    assert lines[1] == f"{DATA / 'duplicate_key.yaml'}:9: duplicate key 'port' (first at line 8)"
    assert lines[2] == "posture: error: 2 problem(s) in rule packs; fix them first"


def test_validate_includes_packs_from_the_config(tmp_path: Path) -> None:
    config = tmp_path / "posture.toml"
    config.write_text(f'packs = ["{DATA / "good.yaml"}"]\n')
    code, out, _ = run("--config", str(config), "rules", "validate")
    assert code == 0
    assert out.startswith("ok: 5 packs, ")
    config.write_text(f'packs = ["{DATA / "bad_regex.yaml"}"]\n')
    code, _, err = run("--config", str(config), "rules", "validate")
    assert code == 2
    assert f"{DATA / 'bad_regex.yaml'}:10: rule 'rx.a'" in err


def test_list_table_and_json() -> None:
    code, out, _ = run("rules", "list", "--rules", str(DATA / "good.yaml"))
    assert code == 0
    assert "good.telnet" in out and "good.lab-host" in out and "good@2.1" in out
    assert out.rstrip().endswith("2 rules in 1 packs")
    code, out, _ = run("rules", "list", "--json")
    assert code == 0
    rules = json.loads(out)
    redis = next(rule for rule in rules if rule["id"] == "baseline.redis-unauthenticated")
    assert redis["severity"] == "critical"
    assert redis["pack"] == "baseline"
    assert "NIST-800-53:IA-2" in redis["controls"]


def test_list_escapes_hostile_titles(tmp_path: Path) -> None:
    pack = tmp_path / "evil.yaml"
    pack.write_text(
        (DATA / "good.yaml")
        .read_text()
        .replace("title: Telnet exposed", 'title: "\\e]0;owned\\a[bold]x[/bold]"')
    )
    code, out, _ = run("rules", "list", "--rules", str(pack))
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b]0;owned\\x07" in out
    assert "[bold]x[/bold]" in out  # shown as text, not taken as markup


def test_list_broken_pack_exits_2() -> None:
    code, _, err = run("rules", "list", "--rules", str(DATA / "alias.yaml"))
    assert code == 2
    assert f"{DATA / 'alias.yaml'}:7: YAML anchor '&w'" in err


def test_test_passes_on_builtin_and_good_packs() -> None:
    code, out, _ = run("rules", "test")
    assert code == 0
    assert out.startswith("ok: ") and "examples of" in out
    code, out, _ = run("rules", "test", str(DATA / "good.yaml"))
    assert (code, out) == (0, "ok: 5 examples of 2 rules passed\n")


def test_test_reports_failing_examples_and_exits_1() -> None:
    code, out, err = run("rules", "test", str(DATA / "failing_examples.yaml"))
    assert code == 1
    path = DATA / "failing_examples.yaml"
    assert out.splitlines() == [
        f"{path}:13 failing.a: example 2 should match but did not",
        f"{path}:15 failing.a: no_match example 1 matched but should not",
        f"{path}:16 failing.no-examples: has no 'match' examples",
        f"{path}:16 failing.no-examples: has no 'no_match' examples",
    ]
    assert "4 example failure(s) in 2 rules" in err


def test_test_on_broken_pack_exits_2() -> None:
    code, out, err = run("rules", "test", str(DATA / "bad_yaml.yaml"))
    assert code == 2
    assert out == ""
    assert f"{DATA / 'bad_yaml.yaml'}:6: bad YAML" in err


def test_list_refuses_a_version_with_terminal_escapes(tmp_path: Path) -> None:
    # The label "name@version" is printed in the table and recorded with scans: a version
    # carrying ESC/OSC sequences is a load error at its line, shown escaped.
    pack = tmp_path / "evil.yaml"
    pack.write_text(
        (DATA / "good.yaml").read_text().replace('version: "2.1"', 'version: "2.1\\e]0;owned\\a"')
    )
    code, out, err = run("rules", "list", "--rules", str(pack))
    assert (code, out) == (2, "")
    assert "\x1b" not in err and "\x07" not in err
    assert err.startswith(f"{pack}:2: 'version' '2.1\\x1b]0;owned\\x07' is not a version (")
    code, out, _ = run("rules", "list", "--rules", str(DATA / "good.yaml"))
    assert code == 0 and "good@2.1" in out
