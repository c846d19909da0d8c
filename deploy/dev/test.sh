#!/usr/bin/env bash
# Runs all of printwatch's checks and tests against real servers: format,
# lints, unit tests and end-to-end tests (private nats-servers per test,
# the local Postfix + Dovecot mail bed). Installs what it needs; safe to run
# twice. Stops only the mail bed it started itself.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. deploy/dev/lib.sh

pw_require_rust
pw_apt_install nats-server ca-certificates
# The IPP test bed (deploy/dev/ippbed.sh): ippeveprinter, ipptool, a private D-Bus bus.
pw_apt_install cups-ipp-utils dbus
# The SNMP test bed (deploy/dev/snmpbed.sh): snmpd, the snmp tools, the
# pass_persist helper's python3. Installed here, once, because the tests
# start their beds in parallel and apt takes one at a time.
pw_apt_install snmpd snmp python3

started_mail=0
if ! deploy/dev/mailbed.sh status >/dev/null 2>&1; then
  deploy/dev/mailbed.sh start >/dev/null
  started_mail=1
fi
cleanup() {
  if [ "$started_mail" = 1 ]; then deploy/dev/mailbed.sh stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

echo "== cargo fmt --check" >&2
cargo fmt --all --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== tests" >&2
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
echo "== deployment files (Dockerfile, docker compose config, Kubernetes schema check)" >&2
deploy/check-manifests.sh
