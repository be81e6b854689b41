"""Authenticated inventory: parsers on recorded command output, this machine's own packages,
and the same inventory over SSH from a real sshd the test starts on 127.0.91.5.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from scanner.probes.inventory import (
    InventoryError,
    LocalRunner,
    SshRunner,
    collect,
    parse_apk,
    parse_dpkg,
    parse_os_release,
    parse_rpm,
    parse_sshd_settings,
    ssh_destination,
)

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
needs_sshd = pytest.mark.skipif(
    not (os.path.exists(SSHD) and shutil.which("ssh-keygen") and shutil.which("ssh")),
    reason="needs OpenSSH: apt-get install -y openssh-server openssh-client",
)
ADDRESS = "127.0.91.5"
PORT = 2222


def test_os_release() -> None:
    text = 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\n'
    text += "ID_LIKE=debian\nVERSION_CODENAME=jammy\n# comment\ngarbage line\n"
    release = parse_os_release(text)
    assert release is not None
    assert (release.id, release.version_id, release.id_like) == ("ubuntu", "22.04", ("debian",))
    assert release.version_codename == "jammy"
    assert parse_os_release("NAME=nothing\n") is None


def test_dpkg_keeps_installed_packages_and_their_source() -> None:
    text = (
        "ii \topenssh-server\t1:9.2p1-2+deb12u3\tamd64\topenssh\t1:9.2p1-2+deb12u3\n"
        "ii \tlibssl3\t3.0.11-1~deb12u2\tamd64\topenssl\t3.0.11-1~deb12u2\n"
        "rc \told-thing\t1.0-1\tamd64\told\t1.0-1\n"  # removed, config left: not installed
        "ii \tbroken line without tabs\n"
        "hi \theld\t2.0\tall\t\t\n"  # held packages are installed; no source: itself
    )
    packages = parse_dpkg(text)
    assert [p.name for p in packages] == ["openssh-server", "libssl3", "held"]
    assert packages[1].source == "openssl" and packages[1].version == "3.0.11-1~deb12u2"
    assert packages[2].source == "held" and packages[2].source_version == "2.0"


def test_rpm_epochs_and_source_packages() -> None:
    text = (
        "openssh-server\t0:8.0p1-19.el8_8\tx86_64\topenssh-8.0p1-19.el8_8.src.rpm\n"
        "openssl-libs\t1:1.1.1k-9.el8_7\tx86_64\topenssl-1.1.1k-9.el8_7.src.rpm\n"
        "gpg-pubkey\t0:fd431d51-4ae0493b\t(none)\t(none)\n"
        "junk\n"
    )
    packages = parse_rpm(text)
    assert [(p.name, p.version, p.source) for p in packages] == [
        ("openssh-server", "8.0p1-19.el8_8", "openssh"),
        ("openssl-libs", "1:1.1.1k-9.el8_7", "openssl"),
        ("gpg-pubkey", "fd431d51-4ae0493b", None),
    ]


def test_apk_both_listing_styles() -> None:
    info = "musl-1.2.4-r2\nopenssh-server-9.6_p1-r0\nbusybox-1.36.1-r15\n"
    listed = "openssl-3.1.4-r5 x86_64 {openssl} (Apache-2.0) [installed]\n"
    packages = parse_apk(info + listed)
    assert [(p.name, p.version) for p in packages] == [
        ("musl", "1.2.4-r2"),
        ("openssh-server", "9.6_p1-r0"),
        ("busybox", "1.36.1-r15"),
        ("openssl", "3.1.4-r5"),
    ]


def test_sshd_settings_first_value_wins_and_match_blocks_are_left_out() -> None:
    config = (
        "# comment\nPermitRootLogin yes\nPermitRootLogin no\nPasswordAuthentication=no\n"
        'Ciphers "aes128-ctr,3des-cbc"\nMatch User backup\n  PasswordAuthentication yes\n'
    )
    assert parse_sshd_settings(config) == {
        "permitrootlogin": "yes",
        "passwordauthentication": "no",
        "ciphers": "aes128-ctr,3des-cbc",
    }


def test_destination_and_hostile_arguments_are_refused() -> None:
    assert ssh_destination("admin@db01.corp") == ("admin", "db01.corp")
    assert ssh_destination("admin", "10.0.0.5") == ("admin", "10.0.0.5")
    with pytest.raises(InventoryError, match="no host"):
        ssh_destination("admin")
    for host in ("-oProxyCommand=touch /tmp/x", "a b", "host;id", ""):
        with pytest.raises(InventoryError, match="not a valid host"):
            SshRunner("root", host)
    with pytest.raises(InventoryError, match="not a valid SSH user"):
        SshRunner("-oProxyCommand=x", "127.0.0.1")
    argv = SshRunner("root", "10.0.0.5", port=2200).argv("uname -r")
    assert argv[argv.index("--") + 1 :] == ["10.0.0.5", "uname -r"]
    assert "BatchMode=yes" in argv and "StrictHostKeyChecking=yes" in argv


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs a dpkg-based system")
def test_local_inventory_of_this_machine() -> None:
    inventory = collect(LocalRunner())
    assert inventory.manager == "dpkg"
    assert inventory.os is not None and inventory.os.id in ("debian", "ubuntu")
    assert inventory.kernel == os.uname().release
    names = {p.name for p in inventory.packages}
    assert "dpkg" in names and len(inventory.packages) > 100
    expected = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "dpkg"], capture_output=True, text=True
    ).stdout
    assert next(p.version for p in inventory.packages if p.name == "dpkg") == expected


# --- over SSH, from a real sshd ------------------------------------------------------------


@pytest.fixture
def sshd(private_sshd: Callable[[str, int], tuple[Path, Path]]) -> tuple[Path, Path]:
    return private_sshd(ADDRESS, PORT)


@needs_sshd
def test_inventory_over_ssh_matches_the_local_one(sshd: tuple[Path, Path], tmp_path: Path) -> None:
    key, config = sshd
    runner = SshRunner(
        "root",
        ADDRESS,
        port=PORT,
        key_file=key,
        known_hosts=tmp_path / "known_hosts",
        accept_new_host_key=True,
        timeout=60,
    )
    remote = collect(runner)
    local = collect(LocalRunner())
    assert remote.host == f"root@{ADDRESS}"
    assert remote.os == local.os and remote.kernel == local.kernel
    assert remote.packages == local.packages and len(remote.packages) > 100
    assert (tmp_path / "known_hosts").read_text().count("ssh-ed25519") == 1
    # The test sshd's own effective settings, as `sshd -T` reports them.
    effective = subprocess.run(
        [SSHD, "-T", "-f", str(config)], capture_output=True, text=True, timeout=30
    ).stdout
    settings = parse_sshd_settings(effective)
    assert settings["permitrootlogin"] == "without-password"  # sshd's name for it
    assert settings["passwordauthentication"] == "no"
    assert settings["ciphers"] == "aes128-ctr,aes256-gcm@openssh.com"


@needs_sshd
def test_ssh_refusals_are_clear_errors(sshd: tuple[Path, Path], tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    known = tmp_path / "known_hosts"
    wrong_key = SshRunner(
        "root", ADDRESS, port=PORT, key_file=stranger, known_hosts=known, accept_new_host_key=True
    )
    with pytest.raises(InventoryError, match="Permission denied"):
        collect(wrong_key)
    known.write_text(f"[{ADDRESS}]:{PORT} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGdpZ2l0aGVyZQ\n")
    unverified = SshRunner("root", ADDRESS, port=PORT, key_file=sshd[0], known_hosts=known)
    with pytest.raises(InventoryError, match=r"(?i)host key"):
        collect(unverified)
    closed = SshRunner(
        "root", "127.0.91.6", port=PORT, key_file=sshd[0], known_hosts=known, connect_timeout=2
    )
    with pytest.raises(InventoryError, match=r"(?i)refused"):
        collect(closed)
