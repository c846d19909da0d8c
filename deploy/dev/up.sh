#!/usr/bin/env bash
# Sets up and runs printwatch locally on a fresh Debian machine: installs what
# is missing (Rust toolchain check, nats-server, Postfix, Dovecot), starts a
# private nats-server with JetStream and the local mail bed, builds the
# services, writes a dev config with simulated printers and (re)starts the
# services. Safe to run twice: what runs is reused, the services are
# restarted on the fresh build. `deploy/dev/down.sh` stops what this started.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. deploy/dev/lib.sh

DEV_DIR=${PW_DEV_DIR:-/tmp/pw-dev}
AGENT_PORT=${PW_AGENT_PORT:-15051}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
BIN=$CARGO_TARGET_DIR/debug

pw_require_rust
pw_apt_install nats-server ca-certificates
mkdir -p "$DEV_DIR"

# --- servers --------------------------------------------------------------
nats_url=$(deploy/dev/nats.sh start | sed -n 's/^PW_NATS_URL=//p')
deploy/dev/mailbed.sh start </dev/null >/dev/null
# shellcheck disable=SC1091
. "${PW_MAIL_DIR:-/tmp/pw-mail}/env"
# A simulated printer that speaks SNMP: net-snmp's snmpd serving
# Printer-MIB data from $PW_SNMP_DIR/printer.data (see deploy/dev/README.md).
deploy/dev/snmpbed.sh start </dev/null >/dev/null
eval "$(deploy/dev/snmpbed.sh env | grep -E '^PW_SNMP_(DIR|PORT|COMMUNITY)=')"
# A simulated printer that speaks IPP: CUPS's ippeveprinter (see
# deploy/dev/README.md), state changed by printing STATE: lines or through
# its /supplies and /media web forms.
deploy/dev/ippbed.sh start </dev/null >/dev/null
eval "$(deploy/dev/ippbed.sh env | grep -E '^PW_IPP_(DIR|PORT|URL|WEB)=')"

# --- build ----------------------------------------------------------------
echo "building printwatch (cargo build --bins)…" >&2
cargo build --quiet --bins

# --- config ---------------------------------------------------------------
config=$DEV_DIR/printwatch.toml
printf '%s' "secret-notify" >"$DEV_DIR/smtp_password"
chmod 0600 "$DEV_DIR/smtp_password"
cat >"$config" <<CONF
# Written by deploy/dev/up.sh on every run; edit a copy, not this file.
[nats]
url = "$nats_url"

[agent]
grpc_listen = "127.0.0.1:$AGENT_PORT"
advertise = "http://127.0.0.1:$AGENT_PORT"
poll_interval = "1s"

[mail]
admin_address = "alice@$PW_MAIL_DOMAIN"
language = "ja"

[mail.smtp]
host = "127.0.0.1"
port = $PW_SUBMISSION_PORT
security = "starttls"
ca_file = "$PW_MAIL_CA_FILE"
auth = true
auth_address = "notify@$PW_MAIL_DOMAIN"
username = "notify"
password_file = "smtp_password"

[mail.account]
address = "status@$PW_MAIL_DOMAIN"
receive = true
username = "status@$PW_MAIL_DOMAIN"
password = "$PW_MAIL_DEFAULT_PASSWORD"

[mail.receive]
protocol = "imap"
host = "127.0.0.1"
port = $PW_IMAPS_PORT
security = "tls"
ca_file = "$PW_MAIL_CA_FILE"
poll_interval = "5s"

[on_demand]
common_subject = "[printwatch] "
common_body = "printwatch local test bed"
allowed_senders = ["$PW_MAIL_DOMAIN"]

[alerts]
common_body = "printwatch local test bed"

[alerts.groups]
admins = ["alice@$PW_MAIL_DOMAIN"]
supplies = ["bob@$PW_MAIL_DOMAIN"]

[alerts.items.service_call]
groups = ["admins"]
[alerts.items.toner_empty]
groups = ["admins", "supplies"]
[alerts.items.toner_almost_empty]
groups = ["supplies"]
[alerts.items.paper_jam]
groups = ["admins"]
[alerts.items.cover_open]
groups = ["admins"]
[alerts.items.paper_out]
groups = ["admins"]
[alerts.items.toner_low_level]
groups = ["supplies"]
threshold_percent = 20

[telemetry]
log_level = "info"

[[devices]]
id = "snmp-lab"
name = "SNMP lab printer"
location = "Lab (snmpd on 127.0.0.1:$PW_SNMP_PORT)"
serial = "C6020-SNMP-0001"
mail_address = "printer5@$PW_MAIL_DOMAIN"
source = "snmp://127.0.0.1:$PW_SNMP_PORT?community=$PW_SNMP_COMMUNITY"

[[devices]]
id = "ipp-lab"
name = "IPP lab printer"
location = "Lab (ippeveprinter on 127.0.0.1:$PW_IPP_PORT)"
serial = "C6020-IPP-0001"
mail_address = "ipp-lab@$PW_MAIL_DOMAIN"
source = "$PW_IPP_URL"
CONF
i=0
for spec in "lobby-1|Lobby printer|Building A, 1F lobby|100" \
            "floor2-east|2F east|Building A, 2F east wing|60" \
            "floor3-color|3F color|Building B, 3F|35" \
            "warehouse|Warehouse|Warehouse, dock 2|15"; do
  IFS='|' read -r id name location toner <<<"$spec"
  i=$((i + 1))
  cat >>"$config" <<CONF

[[devices]]
id = "$id"
name = "$name"
location = "$location"
serial = "C6020-SIM-000$i"
mail_address = "printer$i@$PW_MAIL_DOMAIN"
source = "simulated"
host_name = "$id.printers.$PW_MAIL_DOMAIN"
addresses = ["192.0.2.1$i"]
protocols = ["IPP", "SNMPv2c", "HTTP"]
[devices.simulated]
toner_level_percent = $toner
CONF
done
"$BIN/printwatch" config check "$config" >/dev/null

# --- services -------------------------------------------------------------
start_service() { # name args…
  local name=$1; shift
  local pidfile=$DEV_DIR/$name.pid log=$DEV_DIR/$name.log
  if pw_pid_alive "$pidfile"; then
    kill -TERM "$(cat "$pidfile")" 2>/dev/null || true
    for _ in $(seq 100); do pw_pid_alive "$pidfile" || break; sleep 0.1; done
  fi
  nohup "$BIN/$name" "$@" </dev/null >>"$log" 2>&1 &
  echo $! >"$pidfile"
}
if (exec 3<>"/dev/tcp/127.0.0.1/$AGENT_PORT") 2>/dev/null && ! pw_pid_alive "$DEV_DIR/printwatch-agent.pid"; then
  echo "error: 127.0.0.1:$AGENT_PORT is used by another program; set PW_AGENT_PORT" >&2
  exit 1
fi
start_service printwatch-agent --config "$config"
if ! pw_wait_port "$AGENT_PORT" 20; then
  echo "error: printwatch-agent did not start; log $DEV_DIR/printwatch-agent.log:" >&2
  tail -20 "$DEV_DIR/printwatch-agent.log" >&2
  exit 1
fi
for svc in printwatch-notifier printwatch-inbox; do
  start_service "$svc" --config "$config"
done
sleep 1
for svc in printwatch-notifier printwatch-inbox; do
  if ! pw_pid_alive "$DEV_DIR/$svc.pid"; then
    echo "error: $svc did not start; log $DEV_DIR/$svc.log:" >&2
    tail -20 "$DEV_DIR/$svc.log" >&2
    exit 1
  fi
done

cat <<EOF
printwatch is running.
  NATS           $nats_url (state in ${PW_NATS_DIR:-/tmp/pw-nats})
  snmpd          udp 127.0.0.1:$PW_SNMP_PORT, data $PW_SNMP_DIR/printer.data
  ippeveprinter  $PW_IPP_URL (web forms $PW_IPP_WEB)
  mail bed       SMTP 127.0.0.1:$PW_SMTP_PORT, submission $PW_SUBMISSION_PORT, IMAP $PW_IMAP_PORT, POP3 $PW_POP3_PORT (state in $PW_MAIL_DIR)
  agent          http://127.0.0.1:$AGENT_PORT, log $DEV_DIR/printwatch-agent.log
  notifier       log $DEV_DIR/printwatch-notifier.log; alerts go to alice@ and bob@$PW_MAIL_DOMAIN
  inbox          log $DEV_DIR/printwatch-inbox.log; reads status@$PW_MAIL_DOMAIN over IMAPS
  config         $config

Try:
  export PRINTWATCH_CONFIG=$config PATH=$BIN:\$PATH
  printwatch devices
  printwatch raise lobby-1 paper_jam --detail "Tray 2"
  printwatch status lobby-1
  printwatch clear lobby-1 paper_jam
  printwatch toner floor2-east 10
  # snmp-lab is read over SNMP; change what it reports (toner 5 %):
  sed -i 's/^\(.1.3.6.1.2.1.43.11.1.1.9.1.1\) integer .*/\1 integer 5/' $PW_SNMP_DIR/printer.data
  printwatch status snmp-lab
  # ipp-lab is read over IPP; jam it and clear it again:
  printf 'STATE: +media-jam\n' >/tmp/jam.txt && deploy/dev/ippbed.sh print /tmp/jam.txt
  printf 'STATE: -media-jam\n' >/tmp/ok.txt && deploy/dev/ippbed.sh print /tmp/ok.txt
  curl -s '${PW_IPP_WEB}supplies?supply0=25&supply1=3' >/dev/null   # black toner at 3 %
  # the alert mails (IMAP 127.0.0.1:$PW_IMAP_PORT, user alice, password secret-alice):
  ls $PW_MAIL_DIR/mail/$PW_MAIL_DOMAIN/alice/Maildir/new
  # ask lobby-1 (printer1@) for its status; the reply lands in alice's mailbox:
  swaks --server 127.0.0.1:$PW_SMTP_PORT --from alice@$PW_MAIL_DOMAIN --to status@$PW_MAIL_DOMAIN \\
        --header "To: printer1@$PW_MAIL_DOMAIN" --header "Subject: requeststatus" --body "status please"
Stop it all with deploy/dev/down.sh.
EOF
