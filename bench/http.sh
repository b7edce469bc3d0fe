#!/usr/bin/env bash
# The HTTP benchmark: bash bench/http.sh [--scale USERS:ORDERS] [--clients "1 16 64"]
#                                        [--seconds N] [--no-write]
# On the benchmark cluster (bench/settings.sh) and the shop of bench/run.sh at the given scale
# (1M users / 10M orders by default; bench/run.sh generates it), refreshes LTV and RFM, then
# loads the main read endpoints of cda-server (release build) with wrk at each number of
# concurrent clients: requests per second and the p50 and p99 latency. In the same run, as the
# references:
#   - pgbench runs the very SQL the server sends for each endpoint (the same transaction, role
#     switch and JSON aggregation, extended protocol) straight against PostgreSQL: the database's
#     own ceiling, so server / pgbench is what the HTTP layer costs;
#   - PostgREST serving the same tables and functions, when a `postgrest` binary is on PATH or in
#     $POSTGREST_BIN. (The npm package `postgrest` downloads its binary from GitHub when installed,
#     which this machine cannot reach; on one that can, `npm install postgrest` puts it in
#     node_modules/.bin.)
# Then the dashboard's pages, one client: p50 and p99 of each page with warm caches.
# Writes the tables into BENCHMARKS.md between the http markers. Not part of the test command.
source "$(dirname "${BASH_SOURCE[0]}")/settings.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

SCALE=1000000:10000000
CLIENTS="1 16 64"
SECONDS_EACH=10
WRITE=1
while [ $# -gt 0 ]; do
    case $1 in
        --scale) SCALE=$2; shift 2 ;;
        --clients) CLIENTS=$2; shift 2 ;;
        --seconds) SECONDS_EACH=$2; shift 2 ;;
        --no-write) WRITE=0; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
USERS=${SCALE%%:*}
DB=cda_bench_${USERS}_${SCALE##*:}
SERVER_PORT=55490
POSTGREST_PORT=55491
POOL=16
OUT=$CDA_DIR/results/http
mkdir -p "$OUT"
chmod -R 777 "$CDA_DIR/results" 2>/dev/null || true

PACKAGES+=(wrk)
ensure_packages
setup_toolchain
install_extension --release
say "building cda-server (release)"
cargo build --release -p cda-server --manifest-path "$ROOT/Cargo.toml" >/dev/null || exit 1
start_cluster
q() { psql_ -d "$DB" -At -c "$1"; }
[ "$(psql_ -d postgres -At -c "SELECT count(*) FROM pg_database WHERE datname = '$DB'")" = 1 ] ||
    { echo "no database $DB: run bash bench/run.sh --scales $SCALE first" >&2; exit 1; }

say "refreshing LTV and RFM on $DB"
q "SELECT calculate_all_ltv('2025-06-30')" >/dev/null
q "SELECT calculate_all_rfm('2025-06-30')" >/dev/null
# The server logs in as cda_bench_api and becomes cda_bench_analyst per request; PostgREST does
# the same with the same roles.
psql_ -d "$DB" -c "
DO \$\$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cda_bench_analyst') THEN CREATE ROLE cda_bench_analyst; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cda_bench_api') THEN CREATE ROLE cda_bench_api LOGIN NOINHERIT; END IF;
END \$\$;
GRANT cda_bench_analyst TO cda_bench_api;
SELECT count(*) FROM grant_analytics_access('cda_bench_analyst', 'analyst');" >/dev/null
SCHEMA=$(q "SELECT extnamespace::regnamespace FROM pg_extension WHERE extname = 'cda_analytics'")
TOKEN=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
CONN="host=$CDA_DIR port=$CDA_PORT user=cda_bench_api dbname=$DB"

CDA_DATABASE_URL="$CONN" CDA_LISTEN="127.0.0.1:$SERVER_PORT" CDA_API_KEYS="$TOKEN=cda_bench_analyst" \
CDA_POOL_SIZE=$POOL RUST_LOG=warn "$ROOT/target/release/cda-server" >"$OUT/server.log" 2>&1 &
server=$!
POSTGREST=${POSTGREST_BIN:-$(command -v postgrest || true)}
postgrest=""
if [ -n "$POSTGREST" ] && [ -x "$POSTGREST" ]; then
    PGRST_DB_URI="postgresql://cda_bench_api@/$DB?host=$CDA_DIR&port=$CDA_PORT" PGRST_DB_SCHEMAS="$SCHEMA" \
    PGRST_DB_ANON_ROLE=cda_bench_analyst PGRST_SERVER_PORT=$POSTGREST_PORT PGRST_SERVER_HOST=127.0.0.1 \
    PGRST_DB_POOL=$POOL PGRST_LOG_LEVEL=crit "$POSTGREST" >"$OUT/postgrest.log" 2>&1 &
    postgrest=$!
fi
trap 'kill $server $postgrest 2>/dev/null' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$SERVER_PORT/ready" >/dev/null && break; sleep 0.2; done

# The endpoints: name, the server's path, PostgREST's path, and the SQL the server sends (the
# user id of the one-user endpoint is drawn at random per request: :uid).
ENDPOINTS=(summary users user segments)
declare -A SERVER_PATH=(
    [summary]="/api/v1/ltv/summary"
    [users]="/api/v1/ltv/users?limit=50&order=lifetime_revenue.desc"
    [user]="/api/v1/ltv/users/:uid"
    [segments]="/api/v1/rfm/segments")
declare -A POSTGREST_PATH=(
    [summary]="/rpc/get_ltv_summary"
    [users]="/ml_user_ltv?limit=50&order=lifetime_revenue.desc,user_id"
    [user]="/ml_user_ltv?user_id=eq.:uid"
    [segments]="/rpc/rfm_segment_summary")
declare -A SQL=(
    [summary]="SELECT coalesce(pg_catalog.json_agg(cda_row), '[]'::json)::text FROM (SELECT * FROM $SCHEMA.get_ltv_summary()) cda_row"
    [users]="SELECT coalesce(pg_catalog.json_agg(cda_row), '[]'::json)::text, count(*) FROM (SELECT * FROM $SCHEMA.ml_user_ltv WHERE (NULL::text IS NULL OR segment = NULL) AND (NULL::text IS NULL OR lifetime_revenue >= NULL::numeric) AND (NULL::text IS NULL OR lifetime_revenue <= NULL::numeric) ORDER BY lifetime_revenue DESC, user_id LIMIT 50 OFFSET 0) cda_row"
    [user]="SELECT pg_catalog.row_to_json(cda_row)::text FROM (SELECT * FROM $SCHEMA.ml_user_ltv WHERE user_id = :uid) cda_row LIMIT 2"
    [segments]="SELECT coalesce(pg_catalog.json_agg(cda_row), '[]'::json)::text FROM (SELECT * FROM $SCHEMA.rfm_segment_summary()) cda_row")

# lua PATH: a wrk script that requests PATH, with :uid replaced by a random user id per request.
lua() {
    local f
    f=$(mktemp --suffix=.lua)
    cat >"$f" <<EOF
math.randomseed(42)
request = function()
    local path = string.gsub("$1", ":uid", tostring(math.random(1, $USERS)))
    return wrk.format("GET", path)
end
EOF
    echo "$f"
}

# to_ms VALUE: wrk's "1.23ms" / "850.00us" / "1.02s" in milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'; }

# load URL_BASE PATH CLIENTS [HEADER]: "req/s p50 p99" of wrk on PATH, failing on any non-2xx.
load() {
    local base=$1 path=$2 c=$3 header=${4:-} script out threads=$(( $3 < 2 ? 1 : 2 ))
    script=$(lua "$path")
    out=$(wrk -t"$threads" -c"$c" -d"${SECONDS_EACH}s" --timeout 60s --latency -s "$script" ${header:+-H "$header"} "$base" 2>&1)
    rm -f "$script"
    if echo "$out" | grep -q "Non-2xx"; then
        echo "wrk on $base$path: $(echo "$out" | grep Non-2xx)" >&2
        echo "– – –"; return
    fi
    echo "$(echo "$out" | awk '/^Requests\/sec/ {printf "%.0f", $2}') \
$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')") $(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")"
}

# floor NAME CLIENTS: "tps p50 p99" of pgbench running the server's SQL for NAME.
floor() {
    local name=$1 c=$2 script dir tps
    script=$(mktemp --suffix=.sql)
    dir=$(mktemp -d)
    chmod 755 "$dir"
    {
        echo "\\set uid random(1, $USERS)"
        echo "BEGIN READ ONLY;"
        echo "SELECT pg_catalog.set_config('role', 'cda_bench_analyst', true), pg_catalog.set_config('statement_timeout', '30000', true);"
        echo "${SQL[$name]};"
        echo "COMMIT;"
    } >"$script"
    chmod 644 "$script"
    tps=$(cd "$dir" && "$PG_BIN/pgbench" -n -M extended -h "$CDA_DIR" -p "$CDA_PORT" -U cda_bench_api \
        -c "$c" -j "$(( c < 2 ? 1 : 2 ))" -T "$SECONDS_EACH" -l -f "$script" "$DB" 2>/dev/null |
        awk '/^tps/ {printf "%.0f", $3}')
    cat "$dir"/pgbench_log.* | awk '{print $3 / 1000}' | sort -n >"$dir/all"
    local n p50 p99
    n=$(wc -l <"$dir/all")
    p50=$(awk -v k="$(( (n + 1) / 2 ))" 'NR == k {printf "%.2f", $1}' "$dir/all")
    p99=$(awk -v k="$(( (n * 99 + 99) / 100 ))" 'NR == k {printf "%.2f", $1}' "$dir/all")
    rm -rf "$dir" "$script"
    echo "$tps $p50 $p99"
}

# Every endpoint answers before it is measured.
for name in "${ENDPOINTS[@]}"; do
    path=${SERVER_PATH[$name]//:uid/1}
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$SERVER_PORT$path")
    [ "$code" = 200 ] || { echo "cda-server $path: $code" >&2; exit 1; }
    if [ -n "$postgrest" ]; then
        path=${POSTGREST_PATH[$name]//:uid/1}
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$POSTGREST_PORT$path")
        [ "$code" = 200 ] || { echo "PostgREST $path: $code" >&2; exit 1; }
    fi
done

say "loading the endpoints: ${SECONDS_EACH}s each at $CLIENTS clients"
rows=""
for name in "${ENDPOINTS[@]}"; do
    for c in $CLIENTS; do
        read -r s_rps s_p50 s_p99 < <(load "http://127.0.0.1:$SERVER_PORT" "${SERVER_PATH[$name]}" "$c" "Authorization: Bearer $TOKEN")
        read -r f_rps f_p50 f_p99 < <(floor "$name" "$c")
        if [ -n "$postgrest" ]; then
            read -r p_rps p_p50 p_p99 < <(load "http://127.0.0.1:$POSTGREST_PORT" "${POSTGREST_PATH[$name]}" "$c")
        else
            p_rps="n/a" p_p50="n/a" p_p99="n/a"
        fi
        ratio=$(awk -v a="$s_rps" -v b="$f_rps" 'BEGIN { if (b > 0 && a + 0 == a) printf "%.2f", a / b; else print "–" }')
        line="| \`${SERVER_PATH[$name]}\` | $c | $s_rps | $s_p50 | $s_p99 | $f_rps | $f_p50 | $f_p99 | $ratio | $p_rps | $p_p50 | $p_p99 |"
        echo "$line"
        rows+="$line"$'\n'
    done
done

say "dashboard pages, one client"
pages=""
COOKIE=$(curl -s -o /dev/null -c - -d "token=$TOKEN" "http://127.0.0.1:$SERVER_PORT/login" | awk '$6 == "cda_session" {print $7}')
# The pages with results at this scale (the bench shop has no fitted models). The first load of
# a page computes it; the next ones are the kept page until a refresh (server/src/dashboard/cache.rs).
for page in / /ltv "/ltv?metric=revenue_12m&bins=20" /rfm "/rfm?segment=Champions" /runs "/customers/1"; do
    first=$(curl -s -o /dev/null -w '%{time_total}' -H "Cookie: cda_session=$COOKIE" "http://127.0.0.1:$SERVER_PORT$page" |
        awk '{printf "%.1f", $1 * 1000}')
    read -r rps p50 p99 < <(load "http://127.0.0.1:$SERVER_PORT" "$page" 1 "Cookie: cda_session=$COOKIE")
    line="| \`$page\` | $first | $rps | $p50 | $p99 |"
    echo "$line"
    pages+="$line"$'\n'
done

cpu=$(nproc)
postgrest_note="PostgREST: not run (no binary: the npm package \`postgrest\` fetches it from GitHub at install time, which this machine cannot reach)."
[ -n "$postgrest" ] && postgrest_note="PostgREST: $("$POSTGREST" --version 2>/dev/null | head -1), pool $POOL, serving the same tables and functions as the same analyst role."
text="Run at $(git -C "$ROOT" rev-parse --short HEAD) on $(date -u +%Y-%m-%d), $DB ($USERS users), $cpu cores shared by wrk, the server and PostgreSQL; ${SECONDS_EACH} s per cell; cda-server release build, pool $POOL. $postgrest_note

| endpoint | clients | cda-server req/s | p50 ms | p99 ms | pgbench (same SQL) tx/s | p50 ms | p99 ms | server / pgbench | PostgREST req/s | p50 ms | p99 ms |
|---|---|---|---|---|---|---|---|---|---|---|---|
${rows}
Dashboard pages as a logged-in analyst, one client: the first load (computed), then the page
as kept until the next refresh:

| page | first load ms | req/s | p50 ms | p99 ms |
|---|---|---|---|---|
${pages}"
[ "$WRITE" = 1 ] && write_section http "$text"
echo "$text"
