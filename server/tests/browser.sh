#!/usr/bin/env bash
# Browser tests of the dashboard with headless Chromium: every page loads with no console message
# (no error, no failed request, no CSP refusal), its charts are drawn, and every link on it
# answers 200. Screenshots of
# each page are kept in $CDA_DIR/test-output/screenshots. Needs the test cluster with the
# database that server/tests/api.rs leaves (cda_server_test, its roles and CDNOW results) and the
# debug cda-server binary. Prints "browser: N passed, M failed" and exits non-zero on a failure.
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
set +e
BIN="$ROOT/target/debug/cda-server"
PORT=55497
OUT="$CDA_DIR/test-output/screenshots"
mkdir -p "$OUT"
CHROMIUM=$(command -v chromium || command -v chromium-browser)
[ -x "$BIN" ] && [ -n "$CHROMIUM" ] || { echo "browser: 0 passed, 1 failed (no cda-server binary or no chromium)"; exit 1; }

# Two servers on the same database: pages as an analyst (who may not read the shop's orders, so
# the live sections say so) and as an operator (who sees them).
OPERATOR_PORT=55496
serve() {
    CDA_DATABASE_URL="host=$CDA_DIR port=$CDA_PORT user=cda_api dbname=cda_server_test" \
    CDA_LISTEN="127.0.0.1:$1" CDA_ANONYMOUS_ROLE=$2 \
        "$BIN" >"$CDA_DIR/test-output/browser-server-$2.log" 2>&1 &
}
serve $PORT cda_api_analyst; analyst=$!
serve $OPERATOR_PORT cda_api_operator; operator=$!
trap 'kill $analyst $operator 2>/dev/null' EXIT
for port in $PORT $OPERATOR_PORT; do
    wait_for_http "http://127.0.0.1:$port/ready" || true
done

# chrome: runs headless Chromium on a URL with a throwaway profile; extra flags follow.
chrome() {
    local profile
    profile=$(mktemp -d)
    "$CHROMIUM" --headless=new --no-sandbox --disable-gpu --no-first-run --user-data-dir="$profile" \
        --enable-logging=stderr --v=0 --virtual-time-budget=10000 "$@" 2>"$profile.err"
    cat "$profile.err" >&2
    rm -rf "$profile" "$profile.err"
}

passed=0 failed=0
# check NAME PATH [PORT [NOTICES]]: the page at PATH on the server at PORT (the analyst's by
# default) loads cleanly, shows no error, and shows exactly NOTICES notices (0 by default).
check() {
    local name=$1 path=$2 port=${3:-$PORT} notices=${4:-0}
    local url="http://127.0.0.1:$port$2"
    local dom console problems="" canvases drawn shown
    dom=$(chrome --dump-dom "$url" 2>"$OUT/$name.console.txt")
    # Every page here has what it shows: an error box (a failed query, a bad default) fails it.
    echo "$dom" | grep -q 'class="error"' && problems+=" error: $(echo "$dom" | grep -o 'class="error">[^<]*' | head -2)"
    shown=$(echo "$dom" | grep -o 'class="notice"' | wc -l)
    [ "$shown" = "$notices" ] || problems+=" notices: $shown shown, $notices expected"
    # The pages' own script logs nothing: any console message (an error, an uncaught exception,
    # a resource that failed to load, a CSP refusal) is a failure.
    console=$(grep -E ':CONSOLE[:(]|Uncaught' "$OUT/$name.console.txt" || true)
    [ -z "$console" ] || problems+=" console: $(echo "$console" | head -3)"
    canvases=$(echo "$dom" | grep -o '<canvas' | wc -l)
    drawn=$(echo "$dom" | grep -o 'data-charts="[0-9]*"' | grep -o '[0-9]*')
    [ "${drawn:-none}" = "$canvases" ] || problems+=" charts: $canvases canvases, ${drawn:-none} drawn"
    # Every link on the page answers 200 (log out aside).
    for href in $(echo "$dom" | grep -o 'href="/[^"#]*' | sed 's/^href="//' | sed 's/&amp;/\&/g' | sort -u); do
        [ "$href" = /logout ] && continue
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$href")
        [ "$code" = 200 ] || problems+=" link $href: $code"
    done
    chrome --screenshot="$OUT/$name.png" --window-size=1280,2400 --hide-scrollbars "$url" >/dev/null 2>&1
    [ -s "$OUT/$name.png" ] || problems+=" no screenshot"
    if [ -z "$problems" ]; then
        echo "ok: $name ($path): $canvases charts drawn"
        passed=$((passed + 1))
    else
        echo "FAILED: $name ($path):$problems"
        failed=$((failed + 1))
    fi
}

check overview /
check ltv /ltv
check ltv-filtered "/ltv?metric=lifetime_revenue&bins=20&segment=VIP&order=orders_lifetime.desc&offset=50"
# The analyst is told, section by section, what it may not read (sizes and migration; holdout).
check rfm /rfm $PORT 2
check rfm-cell "/rfm?r_score=5&f_score=4" $PORT 2
check clv /clv $PORT 1
check churn /churn
check segments /segments $PORT 2
check operator-rfm /rfm $OPERATOR_PORT
check operator-rfm-quarterly "/rfm?from=1997-01-01&to=1998-06-30&step=quarter" $OPERATOR_PORT
check operator-segments /segments $OPERATOR_PORT
check operator-clv "/clv?model=bg&holdout_end=1998-06-30" $OPERATOR_PORT
check cohorts /cohorts $PORT 1
check operator-cohorts /cohorts $OPERATOR_PORT
check recommendations /recommendations $PORT 1
check recommendations-product "/recommendations?user_id=12&product_id=3" $PORT 1
check operator-recommendations /recommendations $OPERATOR_PORT
check elasticity /elasticity $PORT 1
check operator-elasticity "/elasticity?to=1998-06-30" $OPERATOR_PORT
check operator-elasticity-products "/elasticity?level=product&period=month&to=1998-06-30&product_id=3" $OPERATOR_PORT
check operator-cohorts-weekly "/cohorts?period=week&max_periods=20&as_of=1997-06-30&show=cumulative_revenue_per_customer&cumulative=on&retention_type=recurring" $OPERATOR_PORT
check anomalies /anomalies
check runs /runs
check customer /customers/11
check login /login
echo "browser: $passed passed, $failed failed (screenshots in $OUT)"
[ "$failed" -eq 0 ]
