#!/usr/bin/env bash
# A local nats-server with JetStream for development, on its own port and
# state folder; stops only the server it started (by pid).
#   deploy/dev/nats.sh start|stop|status|env
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

DIR=${PW_NATS_DIR:-/tmp/pw-nats}
PORT=${PW_NATS_PORT:-14222}
PIDFILE=$DIR/nats.pid

case "${1:-}" in
  start)
    mkdir -p "$DIR"
    if pw_pid_alive "$PIDFILE"; then
      echo "nats-server already running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT" >&2
    else
      pw_apt_install nats-server
      nats-server -a 127.0.0.1 -p "$PORT" -js -sd "$DIR/store" -P "$PIDFILE" -l "$DIR/nats.log" \
        </dev/null >/dev/null 2>&1 &
      if ! pw_wait_port "$PORT" 10; then
        echo "nats-server did not start; log:" >&2
        tail -20 "$DIR/nats.log" >&2
        exit 1
      fi
      echo "nats-server started on 127.0.0.1:$PORT (state in $DIR)" >&2
    fi
    echo "PW_NATS_URL=nats://127.0.0.1:$PORT"
    ;;
  stop)
    if pw_pid_alive "$PIDFILE"; then
      kill "$(cat "$PIDFILE")"
      for _ in $(seq 50); do pw_pid_alive "$PIDFILE" || break; sleep 0.1; done
      echo "nats-server stopped" >&2
    fi
    rm -f "$PIDFILE"
    ;;
  status)
    pw_pid_alive "$PIDFILE"
    ;;
  env)
    echo "PW_NATS_URL=nats://127.0.0.1:$PORT"
    ;;
  *)
    echo "usage: $0 start|stop|status|env" >&2
    exit 64
    ;;
esac
