//! One value a backend holds for another piece of code in the same backend, found by a fresh
//! token: the rows a refresh parks for its INSERT's row source (`crate::write::row_source`), and the value a
//! read aggregate's final function hands to the function that ran the query
//! (`crate::read::aggregates::hand_over`). Each use has its own slot; a new value replaces the old one.

use std::any::Any;
use std::cell::{Cell, RefCell};

pub struct TokenSlot {
    held: RefCell<Option<(i64, Box<dyn Any>)>>,
    next: Cell<i64>,
}

impl TokenSlot {
    pub const fn new() -> Self {
        TokenSlot {
            held: RefCell::new(None),
            next: Cell::new(1),
        }
    }

    /// Holds `value` under a fresh token, dropping whatever was held.
    pub fn put<T: 'static>(&self, value: T) -> i64 {
        let token = self.next.get();
        self.next.set(token.wrapping_add(1));
        *self.held.borrow_mut() = Some((token, Box::new(value)));
        token
    }

    /// A copy of the value held under `token`, if it is a `T`; it stays held.
    pub fn get<T: Copy + 'static>(&self, token: i64) -> Option<T> {
        self.held
            .borrow()
            .as_ref()
            .filter(|(t, _)| *t == token)
            .and_then(|(_, v)| v.downcast_ref::<T>().copied())
    }

    /// The value held under `token`, if it is a `T`; it is no longer held.
    pub fn take<T: 'static>(&self, token: i64) -> Option<T> {
        let mut held = self.held.borrow_mut();
        match held.take() {
            Some((t, v)) if t == token && v.is::<T>() => v.downcast::<T>().ok().map(|b| *b),
            other => {
                *held = other;
                None
            }
        }
    }

    /// Drops the value held, if any.
    pub fn clear(&self) {
        self.held.borrow_mut().take();
    }
}
