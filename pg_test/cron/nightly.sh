#!/usr/bin/env bash
# The nightly jobs under a real pg_cron (1.4, Debian's postgresql-15-cron), on a throwaway cluster
# of their own (port 55418, pg_cron preloaded, its jobs in background workers): on the CDNOW data
# with a clustering, CLV, spend and churn model fitted, schedule_analytics_jobs() installs the
# recommended schedule; every job is moved to "every minute", must succeed, and must have written
# its results. Then a refresh that fails (a column renamed under it) must leave the previous
# results as they were and its error in cron.job_run_details; unschedule_analytics_jobs() removes
# the jobs; and a database without pg_cron gets a clear error. Exits non-zero on failure.
export CDA_PORT=55418
unset CDA_DIR
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
set -u
CDA_CLUSTER_SETTINGS="$TEST_CLUSTER_SETTINGS
shared_preload_libraries = 'pg_cron'
cron.database_name = 'cda_cron'
cron.use_background_workers = on
max_worker_processes = 24
cron.log_statement = off"
db=cda_cron
q() { PGOPTIONS='-c client_min_messages=warning' psql_ -d "$db" -At "$@"; }
fail() { echo "FAILED: $*"; tail -20 "$CDA_DIR/log"; stop_cluster; exit 1; }

stop_cluster
rm -rf "$CDA_DIR"
start_cluster
psql_ -d postgres -c "CREATE DATABASE $db" >/dev/null
# pg_cron's launcher looks for its database at start.
pg_ctl_ -m fast -w restart -l "$CDA_DIR/log" >/dev/null

q -c "CREATE EXTENSION pg_cron" -c "CREATE EXTENSION cda_analytics" >/dev/null
q -v cdnow_file="$ROOT/demo/cdnow/CDNOW_master.txt" -f "$ROOT/demo/load_cdnow.sql" >/dev/null
users=$(q -c "SELECT count(*) FROM users")
[ "$users" = 23570 ] || fail "CDNOW not loaded ($users users)"
q >/dev/null <<'SQL'
SELECT count(*) FROM kmeans_fit('value', k => 4, as_of => '1998-06-30');
SELECT count(*) FROM clv_fit('bg', 'bgnbd', 'week', '1998-06-30');
SELECT count(*) FROM clv_fit('gg', 'gamma_gamma', 'week', '1998-06-30');
SELECT count(*) FROM churn_train('churn', as_of => '1998-06-30');
SQL

echo "schedule_analytics_jobs():"
schedule="schedule_analytics_jobs(cluster_model => 'value', clv_model => 'bg', spend_model => 'gg',
                                  churn_model => 'churn', digest => true, dashboard_url => 'http://127.0.0.1:1/')"
q -F ' | ' -c "SELECT jobname, schedule FROM $schedule" | sed 's/^/  /'
jobs=$(q -c "SELECT count(*) FROM cron.job WHERE jobname LIKE 'cda-%'")
[ "$jobs" = 7 ] || fail "expected 7 jobs, got $jobs"
# Calling it again replaces the jobs rather than adding more.
q -c "SELECT count(*) FROM $schedule" >/dev/null
[ "$(q -c "SELECT count(*) FROM cron.job WHERE jobname LIKE 'cda-%'")" = 7 ] || fail "a second call added jobs"

# wait_for STATUS JOBS SECONDS: until each job named in JOBS has a run with STATUS.
wait_for() {
    local status=$1 names=$2 limit=$3 done_
    for _ in $(seq 1 "$limit"); do
        done_=$(q -c "SELECT count(DISTINCT j.jobname) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                      WHERE d.status = '$status' AND j.jobname = ANY ('{$names}')")
        [ "$done_" = "$(echo "$names" | tr ',' '\n' | wc -l)" ] && return 0
        sleep 1
    done
    q -F ' | ' -c "SELECT j.jobname, d.status, d.return_message FROM cron.job_run_details d JOIN cron.job j USING (jobid)"
    return 1
}

all=cda-ltv,cda-rfm,cda-clusters,cda-clv,cda-churn,cda-anomalies,cda-digest
q -c "SELECT count(cron.alter_job(jobid, schedule => '* * * * *')) FROM cron.job WHERE jobname LIKE 'cda-%'" >/dev/null
echo "every job moved to every minute; waiting for their runs"
wait_for succeeded "$all" 200 || fail "not every job succeeded"
q -F ' | ' -c "SELECT j.jobname, d.status, d.return_message FROM cron.job_run_details d JOIN cron.job j USING (jobid)
               WHERE d.status = 'succeeded' ORDER BY j.jobid, d.runid LIMIT 7" | sed 's/^/  /'
# Each job wrote its results, as of yesterday in the configured time zone (UTC).
check=$(q -c "SELECT (SELECT count(*) FROM ml_user_ltv) = 23570
                 AND (SELECT as_of_date FROM ml_ltv_as_of) = current_date - 1
                 AND (SELECT count(*) FROM ml_user_rfm) = 23570
                 AND (SELECT count(*) FROM ml_user_clusters) > 0
                 AND (SELECT count(*) FROM ml_user_clv) = 23570
                 AND (SELECT count(*) FROM ml_churn_scores) = 23570
                 AND (SELECT count(*) FROM anomaly_summary()) >= 0
                 AND (SELECT count(*) FROM cda_notifications) >= 1")
[ "$check" = t ] || fail "results missing after the jobs ran"
echo "results written by the jobs: LTV, RFM, clusters, CLV, churn (23,570 customers), and a digest queued"

# A refresh that fails: the previous results stay, the error is in cron.job_run_details.
q -c "SELECT count(*) FROM unschedule_analytics_jobs()" >/dev/null
fingerprint="SELECT count(*) || ' ' || md5(string_agg(user_id || ':' || lifetime_revenue, ',' ORDER BY user_id)) FROM ml_user_ltv"
before=$(q -c "$fingerprint")
runs_before=$(q -c "SELECT count(*) FROM ml_ltv_runs")
q -c "DELETE FROM cron.job_run_details" >/dev/null
q -c "ALTER TABLE orders RENAME COLUMN total_amount TO amount_renamed" >/dev/null
q -c "SELECT count(*) FROM schedule_analytics_jobs()" >/dev/null
q -c "SELECT count(cron.alter_job(jobid, schedule => '* * * * *')) FROM cron.job WHERE jobname = 'cda-ltv'" >/dev/null
wait_for failed cda-ltv 150 || fail "the broken refresh did not fail"
message=$(q -c "SELECT d.return_message FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                WHERE j.jobname = 'cda-ltv' AND d.status = 'failed' LIMIT 1")
echo "the failed run's error: $message"
echo "$message" | grep -q "total_amount" || fail "the error does not name the column"
[ "$(q -c "$fingerprint")" = "$before" ] || fail "the failed refresh changed the results"
[ "$(q -c "SELECT count(*) FROM ml_ltv_runs")" = "$runs_before" ] || fail "the failed refresh recorded a run"
echo "previous results unchanged: $before"
# The next digest reports the failed job.
id=$(q -c "SELECT queue_digest()")
digest=$(q -c "SELECT body FROM cda_notifications WHERE notification_id = ${id:-0}")
echo "$digest" | grep -q "Failed jobs: " && echo "$digest" | grep -q "cda-ltv at .*total_amount" \
    || fail "the digest does not report the failed job: $digest"
echo "the digest reports it: $(echo "$digest" | grep -A1 'Failed jobs' | tr '\n' ' ')"
q -c "ALTER TABLE orders RENAME COLUMN amount_renamed TO total_amount" >/dev/null

removed=$(q -c "SELECT string_agg(jobname, ',' ORDER BY jobname) FROM unschedule_analytics_jobs()")
echo "unschedule_analytics_jobs(): $removed"
[ "$(q -c "SELECT count(*) FROM cron.job WHERE jobname LIKE 'cda-%'")" = 0 ] || fail "jobs left after unschedule"

# Without pg_cron in the database: a clear error, not a missing schema.
psql_ -d postgres -c "CREATE DATABASE cda_no_cron" >/dev/null
err=$(PGOPTIONS='-c client_min_messages=warning' psql_ -d cda_no_cron -At -c "CREATE EXTENSION cda_analytics" \
      -c "\\set VERBOSITY verbose" -c "SELECT * FROM schedule_analytics_jobs()" 2>&1 || true)
echo "without pg_cron: $(echo "$err" | head -1)"
echo "$err" | grep -q "42704" && echo "$err" | grep -q "pg_cron is not installed" || fail "no clear error without pg_cron"

stop_cluster
rm -rf "$CDA_DIR"
echo "pg_cron: the nightly jobs passed"
