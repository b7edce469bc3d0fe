#!/usr/bin/env bash
# Runs every test on a fresh machine or a used one: installs what is missing, checks formatting
# and lints, runs the core's unit and property tests, builds and installs the extension, starts a
# throwaway PostgreSQL 15 and runs the SQL stories in pg_test/ (pg_regress) and the multi-session
# specs in pg_test/isolation/ (pg_isolation_regress), the nightly jobs under a real pg_cron
# (pg_test/cron/), the upgrades from every released version (pg_test/upgrade/), the crash tests
# in pg_test/crash/, then the Debian packages (pg_test/packages/).
# Ends with one "N passed, M failed" line.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

passed=0
failed=0
OUT="$CDA_DIR/test-output"

setup_toolchain
cd "$ROOT"

say "cargo fmt --check and clippy -D warnings"
cargo fmt --all --check
cargo clippy --quiet -p cda_analytics_core --all-targets -- -D warnings
cargo clippy --quiet -p cda_analytics -- -D warnings
cargo clippy --quiet -p cda-server --all-targets -- -D warnings

# cargo_suite NAME ARGS...: runs `cargo test ARGS` and counts its tests.
cargo_suite() {
    local name=$1; shift
    say "$name"
    local log ok bad
    log=$(mktemp)
    if cargo test "$@" 2>&1 | tee "$log"; then :; fi
    ok=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
    bad=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
    if ! grep -q 'test result: ok' "$log" || grep -q 'test result: FAILED' "$log"; then
        bad=$((bad > 0 ? bad : 1))
    fi
    passed=$((passed + ok)); failed=$((failed + bad))
    rm -f "$log"
}

cargo_suite "core unit and property tests" -p cda_analytics_core

install_extension
start_cluster

# run_suite NAME RUNNER ARGS...: runs a pg_regress-style suite and counts its tests.
run_suite() {
    local name=$1 runner=$2; shift 2
    local log="$OUT/$name.log"
    say "$name"
    if as_pg "$runner" --bindir="$PG_BIN" --host="$CDA_DIR" --port="$CDA_PORT" --user=postgres \
        --outputdir="$OUT/$name" "$@" >"$log" 2>&1; then :; fi
    cat "$log"
    local ok bad
    ok=$(grep -cE '^test [[:alnum:]_]+ +\.\.\. ok' "$log" || true)
    bad=$(grep -cE '\.\.\. FAILED|\.\.\. failed' "$log" || true)
    if ! grep -q 'tests passed' "$log"; then
        bad=$((bad > 0 ? bad : 1))
        [ -f "$OUT/$name/regression.diffs" ] && cat "$OUT/$name/regression.diffs"
    fi
    passed=$((passed + ok)); failed=$((failed + bad))
}

# The server's user must read the suites and the demo data, wherever the checkout is (a home
# directory may be closed to it): they are copied next to the cluster.
rm -rf "$OUT/src" && mkdir -p "$OUT/src" "$OUT/sql" "$OUT/isolation"
cp -r "$ROOT/pg_test" "$ROOT/demo" "$OUT/src/"
if is_root; then chown -R postgres: "$OUT"; fi
sql_tests=$(cd pg_test/sql && ls *.sql | sed 's/\.sql$//')
# shellcheck disable=SC2086
run_suite sql "$PG_BIN/../lib/pgxs/src/test/regress/pg_regress" \
    --inputdir="$OUT/src/pg_test" --dbname=cda_regress $sql_tests
iso_tests=$(cd pg_test/isolation/specs && ls *.spec | sed 's/\.spec$//')
# shellcheck disable=SC2086
run_suite isolation "$PG_BIN/../lib/pgxs/src/test/isolation/pg_isolation_regress" \
    --inputdir="$OUT/src/pg_test/isolation" --dbname=cda_isolation --load-extension=cda_analytics $iso_tests

# Reference implementations outside the database: the recommenders in numpy on Online Retail,
# against evaluate_recommenders() (pg_test/reference/*.py; each prints "NAME: N failures").
say "recommenders against numpy on Online Retail"
recreate_db cda_reference
psql_ -d cda_reference -q -c "SET client_min_messages = warning" -c "CREATE EXTENSION cda_analytics"
psql_ -d cda_reference -q -v retail_file="$OUT/src/demo/online_retail/online_retail.csv.gz" \
    -f "$ROOT/demo/load_online_retail.sql" >/dev/null
psql_ -d cda_reference -q -c "SET client_min_messages = warning" \
    -c "SELECT count(*) FROM configure_source(successful_statuses => ARRAY['completed'], time_zone => 'Europe/London')" \
    -c "SELECT count(*) FROM configure_items(non_product_column => 'is_non_product')" >/dev/null
if PGHOST=$CDA_DIR PGPORT=$CDA_PORT PGUSER=postgres PGDATABASE=cda_reference \
    /usr/bin/python3 pg_test/reference/recommenders.py; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
fi

# The HTTP server's tests: its unit tests, and the API against this cluster (tests/api.rs makes
# its own database, shop and roles).
export CDA_TEST_PG="host=$CDA_DIR port=$CDA_PORT user=postgres"
cargo_suite "cda-server tests" -p cda-server
# The dashboard in headless Chromium, on the database the API test leaves.
say "dashboard in a browser"
browser_log=$(mktemp)
if bash server/tests/browser.sh 2>&1 | tee "$browser_log"; then :; fi
b_ok=$(sed -n 's/^browser: \([0-9]*\) passed, \([0-9]*\) failed.*/\1/p' "$browser_log")
b_bad=$(sed -n 's/^browser: \([0-9]*\) passed, \([0-9]*\) failed.*/\2/p' "$browser_log")
[ -n "$b_ok" ] || b_bad=1
passed=$((passed + ${b_ok:-0})); failed=$((failed + ${b_bad:-0}))
rm -f "$browser_log"

# The nightly jobs under a real pg_cron (pg_test/cron/*.sh), each on a cluster of its own with
# pg_cron preloaded; passes when it exits 0.
for t in pg_test/cron/*.sh; do
    say "pg_cron test $(basename "$t" .sh)"
    if bash "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done

# ALTER EXTENSION UPDATE from every released version (pg_test/upgrade/upgrade.sh), on a cluster
# of its own; builds each released version's library once (target/released/).
say "upgrades"
if bash pg_test/upgrade/upgrade.sh; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

# Crash tests (pg_test/crash/*.sh) last: each forces a crash that resets every session of the
# cluster, and passes when it exits 0.
for t in pg_test/crash/*.sh; do
    say "crash test $(basename "$t" .sh)"
    if bash "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done

# The packages (pg_test/packages/install.sh), very last: installing them replaces the extension
# installed above with the packaged (release) one.
say "packages"
if bash pg_test/packages/install.sh; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

stop_cluster
echo
echo "cda_analytics tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
