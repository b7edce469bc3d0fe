//! Rows computed in Rust, handed to the INSERT that writes them, in the same backend. A refresh
//! parks what its row source needs (a pointer to the rows and their context) under a fresh token
//! and runs `INSERT ... SELECT ... FROM _x_pending_rows(token)`; the row source takes it back by
//! that token and type. Outside that INSERT, or with another token, there is nothing to take.

use std::any::Any;
use std::cell::{Cell, RefCell};

thread_local! {
    static PARKED: RefCell<Option<(i64, Box<dyn Any>)>> = const { RefCell::new(None) };
    static NEXT_TOKEN: Cell<i64> = const { Cell::new(1) };
}

/// Unparks when the write ends, normally or by an error unwinding through it.
struct Unpark;

impl Drop for Unpark {
    fn drop(&mut self) {
        PARKED.with(|p| p.borrow_mut().take());
    }
}

/// Parks `payload` while `write` runs with its token.
pub fn park<P: Copy + 'static, R>(payload: P, write: impl FnOnce(i64) -> R) -> R {
    let token = NEXT_TOKEN.with(|t| {
        let v = t.get();
        t.set(v.wrapping_add(1));
        v
    });
    PARKED.with(|p| *p.borrow_mut() = Some((token, Box::new(payload))));
    let _unpark = Unpark;
    write(token)
}

/// The payload parked under `token`, if it is a `P`.
pub fn take<P: Copy + 'static>(token: Option<i64>) -> Option<P> {
    PARKED.with(|p| {
        p.borrow()
            .as_ref()
            .filter(|(t, _)| Some(*t) == token)
            .and_then(|(_, payload)| payload.downcast_ref::<P>().copied())
    })
}
