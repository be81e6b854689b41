"""Authenticated inventories are kept per scan and host, packages and all."""

from __future__ import annotations

import dataclasses

from storefacts import Facts

from scanner.probes.inventory import Inventory, OsRelease, Package
from scanner.store import Store

INVENTORY = Inventory(
    host="localhost",
    os=OsRelease("debian", "12", "Debian GNU/Linux 12 (bookworm)"),
    kernel="6.1.0-18-amd64",
    manager="dpkg",
    packages=(
        *(
            Package(f"lib{i}", f"1.{i}-1", "dpkg", "amd64", f"src{i // 3}", f"1.{i}-1")
            for i in range(2000)
        ),
        Package("openssh-server", "1:9.2p1-2+deb12u3", "dpkg", "amd64", "openssh", None),
    ),
    sshd={"permitrootlogin": "no", "passwordauthentication": "yes"},
    warnings=("no sshd settings could be read",),
)


def test_an_inventory_round_trips_through_the_store(store: Store, facts: Facts) -> None:
    scan = facts.scan(hosts_total=2, targets=("127.0.0.1", "127.0.0.2"))
    host = dataclasses.replace(facts.host("127.0.0.1"), inventory=INVENTORY)
    store.record_chunk(scan, [host, facts.host("127.0.0.2")], [], {"tcp": "21"})
    found = store.inventories(scan)
    assert list(found) == ["127.0.0.1"]
    assert found["127.0.0.1"] == INVENTORY
    # 2,001 packages, compressed: far smaller than their JSON.
    size = store.db.execute("SELECT length(packages) FROM host_inventories").fetchone()[0]
    assert size < 30_000


def test_a_host_stored_again_replaces_its_inventory(store: Store, facts: Facts) -> None:
    scan = facts.scan()
    host = dataclasses.replace(facts.host(), inventory=INVENTORY)
    store.record_chunk(scan, [host], [], {"tcp": "21"})
    store.record_chunk(scan, [facts.host()], [], {"tcp": "21"})  # a retried chunk: no inventory
    assert store.inventories(scan) == {}
    newer = dataclasses.replace(INVENTORY, kernel="6.1.0-20-amd64", packages=())
    store.record_chunk(scan, [dataclasses.replace(host, inventory=newer)], [], {"tcp": "21"})
    assert store.inventories(scan)["127.0.0.1"] == newer
