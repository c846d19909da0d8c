# Shared helpers for the dev scripts (sourced, not run).
# Installs only what is missing, from Debian's packages; never touches
# services it did not start.

pw_apt_install() {
  # Installs the named Debian packages that are not installed yet.
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    apt-get update >/dev/null
    apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

pw_require_rust() {
  # The toolchain: cargo from rustup if present, else Debian's.
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    pw_apt_install cargo rustc
  fi
  local v
  v=$(rustc --version | awk '{print $2}')
  case "$v" in
    1.[0-8][0-9].*|1.9[0-4].*) echo "warning: rustc $v is older than the 1.95 printwatch needs" >&2 ;;
  esac
  pw_apt_install gcc libc6-dev pkg-config
}

pw_pid_alive() {
  # pw_pid_alive PIDFILE: the pid in the file names a running process.
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

pw_wait_port() {
  # pw_wait_port PORT SECONDS: waits until 127.0.0.1:PORT accepts.
  local port=$1 deadline=$((SECONDS + $2))
  while ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    [ $SECONDS -ge "$deadline" ] && return 1
    sleep 0.1
  done
}
