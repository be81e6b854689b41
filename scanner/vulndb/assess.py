"""Which advisories affect the software a scanned host runs: the products its services announce
(banners, nmap) and the packages an authenticated inventory listed, matched in the offline
advisory database with the ordering and the distro release each one needs.

How sure each match is (`Confidence`):
- certain: an installed package version (inventory) against its distro's own advisories;
- firm: a plain upstream banner against upstream ranges, or a distro build's banner (OpenSSH's
  `Ubuntu-4ubuntu2.8`) against that distro's advisories;
- tentative: a distro build the database has no advisories for, judged by its upstream version,
  which may miss a fix the distro backported; the reason says so.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from scanner.model import (
    Confidence,
    Host,
    HostState,
    Service,
    VulnAssessment,
    Vulnerability,
)
from scanner.probes.banners import CPE_NAMES, Software, cpe_for, software_of
from scanner.probes.inventory import Inventory, OsRelease, Package
from scanner.vulndb.db import CPE_ALIASES, Match, VulnDb
from scanner.vulndb.versions import Ecosystem, VersionError, sort_key

log = logging.getLogger(__name__)

OPEN_STATES = ("open", "open|filtered")
HOST_LEVEL = ("", 0)  # (proto, port) of what a host's packages are judged at

# Distro source packages of the products banners name, as Debian/Ubuntu and the RPM family call
# them: a host whose inventory lists one is judged by its package, not by its banner.
PRODUCT_PACKAGES: dict[str, re.Pattern[str]] = {
    product: re.compile(pattern)
    for product, pattern in {
        "openssh": r"openssh",
        "apache_httpd": r"apache2|httpd",
        "nginx": r"nginx",
        "openssl": r"openssl(\d+(\.\d+)*)?",
        "vsftpd": r"vsftpd",
        "proftpd": r"proftpd(-dfsg)?",
        "exim": r"exim4?",
        "postfix": r"postfix",
        "redis": r"redis",
        "mysql": r"mysql(-\d+\.\d+)?(-community)?",
        "mariadb": r"mariadb(-\d+\.\d+)?",
        "postgresql": r"postgresql(-?\d+)?",
        "samba": r"samba",
        "dovecot": r"dovecot",
        "memcached": r"memcached",
        "bind": r"bind9?",
        "lighttpd": r"lighttpd",
        "squid": r"squid",
        "elasticsearch": r"elasticsearch",
    }.items()
}

# The advisory ecosystem of each distribution an inventory or a banner can name.
DISTRO_ECOSYSTEMS = {
    "debian": Ecosystem.DEBIAN,
    "ubuntu": Ecosystem.UBUNTU,
    "alpine": Ecosystem.ALPINE,
}
# RPM-family distributions with OSV advisories, by os-release ID: the release (as the importer
# stores it) their packages are judged by; RHEL's covers every stream (baseos, appstream, ...).
RPM_DISTROS = {
    "rocky": "rocky linux:{major}",
    "almalinux": "almalinux:{major}",
    "rhel": "red hat:enterprise_linux:{major}",
}
_DISTRO_NAMES = {
    "debian": "Debian",
    "ubuntu": "Ubuntu",
    "raspbian": "Raspbian",
    "rhel": "RHEL",
    "centos": "CentOS",
    "fedora": "Fedora",
    "rocky": "Rocky Linux",
    "almalinux": "AlmaLinux",
    "oracle": "Oracle Linux",
    "amazon": "Amazon Linux",
    "suse": "SUSE",
    "alpine": "Alpine",
    "freebsd": "FreeBSD",
}
# Debian/Ubuntu source packages whose name is not posture's product key.
_DPKG_SOURCES = {"apache_httpd": "apache2", "exim": "exim4", "proftpd": "proftpd-dfsg"}
_DEBIAN_RELEASE = re.compile(r"deb(\d{1,2})u\d+")


@dataclass(frozen=True)
class _Found:
    """Software to look up: what it is, where it answered, how it was learnt."""

    product: str
    version: str
    source: str
    port: int | None = None
    proto: str | None = None


def _upstream_of(package_version: str) -> str:
    """The upstream part of a dpkg/apk version: "1:8.9p1-3ubuntu0.10" -> "8.9p1",
    "1.36.1-r2" -> "1.36.1"."""
    epoch, colon, rest = package_version.partition(":")
    text = rest if colon and epoch.isdigit() else package_version
    return text.rsplit("-", 1)[0]


def _vulnerability(
    match: Match,
    found: _Found,
    confidence: Confidence,
    *,
    ecosystem: Ecosystem,
    release: str | None,
    reason: str | None,
) -> Vulnerability:
    ident = match.cves[0] if match.cves else match.advisory_id
    return Vulnerability(
        advisory_id=ident,
        key=f"{found.product}:{ident}",
        product=found.product,
        version=found.version,
        source=found.source,
        confidence=confidence,
        cves=match.cves,
        port=found.port,
        proto=found.proto,
        ecosystem=ecosystem.value,
        release=release,
        fixed_version=match.fixed_version,
        cvss_score=match.cvss_score,
        cvss_vector=match.cvss_vector,
        kev=match.kev,
        kev_ransomware=match.kev_ransomware,
        epss=match.epss,
        epss_percentile=match.epss_percentile,
        summary=match.summary,
        match=match.match_kind,
        reason=reason,
    )


# Active checks that read a product's own version (Redis INFO, the Elasticsearch root document,
# memcached's `version`): where nmap could not name the version, theirs is used.
_CHECK_VERSIONS = {
    "redis": "redis",
    "elasticsearch": "elasticsearch",
    "memcached": "memcached",
}
_VERSION_TEXT = re.compile(r"[0-9][0-9A-Za-z._+~-]{0,63}", re.A)


def software_on(service: Service) -> Software | None:
    """What one port runs, from nmap and the banner (`software_of`), else from what an active
    check read: the FTP greeting, or the version Redis, Elasticsearch or memcached reported."""
    found = software_of(service)
    if found is not None and found.version:
        return found
    greeting = service.checks.get("ftp", {}).get("banner")
    if service.banner is None and isinstance(greeting, str):
        from_greeting = software_of(replace(service, banner=greeting))
        if from_greeting is not None and from_greeting.version:
            return from_greeting
    for check, product in _CHECK_VERSIONS.items():
        version = service.checks.get(check, {}).get("version")
        if isinstance(version, str) and _VERSION_TEXT.fullmatch(version):
            vendor = CPE_NAMES.get(product, (None, None))[0]
            return Software(
                product,
                version,
                vendor=vendor,
                cpe=cpe_for(product, version),
                source="banner",
                evidence=f"{check} reported version {version}",
            )
    return found


class Assessor:
    """Matches hosts against one open advisory database (one per thread: SQLite connections
    stay in the thread that opened them)."""

    def __init__(self, db: VulnDb) -> None:
        self.db = db
        self._releases: dict[tuple[str, str], dict[str, set[str]]] = {}
        self._distro_releases: dict[str, frozenset[str]] = {}

    # --- what the database knows ------------------------------------------------------------

    def releases_with_upstream(self, ecosystem: Ecosystem, package: str) -> dict[str, set[str]]:
        """For each distro release with advisories for `package`: the upstream versions its
        package versions name (fixed versions, listed versions)."""
        key = (ecosystem.value, package)
        found = self._releases.get(key)
        if found is None:
            found = {}
            rows = self.db.db.execute(
                "SELECT release, events, versions FROM affected"
                " WHERE ecosystem = ? AND package = ?",
                key,
            )
            for release, events, versions in rows:
                names = found.setdefault(release, set())
                for event in json.loads(events):
                    for kind, value in event.items():
                        if kind != "introduced" or value != "0":
                            names.add(_upstream_of(str(value)))
                names.update(_upstream_of(str(v)) for v in json.loads(versions))
            self._releases[key] = found
        return found

    # --- banners ----------------------------------------------------------------------------

    def _distro_build(self, software: Software, found: _Found) -> list[Vulnerability] | None:
        """Matches of a banner that names a distro build, by that distro's advisories; None
        when the database cannot judge the build."""
        ecosystem = DISTRO_ECOSYSTEMS.get(software.distro or "")
        package_version = software.package_version
        if ecosystem is None or package_version is None:
            return None
        package = _DPKG_SOURCES.get(software.product, software.product)
        named = _DEBIAN_RELEASE.search(software.distro_version or "")
        known = self.releases_with_upstream(ecosystem, package)
        if named and ecosystem is Ecosystem.DEBIAN and named.group(1) in known:
            candidates = [named.group(1)]
        else:
            upstream = software.version or _upstream_of(package_version)
            candidates = sorted(r for r, names in known.items() if upstream in names)
        if not candidates:
            return None
        built = _Found(package, package_version, found.source, found.port, found.proto)
        per_release = {
            release: self.db.lookup(package, package_version, ecosystem=ecosystem, release=release)
            for release in candidates
        }
        verdicts = {frozenset(m.advisory_id for m in ms) for ms in per_release.values()}
        agree = len(verdicts) == 1
        release = candidates[0] if len(candidates) == 1 else None
        reason = (
            f"{ecosystem.value} {release} build {package_version}, judged by {ecosystem.value}'s "
            "own advisories"
            if release
            else f"{ecosystem.value} build {package_version} of release "
            f"{' or '.join(candidates)}, judged by {ecosystem.value}'s own advisories"
        )
        confidence = Confidence.FIRM
        if not agree:
            confidence = Confidence.TENTATIVE
            reason = (
                f"{ecosystem.value} build {package_version} could be release "
                f"{' or '.join(candidates)}, whose advisories disagree"
            )
        seen: dict[str, Vulnerability] = {}
        for release_name, matches in per_release.items():
            for match in matches:
                vulnerability = _vulnerability(
                    match,
                    built,
                    confidence,
                    ecosystem=ecosystem,
                    release=release or release_name,
                    reason=reason,
                )
                seen.setdefault(vulnerability.key, vulnerability)
        return list(seen.values())

    def service(
        self, service: Service, software: Software | None = None
    ) -> list[Vulnerability] | None:
        """Advisories matching what one port runs (`software`, when the caller has already
        read it from the service); None when its software (or version) is unknown, so nothing
        can be said about it."""
        software = software or software_on(service)
        if software is None or not software.version:
            return None
        source = "nmap" if software.source == "nmap" else "banner"
        found = _Found(software.product, software.version, source, service.port, service.proto)
        distro = self._distro_build(software, found)
        if distro is not None:
            return distro
        confidence, reason = Confidence.FIRM, None
        if software.backport_risk:
            confidence = Confidence.TENTATIVE
            build = _DISTRO_NAMES.get(software.distro or "", software.distro or "distro")
            revision = f" {software.distro_version}" if software.distro_version else ""
            reason = software.note or (
                f"the {build} build{revision} may carry backported fixes, and the database has "
                f"no {build} advisories for {software.product} {software.version}: judged by the "
                "upstream version only"
            )
        # Every NVD name the product was filed under, plus the fingerprint's own CPE.
        matches = self.db.lookup(
            software.product,
            software.version,
            cpe=software.cpe,
            cpe_names=CPE_ALIASES.get(software.product, ()),
        )
        return [
            _vulnerability(
                m, found, confidence, ecosystem=Ecosystem.UPSTREAM, release=None, reason=reason
            )
            for m in matches
        ]

    # --- packages ---------------------------------------------------------------------------

    def releases_of(self, ecosystem: Ecosystem) -> frozenset[str]:
        """Every distro release the database holds advisories of, in this ecosystem."""
        known = self._distro_releases.get(ecosystem.value)
        if known is None:
            rows = self.db.db.execute(
                "SELECT DISTINCT release FROM affected WHERE ecosystem = ?", (ecosystem.value,)
            )
            known = frozenset(row[0] for row in rows)
            self._distro_releases[ecosystem.value] = known
        return known

    def host_releases(self, os: OsRelease) -> tuple[Ecosystem, list[str], str] | None:
        """The ecosystem, the advisory releases that judge this OS's packages (RHEL's several
        streams: baseos, appstream, ...), and its name; None when posture knows no
        advisories for such hosts."""
        major = (os.version_id or "").split(".")[0]
        if os.id in RPM_DISTROS:
            prefix = RPM_DISTROS[os.id].format(major=major)
            releases = [
                r
                for r in self.releases_of(Ecosystem.RPM)
                if r == prefix or r.startswith(prefix + ":")
            ]
            return Ecosystem.RPM, sorted(releases), f"{os.pretty_name or os.id} ({prefix})"
        ecosystem = DISTRO_ECOSYSTEMS.get(os.id)
        if ecosystem is None:
            return None
        release = _release_of(ecosystem, os.version_id)
        known = release is not None and release in self.releases_of(ecosystem)
        return ecosystem, [release] if known and release else [], f"{ecosystem.value} {release}"

    def packages(self, inventory: Inventory) -> tuple[list[Vulnerability], str | None]:
        """Advisories matching the installed packages, by the distro's own advisories for the
        host's release; and why they could not be judged (None when they were)."""
        os = inventory.os
        if os is None:
            return [], "the host's OS release is unknown"
        judged = self.host_releases(os)
        if judged is None:
            return [], f"posture has no package advisories for {os.id} hosts"
        ecosystem, releases, name = judged
        if not releases:
            return [], (
                f"the advisory database holds no advisories for {name} (import the "
                "distribution's OSV all.zip with `posture vulndb import`)"
            )
        found: dict[str, Vulnerability] = {}
        for package, version in _installed(inventory.packages, ecosystem):
            item = _Found(package, version, "package")
            for release in releases:
                for match in self.db.lookup(package, version, ecosystem=ecosystem, release=release):
                    vulnerability = _vulnerability(
                        match,
                        item,
                        Confidence.CERTAIN,
                        ecosystem=ecosystem,
                        release=release,
                        reason=f"installed package {package} {version}",
                    )
                    found.setdefault(vulnerability.key, vulnerability)
        return list(found.values()), None

    # --- a host -----------------------------------------------------------------------------

    def host(self, host: Host) -> VulnAssessment:
        found: dict[str, Vulnerability] = {}
        unassessed: list[tuple[str, int]] = []
        notes: list[str] = []
        packaged: set[str] = set()
        if host.inventory is not None:
            vulnerabilities, why_not = self.packages(host.inventory)
            if why_not is None:
                packaged = _products_packaged(host.inventory)
                found.update((v.key, v) for v in vulnerabilities)
            else:
                unassessed.append(HOST_LEVEL)
                notes.append(why_not)
        else:
            unassessed.append(HOST_LEVEL)
        for service in host.services:
            if service.state not in OPEN_STATES:
                continue
            software = software_on(service)
            if software is not None and software.product in packaged:
                continue  # the installed package says more than the banner
            matches = self.service(service, software)
            if matches is None:
                unassessed.append((service.proto, service.port))
                continue
            for vulnerability in matches:
                # One finding per port and advisory: a banner naming two products keeps both.
                found.setdefault(
                    f"{service.proto}/{service.port}/{vulnerability.key}", vulnerability
                )
        ordered = sorted(found.values(), key=lambda v: v.priority_key)
        return VulnAssessment(tuple(ordered), tuple(unassessed), tuple(notes))


def _release_of(ecosystem: Ecosystem, version_id: str | None) -> str | None:
    """The advisory release of an os-release VERSION_ID: Debian "12", Ubuntu "22.04", Alpine
    "3.18" of "3.18.4"."""
    if not version_id:
        return None
    if ecosystem is Ecosystem.ALPINE:
        return ".".join(version_id.split(".")[:2])
    if ecosystem is Ecosystem.DEBIAN:
        return version_id.split(".")[0]
    return version_id


def _installed(packages: Iterable[Package], ecosystem: Ecosystem) -> Iterator[tuple[str, str]]:
    """(package, version) once each, as the distro's advisories name them: Debian's and
    Ubuntu's by source package (one source builds many binaries), the RPM family's and
    Alpine's by the installed package itself. A version the ordering cannot read is skipped."""
    seen: set[tuple[str, str]] = set()
    by_source = ecosystem.dpkg_like
    for package in packages:
        name = (package.source or package.name) if by_source else package.name
        version = (package.source_version or package.version) if by_source else package.version
        try:
            sort_key(ecosystem, version)
        except VersionError:
            continue
        if (name, version) not in seen:
            seen.add((name, version))
            yield name, version


def _products_packaged(inventory: Inventory) -> set[str]:
    """posture's product keys that the inventory's packages stand for."""
    names = {p.source or p.name for p in inventory.packages} | {p.name for p in inventory.packages}
    return {
        product
        for product, pattern in PRODUCT_PACKAGES.items()
        if any(pattern.fullmatch(name) for name in names)
    }


def match_hosts(hosts: list[Host], db: VulnDb) -> list[Host]:
    """The hosts with their `vulnerabilities` attached (up hosts only)."""
    assessor = Assessor(db)
    updated = []
    for host in hosts:
        if host.state is not HostState.UP:
            updated.append(host)
            continue
        assessment = assessor.host(host)
        for note in assessment.notes:
            log.info("%s: packages not matched: %s", host.address, note)
        updated.append(replace(host, vulnerabilities=assessment))
    return updated


__all__ = ["DISTRO_ECOSYSTEMS", "PRODUCT_PACKAGES", "Assessor", "match_hosts"]
