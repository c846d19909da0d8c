#!/usr/bin/env bash
# Stops what deploy/dev/up.sh started: the printwatch services (by their pid
# files), the dev nats-server and the mail bed. State folders are kept;
# `down.sh --purge` removes them too.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. deploy/dev/lib.sh

DEV_DIR=${PW_DEV_DIR:-/tmp/pw-dev}
for pidfile in "$DEV_DIR"/*.pid; do
  [ -e "$pidfile" ] || continue
  if pw_pid_alive "$pidfile"; then
    kill -TERM "$(cat "$pidfile")" 2>/dev/null || true
    for _ in $(seq 100); do pw_pid_alive "$pidfile" || break; sleep 0.1; done
    echo "stopped $(basename "$pidfile" .pid)" >&2
  fi
  rm -f "$pidfile"
done
deploy/dev/nats.sh stop
deploy/dev/mailbed.sh stop
deploy/dev/snmpbed.sh stop
deploy/dev/ippbed.sh stop
if [ "${1:-}" = "--purge" ]; then
  rm -rf "$DEV_DIR" "${PW_NATS_DIR:-/tmp/pw-nats}" "${PW_MAIL_DIR:-/tmp/pw-mail}" "${PW_SNMP_DIR:-/tmp/pw-snmp}" "${PW_IPP_DIR:-/tmp/pw-ipp}"
  echo "removed the state folders" >&2
fi
