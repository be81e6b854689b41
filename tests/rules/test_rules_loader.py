"""Loading packs: every broken pack fails with file:line: reason, all problems at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.errors import EXIT_USAGE, ConfigError
from scanner.rules import PackError, PackProblem, load_packs
from scanner.rules.packfile import MAX_PACK_BYTES

DATA = Path(__file__).parent / "data"


def problems_of(*names: str) -> list[str]:
    with pytest.raises(PackError) as caught:
        load_packs([DATA / name for name in names])
    return [str(problem) for problem in caught.value.problems]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("bad_yaml.yaml", "bad_yaml.yaml:6: bad YAML:"),  # the wording is libyaml's or PyYAML's
        (
            "unknown_key_pack.yaml",
            "unknown_key_pack.yaml:3: unknown key 'author' (expected one of: pack, version, "
            "description, rules)",
        ),
        ("unknown_key_rule.yaml", "unknown_key_rule.yaml:6: rule 'typo.a': unknown key 'severty'"),
        (
            "unknown_key_example.yaml",
            "unknown_key_example.yaml:13: rule 'ex.a': examples: unknown key 'matches'",
        ),
        (
            "wrong_type.yaml",
            "wrong_type.yaml:2: 'version' must be a string, not a number (quote it)",
        ),
        (
            "wrong_type.yaml",
            "wrong_type.yaml:8: rule 'types.a': 'port' must be an integer, not a string",
        ),
        (
            "wrong_type.yaml",
            "wrong_type.yaml:10: rule 'types.a': 'references' must be a list, not a string",
        ),
        (
            "wrong_type.yaml",
            "wrong_type.yaml:13: rule 'types.a': examples.match: 'ftp.anonymous' must be a "
            "boolean (true/false), not a string",
        ),
        (
            "unknown_operator.yaml",
            "unknown_operator.yaml:9: rule 'ops.a': unknown operator 'regexp' (expected one of: "
            "eq, ne, in, not_in, lt, le, gt, ge, regex, contains, exists, version)",
        ),
        (
            "bad_regex.yaml",
            "bad_regex.yaml:10: rule 'rx.a': 'ftp.banner' regex: bad regex "
            "'vsFTPd (2\\\\.3\\\\.4': missing ), unterminated subpattern",
        ),
        ("duplicate_id.yaml", "duplicate_id.yaml:10: duplicate rule id 'dup.a' (first defined at "),
        ("duplicate_key.yaml", "duplicate_key.yaml:9: duplicate key 'port' (first at line 8)"),
        (
            "unknown_fact.yaml",
            "unknown_fact.yaml:9: rule 'facts.a': unknown fact 'servce.name' "
            "(did you mean 'service.name'?)",
        ),
        (
            "bad_control.yaml",
            "bad_control.yaml:12: rule 'ctl.a': controls: unknown framework in 'PCI-DSS-3.2:2.2'",
        ),
        ("alias.yaml", "alias.yaml:7: YAML anchor '&w' is not allowed in a rule pack"),
    ],
)
def test_broken_pack_names_file_line_and_reason(name: str, expected: str) -> None:
    found = problems_of(name)
    assert any(problem.startswith(f"{DATA}/{expected}") for problem in found), found


def test_duplicate_id_within_a_pack_points_at_the_first() -> None:
    (problem,) = problems_of("duplicate_id.yaml")
    first = DATA / "duplicate_id.yaml"
    assert problem == f"{first}:10: duplicate rule id 'dup.a' (first defined at {first}:4)"


def test_duplicate_id_across_packs_points_at_the_other_file() -> None:
    (problem,) = problems_of("good.yaml", "duplicate_id_other.yaml")
    assert problem == (
        f"{DATA / 'duplicate_id_other.yaml'}:10: duplicate rule id 'good.telnet' "
        f"(first defined at {DATA / 'good.yaml'}:5)"
    )


def test_every_problem_of_every_pack_is_reported_at_once() -> None:
    with pytest.raises(PackError) as caught:
        load_packs([DATA / "unknown_key_rule.yaml", DATA / "wrong_type.yaml", DATA / "alias.yaml"])
    files = {Path(p.path).name for p in caught.value.problems}
    assert files == {"unknown_key_rule.yaml", "wrong_type.yaml", "alias.yaml"}
    lines = str(caught.value).splitlines()
    assert len(lines) == len(caught.value.problems) == 7
    # Within a file, problems come in line order.
    wrong = [p.line for p in caught.value.problems if p.path.endswith("wrong_type.yaml")]
    assert wrong == sorted(wrong)


def test_missing_rule_key_and_unknown_key_are_both_reported() -> None:
    found = problems_of("unknown_key_rule.yaml")
    path = DATA / "unknown_key_rule.yaml"
    assert f"{path}:4: rule 'typo.a': missing key 'severity'" in found


def test_pack_error_is_a_config_error_with_exit_2() -> None:
    error = PackError([PackProblem("x.yaml", 3, "bad")])
    assert isinstance(error, ConfigError)
    assert error.exit_code == EXIT_USAGE == 2
    assert str(error) == "x.yaml:3: bad"
    assert str(PackProblem("x.yaml", 0, "whole file")) == "x.yaml: whole file"


def test_good_pack_loads_into_a_ruleset() -> None:
    ruleset = load_packs([DATA / "good.yaml"])
    assert ruleset.pack_labels() == ("good@2.1",)
    assert [rule.id for rule in ruleset.rules] == ["good.telnet", "good.lab-host"]
    telnet = ruleset.get("good.telnet")
    assert telnet is not None
    assert telnet.source == f"{DATA / 'good.yaml'}:5"
    assert telnet.subject == "service"
    assert telnet.controls == ("PCI-DSS-4.0:2.2.7", "CIS-8:4.8", "NIST-800-53:CM-7")
    assert telnet.match_examples[0].source == f"{DATA / 'good.yaml'}:17"
    host_rule = ruleset.get("good.lab-host")
    assert host_rule is not None and host_rule.subject == "host"
    assert ruleset.get("nope.nothing") is None
    assert ruleset.packs[0].description == "A small sound pack used by the tests."


def test_folder_means_its_yaml_files_and_files_load_once(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text((DATA / "good.yaml").read_text())
    (tmp_path / "notes.txt").write_text("not a pack")
    ruleset = load_packs([tmp_path, tmp_path / "a.yaml"])
    assert ruleset.pack_labels() == ("good@2.1",)


def test_missing_path_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(PackError) as caught:
        load_packs([tmp_path / "absent.yaml", tmp_path])
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path / 'absent.yaml'}: no such rule pack file or folder",
        f"{tmp_path}: folder has no *.yaml rule packs",
    ]


def test_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_PACK_BYTES + 1))
    with pytest.raises(PackError, match=r"big\.yaml: file is \d+ bytes; a rule pack may have"):
        load_packs([big])


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}]" for i in range(9)]
    bomb.write_text("\n".join(lines) + "\n")
    with pytest.raises(PackError, match=r"bomb\.yaml:1: YAML anchor '&a' is not allowed"):
        load_packs([bomb])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"\xff\xfe pack", "not UTF-8 text"),
        (b"", "the file is empty"),
        (b"- just\n- a list\n", ":1: a pack must be a mapping"),
        (b"pack: a\n---\npack: b\n", ":2: bad YAML: but found another document"),
        (b"pack: !!python/object:os.system x\n", ":1: YAML tag"),
        (b"pack: a\nversion: '1'\nrules: []\n<<: {x: 1}\n", ":4: YAML merge keys"),
        (b"pack: a\nversion: '1'\nrules: []\n1: x\n", ":4: mapping key '1' must be a string"),
        (b"pack: Bad Name\nversion: '1'\nrules: []\n", ":1: 'pack' 'Bad Name' is not a pack name"),
        (b"pack: a\nversion: 1 beta\nrules: []\n", ":2: 'version' '1 beta' is not a version"),
        (b"pack: a\nversion: '-1'\nrules: []\n", ":2: 'version' '-1' is not a version"),
        (b'pack: a\nversion: "1\\e[2J"\nrules: []\n', ":2: 'version' '1\\x1b[2J' is not"),
        (b"pack: a\nversion: 'v" + b"1" * 64 + b"'\nrules: []\n", ":2: 'version' 'v111"),
        (b"pack: a\nversion: '1'\nrules: {}\n", ":3: 'rules' must be a list, not a mapping"),
        (b"pack: a\nversion: '1'\n", ":1: missing key 'rules'"),
    ],
)
def test_unreadable_or_malformed_files(tmp_path: Path, text: bytes, expected: str) -> None:
    pack = tmp_path / "p.yaml"
    pack.write_bytes(text)
    with pytest.raises(PackError) as caught:
        load_packs([pack])
    assert any(expected in str(p) for p in caught.value.problems), caught.value.problems


def test_duplicate_pack_names_are_refused(tmp_path: Path) -> None:
    for name in ("one.yaml", "two.yaml"):
        (tmp_path / name).write_text("pack: same\nversion: '1'\nrules: []\n")
    with pytest.raises(PackError) as caught:
        load_packs([tmp_path])
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path / 'two.yaml'}:1: duplicate pack name 'same' (also {tmp_path / 'one.yaml'})"
    ]


RULE = """pack: t
version: "1"
rules:
  - id: t.r
    title: T
    severity: low
{extra}
    when: {{port: 23}}
    remediation: R
    references: [https://example.org/r]
"""


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("    id: t.again", ":7: duplicate key 'id' (first at line 4)"),
        ("    severity: urgent", ":7: duplicate key 'severity' (first at line 6)"),
        ("    confidence: sure", ":7: rule 't.r': 'confidence' 'sure' is not one of: certain"),
        (
            "    for: network",
            ":7: rule 't.r': 'for' must be one of: service, host, vulnerability",
        ),
        (
            "    severity_from: service.name",
            ":7: rule 't.r': severity_from: fact 'service.name' does not hold a severity",
        ),
        ("    severity_from: vuln.severity", "fact 'vuln.severity' is not available to service"),
        (
            "    confidence_from: tls.grade",
            ":7: rule 't.r': confidence_from: fact 'tls.grade' does not hold a confidence",
        ),
        ("    evidence: [vuln.cvss]", "'vuln.cvss' is not available to service rules"),
        ("    evidence: [service.nmae]", "did you mean 'service.name'?"),
        ("    discriminator: port", ""),
        ("    discriminator: servce.name", ":7: rule 't.r': unknown fact 'servce.name'"),
        ("    cves: [CVE-2024-1]", ":7: rule 't.r': cves: 'CVE-2024-1' is not a CVE id"),
        ("    controls: [NIST-800-53:cm7]", "'cm7' is not a NIST-800-53 control id"),
        ("    controls: [CIS-8]", "no control id in 'CIS-8'"),
        ("    description: 5", ":7: rule 't.r': 'description' must be a string, not an integer"),
        ("    examples: []", ":7: rule 't.r': 'examples' must be a mapping with match, no_match"),
        ("    examples: {match: [3]}", "each example must be a mapping of facts, not an integer"),
        ("    examples: {match: [{port: null}]}", "'port' must be an integer, not null"),
        ("    examples: {no_match: [{proto: sctp}]}", "'proto' cannot be 'sctp'"),
    ],
)
def test_rule_field_checks(tmp_path: Path, extra: str, expected: str) -> None:
    pack = tmp_path / "t.yaml"
    pack.write_text(RULE.format(extra=extra))
    if not expected:
        assert load_packs([pack]).rules[0].discriminator == "port"
        return
    with pytest.raises(PackError) as caught:
        load_packs([pack])
    assert any(expected in str(p) for p in caught.value.problems), caught.value.problems


def test_host_rule_cannot_name_service_facts(tmp_path: Path) -> None:
    pack = tmp_path / "t.yaml"
    pack.write_text(RULE.format(extra="    for: host"))
    with pytest.raises(PackError, match=r"t\.yaml:8: rule 't\.r': fact 'port' is not available"):
        load_packs([pack])


def test_rule_without_id_is_named_by_position(tmp_path: Path) -> None:
    pack = tmp_path / "t.yaml"
    pack.write_text(RULE.replace("  - id: t.r\n", "  - note: x\n").format(extra=""))
    with pytest.raises(PackError) as caught:
        load_packs([pack])
    found = [str(p) for p in caught.value.problems]
    assert f"{pack}:4: rules item 1: missing key 'id'" in found
    assert any(p.startswith(f"{pack}:4: rules item 1: unknown key 'note'") for p in found)


def test_service_banner_is_not_a_fact_yet(tmp_path: Path) -> None:
    # No probe fills Service.banner: a rule or example naming it would never match, so it is
    # refused rather than silently dead.
    pack = tmp_path / "t.yaml"
    pack.write_text(
        RULE.replace(
            "    when: {{port: 23}}\n", "    when: {{service.banner: {{regex: x}}}}\n"
        ).format(extra="    evidence: [service.banner]")
    )
    with pytest.raises(PackError) as caught:
        load_packs([pack])
    why = "no probe collects raw banners yet; match service.product, service.version or"
    assert [str(p) for p in caught.value.problems] == [
        f"{pack}:7: rule 't.r': evidence: unknown fact 'service.banner': {why} a check's "
        "greeting such as ftp.banner",
        f"{pack}:8: rule 't.r': unknown fact 'service.banner': {why} a check's greeting such "
        "as ftp.banner",
    ]


@pytest.mark.parametrize("version", ["1", "1.0.0", "2024.11", "1.0.0-rc.1+build.5", "v2_beta"])
def test_ordinary_versions_load(tmp_path: Path, version: str) -> None:
    pack = tmp_path / "p.yaml"
    pack.write_text(f"pack: a\nversion: '{version}'\nrules: []\n")
    assert load_packs([pack]).pack_labels() == (f"a@{version}",)


VULN_RULE = """pack: v
version: "1"
rules:
  - id: v.r
    title: {title}
    severity: low
    for: vulnerability
    severity_from: vuln.severity
    confidence_from: vuln.confidence
    when: {when}
    remediation: R
    references: [https://example.org/r]
"""


def test_vulnerability_rules_see_vuln_host_and_port_facts_but_no_checks(tmp_path: Path) -> None:
    pack = tmp_path / "v.yaml"
    pack.write_text(
        VULN_RULE.format(
            title="'{vuln.id} on {port}'",
            when="{vuln.cvss: {ge: 9.0}, os.id: debian, port: 22}",
        )
    )
    rule = load_packs([pack]).rules[0]
    assert (rule.subject, rule.severity_from, rule.confidence_from) == (
        "vulnerability",
        "vuln.severity",
        "vuln.confidence",
    )
    facts = {"vuln.id": "CVE-2024-6387", "vuln.cvss": 9.8, "os.id": "debian", "port": 22}
    assert rule.when.match(facts) is not None
    assert rule.when.match({**facts, "vuln.cvss": 8.9}) is None
    assert rule.title_for(facts) == "CVE-2024-6387 on 22"
    assert rule.title_for({}) == "? on ?"
    pack.write_text(VULN_RULE.format(title="T", when="{redis.unauthenticated: true}"))
    with pytest.raises(PackError, match=r"'redis\.unauthenticated' is not available to vulnerab"):
        load_packs([pack])


def test_title_placeholders_must_name_visible_facts(tmp_path: Path) -> None:
    pack = tmp_path / "v.yaml"
    pack.write_text(VULN_RULE.format(title="'{vuln.idd} here'", when="{vuln.kev: true}"))
    with pytest.raises(PackError) as caught:
        load_packs([pack])
    assert [str(p) for p in caught.value.problems] == [
        f"{pack}:5: rule 'v.r': title placeholder {{vuln.idd}}: unknown fact 'vuln.idd' "
        "(did you mean 'vuln.id'?)"
    ]


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("{vuln.cvss: {ge: high}}", "expected a number, not a string"),
        ("{vuln.epss: {gt: true}}", "expected a number, not a boolean"),
        ("{vuln.kev: {ge: 1}}", "'vuln.kev' is not a number"),
    ],
)
def test_number_facts_compare_with_numbers_only(tmp_path: Path, when: str, expected: str) -> None:
    pack = tmp_path / "v.yaml"
    pack.write_text(VULN_RULE.format(title="T", when=when))
    with pytest.raises(PackError, match=expected):
        load_packs([pack])
