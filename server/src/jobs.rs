//! Long work as jobs: a refresh, a fit or a training run starts on its own connection and task,
//! answered at once with 202 and a job id; `GET /api/v1/jobs/{id}` reports its state, and its
//! result or error. A job lives on if the client disconnects. Two refreshes of the same kind
//! queue in the database (the extension serialises them). Jobs are kept in this process's
//! memory: the latest 1,000 finished ones, and every unfinished one.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::Mutex;
use tokio_postgres::types::ToSql;
use utoipa::ToSchema;

use crate::db::Db;
use crate::error::ApiError;

const KEEP_FINISHED: usize = 1000;

/// A value for a job's SQL.
pub type Arg = Box<dyn ToSql + Sync + Send>;

#[derive(Clone, Serialize, ToSchema)]
pub struct Job {
    pub id: u64,
    /// What runs, e.g. `ltv.calculate`.
    pub kind: String,
    /// queued, running, succeeded or failed.
    pub status: String,
    /// Unix seconds.
    pub created_at: f64,
    pub started_at: Option<f64>,
    pub finished_at: Option<f64>,
    /// The function's result rows, when it succeeded.
    pub result: Option<serde_json::Value>,
    /// The error, when it failed: as the API reports errors.
    pub error: Option<serde_json::Value>,
    /// While it runs: `phase` (computing, or waiting for a lock: another refresh of the same
    /// results, whose backends `waiting_for_pids` lists, with `waiting_for_jobs` when they are
    /// this server's jobs), `statement_seconds` and `parallel_workers`.
    pub progress: Option<serde_json::Value>,
    #[serde(skip)]
    role: String,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[derive(Clone, Default)]
pub struct Jobs {
    next: Arc<AtomicU64>,
    jobs: Arc<Mutex<BTreeMap<u64, Job>>>,
    /// The backend of each running job. A plain mutex: held only to read or write an entry,
    /// never across an await.
    pids: Arc<std::sync::Mutex<HashMap<u64, i32>>>,
}

impl Jobs {
    /// Starts `sql` with `args` as `role` in a task of its own, and returns the queued job.
    pub async fn start(
        &self,
        db: Db,
        role: String,
        kind: &str,
        sql: String,
        args: Vec<Arg>,
    ) -> Job {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let job = Job {
            id,
            kind: kind.to_string(),
            status: "queued".into(),
            created_at: now(),
            started_at: None,
            finished_at: None,
            result: None,
            error: None,
            progress: None,
            role: role.clone(),
        };
        self.jobs.lock().await.insert(id, job.clone());
        let jobs = self.clone();
        tokio::spawn(async move {
            jobs.update(id, |j| {
                j.status = "running".into();
                j.started_at = Some(now());
            })
            .await;
            let params: Vec<&(dyn ToSql + Sync)> = args
                .iter()
                .map(|a| a.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let outcome = db
                .run_job(&role, &sql, &params, |pid| jobs.set_pid(id, Some(pid)))
                .await;
            jobs.set_pid(id, None);
            jobs.update(id, |j| {
                j.finished_at = Some(now());
                match outcome {
                    Ok(rows) => {
                        j.status = "succeeded".into();
                        j.result = serde_json::from_str(&rows).ok();
                    }
                    Err(e) => {
                        j.status = "failed".into();
                        j.error = serde_json::to_value(&e).ok().map(|mut v| {
                            v["status"] = e.status.as_u16().into();
                            v
                        });
                    }
                }
            })
            .await;
            jobs.forget_old().await;
        });
        job
    }

    async fn update(&self, id: u64, f: impl FnOnce(&mut Job)) {
        if let Some(j) = self.jobs.lock().await.get_mut(&id) {
            f(j);
        }
    }

    async fn forget_old(&self) {
        let mut jobs = self.jobs.lock().await;
        let finished: Vec<u64> = jobs
            .values()
            .filter(|j| j.finished_at.is_some())
            .map(|j| j.id)
            .collect();
        for id in finished
            .iter()
            .take(finished.len().saturating_sub(KEEP_FINISHED))
        {
            jobs.remove(id);
        }
    }

    fn set_pid(&self, id: u64, pid: Option<i32>) {
        if let Ok(mut pids) = self.pids.lock() {
            match pid {
                Some(p) => pids.insert(id, p),
                None => pids.remove(&id),
            };
        }
    }

    fn pids(&self) -> HashMap<u64, i32> {
        self.pids.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// The job, when `role` started it (another role's jobs are not found), with its progress
    /// when it runs.
    pub async fn get(&self, db: &Db, id: u64, role: &str) -> Result<Job, ApiError> {
        let mut job = self
            .jobs
            .lock()
            .await
            .get(&id)
            .filter(|j| j.role == role)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
        let pids = self.pids();
        if let Some(pid) = pids.get(&id) {
            job.progress = db.progress(*pid).await?.map(|mut p| {
                // Name the jobs of this server that it waits for.
                let waited: Vec<u64> = p["waiting_for_pids"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|w| w.as_i64())
                            .filter_map(|w| pids.iter().find(|(_, p)| i64::from(**p) == w))
                            .map(|(j, _)| *j)
                            .collect()
                    })
                    .unwrap_or_default();
                if !waited.is_empty() {
                    p["waiting_for_jobs"] = waited.into();
                }
                p
            });
        }
        Ok(job)
    }

    /// `role`'s jobs, newest first.
    pub async fn list(&self, role: &str) -> Vec<Job> {
        self.jobs
            .lock()
            .await
            .values()
            .rev()
            .filter(|j| j.role == role)
            .cloned()
            .collect()
    }
}
