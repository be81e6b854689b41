"""Advisory database throughput at NVD scale: import rate (advisories/s), lookup rate
(product + version lookups/s) and peak memory, for 25,000, 100,000 and 250,000 generated NVD CVE
2.0 records over 2,000 vendor:product pairs (long-tailed, in NVD's three criteria shapes), plus
one Debian OSV record per 50 in an `all.zip`, so that memory can be seen flat in their number.
Each import and each lookup run is its own process, so its peak RSS is its own (an import's
adds the peak of the helper process that reads a big feed file while it writes).

    .venv/bin/python bench/vulndb.py [--sizes 25000 100000 250000] [--lookups 50000]

There is no offline peer to run beside it: vulners needs its online API and vulscan greps CSV
files by substring, so the table states posture's figures against the goals of issue 4 (import
>= 20,000 advisories/s, lookups >= 10,000/s, memory flat).
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import random
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# vendor:product pairs the records spread over, with NVD's long tail: a few products carry
# thousands of CVEs (the Linux kernel, browsers), most carry a handful.
PRODUCTS = 2_000
OSV_PACKAGES = 500


def _version(rng: random.Random) -> str:
    return f"{rng.randint(0, 12)}.{rng.randint(0, 30)}.{rng.randint(0, 40)}"


# Half the records follow Zipf's law over the products (the first carries ~6% of all, as the
# Linux kernel does in NVD), half spread evenly.
_ZIPF = list(itertools.accumulate(1 / rank for rank in range(1, PRODUCTS + 1)))


def _product(rng: random.Random) -> int:
    if rng.random() < 0.5:
        return rng.randrange(PRODUCTS)
    return bisect.bisect_left(_ZIPF, rng.random() * _ZIPF[-1])


def _cpe_matches(rng: random.Random, product: int, number: int) -> list[dict[str, object]]:
    """NVD's three shapes: everything before a fix, a start..fix range, and exact versions
    (with the update split off, as NVD writes OpenSSH's 7.2p2)."""
    criteria = f"cpe:2.3:a:vendor{product}:product{product}"
    shape = rng.random()
    if shape < 0.4:
        return [
            {
                "vulnerable": True,
                "criteria": f"{criteria}:*:*:*:*:*:*:*:*",
                "versionEndExcluding": _version(rng),
                "matchCriteriaId": f"M{number}",
            }
        ]
    if shape < 0.8:
        low, high = sorted((_version(rng), _version(rng)))
        return [
            {
                "vulnerable": True,
                "criteria": f"{criteria}:*:*:*:*:*:*:*:*",
                "versionStartIncluding": low,
                "versionEndExcluding": high,
                "matchCriteriaId": f"M{number}",
            }
        ]
    return [
        {
            "vulnerable": True,
            "criteria": f"{criteria}:{_version(rng)}:p{rng.randint(1, 3)}:*:*:*:*:*:*",
            "matchCriteriaId": f"M{number}-{extra}",
        }
        for extra in range(rng.randint(1, 4))
    ]


def write_nvd(path: Path, count: int, seed: int = 1) -> None:
    """`count` records in the NVD CVE API 2.0 format, written one by one (the generator itself
    stays small in memory)."""
    rng = random.Random(seed)
    with path.open("w") as out:
        out.write(f'{{"resultsPerPage": {count}, "startIndex": 0, "totalResults": {count}, ')
        out.write('"format": "NVD_CVE", "version": "2.0", "timestamp": "2026-11-24T00:00:00.000",')
        out.write(' "vulnerabilities": [\n')
        for number in range(count):
            product = _product(rng)
            record = {
                "cve": {
                    "id": f"CVE-{2000 + number % 26}-{100000 + number}",
                    "sourceIdentifier": "cve@mitre.org",
                    "published": "2024-01-01T00:00:00.000",
                    "lastModified": "2024-02-01T00:00:00.000",
                    "vulnStatus": "Analyzed",
                    "descriptions": [
                        {"lang": "en", "value": f"Generated advisory {number} " + "x" * 200}
                    ],
                    "metrics": {
                        "cvssMetricV31": [
                            {
                                "source": "nvd@nist.gov",
                                "type": "Primary",
                                "cvssData": {
                                    "version": "3.1",
                                    "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                                    "baseScore": round(rng.uniform(2, 10), 1),
                                    "baseSeverity": "HIGH",
                                },
                            }
                        ]
                    },
                    "weaknesses": [
                        {
                            "source": "nvd@nist.gov",
                            "type": "Primary",
                            "description": [{"lang": "en", "value": "CWE-787"}],
                        }
                    ],
                    "configurations": [
                        {
                            "nodes": [
                                {
                                    "operator": "OR",
                                    "negate": False,
                                    "cpeMatch": _cpe_matches(rng, product, number),
                                }
                            ]
                        }
                    ],
                    "references": [
                        {"url": f"https://example.invalid/{number}/{n}", "source": "cve@mitre.org"}
                        for n in range(3)
                    ],
                }
            }
            out.write(("," if number else "") + json.dumps(record) + "\n")
        out.write("]}\n")


def write_osv_zip(path: Path, count: int, seed: int = 2) -> None:
    """`count` Debian OSV records in an `all.zip`, as osv.dev exports an ecosystem."""
    rng = random.Random(seed)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for number in range(count):
            record = {
                "schema_version": "1.6.0",
                "id": f"DEBIAN-CVE-2024-{200000 + number}",
                "modified": "2024-02-01T00:00:00Z",
                "upstream": [f"CVE-2024-{200000 + number}"],
                "affected": [
                    {
                        "package": {
                            "name": f"package{rng.randrange(OSV_PACKAGES)}",
                            "ecosystem": f"Debian:{release}",
                        },
                        "ranges": [
                            {
                                "type": "ECOSYSTEM",
                                "events": [
                                    {"introduced": "0"},
                                    {"fixed": f"1:{_version(rng)}-1+deb{release}u1"},
                                ],
                            }
                        ],
                    }
                    for release in (11, 12)
                ],
            }
            archive.writestr(f"{record['id']}.json", json.dumps(record))


IMPORT_CHILD = """
import json, resource, sys, time
from pathlib import Path
from scanner.vulndb.db import import_files
started = time.perf_counter()
report = import_files(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
peak = sum(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF,
                                                         resource.RUSAGE_CHILDREN))
print(json.dumps({"seconds": time.perf_counter() - started, "advisories": report.advisories,
                  "rss_mb": peak / 1024}))
"""
LOOKUP_CHILD = """
import json, random, resource, sys, time
from pathlib import Path
from scanner.vulndb.db import VulnDb
from scanner.vulndb.versions import Ecosystem
db = VulnDb(Path(sys.argv[1]))
rng = random.Random(3)
count, products, packages = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def version():
    return f"{rng.randint(0, 12)}.{rng.randint(0, 30)}.{rng.randint(0, 40)}"
queries = []
for _ in range(count):
    if rng.random() < 0.9:  # an upstream banner version, matched by NVD CPE criteria
        p = rng.randrange(products)
        queries.append((f"product{p}", version(), Ecosystem.UPSTREAM, None,
                        [(f"vendor{p}", f"product{p}")]))
    else:  # an installed Debian package, matched by OSV ranges of its release
        release = rng.choice(("11", "12"))
        queries.append((f"package{rng.randrange(packages)}", f"1:{version()}-1+deb{release}u1",
                        Ecosystem.DEBIAN, release, []))
def run():
    started = time.perf_counter()
    found = 0
    for product, ver, eco, release, names in queries:
        found += len(db.lookup(product, ver, ecosystem=eco, release=release, cpe_names=names))
    return time.perf_counter() - started, found
cold, found = run()  # reads and parses every product's rows once
warm, _ = run()  # the same lookups again: what a scan sees once its products are loaded
# A fleet: the same count of lookups, but of the 1,000 builds (product, version) a large
# network runs, a few of them on most hosts (Zipf), from a database opened afresh.
db.close()
db = VulnDb(Path(sys.argv[1]))
pool = queries[:1000]
cumulative, total = [], 0.0
for rank in range(1, len(pool) + 1):
    total += 1 / rank
    cumulative.append(total)
queries = rng.choices(pool, cum_weights=cumulative, k=count)
fleet, fleet_found = run()
print(json.dumps({"seconds": cold, "warm": warm, "matches": found / count, "fleet": fleet,
                  "fleet_matches": fleet_found / count,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _child(code: str, *args: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=3600,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[25_000, 100_000, 250_000])
    parser.add_argument("--lookups", type=int, default=50_000)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="posture-bench-vulndb-") as tmp:
        for size in args.sizes:
            folder = Path(tmp) / str(size)
            folder.mkdir()
            nvd = folder / "nvd.json"
            write_nvd(nvd, size)
            osv = folder / "all.zip"
            write_osv_zip(osv, size // 50)
            db = folder / "vulndb.sqlite"
            imported = _child(IMPORT_CHILD, str(db), str(nvd), str(osv))
            looked = _child(
                LOOKUP_CHILD, str(db), str(args.lookups), str(PRODUCTS), str(OSV_PACKAGES)
            )
            rows.append(
                (size + size // 50, imported, looked, nvd.stat().st_size, db.stat().st_size)
            )
            print(f"bench: {size} done", file=sys.stderr, flush=True)
    print("posture vulndb import + lookup (no offline peer: vulners is online-only, vulscan greps)")
    print(
        f"{args.lookups} random product/version lookups per size (cold, then the same again: "
        f"warm); fleet: {args.lookups} lookups of 1,000 builds, Zipf-weighted, as a scan of a "
        "large network asks; peak RSS of each process"
    )
    print()
    header = (
        "advisories",
        "import s",
        "import/s",
        "import RSS MB",
        "lookups/s cold",
        "warm",
        "matches/lookup",
        "fleet lookups/s",
        "lookup RSS MB",
        "feed MB",
        "db MB",
    )
    table = [header]
    for count, imported, looked, feed, db_size in rows:
        table.append(
            (
                f"{count:,}",
                f"{imported['seconds']:.1f}",
                f"{imported['advisories'] / imported['seconds']:,.0f}",
                f"{imported['rss_mb']:.0f}",
                f"{args.lookups / looked['seconds']:,.0f}",
                f"{args.lookups / looked['warm']:,.0f}",
                f"{looked['matches']:.1f}",
                f"{args.lookups / looked['fleet']:,.0f}",
                f"{looked['rss_mb']:.0f}",
                f"{feed / 1e6:.0f}",
                f"{db_size / 1e6:.0f}",
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for i, cells in enumerate(table):
        print(" | ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)))
        if i == 0:
            print("-+-".join("-" * w for w in widths))
    print()
    print("goals (issue 4): import >= 20,000/s, lookups >= 10,000/s, memory flat in the count")
    return 0


if __name__ == "__main__":
    sys.exit(main())
