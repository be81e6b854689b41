"""Advisory database throughput at NVD scale: import rate (advisories/s), lookup rate
(product + version lookups/s) and peak memory, for 25,000, 100,000 and 250,000 generated NVD CVE
2.0 records (plus one OSV record per 50), so that memory can be seen flat in their number.

    .venv/bin/python bench/vulndb.py [--sizes 25000 100000 250000] [--lookups 50000]

There is no offline peer to run beside it: vulners needs its online API and vulscan greps CSV
files by substring, so the table states posture's figures against the goals of issue 4 (import
>= 20,000 advisories/s, lookups >= 10,000/s, memory flat).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# vendor:product pairs the records spread over: NVD names far more products than this, so the
# per-product lists here are longer than real ones (12 advisories each at 250,000).
PRODUCTS = 20_000


def _version(rng: random.Random) -> str:
    return f"{rng.randint(0, 12)}.{rng.randint(0, 30)}.{rng.randint(0, 40)}"


def write_nvd(path: Path, count: int, seed: int = 1) -> None:
    """`count` records in the NVD CVE API 2.0 format, written one by one (the generator itself
    stays small in memory)."""
    rng = random.Random(seed)
    with path.open("w") as out:
        out.write(f'{{"resultsPerPage": {count}, "startIndex": 0, "totalResults": {count}, ')
        out.write('"format": "NVD_CVE", "version": "2.0", "timestamp": "2026-11-24T00:00:00.000",')
        out.write(' "vulnerabilities": [\n')
        for number in range(count):
            product = rng.randrange(PRODUCTS)
            low, high = sorted((_version(rng), _version(rng)))
            record = {
                "cve": {
                    "id": f"CVE-{2000 + number % 26}-{100000 + number}",
                    "sourceIdentifier": "cve@mitre.org",
                    "published": "2024-01-01T00:00:00.000",
                    "lastModified": "2024-02-01T00:00:00.000",
                    "vulnStatus": "Analyzed",
                    "descriptions": [{"lang": "en", "value": f"Generated advisory {number}."}],
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
                    "configurations": [
                        {
                            "nodes": [
                                {
                                    "operator": "OR",
                                    "negate": False,
                                    "cpeMatch": [
                                        {
                                            "vulnerable": True,
                                            "criteria": f"cpe:2.3:a:vendor{product}:"
                                            f"product{product}:*:*:*:*:*:*:*:*",
                                            "versionStartIncluding": low,
                                            "versionEndExcluding": high,
                                            "matchCriteriaId": f"M{number}",
                                        }
                                    ],
                                }
                            ]
                        }
                    ],
                    "references": [{"url": f"https://example.invalid/{number}"}],
                }
            }
            out.write(("," if number else "") + json.dumps(record) + "\n")
        out.write("]}\n")


def write_osv(folder: Path, count: int, seed: int = 2) -> None:
    rng = random.Random(seed)
    folder.mkdir()
    for number in range(count):
        record = {
            "schema_version": "1.6.0",
            "id": f"DEBIAN-CVE-2024-{200000 + number}",
            "modified": "2024-02-01T00:00:00Z",
            "aliases": [f"CVE-2024-{200000 + number}"],
            "affected": [
                {
                    "package": {"name": f"package{rng.randrange(500)}", "ecosystem": "Debian:12"},
                    "ranges": [
                        {
                            "type": "ECOSYSTEM",
                            "events": [{"introduced": "0"}, {"fixed": f"1:{_version(rng)}-1"}],
                        }
                    ],
                }
            ],
        }
        (folder / f"{record['id']}.json").write_text(json.dumps(record))


IMPORT_CHILD = """
import json, resource, sys, time
from pathlib import Path
from scanner.vulndb.db import import_files
started = time.perf_counter()
report = import_files(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
print(json.dumps({"seconds": time.perf_counter() - started, "advisories": report.advisories,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
LOOKUP_CHILD = """
import json, random, resource, sys, time
from pathlib import Path
from scanner.vulndb.db import VulnDb
db = VulnDb(Path(sys.argv[1]))
rng = random.Random(3)
count, products = int(sys.argv[2]), int(sys.argv[3])
queries = [
    (rng.randrange(products), f"{rng.randint(0, 12)}.{rng.randint(0, 30)}.{rng.randint(0, 40)}")
    for _ in range(count)
]
started = time.perf_counter()
found = 0
for product, version in queries:
    found += len(db.lookup(f"product{product}", version,
                           cpe_names=[(f"vendor{product}", f"product{product}")]))
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "matches": found,
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
            write_osv(folder / "osv", size // 50)
            db = folder / "vulndb.sqlite"
            imported = _child(IMPORT_CHILD, str(db), str(nvd), str(folder / "osv"))
            looked = _child(LOOKUP_CHILD, str(db), str(args.lookups), str(PRODUCTS))
            rows.append(
                (size + size // 50, imported, looked, nvd.stat().st_size, db.stat().st_size)
            )
            print(f"bench: {size} done", file=sys.stderr, flush=True)
    print("posture vulndb import + lookup (no offline peer: vulners is online-only, vulscan greps)")
    print(f"{args.lookups} random product/version lookups per size; peak RSS of each process")
    print()
    header = ("advisories", "import/s", "import RSS MB", "lookups/s", "lookup RSS MB", "feed MB")
    table = [header]
    for count, imported, looked, feed, _db in rows:
        table.append(
            (
                f"{count:,}",
                f"{imported['advisories'] / imported['seconds']:,.0f}",
                f"{imported['rss_mb']:.0f}",
                f"{args.lookups / looked['seconds']:,.0f}",
                f"{looked['rss_mb']:.0f}",
                f"{feed / 1e6:.0f}",
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
