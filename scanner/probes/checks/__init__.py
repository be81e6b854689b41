"""Active service checks: safe, read-only conversations that go beyond nmap's port and banner.

Each check is one module; CHECKS is the registry. `run_checks` runs every check that applies to
a host's open services, concurrently, and attaches the facts as `Service.checks[<check name>]`;
a check that applied but could not tell leaves an empty mapping there ("applied, no answer").
"""

from __future__ import annotations

import dataclasses
import logging
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from scanner.model import Host, Service
from scanner.probes.checks.docker import DockerCheck
from scanner.probes.checks.elasticsearch import ElasticsearchCheck
from scanner.probes.checks.etcd import EtcdCheck
from scanner.probes.checks.ftp import FtpCheck
from scanner.probes.checks.interface import ServiceCheck
from scanner.probes.checks.memcached import MemcachedCheck
from scanner.probes.checks.redis import RedisCheck
from scanner.safetext import for_terminal

__all__ = ["CHECKS", "ServiceCheck", "run_checks"]

log = logging.getLogger(__name__)

CHECKS: tuple[ServiceCheck, ...] = (
    RedisCheck(),
    FtpCheck(),
    MemcachedCheck(),
    DockerCheck(),
    ElasticsearchCheck(),
    EtcdCheck(),
)

_GRACE = 1.0  # seconds on top of a check's budget before run_checks stops waiting for it


def run_checks(
    host: Host,
    *,
    timeout: float = 5.0,
    max_workers: int = 8,
    checks: tuple[ServiceCheck, ...] = CHECKS,
) -> Host:
    """A copy of `host` whose open services carry the facts of every check that applies.

    Checks run concurrently, each within `timeout` seconds. One that could not tell (refused,
    timed out, not the expected protocol, failed, or still running after its budget) adds an
    empty mapping under its name: no fact is set (absence is not "false"), but the scan knows
    the check applied and got no answer, so rules that need its facts are undetermined there.
    """
    jobs = [
        (index, check)
        for index, service in enumerate(host.services)
        if service.state == "open"
        for check in checks
        if check.applies(service)
    ]
    if not jobs:
        return host
    pool = ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(jobs))))
    futures: dict[Future[dict[str, Any] | None], tuple[int, ServiceCheck]] = {
        pool.submit(check.run, host.address, host.services[index], timeout): (index, check)
        for index, check in jobs
    }
    # Every socket call inside a check is bounded by its budget, so the wait below is only a
    # backstop; a straggler is left to finish on its own and its result is dropped.
    done, late = wait(futures, timeout=timeout + _GRACE)
    pool.shutdown(wait=False, cancel_futures=True)
    # Every job that applied starts as "no answer"; an answer replaces it below.
    found: dict[int, dict[str, dict[str, Any]]] = {}
    for index, check in jobs:
        found.setdefault(index, {})[check.name] = {}
    for future in done:
        index, check = futures[future]
        service = host.services[index]
        try:
            facts = future.result()
        except Exception as exc:  # a hostile answer must not end the scan of everything else
            log.warning(
                "check %s on %s:%d/%s failed: %s",
                check.name,
                host.address,
                service.port,
                service.proto,
                for_terminal(exc, 300),
            )
            continue
        if facts is not None:
            found[index][check.name] = dict(facts)
    for future in late:
        index, check = futures[future]
        log.warning(
            "check %s on %s:%d did not finish in %.1fs",
            check.name,
            host.address,
            host.services[index].port,
            timeout,
        )
    services: list[Service] = list(host.services)
    for index, facts in found.items():
        merged = {**services[index].checks, **facts}
        services[index] = dataclasses.replace(services[index], checks=merged)
    return dataclasses.replace(host, services=tuple(services))
