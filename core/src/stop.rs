//! Asking a long computation to stop. The extension runs the core's work on worker threads,
//! where PostgreSQL's cancel and terminate cannot be acted on: a signal only raises a flag, which
//! the backend's own thread checks. The extension registers a hook that reads that flag
//! ([`set_hook`]); the core's long loops (the CLV fits' iterations, K-means' choice of k and its
//! silhouettes, churn training's phases and rows) ask [`requested`] and give up early, and the
//! backend then raises the cancel as an error once the work returns.

use std::sync::OnceLock;

static HOOK: OnceLock<fn() -> bool> = OnceLock::new();

#[cfg(test)]
thread_local! {
    static TEST_STOP: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Registers the function that says whether the work should stop. The first registration wins.
pub fn set_hook(hook: fn() -> bool) {
    let _ = HOOK.set(hook);
}

/// Whether the work should stop now.
#[inline]
pub fn requested() -> bool {
    #[cfg(test)]
    if TEST_STOP.with(std::cell::Cell::get) {
        return true;
    }
    HOOK.get().is_some_and(|hook| hook())
}

/// Makes [`requested`] answer true on this thread while `f` runs (tests only).
#[cfg(test)]
pub(crate) fn stopping<T>(f: impl FnOnce() -> T) -> T {
    TEST_STOP.with(|s| s.set(true));
    let out = f();
    TEST_STOP.with(|s| s.set(false));
    out
}
