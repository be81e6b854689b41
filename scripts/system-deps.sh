#!/usr/bin/env bash
# Installs the system tools posture needs (and its demo/tests use) when they are missing.
# Debian/Ubuntu as root: apt-get. Anywhere else: says exactly what to install, and fails.
set -euo pipefail

need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }

py_ok=0
if have python3 && python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  py_ok=1
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_pkgs+=(python3-venv)
else
  need_pkgs+=(python3 python3-venv)
fi
have nmap || need_pkgs+=(nmap)
# Used by the demo lab and the tests (real services started on loopback addresses).
have redis-server || need_pkgs+=(redis-server)
have memcached || need_pkgs+=(memcached)
have ip || need_pkgs+=(iproute2)
# TLS tests serve chosen protocols, suites and certificates with openssl s_server and nginx.
have openssl || need_pkgs+=(openssl)
have nginx || need_pkgs+=(nginx-light)
# `posture job install` writes a crontab line where systemd does not run (containers, CI).
have crontab || need_pkgs+=(cron)
# Authenticated inventory tests log in to a private sshd they start on a loopback address.
{ have sshd || [ -x /usr/sbin/sshd ]; } || need_pkgs+=(openssh-server)
# Playbooks isolate hosts with an nftables table; the tests do it inside network namespaces.
{ have nft || [ -x /usr/sbin/nft ]; } || need_pkgs+=(nftables)
# evidence.collect captures packets on ssh targets with tcpdump; the tests capture on one.
{ have tcpdump || [ -x /usr/bin/tcpdump ]; } || need_pkgs+=(tcpdump)
# PDF reports are printed by headless Chromium; the tests also look at the HTML reports in it.
{ have chromium || have chromium-browser || have google-chrome; } || need_pkgs+=(chromium)
# chromium pulls in no font without its recommends: without one, reports print as empty boxes.
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_pkgs+=(fonts-dejavu-core)
# Password rotation is tested against a real PostgreSQL server the tests start themselves.
[ -x /usr/lib/postgresql/15/bin/postgres ] || ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_pkgs+=(postgresql)

if [ ${#need_pkgs[@]} -eq 0 ]; then
  exit 0
fi

echo "posture: missing system packages: ${need_pkgs[*]}" >&2
if ! have apt-get; then
  echo "posture: no apt-get here: install ${need_pkgs[*]} with your package manager (Python >= 3.11), then run make again." >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "posture: not root: run 'sudo apt-get update && sudo apt-get install -y ${need_pkgs[*]}', then run make again." >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${need_pkgs[@]}"
# Debian starts these daemons on install; posture's lab starts its own on chosen addresses.
for svc in redis-server memcached nginx-light openssh-server; do
  if printf '%s\n' "${need_pkgs[@]}" | grep -qx "$svc" && have systemctl; then
    unit="${svc%-light}"
    [ "$svc" = openssh-server ] && unit=ssh  # never leave a new sshd listening on port 22
    systemctl disable --now "$unit" >/dev/null 2>&1 || true
  fi
done
# Without systemd the package's init script may have started the default site: stop the copy
# we just installed (the tests run private nginx instances on loopback addresses).
if printf '%s\n' "${need_pkgs[@]}" | grep -qx nginx-light && ! have systemctl; then
  nginx -s quit >/dev/null 2>&1 || true
fi
if printf '%s\n' "${need_pkgs[@]}" | grep -qx openssh-server && ! have systemctl; then
  [ -x /etc/init.d/ssh ] && /etc/init.d/ssh stop >/dev/null 2>&1 || true
fi
if [ "$py_ok" -eq 0 ] && ! python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "posture: this system's python3 is older than 3.11: install Python 3.11+ and run make again." >&2
  exit 1
fi
