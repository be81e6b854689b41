"""Readers for the advisory feed formats (OSV, NVD CVE API 2.0, CISA KEV, FIRST EPSS): each turns
one file into typed records for scanner/vulndb/db.py to store, bounding sizes and checking shapes.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from scanner.safetext import clip
from scanner.vulndb.versions import MAX_VERSION, Ecosystem, RangeEvent, VersionError

MAX_RECORD = 10 * 1024 * 1024  # bytes of one JSON record (an NVD CVE is a few KiB)
MAX_OSV_FILE = 100 * 1024 * 1024  # one OSV file may hold a list of records
MAX_UNCOMPRESSED = 4 * 1024**3  # a zip or gzip may expand to this much, no more
MAX_ENTRIES = 2_000_000  # OSV files in one zip or folder (all of OSV is ~500,000)
MAX_LINE = 4096  # characters of one EPSS CSV line
MAX_LIST = 10_000  # aliases, references, versions or CPE criteria kept per advisory
SUMMARY_CHARS = 2000
MAX_ID = 200  # characters of an advisory id or alias


class VulnDbError(ValueError):
    """An advisory file that cannot be imported, or a database that cannot be used; the message
    names the file and, where there is one, the record or line."""


@dataclass(frozen=True, slots=True)
class AffectedRange:
    """One OSV range (or explicit version list) of one package: the unit `versions.affected`
    evaluates. OSV evaluates each range on its own, so ranges are never merged."""

    ecosystem: str  # Ecosystem.value
    release: str  # "12" of "Debian:12", "22.04" of "Ubuntu:22.04:LTS"; "" when none
    package: str  # lower-case
    events: tuple[tuple[str, str], ...]  # (kind, version), as the file orders them
    versions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CpeCriterion:
    """One NVD cpeMatch: an exact version (with NVD's separate update folded in, 7.2 + p2 ->
    "7.2p2") or a range bounded by versionStart/End Including/Excluding."""

    vendor: str
    product: str
    version: str | None
    start_including: str | None
    start_excluding: str | None
    end_including: str | None
    end_excluding: str | None
    vulnerable: bool
    any_update: bool = False  # the criterion's update field is "*" (not "-" or a value)


@dataclass(frozen=True, slots=True)
class Advisory:
    id: str
    source: str  # "osv" or "nvd"
    summary: str | None
    published: str | None
    modified: str | None
    cvss_score: float | None
    cvss_vector: str | None
    severity: str | None
    aliases: tuple[str, ...]
    references: tuple[str, ...]
    affected: tuple[AffectedRange, ...] = ()
    cpes: tuple[CpeCriterion, ...] = ()
    kev: KevEntry | None = None  # NVD's copy of the CISA KEV entry (cisaExploitAdd, ...)


@dataclass(frozen=True, slots=True)
class KevEntry:
    cve: str
    date_added: str | None
    due_date: str | None
    ransomware: bool | None  # knownRansomwareCampaignUse: Known -> True, Unknown -> False
    vendor: str | None
    product: str | None
    name: str | None


@dataclass(frozen=True, slots=True)
class EpssScore:
    cve: str
    score: float
    percentile: float
    date: str | None


Record = Advisory | KevEntry | EpssScore
Reader = Callable[[Path], Iterator[Record]]


# --- bytes and JSON ------------------------------------------------------------------------------


def _opened(path: Path) -> IO[bytes]:
    raw = path.open("rb")
    if path.name.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    return raw


def _json_document(data: bytes, where: str) -> Any:
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VulnDbError(f"{where}: not JSON ({exc})") from None
    except RecursionError:
        raise VulnDbError(f"{where}: JSON nested too deeply") from None


def _iter_json_array(stream: IO[bytes], key: str, where: str) -> Iterator[Any]:
    """The items of the top-level array `key` of a JSON object, decoded one at a time, so
    memory stays bounded by the largest item, not the file (ijson is not available)."""
    decoder = json.JSONDecoder()
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="strict")
    buffer, at, total = "", 0, 0

    def fill() -> bool:
        nonlocal buffer, at, total
        chunk = text.read(1 << 20)
        if not chunk:
            return False
        total += len(chunk)
        if total > MAX_UNCOMPRESSED:
            raise VulnDbError(f"{where}: more than {MAX_UNCOMPRESSED} bytes")
        buffer = buffer[at:] + chunk
        at = 0
        return True

    marker = f'"{key}"'
    while marker not in buffer[at:]:
        if len(buffer) > MAX_RECORD:
            buffer, at = buffer[-len(marker) :], 0
        if not fill():
            raise VulnDbError(f"{where}: no {marker} array")
    at = buffer.index(marker, at) + len(marker)
    while at >= len(buffer) or buffer[at] in " \t\r\n:":
        if at < len(buffer):
            at += 1
        elif not fill():
            raise VulnDbError(f"{where}: the file ends before the {marker} array")
    if buffer[at] != "[":
        raise VulnDbError(f"{where}: {marker} is not an array")
    at += 1
    index = 0
    while True:
        while at >= len(buffer) or buffer[at] in " \t\r\n,":
            if at < len(buffer):
                at += 1
            elif not fill():
                raise VulnDbError(f"{where}: truncated after record {index}")
        if buffer[at] == "]":
            return
        while True:
            try:
                item, end = decoder.raw_decode(buffer, at)
                break
            except json.JSONDecodeError as exc:
                if len(buffer) - at > MAX_RECORD:
                    raise VulnDbError(f"{where}: record {index} is not JSON ({exc.msg})") from None
                if not fill():
                    raise VulnDbError(f"{where}: truncated in record {index}") from None
            except RecursionError:
                raise VulnDbError(f"{where}: record {index} is nested too deeply") from None
        yield item
        index += 1
        at = end


def _first_bytes(path: Path, size: int = 4096) -> bytes:
    with _opened(path) as stream:
        return stream.read(size)


def detect_format(path: Path) -> str:
    """'osv-zip', 'osv-folder', 'osv', 'nvd', 'kev' or 'epss', from the content."""
    if path.is_dir():
        return "osv-folder"
    try:
        if zipfile.is_zipfile(path):
            return "osv-zip"
        head = _first_bytes(path).decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    except (OSError, EOFError, zlib.error) as exc:
        raise _read_error(path, exc) from None
    if head.startswith("#model_version") or head.lower().startswith("cve,epss"):
        return "epss"
    if '"catalogVersion"' in head or '"cveID"' in head:
        return "kev"
    if '"vulnerabilities"' in head and ('"NVD_CVE"' in head or '"cve"' in head):
        return "nvd"
    if head.startswith(("{", "[")):
        return "osv"
    raise VulnDbError(f"{path}: not an OSV, NVD CVE 2.0, CISA KEV or EPSS file")


# --- field helpers -------------------------------------------------------------------------------


def _text(value: Any, limit: int) -> str | None:
    if type(value) is str:  # the usual case, first: this runs several times per record
        return (value if len(value) <= limit else clip(value, limit)) if value else None
    if value is None or isinstance(value, dict | list):
        return None
    return clip(str(value), limit)


def _strings(values: Any, longest: int) -> tuple[str, ...]:
    """The strings of a JSON list; longer ones are dropped, as a cut name or version would
    be a different one."""
    if not isinstance(values, list):
        return ()
    return tuple(v for v in values[:MAX_LIST] if isinstance(v, str) and 0 < len(v) <= longest)


def _identifier(value: str) -> str:
    if len(value) > MAX_ID or not value.isprintable():
        raise VulnDbError(f"the id {clip(value, 60)!r} is not an advisory id")
    return value


def _urls(references: Any) -> tuple[str, ...]:
    # Plain loops, here and in _dicts: they run for every record, over lists of a few items.
    if not isinstance(references, list):
        return ()
    urls = []
    for reference in references[:50]:
        if isinstance(reference, dict):
            url = reference.get("url")
            if isinstance(url, str):
                urls.append(url if len(url) <= 500 else clip(url, 500))
    return tuple(urls)


def _dicts(value: Any) -> list[dict[str, Any]]:
    if type(value) is not list:
        return []
    for item in value:
        if type(item) is not dict:
            return [v for v in value if isinstance(v, dict)]
    return value


_CVSS3 = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
}
_PR = {"U": {"N": 0.85, "L": 0.62, "H": 0.27}, "C": {"N": 0.85, "L": 0.68, "H": 0.5}}


def _roundup(value: float) -> float:
    """CVSS v3.1's Roundup: the smallest one-decimal number >= value, without float drift."""
    scaled = round(value * 100_000)
    return scaled / 100_000.0 if scaled % 10_000 == 0 else (math.floor(scaled / 10_000) + 1) / 10.0


def cvss3_base_score(vector: str) -> float | None:
    """The CVSS v3.0/v3.1 base score of a vector (FIRST's specification, section 7.1), as OSV
    records carry only the vector; None for anything else."""
    parts = dict(p.split(":", 1) for p in vector.split("/")[1:] if ":" in p)
    if not vector.startswith("CVSS:3.") or not {"AV", "AC", "PR", "UI", "S", "C", "I", "A"} <= set(
        parts
    ):
        return None
    try:
        scope = parts["S"]
        impact_sub = 1 - (
            (1 - _CVSS3["C"][parts["C"]])
            * (1 - _CVSS3["C"][parts["I"]])
            * (1 - _CVSS3["C"][parts["A"]])
        )
        exploitability = (
            8.22
            * _CVSS3["AV"][parts["AV"]]
            * _CVSS3["AC"][parts["AC"]]
            * _PR[scope][parts["PR"]]
            * _CVSS3["UI"][parts["UI"]]
        )
    except KeyError:
        return None
    if scope == "U":
        impact = 6.42 * impact_sub
    else:
        impact = 7.52 * (impact_sub - 0.029) - 3.25 * (impact_sub - 0.02) ** 15
    if impact <= 0:
        return 0.0
    total = impact + exploitability if scope == "U" else 1.08 * (impact + exploitability)
    return _roundup(min(total, 10.0))


def _severity_name(score: float | None) -> str | None:
    if score is None:
        return None
    if score == 0:
        return "NONE"
    return "LOW" if score < 4 else "MEDIUM" if score < 7 else "HIGH" if score < 9 else "CRITICAL"


# --- OSV -----------------------------------------------------------------------------------------


def _release(ecosystem: str) -> str:
    """The release part of an OSV ecosystem string, as lookups name it: "Debian:12" -> "12",
    "Ubuntu:22.04:LTS" -> "22.04", "Alpine:v3.18" -> "3.18", "npm" -> "". The RPM family
    shares one version ordering, so its releases keep the distribution's name: "Rocky Linux:9"
    -> "rocky linux:9", "Red Hat:enterprise_linux:9::appstream" ->
    "red hat:enterprise_linux:9:appstream" (a Rocky host is never judged by AlmaLinux's fixes)."""
    name, _, rest = ecosystem.partition(":")
    if not rest or Ecosystem.parse(name) is Ecosystem.UPSTREAM:
        return ""
    parts = [p for p in rest.lower().split(":") if p and p != "lts"]
    if Ecosystem.parse(name) is Ecosystem.RPM:
        parts.insert(0, name.strip().lower())
    release = ":".join(parts)[:60]
    return release[1:] if name.strip().lower() == "alpine" and release.startswith("v") else release


def _osv_ranges(entry: dict[str, Any], package: str, ecosystem: str) -> list[AffectedRange]:
    eco = Ecosystem.parse(ecosystem)
    release = _release(ecosystem)
    rows = []
    for found in _dicts(entry.get("ranges"))[:MAX_LIST]:
        if found.get("type") == "GIT":
            continue  # commit ranges cannot be compared with versions
        events = []
        for event in _dicts(found.get("events"))[:MAX_LIST]:
            if len(event) != 1:
                raise VersionError(f"an event with {len(event)} keys, OSV gives one")
            ((kind, version),) = event.items()
            checked = RangeEvent(str(kind), str(version))  # VersionError for nonsense
            events.append((checked.kind, checked.version))
        if events:
            rows.append(AffectedRange(eco.value, release, package, tuple(events), ()))
    versions = _strings(entry.get("versions"), MAX_VERSION)
    if versions:
        rows.append(AffectedRange(eco.value, release, package, (), versions))
    return rows


def osv_advisory(record: Any) -> Advisory:
    """One OSV record (schema 1.x: GHSA, PYSEC, DEBIAN-CVE, DSA, USN, ALPINE-CVE, ...)."""
    if not isinstance(record, dict) or not isinstance(record.get("id"), str) or not record["id"]:
        raise VulnDbError("not an OSV record (no id)")
    advisory_id = _identifier(record["id"])
    vector = score = None
    for severity in _dicts(record.get("severity")):
        if str(severity.get("type", "")).startswith("CVSS_V3") and isinstance(
            severity.get("score"), str
        ):
            vector = clip(severity["score"], 200)
            score = cvss3_base_score(vector)
    specific = record.get("database_specific")
    specific = specific if isinstance(specific, dict) else {}
    named = _text(specific.get("severity"), 20)
    # "upstream" (OSV 1.7; Debian and Ubuntu records) names the CVE a distro record is about.
    upstream = _strings(record.get("upstream"), MAX_ID)
    cves = tuple(a for a in upstream if a.upper().startswith("CVE-"))
    aliases = tuple(dict.fromkeys((*_strings(record.get("aliases"), MAX_ID), *cves)))
    affected = []
    for number, entry in enumerate(_dicts(record.get("affected"))[:MAX_LIST]):
        package = entry.get("package")
        if not isinstance(package, dict) or not isinstance(package.get("name"), str):
            raise VulnDbError(f"{advisory_id} affected[{number}] has no package")
        try:
            affected.extend(
                _osv_ranges(
                    entry, clip(package["name"], 200).lower(), str(package.get("ecosystem", ""))
                )
            )
        except VersionError as exc:
            raise VulnDbError(f"{advisory_id} affected[{number}]: {exc}") from None
    return Advisory(
        id=advisory_id,
        source="osv",
        summary=_text(record.get("summary") or record.get("details"), SUMMARY_CHARS),
        published=_text(record.get("published"), 40),
        modified=_text(record.get("modified"), 40),
        cvss_score=score,
        cvss_vector=vector,
        severity=(named.upper() if named else None) or _severity_name(score),
        aliases=aliases,
        references=_urls(record.get("references")),
        affected=tuple(affected),
    )


def _osv_documents(document: Any, where: str) -> Iterator[tuple[Any, str]]:
    if isinstance(document, list):
        for number, item in enumerate(document):
            yield item, f"{where} record {number}"
    else:
        yield document, where


def _read_bounded(stream: IO[bytes], limit: int, where: str) -> bytes:
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise VulnDbError(f"{where}: larger than {limit} bytes")
    return data


def _osv_records(documents: Iterator[tuple[Any, str]]) -> Iterator[Record]:
    for record, where in documents:
        yield _checked(osv_advisory, record, where)


def _osv_file_documents(path: Path) -> Iterator[tuple[Any, str]]:
    with _opened(path) as stream:
        data = _read_bounded(stream, MAX_OSV_FILE, str(path))
    yield from _osv_documents(_json_document(data, str(path)), str(path))


def read_osv_file(path: Path) -> Iterator[Record]:
    """A single OSV JSON file (one record, or a list of records)."""
    return _osv_records(_osv_file_documents(path))


def read_osv_folder(path: Path) -> Iterator[Record]:
    """Every *.json below a folder (symbolic links are not followed out of it)."""
    files = sorted(p for p in path.rglob("*.json") if p.is_file() and not p.is_symlink())
    if len(files) > MAX_ENTRIES:
        raise VulnDbError(f"{path}: {len(files)} files, more than {MAX_ENTRIES}")
    return _osv_records(d for file in files for d in _osv_file_documents(file))


def read_osv_zip(path: Path) -> Iterator[Record]:
    """An OSV ecosystem export (`all.zip`), guarded against zip bombs: the entry count and the
    declared sizes are checked first, and zipfile never reads past an entry's declared size."""
    with zipfile.ZipFile(path) as archive:
        entries = [e for e in archive.infolist() if e.filename.endswith(".json")]
        if len(entries) > MAX_ENTRIES:
            raise VulnDbError(f"{path}: {len(entries)} entries, more than {MAX_ENTRIES}")
        if sum(e.file_size for e in entries) > MAX_UNCOMPRESSED:
            raise VulnDbError(f"{path}: expands to more than {MAX_UNCOMPRESSED} bytes")
        for entry in entries:
            where = f"{path}:{entry.filename}"
            if entry.file_size > MAX_RECORD:
                raise VulnDbError(f"{where}: a record of {entry.file_size} bytes")
            with archive.open(entry) as handle:
                data = _read_bounded(handle, MAX_RECORD, where)
            for record, named in _osv_documents(_json_document(data, where), where):
                yield _checked(osv_advisory, record, named)


# --- NVD -----------------------------------------------------------------------------------------


def _cvss(metrics: Any) -> tuple[float | None, str | None, str | None]:
    """The NVD record's best score: the newest CVSS version, NVD's own metric of it."""
    if not isinstance(metrics, dict):
        return None, None, None
    for key in ("cvssMetricV40", "cvssMetricV31", "cvssMetricV30", "cvssMetricV2"):
        found = metrics.get(key)
        if not found:
            continue
        entries = _dicts(found)
        # NVD's own analysis first: its Primary metric, else NVD's Secondary one (NVD files its
        # score as Secondary when a CNA scored first), else the CNA's.
        primary = [m for m in entries if m.get("type") == "Primary"]
        nvd = [m for m in entries if m.get("source") == "nvd@nist.gov"]
        for metric in primary or nvd or entries:
            data = metric.get("cvssData")
            score = data.get("baseScore") if isinstance(data, dict) else None
            if isinstance(score, int | float) and not isinstance(score, bool) and 0 <= score <= 10:
                assert isinstance(data, dict)
                severity = data.get("baseSeverity") or metric.get("baseSeverity")
                return float(score), _text(data.get("vectorString"), 200), _text(severity, 20)
    return None, None, None


_CPE_SPLIT = re.compile(r"(?<!\\):")
_CPE_ESCAPE = re.compile(r"\\(.)")


def _cpe_field(value: str) -> str:
    return _CPE_ESCAPE.sub(r"\1", value) if "\\" in value else value


def _bound(match: dict[str, Any], key: str) -> str | None:
    value = match.get(key)
    if value is None or value == "":
        return None
    if type(value) is not str:
        raise VulnDbError(f"{key} is not a string")
    return value if len(value) <= 100 else clip(value, 100)


def cpe_criterion(match: dict[str, Any]) -> CpeCriterion:
    """One NVD cpeMatch object; VulnDbError for a criteria string that is not CPE 2.3."""
    criteria = match.get("criteria")
    if not isinstance(criteria, str):
        parts: list[str] = []
    else:  # CPE 2.3 escapes a colon inside a field as "\:"; most names have no escapes
        parts = _CPE_SPLIT.split(criteria) if "\\" in criteria else criteria.split(":")
    if len(parts) < 7 or parts[:2] != ["cpe", "2.3"]:
        raise VulnDbError(f"bad CPE {str(criteria)[:100]!r}")
    version, update = _cpe_field(parts[5]), _cpe_field(parts[6])
    vendor, product = _cpe_field(parts[3]).lower()[:200], _cpe_field(parts[4]).lower()[:200]
    exact = None
    concrete_update = update not in ("*", "-", "")
    if version not in ("*", "-", ""):
        exact = clip(version + (update if concrete_update else ""), 100)
    end_including = _bound(match, "versionEndIncluding")
    if end_including is not None and end_including[-1:].isdigit() and concrete_update:
        # "up to 7.2" with update p2 means up to 7.2p2 (NVD splits OpenSSH's updates off).
        end_including = clip(end_including + update, 100)
    return CpeCriterion(
        vendor=vendor,
        product=product,
        version=exact,
        start_including=_bound(match, "versionStartIncluding"),
        start_excluding=_bound(match, "versionStartExcluding"),
        end_including=end_including,
        end_excluding=_bound(match, "versionEndExcluding"),
        vulnerable=match.get("vulnerable") is True,
        any_update=update == "*",
    )


# Products whose releases carry an update suffix that NVD files in the CPE's update field
# (OpenSSH 7.7 is OpenBSD's release, 7.7p1 the portable one of the same code).
_UPDATE_SUFFIXED = frozenset({("openbsd", "openssh")})
_LAST_UPDATE = "p99"


def _with_updates(criteria: list[CpeCriterion]) -> list[CpeCriterion]:
    """NVD's "up to 7.7" (any update) for OpenSSH means 7.7p1 too (CVE-2018-15473, fixed in
    7.8) unless the record lists the affected updates of that version itself (CVE-2016-0777:
    up to 7.1, plus 7.1p1; 7.1p2 is the fix)."""
    listed = {(c.vendor, c.product, c.version) for c in criteria if c.version}
    widened = []
    for c in criteria:
        end = c.end_including
        if (
            end is not None
            and c.any_update
            and end[-1:].isdigit()
            and (c.vendor, c.product) in _UPDATE_SUFFIXED
            and not any(
                v is not None and v.startswith(end) and v[len(end) : len(end) + 1].isalpha()
                for vendor, product, v in listed
                if (vendor, product) == (c.vendor, c.product)
            )
        ):
            c = replace(c, end_including=end + _LAST_UPDATE)
        widened.append(c)
    return widened


def nvd_advisory(item: Any) -> Advisory:
    """One item of an NVD CVE API 2.0 `vulnerabilities` array ({"cve": {...}})."""
    cve = item.get("cve") if isinstance(item, dict) else None
    if not isinstance(cve, dict) or not isinstance(cve.get("id"), str) or not cve["id"]:
        raise VulnDbError("not an NVD CVE record (no cve.id)")
    cve_id = _identifier(cve["id"])
    summary = next(
        (d.get("value") for d in _dicts(cve.get("descriptions")) if d.get("lang") == "en"), None
    )
    score, vector, severity = _cvss(cve.get("metrics"))
    criteria = []
    for configuration in _dicts(cve.get("configurations")):
        for node in _dicts(configuration.get("nodes")):
            if node.get("negate"):
                continue  # "not running on": nothing a version can be matched against
            for match in _dicts(node.get("cpeMatch"))[:MAX_LIST]:
                try:
                    criteria.append(cpe_criterion(match))
                except VulnDbError as exc:
                    raise VulnDbError(f"{cve_id}: {exc}") from None
    return Advisory(
        id=cve_id,
        source="nvd",
        kev=_nvd_kev(cve_id, cve),
        summary=_text(summary, SUMMARY_CHARS),
        published=_text(cve.get("published"), 40),
        modified=_text(cve.get("lastModified"), 40),
        cvss_score=score,
        cvss_vector=vector,
        severity=severity.upper() if severity else None,
        aliases=(),
        references=_urls(cve.get("references")),
        cpes=tuple(_with_updates(criteria)),
    )


_NVD_KEV_FIELDS = ("cisaExploitAdd", "cisaActionDue", "cisaRequiredAction", "cisaVulnerabilityName")


def _nvd_kev(cve_id: str, cve: dict[str, Any]) -> KevEntry | None:
    """The KEV fields NVD copies into a record CISA lists (cisaExploitAdd, cisaActionDue,
    cisaRequiredAction, cisaVulnerabilityName); the catalog's ransomware flag is not among them
    (None: unknown)."""
    if cve.keys().isdisjoint(_NVD_KEV_FIELDS) or not any(map(cve.get, _NVD_KEV_FIELDS)):
        return None  # the first test, quick, settles the usual case
    added = _text(cve.get("cisaExploitAdd"), 20)
    name = _text(cve.get("cisaVulnerabilityName"), 300)
    due = _text(cve.get("cisaActionDue"), 20)
    return KevEntry(cve_id.upper(), added, due, None, None, None, name)


def read_nvd(path: Path) -> Iterator[Record]:
    """An NVD CVE API 2.0 response or feed file (.json or .json.gz), streamed record by record."""
    with _opened(path) as stream:
        for number, item in enumerate(_iter_json_array(stream, "vulnerabilities", str(path))):
            yield _checked(nvd_advisory, item, f"{path} record {number}")


# --- KEV and EPSS --------------------------------------------------------------------------------


def kev_entry(item: Any) -> KevEntry:
    """One entry of CISA's known_exploited_vulnerabilities.json."""
    cve = item.get("cveID") if isinstance(item, dict) else None
    if not isinstance(cve, str) or not cve.upper().startswith("CVE-"):
        raise VulnDbError("a KEV entry without a cveID")
    assert isinstance(item, dict)
    cve = _identifier(cve)
    use = str(item.get("knownRansomwareCampaignUse", "")).lower()
    return KevEntry(
        cve=cve.upper(),
        date_added=_text(item.get("dateAdded"), 20),
        due_date=_text(item.get("dueDate"), 20),
        ransomware=True if use == "known" else False if use == "unknown" else None,
        vendor=_text(item.get("vendorProject"), 200),
        product=_text(item.get("product"), 200),
        name=_text(item.get("vulnerabilityName"), 300),
    )


def read_kev(path: Path) -> Iterator[Record]:
    with _opened(path) as stream:
        for number, item in enumerate(_iter_json_array(stream, "vulnerabilities", str(path))):
            yield _checked(kev_entry, item, f"{path} record {number}")


def _epss_line(text: IO[str], path: Path, number: int) -> str:
    line = text.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise VulnDbError(f"{path}: line {number}: longer than {MAX_LINE} characters")
    return line


def read_epss(path: Path) -> Iterator[Record]:
    """FIRST's EPSS CSV (.csv or .csv.gz): `#model_version:...,score_date:...`, then
    `cve,epss,percentile` and one line per CVE."""
    with _opened(path) as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8", errors="strict", newline="")
        number = 1
        date = None
        first = _epss_line(text, path, number)
        header = first
        if first.startswith("#"):
            for part in first[1:].strip().split(","):
                key, _, value = part.partition(":")
                if key.strip() == "score_date":
                    date = clip(value.strip()[:10], 10)
            number += 1
            header = _epss_line(text, path, number)
        if [h.strip().lower() for h in header.split(",")][:3] != ["cve", "epss", "percentile"]:
            raise VulnDbError(f"{path}: line {number}: expected the header cve,epss,percentile")
        while line := _epss_line(text, path, number := number + 1):
            if not line.strip():
                continue
            fields = line.split(",")
            try:
                cve, score, percentile = (
                    fields[0].strip().upper(),
                    float(fields[1]),
                    float(fields[2]),
                )
            except (IndexError, ValueError):
                raise VulnDbError(f"{path}: line {number}: not cve,epss,percentile") from None
            if not cve.startswith("CVE-") or len(cve) > 40:
                raise VulnDbError(f"{path}: line {number}: {clip(cve, 40)!r} is not a CVE id")
            if not (0 <= score <= 1 and 0 <= percentile <= 1):
                raise VulnDbError(f"{path}: line {number}: a probability outside 0..1")
            yield EpssScore(cve, score, percentile, date)


# --- the interface -------------------------------------------------------------------------------


def _checked(convert: Callable[[Any], Record], item: Any, where: str) -> Record:
    """`convert(item)`, with any failure on hostile input turned into a VulnDbError naming
    the file and the record."""
    try:
        return convert(item)
    except VulnDbError as exc:
        raise VulnDbError(f"{where}: {exc}") from None
    except (VersionError, TypeError, AttributeError, KeyError, ValueError) as exc:
        raise VulnDbError(f"{where}: malformed ({type(exc).__name__}: {exc})") from None
    except RecursionError:
        raise VulnDbError(f"{where}: nested too deeply") from None


READERS: dict[str, Reader] = {
    "osv": read_osv_file,
    "osv-folder": read_osv_folder,
    "osv-zip": read_osv_zip,
    "nvd": read_nvd,
    "kev": read_kev,
    "epss": read_epss,
}
"""One reader per format; a new feed is one function and one entry here."""


def read(path: Path) -> tuple[str, Iterator[Record]]:
    """The format of `path` and its records; reading errors surface as VulnDbError."""
    kind = detect_format(path)
    return kind, _guarded(READERS[kind](path), path)


def _guarded(records: Iterator[Record], path: Path) -> Iterator[Record]:
    try:
        yield from records
    except (UnicodeDecodeError, OSError, EOFError, zlib.error) as exc:
        raise _read_error(path, exc) from None


def _read_error(path: Path, exc: Exception) -> VulnDbError:
    if isinstance(exc, UnicodeDecodeError):
        return VulnDbError(f"{path}: not UTF-8 at byte {exc.start}")
    if isinstance(exc, zipfile.BadZipFile | gzip.BadGzipFile | zlib.error):
        return VulnDbError(f"{path}: a broken archive ({exc})")
    if isinstance(exc, EOFError):
        return VulnDbError(f"{path}: the compressed file is truncated")
    strerror = exc.strerror if isinstance(exc, OSError) else None
    return VulnDbError(f"{path}: cannot be read ({strerror or exc})")


__all__ = [
    "MAX_RECORD",
    "MAX_UNCOMPRESSED",
    "READERS",
    "Advisory",
    "AffectedRange",
    "CpeCriterion",
    "EpssScore",
    "KevEntry",
    "Record",
    "VulnDbError",
    "cpe_criterion",
    "cvss3_base_score",
    "detect_format",
    "kev_entry",
    "nvd_advisory",
    "osv_advisory",
    "read",
]
