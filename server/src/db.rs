//! The database side of a request: a pooled connection, a transaction in which the caller's role
//! and the statement timeout are set (PostgREST's pattern, so that PostgreSQL's own grants decide
//! what a request may do), and the rows as JSON made by PostgreSQL itself, so that numbers keep
//! every digit they have.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::types::ToSql;

use axum::http::StatusCode;

use crate::error::ApiError;

pub type Params<'a> = [&'a (dyn ToSql + Sync)];

#[derive(Clone)]
pub struct Db {
    pool: Pool,
    /// The extension's schema, quoted for SQL.
    schema: String,
    timeout: String,
    job_timeout: String,
}

impl Db {
    /// A pool on `database_url`, and the schema the extension is installed in.
    pub async fn connect(
        database_url: &str,
        pool_size: usize,
        statement_timeout_ms: u64,
        job_timeout_ms: u64,
    ) -> Result<Db, String> {
        let pg: tokio_postgres::Config = database_url
            .parse()
            .map_err(|e| format!("the database URL is not valid: {e}"))?;
        let manager = Manager::from_config(
            pg,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .build()
            .map_err(|e| format!("building the connection pool: {e}"))?;
        let client = pool
            .get()
            .await
            .map_err(|e| format!("connecting to the database: {e}"))?;
        let row = client
            .query_opt(
                "SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e \
                 JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace \
                 WHERE e.extname = 'cda_analytics'",
                &[],
            )
            .await
            .map_err(|e| format!("looking up the extension: {e}"))?;
        let schema: String = row
            .ok_or("the extension cda_analytics is not installed in this database")?
            .get(0);
        Ok(Db {
            pool,
            schema,
            timeout: statement_timeout_ms.to_string(),
            job_timeout: job_timeout_ms.to_string(),
        })
    }

    /// The extension's schema, quoted, to qualify the SQL the handlers write.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Runs `f` in a read-only transaction as `role` under the statement timeout.
    async fn as_role<T>(
        &self,
        role: &str,
        f: impl AsyncFnOnce(&tokio_postgres::Transaction<'_>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.in_transaction(role, true, &self.timeout, f).await
    }

    /// Runs `f` in a transaction as `role` under `timeout` (milliseconds, as text).
    async fn in_transaction<T>(
        &self,
        role: &str,
        read_only: bool,
        timeout: &str,
        f: impl AsyncFnOnce(&tokio_postgres::Transaction<'_>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client
            .build_transaction()
            .read_only(read_only)
            .start()
            .await?;
        tx.execute(
            "SELECT pg_catalog.set_config('role', $1, true), \
                    pg_catalog.set_config('statement_timeout', $2, true)",
            &[&role, &timeout],
        )
        .await
        .map_err(|e| {
            // A token mapped to a role the server may not become: the operator's mistake, told
            // as little as possible.
            tracing::error!(role, error = %e, "cannot switch to the token's role");
            ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "role_unavailable",
                "the role of this token cannot be used",
            )
        })?;
        let out = f(&tx).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// The rows of `sql` as a JSON array. (The row alias `cda_row` is one no result has as a
    /// column: `clv_user()` has a column `t`, which `json_agg(t)` would have taken.)
    pub async fn rows(
        &self,
        role: &str,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<String, ApiError> {
        let wrapped = format!(
            "SELECT coalesce(pg_catalog.json_agg(cda_row), '[]'::json)::text FROM ({sql}) cda_row"
        );
        self.as_role(role, async |tx| {
            Ok(tx.query_one(&wrapped, params).await?.get::<_, String>(0))
        })
        .await
    }

    /// The one row of `sql` as a JSON object, or None.
    pub async fn row(
        &self,
        role: &str,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Option<String>, ApiError> {
        let wrapped =
            format!("SELECT pg_catalog.row_to_json(cda_row)::text FROM ({sql}) cda_row LIMIT 2");
        self.as_role(role, async |tx| {
            let rows = tx.query(&wrapped, params).await?;
            Ok(rows.first().map(|r| r.get::<_, String>(0)))
        })
        .await
    }

    /// The page of `sql` (ORDER BY included, LIMIT and OFFSET added here) as a JSON array, with
    /// the total when asked for: exact (a count) or estimated (the planner's).
    pub async fn page(
        &self,
        role: &str,
        sql: &str,
        params: &Params<'_>,
        page: crate::paging::Page,
        count: crate::paging::Count,
    ) -> Result<(String, usize, Option<i64>), ApiError> {
        let n = params.len();
        let wrapped = format!(
            "SELECT coalesce(pg_catalog.json_agg(cda_row), '[]'::json)::text, count(*) \
             FROM ({sql} LIMIT ${} OFFSET ${}) cda_row",
            n + 1,
            n + 2
        );
        let mut all: Vec<&(dyn ToSql + Sync)> = params.to_vec();
        all.push(&page.limit);
        all.push(&page.offset);
        self.as_role(role, async |tx| {
            let row = tx.query_one(&wrapped, &all).await?;
            let total = match count {
                crate::paging::Count::None => None,
                crate::paging::Count::Exact => Some(
                    tx.query_one(&format!("SELECT count(*) FROM ({sql}) cda_row"), params)
                        .await?
                        .get::<_, i64>(0),
                ),
                crate::paging::Count::Estimated => {
                    let plan: serde_json::Value = tx
                        .query_one(&format!("EXPLAIN (FORMAT JSON) {sql}"), params)
                        .await?
                        .get(0);
                    plan[0]["Plan"]["Plan Rows"].as_f64().map(|r| r as i64)
                }
            };
            Ok((
                row.get::<_, String>(0),
                row.get::<_, i64>(1) as usize,
                total,
            ))
        })
        .await
    }

    /// Runs one statement that writes (an INSERT, say), in a read-write transaction as `role`
    /// under the statement timeout; the rows it affected.
    pub async fn execute(
        &self,
        role: &str,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<u64, ApiError> {
        self.in_transaction(role, false, &self.timeout, async |tx| {
            Ok(tx.execute(sql, params).await?)
        })
        .await
    }

    /// A job's SQL, in a read-write transaction as `role` with the jobs' timeout: its rows as a
    /// JSON array.
    pub async fn run(
        &self,
        role: &str,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<String, ApiError> {
        self.run_job(role, sql, params, |_| {}).await
    }

    /// Like [`Db::run`], telling `started` the backend's process id before the work starts, so
    /// that [`Db::progress`] can follow it.
    pub async fn run_job(
        &self,
        role: &str,
        sql: &str,
        params: &Params<'_>,
        started: impl FnOnce(i32),
    ) -> Result<String, ApiError> {
        let wrapped = format!(
            "SELECT coalesce(pg_catalog.json_agg(cda_row), '[]'::json)::text FROM ({sql}) cda_row"
        );
        self.in_transaction(role, false, &self.job_timeout, async |tx| {
            let pid: i32 = tx
                .query_one("SELECT pg_catalog.pg_backend_pid()", &[])
                .await?
                .get(0);
            started(pid);
            Ok(tx.query_one(&wrapped, params).await?.get::<_, String>(0))
        })
        .await
    }

    /// What the backend `pid` (a job's) is doing: computing, or waiting for a lock (another
    /// refresh of the same results) and for whom; how long its statement has run; how many
    /// parallel workers help it. Read as the server's own login role, which started the
    /// backend and so may see it in `pg_stat_activity`.
    pub async fn progress(&self, pid: i32) -> Result<Option<serde_json::Value>, ApiError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT json_build_object(
                    'phase', CASE WHEN a.wait_event_type = 'Lock' THEN 'waiting for a lock'
                                  ELSE 'computing' END,
                    'waiting_for_pids', CASE WHEN a.wait_event_type = 'Lock'
                                             THEN pg_catalog.pg_blocking_pids(a.pid) END,
                    'wait_event', a.wait_event,
                    'statement_seconds', round(extract(epoch FROM pg_catalog.clock_timestamp() - a.query_start)::numeric, 3),
                    'parallel_workers', (SELECT count(*) FROM pg_catalog.pg_stat_activity w
                                         WHERE w.leader_pid = a.pid AND w.pid <> a.pid),
                    'backend_pid', a.pid)::text
                 FROM pg_catalog.pg_stat_activity a WHERE a.pid = $1 AND a.state = 'active'",
                &[&pid],
            )
            .await?;
        Ok(row.and_then(|r| serde_json::from_str(&r.get::<_, String>(0)).ok()))
    }

    /// Whether `role` may execute the function `signature` (e.g. `calculate_all_ltv(date)` in
    /// the extension's schema): a job it may not run is refused before it is queued.
    pub async fn may_execute(&self, role: &str, signature: &str) -> Result<bool, ApiError> {
        let qualified = format!("{}.{signature}", self.schema);
        self.as_role(role, async |tx| {
            Ok(tx
                .query_one(
                    "SELECT pg_catalog.has_function_privilege($1, 'EXECUTE')",
                    &[&qualified],
                )
                .await?
                .get::<_, bool>(0))
        })
        .await
    }

    /// Whether the database answers, and the extension's version. A database without the
    /// extension, or whose catalog is not the version of the installed files (a new package
    /// installed, `ALTER EXTENSION cda_analytics UPDATE` not run: the library then refuses to
    /// compute), is not ready.
    pub async fn version(&self) -> Result<String, ApiError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT installed_version::text, default_version::text \
                 FROM pg_catalog.pg_available_extensions WHERE name = 'cda_analytics'",
                &[],
            )
            .await?;
        let (installed, files): (Option<String>, Option<String>) = match &row {
            Some(r) => (r.get(0), r.get(1)),
            None => (None, None),
        };
        match (installed, files) {
            (Some(installed), Some(files)) if installed == files => Ok(installed),
            (Some(installed), files) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "extension_update_needed",
                format!(
                    "cda_analytics is at version {installed} in this database, but the installed extension is version {}",
                    files.as_deref().unwrap_or("unknown")
                ),
            )
            .with_hint("Run ALTER EXTENSION cda_analytics UPDATE; as the extension's owner (docs/upgrading.md).")),
            (None, _) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "extension_missing",
                "extension cda_analytics is not installed in this database",
            )
            .with_hint("CREATE EXTENSION cda_analytics;")),
        }
    }
}
