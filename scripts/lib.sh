# Shared set-up for scripts/demo.sh, scripts/test.sh and bench/: installs what is missing, builds
# and installs the extension, and runs a throwaway PostgreSQL 15 on a private socket and port.
# Works as root (the cluster then runs as the postgres user) and as a normal user with sudo
# (needed only to install packages and the extension files into PostgreSQL's directories).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_BIN=/usr/lib/postgresql/15/bin
PG_CONFIG=$PG_BIN/pg_config
PGRX_VERSION=0.18.1
CDA_PORT=${CDA_PORT:-55415}
CDA_DIR=${CDA_DIR:-${TMPDIR:-/tmp}/cda_analytics-$(id -u)-$CDA_PORT}
PACKAGES=(postgresql-15 postgresql-server-dev-15 postgresql-15-cron libclang-dev clang pkg-config curl chromium python3-numpy)

# A non-login shell (CI) may lack rustup's PATH entry.
if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

say() { printf '\n==> %s\n' "$*"; }

is_root() { [ "$(id -u)" = 0 ]; }

as_root() {
    if is_root; then "$@"; else sudo "$@"; fi
}

# As root the server runs as postgres (initdb refuses root); otherwise as the current user.
as_pg() {
    if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A Rust backtrace setting in the caller's environment would reach the server and put backtraces
# into error details.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE

ensure_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -q
    # A passing dpkg lock or mirror error is retried once.
    as_root apt-get install -y -q "${missing[@]}" || { sleep 5; as_root apt-get install -y -q "${missing[@]}"; }
}

ensure_cargo_pgrx() {
    if ! command -v cargo >/dev/null; then
        echo "cargo is not installed: install Rust 1.95 (rustup) first" >&2
        exit 1
    fi
    if ! cargo pgrx --version 2>/dev/null | grep -q " $PGRX_VERSION\$"; then
        say "installing cargo-pgrx $PGRX_VERSION (about 8 minutes, once)"
        cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
    fi
    local pgrx_home=${PGRX_HOME:-$HOME/.pgrx}
    if ! grep -qs "^pg15 = \"$PG_CONFIG\"" "$pgrx_home/config.toml"; then
        cargo pgrx init --pg15 "$PG_CONFIG" >/dev/null
    fi
}

setup_toolchain() {
    ensure_packages
    ensure_cargo_pgrx
}

# install_extension [--release]: builds the extension and installs it into PostgreSQL 15.
install_extension() {
    say "building and installing cda_analytics ${1:-(debug)}"
    local sudo_flag=()
    is_root || sudo_flag=(--sudo)
    (cd "$ROOT" && cargo pgrx install --pg-config "$PG_CONFIG" "${sudo_flag[@]}" "$@" >/dev/null)
}

pg_ctl_() { as_pg "$PG_BIN/pg_ctl" -D "$CDA_DIR/data" "$@"; }

# Settings of the demo and test cluster, which favour speed over durability; bench/ sets its own
# through CDA_CLUSTER_SETTINGS.
TEST_CLUSTER_SETTINGS="shared_buffers = 512MB
work_mem = 64MB
maintenance_work_mem = 512MB
max_wal_size = 4GB
fsync = off
synchronous_commit = off
full_page_writes = off"

# Starts the throwaway cluster, creating it the first time; reuses it when it is running.
start_cluster() {
    if [ -f "$CDA_DIR/data/PG_VERSION" ] && pg_ctl_ status >/dev/null 2>&1; then
        # The extension's .so may have been reinstalled: a restart loads the new one.
        pg_ctl_ -m fast -w restart -l "$CDA_DIR/log" >/dev/null
        return 0
    fi
    mkdir -p "$CDA_DIR"
    if is_root; then chown postgres: "$CDA_DIR"; fi
    if [ ! -f "$CDA_DIR/data/PG_VERSION" ]; then
        say "creating a throwaway PostgreSQL 15 cluster in $CDA_DIR (port $CDA_PORT)"
        as_pg "$PG_BIN/initdb" -D "$CDA_DIR/data" -U postgres -A trust -E UTF8 --no-locale >/dev/null
        cat >>"$CDA_DIR/data/postgresql.conf" <<CONF
listen_addresses = ''
port = $CDA_PORT
unix_socket_directories = '$CDA_DIR'
${CDA_CLUSTER_SETTINGS:-$TEST_CLUSTER_SETTINGS}
CONF
    fi
    pg_ctl_ -w start -l "$CDA_DIR/log" >/dev/null
}

stop_cluster() {
    if [ -f "$CDA_DIR/data/PG_VERSION" ]; then pg_ctl_ -m fast -w stop >/dev/null 2>&1 || true; fi
}

# wait_for_http URL: waits until URL answers with a 2xx (a server coming up), at most 10 s;
# fails after that.
wait_for_http() {
    for _ in $(seq 1 50); do
        curl -sf "$1" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}

psql_() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$CDA_DIR" -p "$CDA_PORT" -U postgres "$@"; }

recreate_db() {
    psql_ -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
}
