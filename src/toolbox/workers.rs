//! The backend's worker threads, for the parallel parts of the core (K-means, the CLV fits, the
//! churn features and models, the sort of the order events).

// Blocks every signal on the worker threads.
#![allow(unsafe_code)]

use crate::toolbox::errors::*;

/// Runs `f` (linfa parallelises the assignment step with rayon, the CLV fits and the churn
/// features use it too) on a pool of this backend's own, whose threads block every signal:
/// PostgreSQL's handlers (cancel, terminate) must run on the backend's own thread, which is
/// waiting in `install` and acts on them afterwards. The pool is started on first use and kept
/// for the backend's life: starting threads on every call cost about as much as a small fit.
pub fn on_worker_threads<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    let out = pool().install(f);
    // A cancel or a terminate that arrived meanwhile (the core's loops give up early when one
    // is pending, `cancel_pending`) is raised now, before the result is used.
    pgrx::check_for_interrupts!();
    out
}

/// Whether a cancel (a statement timeout included) or a terminate is pending for this backend:
/// the flags PostgreSQL's signal handlers raise, read from any thread. The core's long loops ask
/// it through `cda_analytics_core::stop`.
pub fn cancel_pending() -> bool {
    // SAFETY: plain reads of two sig_atomic_t flags that signal handlers write; volatile, as
    // PostgreSQL reads them.
    unsafe {
        std::ptr::read_volatile(&raw const pgrx::pg_sys::QueryCancelPending) != 0
            || std::ptr::read_volatile(&raw const pgrx::pg_sys::ProcDiePending) != 0
    }
}

/// Runs `background` on the worker threads while this backend's thread runs `foreground`, which
/// may call into PostgreSQL (SPI), as `background` must not. Both have finished when this
/// returns; an error raised in `foreground` goes on only once `background` is done, so nothing
/// it borrows goes away under it.
pub fn beside<A: Send, B>(
    background: impl FnOnce() -> A + Send,
    foreground: impl FnOnce() -> B,
) -> (A, B) {
    let mut a = None;
    let b = background_pool().in_place_scope(|s| {
        s.spawn(|_| a = Some(background()));
        foreground()
    });
    match a {
        Some(a) => (a, b),
        // The scope waits for what it spawned and passes on its panics, so this is not reached.
        None => raise(
            ERRCODE_INTERNAL_ERROR,
            "a background computation gave no result",
            None,
        ),
    }
}

fn pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<Result<rayon::ThreadPool, String>> =
        std::sync::OnceLock::new();
    started(&POOL, cores().min(8))
}

/// The pool of [`beside`]: one core fewer than the machine's, as the backend's thread keeps one
/// busy, so that what runs beside it (parallel iterators included) does not crowd it out.
fn background_pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<Result<rayon::ThreadPool, String>> =
        std::sync::OnceLock::new();
    started(&POOL, (cores() - 1).clamp(1, 8))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn started(
    pool: &'static std::sync::OnceLock<Result<rayon::ThreadPool, String>>,
    threads: usize,
) -> &'static rayon::ThreadPool {
    let pool = pool.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .start_handler(|_| {
                // SAFETY: a zeroed sigset_t filled by sigfillset, applied to this new thread only.
                unsafe {
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::sigfillset(&mut set);
                    libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                }
            })
            .build()
            .map_err(|e| e.to_string())
    });
    match pool {
        Ok(pool) => pool,
        Err(e) => raise(
            ERRCODE_INSUFFICIENT_RESOURCES,
            format!("cannot start worker threads: {e}"),
            None,
        ),
    }
}
