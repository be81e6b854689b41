"""Active service checks against real servers (redis-server, memcached, pyftpdlib) and the lab's
emulated HTTP APIs, each on its own 127.0.53.x address."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from demo.lab import (
    ServiceLoop,
    docker_api,
    elasticsearch,
    etcd,
    memcached_argv,
    redis_argv,
)
from scanner.model import Host, HostState, Service
from scanner.probes.checks import CHECKS, run_checks
from scanner.probes.checks.docker import DockerCheck
from scanner.probes.checks.elasticsearch import ElasticsearchCheck
from scanner.probes.checks.etcd import EtcdCheck
from scanner.probes.checks.ftp import FtpCheck
from scanner.probes.checks.memcached import MemcachedCheck
from scanner.probes.checks.redis import RedisCheck
from scanner.rules import service_facts
from scanner.safetext import MAX_FIELD


def svc(port: int, name: str | None = None, **kwargs: Any) -> Service:
    kwargs.setdefault("method", "probed" if name else "table")
    return Service(port=port, proto=kwargs.pop("proto", "tcp"), state="open", name=name, **kwargs)


# --- which checks apply -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        (svc(6379), {"redis"}),
        (svc(7000, "redis"), {"redis"}),
        (svc(6379, "http"), set()),  # nmap probed something else on Redis's port
        (svc(6379, "redis", tunnel="ssl"), set()),  # Redis over TLS: not spoken here
        (svc(21), {"ftp"}),
        (svc(2121, "ftp"), {"ftp"}),
        (svc(990, "ftp", tunnel="ssl"), set()),
        (svc(11211), {"memcached"}),
        (svc(11212, "memcached"), {"memcached"}),
        (svc(2375), {"docker"}),
        (svc(8080, "http", product="Docker"), {"docker"}),
        (svc(2376, "docker", tunnel="ssl"), {"docker"}),
        (svc(9200, "http"), {"elasticsearch"}),  # ES 8 is "http" to nmap 7.93
        (svc(9201, "http", product="Elasticsearch REST API"), {"elasticsearch"}),
        (svc(9200, "ssh"), set()),
        (svc(2379, "http"), {"etcd"}),
        (svc(2379), {"etcd"}),
        (svc(80, "http"), set()),
        (svc(6379, proto="udp"), set()),
        (Service(port=6379, proto="tcp", state="closed"), set()),
    ],
)
def test_applies(service: Service, expected: set[str]) -> None:
    assert {c.name for c in CHECKS if c.applies(service)} == expected


# --- Redis ------------------------------------------------------------------------------------


def test_redis_without_password(daemon: Any) -> None:
    daemon(redis_argv("127.0.53.1", 6379), "127.0.53.1", 6379)
    facts = RedisCheck().run("127.0.53.1", svc(6379, "redis"), 5.0)
    assert facts is not None
    assert facts["unauthenticated"] is True and facts["protected_mode"] is False
    assert facts["version"].count(".") == 2  # e.g. 7.0.15, read from INFO server


def test_redis_with_password(daemon: Any) -> None:
    daemon(redis_argv("127.0.53.2", 6379, password="s3cret-pass"), "127.0.53.2", 6379)
    facts = RedisCheck().run("127.0.53.2", svc(6379, "redis"), 5.0)
    assert facts == {"unauthenticated": False}


def test_redis_protected_mode_refuses_other_hosts(daemon: Any) -> None:
    daemon(redis_argv("127.0.53.3", 6379, protected_mode=True), "127.0.53.3", 6379)
    # Redis treats only 127.0.0.1 as local: connect from another loopback address, as a
    # scanner on another machine would.
    remote = RedisCheck(source_address="127.0.53.200")
    facts = remote.run("127.0.53.3", svc(6379, "redis"), 5.0)
    assert facts == {"unauthenticated": False, "protected_mode": True}
    local = RedisCheck().run("127.0.53.3", svc(6379, "redis"), 5.0)  # from 127.0.0.1
    assert local is not None and local["unauthenticated"] is True


def test_redis_hostile_version_is_clipped(loop: ServiceLoop) -> None:
    info = b"# Server\r\nredis_version:" + b"\x1b[31m" + b"9" * 5000 + b"\r\n"

    async def fake_redis(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"$%d\r\n%s\r\n" % (len(info), info))
        await writer.drain()

    loop.serve("127.0.53.4", 6379, fake_redis)
    facts = RedisCheck().run("127.0.53.4", svc(6379, "redis"), 5.0)
    assert facts is not None and facts["unauthenticated"] is True
    assert facts["version"].startswith("\x1b[31m999") and len(facts["version"]) < 100


def test_nothing_listening_means_the_check_did_not_run() -> None:
    # 127.0.53.250 is this file's; nothing is started on it
    assert RedisCheck().run("127.0.53.250", svc(6379, "redis"), 2.0) is None
    assert FtpCheck().run("127.0.53.250", svc(21, "ftp"), 2.0) is None
    assert DockerCheck().run("127.0.53.250", svc(2375), 2.0) is None


def test_silent_service_is_bounded_by_the_timeout(loop: ServiceLoop) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(20)

    loop.serve("127.0.53.5", 6379, silent)
    assert RedisCheck().run("127.0.53.5", svc(6379, "redis"), 0.5) is None


def test_non_redis_answer_is_not_a_verdict(loop: ServiceLoop) -> None:
    async def web(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()

    loop.serve("127.0.53.6", 6379, web)
    assert RedisCheck().run("127.0.53.6", svc(6379), 2.0) is None


# --- FTP --------------------------------------------------------------------------------------


def test_ftp_anonymous_allowed(ftp_server: Any) -> None:
    ftp_server("127.0.53.7", 2121, anonymous=True)
    facts = FtpCheck().run("127.0.53.7", svc(2121, "ftp"), 5.0)
    assert facts is not None
    assert facts["anonymous"] is True and facts["banner"].startswith("220 pyftpdlib")


def test_ftp_anonymous_refused(ftp_server: Any) -> None:
    ftp_server("127.0.53.8", 2121, anonymous=False, users={"alice": "wonderland-42"})
    facts = FtpCheck().run("127.0.53.8", svc(2121, "ftp"), 5.0)
    assert facts is not None
    assert facts["anonymous"] is False and facts["banner"].startswith("220 ")


def test_ftp_hostile_banner_is_clipped(ftp_server: Any) -> None:
    ftp_server("127.0.53.9", 2121, banner="\x1b]0;owned\x07" + "B" * 3000)
    facts = FtpCheck().run("127.0.53.9", svc(2121, "ftp"), 5.0)
    assert facts is not None and facts["anonymous"] is True
    assert facts["banner"].startswith("220-\x1b]0;owned\x07")  # kept as evidence, bounded
    assert len(facts["banner"]) < MAX_FIELD + 40 and facts["banner"].endswith("chars]")


# --- memcached --------------------------------------------------------------------------------


def test_memcached_open(daemon: Any) -> None:
    daemon(memcached_argv("127.0.53.10", 11211), "127.0.53.10", 11211)
    facts = MemcachedCheck().run("127.0.53.10", svc(11211, "memcached"), 5.0)
    assert facts is not None and facts["unauthenticated"] is True
    assert facts["version"][0].isdigit()


def test_memcached_with_authentication(daemon: Any, tmp_path: Path) -> None:
    auth = tmp_path / "memcached-auth"
    auth.write_text("operator:correct-horse\n")
    daemon(memcached_argv("127.0.53.11", 11211, auth_file=auth), "127.0.53.11", 11211)
    facts = MemcachedCheck().run("127.0.53.11", svc(11211, "memcached"), 5.0)
    assert facts == {"unauthenticated": False}


# --- HTTP APIs (the lab's emulations) ---------------------------------------------------------


def test_docker_api_open(loop: ServiceLoop) -> None:
    loop.serve("127.0.53.12", 2375, docker_api())
    facts = DockerCheck().run("127.0.53.12", svc(2375, "docker"), 5.0)
    assert facts == {"unauthenticated": True, "version": "24.0.7", "api_version": "1.43"}


def test_docker_api_behind_an_authorization_plugin(loop: ServiceLoop) -> None:
    loop.serve("127.0.53.13", 2375, docker_api(authorization=True))
    assert DockerCheck().run("127.0.53.13", svc(2375, "docker"), 5.0) == {"unauthenticated": False}


@pytest.mark.parametrize("version", ["7.10.2", "8.11.1"])
def test_elasticsearch_open(loop: ServiceLoop, version: str) -> None:
    loop.serve("127.0.53.14", 9200, elasticsearch(version=version))
    facts = ElasticsearchCheck().run("127.0.53.14", svc(9200, "http"), 5.0)
    assert facts == {"unauthenticated": True, "version": version, "cluster_name": "posture-lab"}


def test_elasticsearch_with_security(loop: ServiceLoop) -> None:
    loop.serve("127.0.53.15", 9200, elasticsearch(version="8.11.1", auth=True))
    facts = ElasticsearchCheck().run("127.0.53.15", svc(9200, "http"), 5.0)
    assert facts == {"unauthenticated": False}


def test_etcd_open(loop: ServiceLoop) -> None:
    loop.serve("127.0.53.16", 2379, etcd())
    facts = EtcdCheck().run("127.0.53.16", svc(2379, "etcd-client", method="table"), 5.0)
    assert facts == {"version": "3.5.9", "unauthenticated": True}


def test_etcd_with_auth(loop: ServiceLoop) -> None:
    loop.serve("127.0.53.17", 2379, etcd(auth=True))
    facts = EtcdCheck().run("127.0.53.17", svc(2379, "http"), 5.0)
    assert facts == {"version": "3.5.9", "unauthenticated": False}


def test_http_check_on_something_else_says_nothing(loop: ServiceLoop) -> None:
    loop.serve("127.0.53.18", 9200, docker_api())  # a Docker API where ES was expected
    assert ElasticsearchCheck().run("127.0.53.18", svc(9200), 5.0) is None
    assert EtcdCheck().run("127.0.53.18", svc(9200), 5.0) is None


# --- run_checks -------------------------------------------------------------------------------


def test_run_checks_attaches_facts_to_open_services(loop: ServiceLoop, daemon: Any) -> None:
    address = "127.0.53.20"
    loop.serve(address, 2375, docker_api())
    loop.serve(address, 9200, elasticsearch())
    daemon(redis_argv(address, 6379), address, 6379)
    host = Host(
        address=address,
        state=HostState.UP,
        services=(
            svc(2375, "docker"),
            svc(6379, "redis"),
            svc(9200, "http", product="Elasticsearch REST API"),
            svc(22, "ssh"),
            Service(port=2379, proto="tcp", state="closed", name="etcd-client"),
            svc(11211),  # nothing listens: the check applied, got no answer, adds no fact
        ),
    )
    checked = run_checks(host, timeout=5.0)
    by_port = {s.port: s for s in checked.services}
    assert by_port[2375].checks["docker"]["unauthenticated"] is True
    assert by_port[6379].checks["redis"]["unauthenticated"] is True
    assert by_port[9200].checks["elasticsearch"]["version"] == "7.10.2"
    assert by_port[22].checks == {} and by_port[2379].checks == {}  # no check applied
    assert by_port[11211].checks == {"memcached": {}}  # applied, no answer
    assert not any(name.startswith("memcached.") for name in service_facts(host, by_port[11211]))
    assert host.services[0].checks == {}  # the input is left as it was
    assert checked.address == host.address and checked.state is HostState.UP


def test_run_checks_without_applicable_services_returns_the_host() -> None:
    host = Host(address="127.0.53.21", state=HostState.UP, services=(svc(22, "ssh"),))
    assert run_checks(host) is host


class _Failing(RedisCheck):
    """A check whose own code breaks on what it read (as a hostile answer might make it)."""

    def gather(self, address: str, service: Service, timeout: float) -> dict[str, Any] | None:
        raise ValueError("unexpected reply")


class _Straggler(FtpCheck):
    """A check that ignores its budget: run_checks' backstop must stop waiting for it."""

    def gather(self, address: str, service: Service, timeout: float) -> dict[str, Any] | None:
        time.sleep(timeout + 3)
        return {"anonymous": True}


def test_failed_and_late_checks_leave_an_empty_mapping() -> None:
    # Neither check touches the network; the address is this file's and nothing serves it.
    host = Host(
        address="127.0.53.22",
        state=HostState.UP,
        services=(svc(6379, "redis"), svc(21, "ftp")),
    )
    started = time.monotonic()
    checked = run_checks(host, timeout=0.2, checks=(_Failing(), _Straggler()))
    assert time.monotonic() - started < 3
    by_port = {s.port: s.checks for s in checked.services}
    assert by_port == {6379: {"redis": {}}, 21: {"ftp": {}}}
