#!/usr/bin/env bash
# ALTER EXTENSION cda_analytics UPDATE from every released version, on a throwaway cluster of its
# own (port 55420). When the current version is itself released, its released install script
# must give the catalog the current tree gives (else the change needs a new version). For each
# older version in pg_test/upgrade/released/ (its frozen install script, and its commit in
# `commits`):
#   1. builds that version's library from the git history, and checks that it generates exactly
#      the frozen script;
#   2. with the old library (dynamic_library_path), installs the old version on UCI Online
#      Retail, configures it, refreshes, fits and trains everything, grants an analyst and an
#      operator role, and records what must survive (survivors.sql);
#   3. switches to the current library, as a package upgrade does: the old catalog still loads
#      (every C function it names still exists) and answers, the library's functions refuse
#      with a hint to update, and the HTTP server's /ready is a 503 saying so;
#   4. runs ALTER EXTENSION cda_analytics UPDATE, and checks that the catalog equals a fresh
#      install's (catalog.sql), that everything recorded survived unchanged, that the migrated
#      recommenders give the same lists, that refreshes still work and the roles keep their access;
#   5. installs the old version with the current library alone and upgrades it too (the catalog
#      again equals a fresh install's).
# Needs the released commits: the history, or an origin a shallow clone can fetch them from. The
# old build is kept in target/released/ for the next run. Exits non-zero on failure.
export CDA_PORT=55420
unset CDA_DIR
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
set -u
HERE=$ROOT/pg_test/upgrade
NEW=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -1)
EXT_DIR=$("$PG_CONFIG" --sharedir)/extension
BUILDS=$ROOT/target/released
SERVER_PORT=55493
server=""
q() { PGOPTIONS='-c client_min_messages=warning' psql_ -At "$@"; }
installed=()
restore_generated=""
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
    if [ -n "$restore_generated" ]; then as_root install -m 644 "$CDA_DIR/generated.sql" "$restore_generated"; fi
    stop_cluster
    for f in "${installed[@]}"; do as_root rm -f "$f"; done
}
trap cleanup EXIT
fail() { echo "FAILED: $*"; tail -20 "$CDA_DIR/log"; exit 1; }

# use_library DIR: the cluster loads cda_analytics.so from DIR (the old library) before $libdir,
# or from $libdir alone when DIR is empty; restarts, so the next sessions load it.
use_library() {
    if [ -n "$1" ]; then
        q -d postgres -c "ALTER SYSTEM SET dynamic_library_path = '$1:\$libdir'"
    else
        q -d postgres -c "ALTER SYSTEM RESET dynamic_library_path"
    fi
    pg_ctl_ -m fast -w restart -l "$CDA_DIR/log" >/dev/null
}

# catalog DB FILE: the extension's catalog in DB, as text.
catalog() { q -d "$1" -f "$HERE/catalog.sql" >"$2"; }

stop_cluster
rm -rf "$CDA_DIR"
start_cluster
q -d postgres -c "DROP ROLE IF EXISTS upgrade_analyst" -c "DROP ROLE IF EXISTS upgrade_operator" \
    -c "CREATE ROLE upgrade_analyst" -c "CREATE ROLE upgrade_operator"
# The new version, freshly installed, with the same two roles granted.
recreate_db cda_fresh
q -d cda_fresh -c "CREATE EXTENSION cda_analytics" \
    -c "SELECT count(*) FROM grant_analytics_access('upgrade_analyst', 'analyst')" \
    -c "SELECT count(*) FROM grant_analytics_access('upgrade_operator', 'operator')" >/dev/null
catalog cda_fresh "$CDA_DIR/catalog-fresh.txt"
echo "fresh $NEW: $(wc -l <"$CDA_DIR/catalog-fresh.txt") catalog facts"

for frozen in "$HERE"/released/cda_analytics--*.sql; do
    OLD=$(basename "$frozen" .sql | sed 's/^cda_analytics--//')
    if [ "$OLD" = "$NEW" ]; then
        # The current version, released: a database that installed it must have the catalog a
        # fresh install of the current tree gives, or the change needs a new version and an
        # upgrade script. The released script is installed in place of the generated one for
        # one CREATE EXTENSION (and put back, also by cleanup on failure).
        say "the released $NEW against the current tree"
        generated=$EXT_DIR/cda_analytics--$NEW.sql
        cp "$generated" "$CDA_DIR/generated.sql"
        restore_generated=$generated
        as_root install -m 644 "$frozen" "$generated"
        recreate_db cda_released
        q -d cda_released -c "CREATE EXTENSION cda_analytics" \
            -c "SELECT count(*) FROM grant_analytics_access('upgrade_analyst', 'analyst')" \
            -c "SELECT count(*) FROM grant_analytics_access('upgrade_operator', 'operator')" >/dev/null
        as_root install -m 644 "$CDA_DIR/generated.sql" "$generated"
        restore_generated=""
        catalog cda_released "$CDA_DIR/catalog-released.txt"
        q -d postgres -c "DROP DATABASE cda_released"
        diff -u "$CDA_DIR/catalog-released.txt" "$CDA_DIR/catalog-fresh.txt" ||
            fail "the catalog changed since $NEW was released: bump the version (Cargo.toml) and write sql/cda_analytics--$NEW--NEXT.sql (docs/upgrading.md)"
        echo "the released $NEW and the current tree install the same catalog"
        continue
    fi
    say "upgrade from $OLD to $NEW"
    path=$(q -d cda_fresh -c "SELECT path FROM pg_extension_update_paths('cda_analytics') WHERE source = '$OLD' AND target = '$NEW'")
    [ -n "$path" ] || fail "no chain of upgrade scripts (sql/cda_analytics--A--B.sql) leads from $OLD to $NEW"
    echo "update path: $path"

    # 1. The old library, built from its commit.
    commit=$(awk -v v="$OLD" '$1 == v {print $2}' "$HERE/released/commits")
    [ -n "$commit" ] || fail "released/commits names no commit for $OLD"
    if ! git -C "$ROOT" cat-file -e "$commit^{commit}" 2>/dev/null; then
        # A shallow clone: fetch that one commit from where the clone came from.
        git -C "$ROOT" fetch -q --depth=1 origin "$commit" 2>/dev/null || true
        git -C "$ROOT" cat-file -e "$commit^{commit}" 2>/dev/null ||
            fail "commit $commit ($OLD) is not in this clone and cannot be fetched: the upgrade test needs the history"
    fi
    src=$BUILDS/src-$OLD
    if [ ! -f "$src/.commit" ] || [ "$(cat "$src/.commit")" != "$commit" ]; then
        rm -rf "$src" && mkdir -p "$src"
        git -C "$ROOT" archive "$commit" | tar -x -C "$src"
        echo "$commit" >"$src/.commit"
    fi
    echo "building $OLD ($commit) in $src"
    (cd "$src" && CARGO_TARGET_DIR=$BUILDS/target cargo pgrx package --debug --pg-config "$PG_CONFIG" \
        --out-dir "$BUILDS/package-$OLD" >"$BUILDS/build-$OLD.log" 2>&1) ||
        { tail -30 "$BUILDS/build-$OLD.log"; fail "building $OLD"; }
    pkg=$BUILDS/package-$OLD
    # pgrx orders the script's blocks by a dependency graph, not stably: the lines must be the same.
    cmp -s <(sort "$frozen") <(sort "$pkg$EXT_DIR/cda_analytics--$OLD.sql") ||
        fail "commit $commit does not generate the frozen script $frozen"
    old_lib=$CDA_DIR/lib-$OLD
    mkdir -p "$old_lib"
    cp "$pkg$("$PG_CONFIG" --pkglibdir)/cda_analytics.so" "$old_lib/"
    if is_root; then chown -R postgres: "$old_lib"; fi
    as_root install -m 644 "$frozen" "$EXT_DIR/"
    installed+=("$EXT_DIR/cda_analytics--$OLD.sql")

    # 2. The old version at work, with its own library.
    use_library "$old_lib"
    db=cda_upgrade
    recreate_db $db
    q -d $db -c "CREATE EXTENSION cda_analytics VERSION '$OLD'"
    q -d $db -v retail_file="$ROOT/demo/online_retail/online_retail.csv.gz" -f "$ROOT/demo/load_online_retail.sql" >/dev/null
    q -d $db >/dev/null <<'SQL'
SELECT count(*) FROM configure_source(successful_statuses => ARRAY['completed'], time_zone => 'Europe/London');
SELECT count(*) FROM configure_items(non_product_column => 'is_non_product');
SELECT calculate_all_ltv('2011-12-09');
SELECT calculate_all_rfm('2011-12-09');
SELECT count(*) FROM kmeans_fit('value', '2011-12-09', k => 4);
SELECT calculate_all_clusters('value', '2011-12-09');
SELECT count(*) FROM clv_fit('bg', 'bgnbd', 'week', '2011-12-09');
SELECT count(*) FROM clv_fit('gg', 'gamma_gamma', 'week', '2011-12-09');
SELECT count(*) FROM calculate_all_clv('bg', 'gg', as_of => '2011-12-09');
SELECT count(*) FROM churn_train('churn', as_of => '2011-12-09', snapshot_weeks => 16);
SELECT count(*) FROM churn_train('purchase', 'purchase', as_of => '2011-12-09', snapshot_weeks => 16);
SELECT count(*) FROM calculate_all_churn('churn', '2011-12-09');
SELECT count(*) FROM calculate_all_purchase('purchase', '2011-12-09');
SELECT count(*) FROM calculate_all_anomalies('2011-12-09', weeks => 8);
SELECT count(*) FROM train_recommender('cosine', 'item_knn_cosine', as_of => '2011-12-09', neighbours => 20);
SELECT count(*) FROM train_recommender('default', as_of => '2011-12-09');
SELECT count(*) FROM train_recommender('again', 'buy_again', as_of => '2011-12-09');
SELECT count(*) FROM calculate_all_recommendations('cosine', as_of => '2011-12-09');
SELECT count(*) FROM grant_analytics_access('upgrade_analyst', 'analyst');
SELECT count(*) FROM grant_analytics_access('upgrade_operator', 'operator');
SQL
    echo "$OLD at work: $(q -d $db -c "SELECT format('%s customers, %s churn scores, %s stored neighbours, %s recommendations',
        (SELECT count(*) FROM ml_user_ltv), (SELECT count(*) FROM ml_churn_scores),
        (SELECT count(*) FROM ml_recommender_neighbors), (SELECT count(*) FROM ml_user_recommendations))")"
    q -d $db -f "$HERE/survivors.sql" >"$CDA_DIR/before.txt"
    grep -q "^table ml_recommender_neighbors: 0 rows" "$CDA_DIR/before.txt" && fail "the old version stored no neighbours"
    summary_before=$(q -d $db -c "SELECT s::text FROM get_ltv_summary() s ORDER BY 1")

    # 3. The package upgraded: the new library under the old catalog.
    use_library ""
    loaded=$(q -d $db -c "SELECT count(*) FROM get_ltv_summary()")
    [ "$loaded" -gt 0 ] || fail "the $OLD catalog does not answer with the new library"
    # ... but the library's own functions refuse to work on tables laid out for another version.
    refusal=$(q -d $db -c "SELECT calculate_all_ltv('2011-12-09')" 2>&1 || true)
    echo "$refusal" | grep -q "installed at version $OLD in this database, but the library is version $NEW" ||
        fail "a refresh on the $OLD catalog was not refused: $refusal"
    echo "the $OLD catalog answers with the $NEW library; its functions refuse until the update"
    # The HTTP server is not ready on a database left behind, and says why.
    (cd "$ROOT" && cargo build -q -p cda-server)
    CDA_DATABASE_URL="host=$CDA_DIR port=$CDA_PORT user=postgres dbname=$db" CDA_LISTEN="127.0.0.1:$SERVER_PORT" \
        "$ROOT/target/debug/cda-server" >"$CDA_DIR/server.log" 2>&1 &
    server=$!
    wait_for_http "http://127.0.0.1:$SERVER_PORT/health" || fail "cda-server did not start: $(cat "$CDA_DIR/server.log")"
    ready=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$SERVER_PORT/ready")
    case $ready in
        *extension_update_needed*" 503") echo "/ready before the update: 503 extension_update_needed" ;;
        *) fail "/ready on the $OLD catalog answered: $ready" ;;
    esac

    # 4. The update.
    started=$(date +%s%N)
    q -d $db -c "ALTER EXTENSION cda_analytics UPDATE"
    echo "ALTER EXTENSION cda_analytics UPDATE: $(( ($(date +%s%N) - started) / 1000000 )) ms"
    version=$(q -d $db -c "SELECT extversion FROM pg_extension WHERE extname = 'cda_analytics'")
    [ "$version" = "$NEW" ] || fail "ALTER EXTENSION UPDATE gave version $version, expected $NEW"
    [ "$(q -d $db -c "SELECT library = catalog FROM cda_analytics_version()")" = t ] ||
        fail "cda_analytics_version() does not agree"
    ready=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$SERVER_PORT/ready")
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=""
    case $ready in
        *"\"extension_version\":\"$NEW\""*" 200") echo "/ready after the update: 200, version $NEW" ;;
        *) fail "/ready after the update answered: $ready" ;;
    esac
    catalog $db "$CDA_DIR/catalog-upgraded.txt"
    diff -u "$CDA_DIR/catalog-fresh.txt" "$CDA_DIR/catalog-upgraded.txt" >"$CDA_DIR/catalog.diff" ||
        { head -60 "$CDA_DIR/catalog.diff"; fail "the catalog after the upgrade differs from a fresh $NEW"; }
    echo "catalog after the upgrade equals a fresh $NEW ($(wc -l <"$CDA_DIR/catalog-upgraded.txt") facts)"
    # pg_dump reads the list of tables whose rows it dumps (extconfig): a stale entry breaks it.
    as_pg "$PG_BIN/pg_dump" -h "$CDA_DIR" -p "$CDA_PORT" -U postgres -d $db -f /dev/null ||
        fail "pg_dump fails after the upgrade"
    q -d $db -f "$HERE/survivors.sql" >"$CDA_DIR/after.txt"
    diff -u "$CDA_DIR/before.txt" "$CDA_DIR/after.txt" ||
        fail "results, configuration or models changed in the upgrade"
    echo "$(wc -l <"$CDA_DIR/after.txt") tables and model answers unchanged:"
    sed 's/^/  /' "$CDA_DIR/after.txt"
    # The migrated model computes the same lists, refreshes work, and the roles keep their access
    # (to the new objects too).
    lists=$(q -d $db -c "CREATE TEMP TABLE old_lists AS SELECT user_id, rank, product_id, score, because_of FROM ml_user_recommendations" \
                     -c "SELECT count(*) FROM calculate_all_recommendations('cosine', as_of => '2011-12-09')" \
                     -c "SELECT count(*) FROM (SELECT user_id, rank, product_id, score, because_of FROM ml_user_recommendations
                                              EXCEPT ALL SELECT * FROM old_lists) d" | tail -1)
    [ "$lists" = 0 ] || fail "$lists recommendations differ when computed again by the upgraded model"
    q -d $db -c "SELECT calculate_all_ltv('2011-12-09')" >/dev/null
    summary_after=$(q -d $db -c "SELECT s::text FROM get_ltv_summary() s ORDER BY 1")
    [ "$summary_before" = "$summary_after" ] || fail "an LTV refresh after the upgrade gives another summary"
    q -d $db -c "SET ROLE upgrade_analyst" -c "SELECT count(*) FROM customer_latest" -c "SELECT count(*) FROM ml_recommender_neighbors" >/dev/null ||
        fail "the analyst cannot read the new views"
    if q -d $db -c "SET ROLE upgrade_analyst" -c "SELECT calculate_all_ltv()" >/dev/null 2>&1; then
        fail "the analyst can refresh after the upgrade"
    fi
    q -d $db -c "SET ROLE upgrade_operator" -c "SELECT queue_digest()" >/dev/null || fail "the operator cannot queue a digest"
    echo "recommendations recomputed equal, LTV refreshed, roles kept"

    # 5. The old catalog created by the new library alone (every C function of $OLD resolves),
    # then upgraded.
    recreate_db cda_upgrade_direct
    q -d cda_upgrade_direct -c "CREATE EXTENSION cda_analytics VERSION '$OLD'" \
        -c "SELECT count(*) FROM grant_analytics_access('upgrade_analyst', 'analyst')" \
        -c "SELECT count(*) FROM grant_analytics_access('upgrade_operator', 'operator')" \
        -c "ALTER EXTENSION cda_analytics UPDATE" >/dev/null
    catalog cda_upgrade_direct "$CDA_DIR/catalog-direct.txt"
    diff -u "$CDA_DIR/catalog-fresh.txt" "$CDA_DIR/catalog-direct.txt" ||
        fail "$OLD installed by the $NEW library and upgraded differs from a fresh $NEW"
    echo "$OLD created with the $NEW library and upgraded equals a fresh $NEW"
done
q -d postgres -c "DROP DATABASE cda_upgrade" -c "DROP DATABASE cda_upgrade_direct" -c "DROP DATABASE cda_fresh" \
    -c "DROP ROLE upgrade_analyst" -c "DROP ROLE upgrade_operator"
echo "upgrades: passed"
