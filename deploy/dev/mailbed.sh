#!/usr/bin/env bash
# printwatch local mail test bed: Postfix (SMTP, submission, SMTPS) + Dovecot
# (IMAP, IMAPS, POP3, POP3S, LMTP, SASL) running as private instances with all
# state under one directory. Never touches /etc/postfix or /etc/dovecot configs
# and never stops anything it did not start itself.
#
#   mailbed.sh start    install (if missing), configure and start; idempotent
#   mailbed.sh stop     stop the servers of this bed (by their pid files)
#   mailbed.sh status   exit 0 when both servers run, 1 otherwise
#   mailbed.sh env      print KEY=value lines describing the bed
#
# Everything is overridable by environment variables, see `mailbed.sh env`.
set -euo pipefail

DIR="${PW_MAIL_DIR:-/tmp/pw-mail}"
DOMAIN="${PW_MAIL_DOMAIN:-printwatch.test}"
HOST=127.0.0.1
SMTP_PORT="${PW_SMTP_PORT:-10025}"
SUBMISSION_PORT="${PW_SUBMISSION_PORT:-10587}"
SMTPS_PORT="${PW_SMTPS_PORT:-10465}"
SUBMISSION_PLAIN_ONLY_PORT="${PW_SUBMISSION_PLAIN_ONLY_PORT:-10588}"
SUBMISSION_POP_GATE_PORT="${PW_SUBMISSION_POP_GATE_PORT:-10589}"
POP_GATE_SECONDS="${PW_POP_GATE_SECONDS:-60}"
IMAP_PORT="${PW_IMAP_PORT:-10143}"
IMAPS_PORT="${PW_IMAPS_PORT:-10993}"
POP3_PORT="${PW_POP3_PORT:-10110}"
POP3S_PORT="${PW_POP3S_PORT:-10995}"
DEFAULT_PASSWORD="test-password"
NAMED_USERS="alice bob printer1 printer2 printer3 printer4 printer5 notify"
START_TIMEOUT="${PW_MAIL_START_TIMEOUT:-20}"

PACKAGES="postfix dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd swaks libauthen-sasl-perl libnet-ssleay-perl libdigest-hmac-perl openssl"

PF_DIR="$DIR/postfix"          # postfix config_directory
PF_QUEUE="$DIR/postfix-queue"  # queue_directory (holds pid/master.pid)
PF_DATA="$DIR/postfix-data"    # data_directory
DC_DIR="$DIR/dovecot"          # dovecot.conf, users file
DC_RUN="$DIR/run"              # dovecot base_dir (sockets, master.pid)
DC_STATE="$DIR/dovecot-state"
GATE_DIR="$DIR/popgate"         # POP before SMTP gate: scripts and login records
CERTS="$DIR/certs"
LOGS="$DIR/log"
MAIL_ROOT="$DIR/mail"
POSTFIX_LOG="$LOGS/postfix.log"
DOVECOT_LOG="$LOGS/dovecot.log"
POSTFIX_PID="$PF_QUEUE/pid/master.pid"
DOVECOT_PID="$DC_RUN/master.pid"

log() { printf 'mailbed: %s\n' "$*" >&2; }

# Set by install_if_changed when a generated file differs from the one in use.
POSTFIX_CHANGED=0
DOVECOT_CHANGED=0

install_if_changed() { # new-file target-file flag-variable
    if [[ -f "$2" ]] && cmp -s "$1" "$2"; then
        rm -f "$1"
        return 0
    fi
    mv -f "$1" "$2"
    printf -v "$3" 1
}
die() { log "error: $*"; exit 1; }

all_ports() {
    echo "$SMTP_PORT $SUBMISSION_PORT $SMTPS_PORT $SUBMISSION_PLAIN_ONLY_PORT $SUBMISSION_POP_GATE_PORT" \
        "$IMAP_PORT $IMAPS_PORT $POP3_PORT $POP3S_PORT"
}

print_env() {
    cat <<EOF
PW_MAIL_DIR=$DIR
PW_MAIL_DOMAIN=$DOMAIN
PW_MAIL_HOST=$HOST
PW_SMTP_PORT=$SMTP_PORT
PW_SUBMISSION_PORT=$SUBMISSION_PORT
PW_SMTPS_PORT=$SMTPS_PORT
PW_SUBMISSION_PLAIN_ONLY_PORT=$SUBMISSION_PLAIN_ONLY_PORT
PW_SUBMISSION_POP_GATE_PORT=$SUBMISSION_POP_GATE_PORT
PW_POP_GATE_SECONDS=$POP_GATE_SECONDS
PW_IMAP_PORT=$IMAP_PORT
PW_IMAPS_PORT=$IMAPS_PORT
PW_POP3_PORT=$POP3_PORT
PW_POP3S_PORT=$POP3S_PORT
PW_MAIL_CA_FILE=$CERTS/ca.pem
PW_MAIL_NAMED_USERS="$NAMED_USERS"
PW_MAIL_NAMED_PASSWORD_PREFIX=secret-
PW_MAIL_DEFAULT_PASSWORD=$DEFAULT_PASSWORD
PW_MAIL_PASSWORD_SCHEME="named users: secret-<name>; any other <local>@$DOMAIN: $DEFAULT_PASSWORD; login as <local> or <local>@$DOMAIN"
PW_MAIL_MASTER_USER=
PW_MAIL_POSTFIX_LOG=$POSTFIX_LOG
PW_MAIL_DOVECOT_LOG=$DOVECOT_LOG
EOF
}

pid_alive() { # pidfile
    local pid
    [[ -s "$1" ]] || return 1
    pid="$(head -n1 "$1" | tr -dc '0-9')"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

postfix_running() { pid_alive "$POSTFIX_PID"; }
dovecot_running() { pid_alive "$DOVECOT_PID"; }

port_open() { # port
    timeout 1 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

all_ports_open() {
    local p
    for p in $(all_ports); do port_open "$p" || return 1; done
}

ensure_packages() {
    local missing=()
    command -v postfix >/dev/null || missing+=(postfix)
    command -v dovecot >/dev/null || missing+=(dovecot-core)
    [[ -x /usr/lib/dovecot/imap ]] || missing+=(dovecot-imapd)
    [[ -x /usr/lib/dovecot/pop3 ]] || missing+=(dovecot-pop3d)
    [[ -x /usr/lib/dovecot/lmtp ]] || missing+=(dovecot-lmtpd)
    command -v swaks >/dev/null || missing+=(swaks)
    perl -MAuthen::SASL -e1 2>/dev/null || missing+=(libauthen-sasl-perl)
    perl -MNet::SSLeay -e1 2>/dev/null || missing+=(libnet-ssleay-perl)
    perl -MDigest::HMAC_MD5 -e1 2>/dev/null || missing+=(libdigest-hmac-perl)
    command -v openssl >/dev/null || missing+=(openssl)
    ((${#missing[@]} == 0)) && return 0
    log "installing ${missing[*]}"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PACKAGES \
        >"$LOGS/apt.log" 2>&1; then
        log "install failed, running apt-get update and retrying"
        apt-get update -q >>"$LOGS/apt.log" 2>&1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PACKAGES \
            >>"$LOGS/apt.log" 2>&1 || { tail -n 20 "$LOGS/apt.log" >&2; die "apt-get install failed"; }
    fi
}

mail_user() {
    if id -u mail >/dev/null 2>&1; then
        echo mail
    else
        id -u pwmail >/dev/null 2>&1 \
            || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin pwmail
        echo pwmail
    fi
}

make_certs() {
    local host
    host="$(hostname 2>/dev/null || echo localhost)"
    # Regenerate when missing or made for another host name.
    if [[ -s "$CERTS/ca.pem" && -s "$CERTS/server.pem" && -s "$CERTS/server.key" ]] \
        && [[ "$(cat "$CERTS/hostname" 2>/dev/null)" == "$host" ]]; then
        return 0
    fi
    mkdir -p "$CERTS"
    local tmp
    tmp="$(mktemp -d "$CERTS/.new.XXXXXX")"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -days 3650 \
        -subj "/O=printwatch test bed/CN=printwatch mail test bed CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$tmp/server.key" -out "$tmp/server.csr" \
        -subj "/O=printwatch test bed/CN=localhost" >/dev/null 2>&1
    cat >"$tmp/server.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:$host,DNS:mail.$DOMAIN
EOF
    openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" \
        -CAcreateserial -days 3650 -sha256 -extfile "$tmp/server.ext" \
        -out "$tmp/server.pem" >/dev/null 2>&1
    cat "$tmp/server.pem" "$tmp/ca.pem" >"$tmp/server-chain.pem"
    echo "$host" >"$tmp/hostname"
    chmod 0644 "$tmp"/*.pem
    chmod 0600 "$tmp"/*.key
    mv -f "$tmp"/ca.key "$tmp"/ca.pem "$tmp"/server.key "$tmp"/server.pem \
        "$tmp"/server-chain.pem "$tmp"/hostname "$CERTS"/
    rm -rf "$tmp"
}

# POP before SMTP, as old mail servers did it: a POP3 login opens relaying
# for a while. Dovecot runs postlogin.sh after every POP3 login, which
# records the time in $GATE_DIR/logins/<client ip>_<user>; Postfix asks
# policy.sh (a spawn(8) policy service) at RCPT on the gate port whether the
# client logged in over POP3 within $POP_GATE_SECONDS seconds. All test
# clients share 127.0.0.1, so the bed ties the grant to the envelope sender
# as well (sender = the POP3 user, as <local>@domain): parallel tests cannot
# open the gate for one another.
write_popgate() {
    local user="$1"
    mkdir -p "$GATE_DIR/logins"
    chown dovecot "$GATE_DIR/logins" 2>/dev/null || chmod 1777 "$GATE_DIR/logins"
    chmod 0755 "$GATE_DIR"
    cat >"$GATE_DIR/postlogin.sh.new" <<EOF
#!/bin/sh
# generated by deploy/dev/mailbed.sh - Dovecot post-login script (POP3).
# Records the login for the POP before SMTP gate; never stops a login.
umask 022
user=\$(printf '%s' "\$USER" | tr 'A-Z/' 'a-z_')
ip=\$(printf '%s' "\$IP" | tr -c '0-9A-Fa-f.:' '_')
f="$GATE_DIR/logins/\${ip}_\${user}"
{ date +%s >"\$f.\$\$" && mv -f "\$f.\$\$" "\$f"; } 2>/dev/null || true
exec "\$@"
EOF
    chmod 0755 "$GATE_DIR/postlogin.sh.new"
    install_if_changed "$GATE_DIR/postlogin.sh.new" "$GATE_DIR/postlogin.sh" DOVECOT_CHANGED
    cat >"$GATE_DIR/policy.sh.new" <<'EOF'
#!/bin/bash
# generated by deploy/dev/mailbed.sh - Postfix policy service (spawn) of the
# POP before SMTP gate. Arguments: the login record folder, the window in
# seconds. Answers OK when the envelope sender logged in over POP3 from
# the client's address within the window, else 554.
dir="$1"
window="$2"
declare -A attr=()
while IFS= read -r line; do
    line="${line%$'\r'}"
    if [[ -n "$line" ]]; then
        attr["${line%%=*}"]="${line#*=}"
        continue
    fi
    client="${attr[client_address]:-}"
    sender="${attr[sender]:-}"
    sender="${sender,,}"
    action="554 5.7.1 POP before SMTP required: log in over POP3 as ${sender:-the sender} from $client first"
    if [[ -n "$sender" && "$sender$client" != *[/]* ]]; then
        f="$dir/${client}_${sender}"
        if [[ -f "$f" ]]; then
            at="$(<"$f")"
            now="$(date +%s)"
            if [[ "$at" =~ ^[0-9]+$ ]] && ((now - at <= window)); then
                action="OK"
            fi
        fi
    fi
    printf 'action=%s\n\n' "$action"
    attr=()
done
EOF
    chmod 0755 "$GATE_DIR/policy.sh.new"
    install_if_changed "$GATE_DIR/policy.sh.new" "$GATE_DIR/policy.sh" POSTFIX_CHANGED
}

write_dovecot_conf() {
    local user="$1" u
    : >"$DC_DIR/users.new"
    for u in $NAMED_USERS; do
        echo "$u:{PLAIN}secret-$u::::::nodelay=y" >>"$DC_DIR/users.new"
    done
    chmod 0644 "$DC_DIR/users.new"
    install_if_changed "$DC_DIR/users.new" "$DC_DIR/users" DOVECOT_CHANGED
    cat >"$DC_DIR/dovecot.conf.new" <<EOF
# generated by deploy/dev/mailbed.sh - do not edit, rewritten on every start
instance_name = pw-mailbed
base_dir = $DC_RUN
state_dir = $DC_STATE
protocols = imap pop3 lmtp
listen = $HOST
shutdown_clients = yes

log_path = $DOVECOT_LOG
info_log_path = $DOVECOT_LOG
# Microseconds, so tests can order and time Dovecot and Postfix events
# (POP before SMTP: the POP3 login, the wait, then the SMTP connect).
log_timestamp = "%b %d %H:%M:%S.%{usecs} "
auth_verbose = yes
auth_verbose_passwords = no

ssl = yes
ssl_cert = <$CERTS/server-chain.pem
ssl_key = <$CERTS/server.key
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no

auth_mechanisms = plain login cram-md5 digest-md5
auth_realms = $DOMAIN
auth_default_realm = $DOMAIN
auth_username_format = %Lu
auth_failure_delay = 0
auth_cache_size = 0

mail_uid = $user
mail_gid = $user
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:$MAIL_ROOT/%d/%n/Maildir
mail_fsync = never

# Named users: passwords secret-<name>. "nodelay" answers a failed login at
# once instead of after Dovecot's 0.5 s failure flush timer.
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n $DC_DIR/users
}
# A named user whose password did not match must not fall through to the
# catch-all below.
passdb {
  driver = passwd-file
  args = username_format=%n $DC_DIR/users
  deny = yes
}
# Catch-all: any other user of the domain logs in with $DEFAULT_PASSWORD.
passdb {
  driver = static
  args = password=$DEFAULT_PASSWORD nodelay=y
}
userdb {
  driver = static
  args = uid=$user gid=$user home=$MAIL_ROOT/%d/%n allow_all_users=yes
}

service imap-login {
  inet_listener imap {
    address = $HOST
    port = $IMAP_PORT
  }
  inet_listener imaps {
    address = $HOST
    port = $IMAPS_PORT
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    address = $HOST
    port = $POP3_PORT
  }
  inet_listener pop3s {
    address = $HOST
    port = $POP3S_PORT
    ssl = yes
  }
}
service lmtp {
  unix_listener lmtp-pw {
    mode = 0666
  }
}
service auth {
  unix_listener auth-pw {
    mode = 0666
  }
}
# No auth penalty: every test client comes from 127.0.0.1.
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
protocol lmtp {
  postmaster_address = postmaster@$DOMAIN
}
protocol pop3 {
  pop3_uidl_format = %08Xu%08Xv
}
# POP before SMTP gate: every POP3 login is recorded by postlogin.sh.
service pop3 {
  executable = pop3 popgate-postlogin
}
service popgate-postlogin {
  executable = script-login $GATE_DIR/postlogin.sh
  user = \$default_internal_user
  unix_listener popgate-postlogin {
  }
}
EOF
    install_if_changed "$DC_DIR/dovecot.conf.new" "$DC_DIR/dovecot.conf" DOVECOT_CHANGED
}

write_postfix_conf() {
    local c="$PF_DIR"
    local domain_re="${DOMAIN//./\\.}"
    # Reserved local parts that the bed refuses at RCPT, for tests of
    # refused recipients (it otherwise accepts every address of the domain).
    cat >"$c/recipient_access.new" <<EOF
# generated by deploy/dev/mailbed.sh - do not edit, rewritten on every start
/^reject-[^@]*@${domain_re}\$/ 550 5.1.1 this test mailbox refuses all mail
/^defer-[^@]*@${domain_re}\$/ 450 4.2.1 this test mailbox is temporarily unavailable
EOF
    install_if_changed "$c/recipient_access.new" "$c/recipient_access" POSTFIX_CHANGED
    cat >"$c/main.cf.new" <<EOF
# generated by deploy/dev/mailbed.sh - do not edit, rewritten on every start
compatibility_level = 3.6
config_directory = $PF_DIR
queue_directory = $PF_QUEUE
data_directory = $PF_DATA
meta_directory = /etc/postfix
syslog_name = postfix-pw-mailbed
maillog_file = $POSTFIX_LOG
maillog_file_prefixes = $LOGS
inet_interfaces = $HOST
inet_protocols = ipv4
myhostname = mail.$DOMAIN
mydomain = $DOMAIN
myorigin = $DOMAIN
mydestination =
mynetworks = 127.0.0.0/8
local_transport = error:5.1.1 local delivery is disabled in the mail test bed
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
smtputf8_enable = yes
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_banner = \$myhostname ESMTP printwatch mail test bed
message_size_limit = 52428800
maximal_queue_lifetime = 1h
bounce_queue_lifetime = 1h
queue_run_delay = 10s
minimal_backoff_time = 10s
maximal_backoff_time = 60s
delay_warning_time = 0

# Every address of the test domain goes to Dovecot over LMTP; Dovecot makes
# the mailbox on first delivery.
virtual_mailbox_domains = $DOMAIN
virtual_mailbox_maps =
virtual_transport = lmtp:unix:$DC_RUN/lmtp-pw
# Other domains are bounced at once (the bed never mails the outside world).
default_transport = error:5.7.1 the mail test bed delivers only to @$DOMAIN
relay_transport = error:5.7.1 the mail test bed delivers only to @$DOMAIN

smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
# reject-*@ and defer-*@ the test domain are refused at RCPT (550 / 450).
smtpd_recipient_restrictions = check_recipient_access regexp:$PF_DIR/recipient_access

smtpd_tls_cert_file = $CERTS/server-chain.pem
smtpd_tls_key_file = $CERTS/server.key
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
smtpd_tls_session_cache_database =
smtpd_tls_received_header = yes

smtpd_sasl_auth_enable = no
smtpd_sasl_type = dovecot
smtpd_sasl_path = $DC_RUN/auth-pw
smtpd_sasl_authenticated_header = yes
smtpd_sasl_security_options = noanonymous
smtpd_sasl_tls_security_options = noanonymous

# POP before SMTP gate (port $SUBMISSION_POP_GATE_PORT), see write_popgate in mailbed.sh.
popgate_client_restrictions = check_policy_service unix:private/popgate, reject
popgate_time_limit = 3600s
EOF
    install_if_changed "$c/main.cf.new" "$c/main.cf" POSTFIX_CHANGED
    local sub="-o smtpd_sasl_auth_enable=yes -o smtpd_tls_auth_only=yes"
    sub="$sub -o smtpd_client_restrictions=permit_sasl_authenticated,reject"
    sub="$sub -o smtpd_relay_restrictions=permit_sasl_authenticated,reject"
    cat >"$c/master.cf.new" <<EOF
# generated by deploy/dev/mailbed.sh - do not edit, rewritten on every start
# plain SMTP for injecting test mail: no AUTH, STARTTLS optional
$HOST:$SMTP_PORT inet n - n - - smtpd
# submission: STARTTLS required, AUTH after STARTTLS (all mechanisms)
$HOST:$SUBMISSION_PORT inet n - n - - smtpd
  -o syslog_name=postfix-pw-mailbed/submission
  -o smtpd_tls_security_level=encrypt
  $sub
# submissions: implicit TLS (all mechanisms)
$HOST:$SMTPS_PORT inet n - n - - smtpd
  -o syslog_name=postfix-pw-mailbed/smtps
  -o smtpd_tls_wrappermode=yes
  $sub
# submission offering only PLAIN and LOGIN
$HOST:$SUBMISSION_PLAIN_ONLY_PORT inet n - n - - smtpd
  -o syslog_name=postfix-pw-mailbed/submission-plain-only
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_mechanism_filter=plain,login
  $sub
# submission with POP before SMTP: STARTTLS required, no AUTH; relays only
# for a sender that logged in over POP3 recently (policy service popgate)
$HOST:$SUBMISSION_POP_GATE_PORT inet n - n - - smtpd
  -o syslog_name=postfix-pw-mailbed/submission-pop-gate
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=no
  -o smtpd_client_restrictions=\$popgate_client_restrictions
popgate   unix  -       n       n       -       0       spawn
  user=nobody argv=/bin/bash $GATE_DIR/policy.sh $GATE_DIR/logins $POP_GATE_SECONDS
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    install_if_changed "$c/master.cf.new" "$c/master.cf" POSTFIX_CHANGED
}

start_dovecot() {
    dovecot_running && return 0
    rm -f "$DOVECOT_PID"
    dovecot -c "$DC_DIR/dovecot.conf" </dev/null 9>&- >>"$LOGS/dovecot-start.log" 2>&1 \
        || { tail -n 20 "$LOGS/dovecot-start.log" "$DOVECOT_LOG" >&2 || true; die "dovecot failed to start"; }
}

start_postfix() {
    postfix_running && return 0
    postfix -c "$PF_DIR" start </dev/null 9>&- >>"$LOGS/postfix-start.log" 2>&1 \
        || { tail -n 20 "$LOGS/postfix-start.log" "$POSTFIX_LOG" >&2 || true; die "postfix failed to start"; }
}

wait_ready() {
    local deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if postfix_running && dovecot_running && all_ports_open && [[ -S "$DC_RUN/auth-pw" && -S "$DC_RUN/lmtp-pw" ]]; then
            return 0
        fi
        sleep 0.1
    done
    log "servers did not become ready within ${START_TIMEOUT}s"
    local p
    for p in $(all_ports); do port_open "$p" || log "port $HOST:$p does not accept connections"; done
    log "--- $POSTFIX_LOG (tail)"
    tail -n 30 "$POSTFIX_LOG" >&2 2>/dev/null || true
    tail -n 10 "$LOGS/postfix-start.log" >&2 2>/dev/null || true
    log "--- $DOVECOT_LOG (tail)"
    tail -n 30 "$DOVECOT_LOG" >&2 2>/dev/null || true
    tail -n 10 "$LOGS/dovecot-start.log" >&2 2>/dev/null || true
    return 1
}

cmd_start() {
    mkdir -p "$DIR"
    chmod 0755 "$DIR"
    exec 9>"$DIR/.lock"
    flock -w 300 9 || die "could not lock $DIR/.lock"

    if postfix_running && dovecot_running; then
        # A bed started by an older version of this script picks up the
        # current configuration: rewrite it and reload only what changed.
        write_popgate "$(mail_user)"
        write_dovecot_conf "$(mail_user)"
        write_postfix_conf
        if ((DOVECOT_CHANGED)); then
            log "dovecot configuration changed, reloading"
            kill -HUP "$(head -n1 "$DOVECOT_PID" | tr -dc '0-9')" 2>/dev/null || true
        fi
        if ((POSTFIX_CHANGED)); then
            log "postfix configuration changed, reloading"
            postfix -c "$PF_DIR" reload </dev/null >>"$LOGS/postfix-start.log" 2>&1 || true
        fi
        if ((DOVECOT_CHANGED || POSTFIX_CHANGED)); then
            # Let the reloaded services settle before anyone connects.
            sleep 1
        fi
        print_env >"$DIR/env.new" && mv -f "$DIR/env.new" "$DIR/env"
        wait_ready || die "mail test bed is running but not ready"
        return 0
    fi

    mkdir -p "$LOGS" "$PF_DIR" "$PF_QUEUE" "$PF_DATA" "$DC_DIR" "$DC_RUN" "$DC_STATE" "$MAIL_ROOT"
    ensure_packages
    local user
    user="$(mail_user)"
    chown "$user:$user" "$MAIL_ROOT"
    chmod 0750 "$MAIL_ROOT"
    chmod 0755 "$DC_RUN" "$LOGS"
    chown postfix "$PF_DATA"
    make_certs
    write_popgate "$user"
    write_dovecot_conf "$user"
    write_postfix_conf
    touch "$POSTFIX_LOG" "$DOVECOT_LOG"
    chmod 0644 "$POSTFIX_LOG" "$DOVECOT_LOG"
    start_dovecot
    start_postfix
    wait_ready || die "mail test bed failed to start"
    print_env >"$DIR/env.new" && mv -f "$DIR/env.new" "$DIR/env"
    log "running: SMTP $HOST:$SMTP_PORT, submission $SUBMISSION_PORT/$SMTPS_PORT/$SUBMISSION_PLAIN_ONLY_PORT/$SUBMISSION_POP_GATE_PORT," \
        "IMAP $IMAP_PORT/$IMAPS_PORT, POP3 $POP3_PORT/$POP3S_PORT, state in $DIR"
}

wait_gone() { # pid
    local i
    for i in $(seq 1 100); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

cmd_stop() {
    [[ -d "$DIR" ]] || return 0
    exec 9>"$DIR/.lock"
    flock -w 300 9 || die "could not lock $DIR/.lock"
    local pid
    if postfix_running; then
        pid="$(head -n1 "$POSTFIX_PID" | tr -dc '0-9')"
        postfix -c "$PF_DIR" stop </dev/null >>"$LOGS/postfix-start.log" 2>&1 || kill -TERM "$pid" 2>/dev/null || true
        wait_gone "$pid" || { kill -KILL "$pid" 2>/dev/null || true; }
    fi
    if dovecot_running; then
        pid="$(head -n1 "$DOVECOT_PID" | tr -dc '0-9')"
        kill -TERM "$pid" 2>/dev/null || true
        wait_gone "$pid" || { kill -KILL "$pid" 2>/dev/null || true; }
    fi
    rm -f "$DIR/env"
}

cmd_status() {
    local ok=0
    if postfix_running; then echo "postfix: running (pid $(head -n1 "$POSTFIX_PID" | tr -dc '0-9'))"; else echo "postfix: stopped"; ok=1; fi
    if dovecot_running; then echo "dovecot: running (pid $(head -n1 "$DOVECOT_PID" | tr -dc '0-9'))"; else echo "dovecot: stopped"; ok=1; fi
    return "$ok"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) print_env ;;
    *)
        echo "usage: $0 start|stop|status|env" >&2
        exit 2
        ;;
esac
