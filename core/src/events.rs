//! Order events: each counted order as (user, day, amount), the rows the per-user reads (churn
//! histories) work from, gathered by one parallel aggregate over the orders and passed between
//! processes as bytes. Orders that cannot count are only counted, by [`Reason`].

use crate::left_out::{LeftOut, Reason};
use crate::ltv::wire::{Reader, Writer};

/// Bytes per event on the wire.
const EVENT_BYTES: usize = 20;

/// The most events one state may carry: its bytes must fit PostgreSQL's 1 GB limit on a value.
pub const MAX_EVENTS: usize = 50_000_000;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event {
    pub user: i64,
    pub day: i32,
    pub amount: f64,
}

/// What an events read gathered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Events {
    pub events: Vec<Event>,
    /// Orders left out, by why.
    pub left_out: LeftOut,
}

impl Events {
    /// Adds one order that counts.
    #[inline(always)]
    pub fn push(&mut self, user: i64, day: i32, amount: f64) {
        self.events.push(Event { user, day, amount });
    }

    /// Counts one order left out.
    #[inline(always)]
    pub fn leave_out(&mut self, reason: Reason) {
        self.left_out.add(reason, 1);
    }

    pub fn merge(&mut self, other: Events) {
        if self.events.is_empty() {
            self.events = other.events;
        } else {
            self.events.extend(other.events);
        }
        self.left_out.merge(&other.left_out);
    }

    /// Whether the encoding fits one PostgreSQL value.
    pub fn fits(&self) -> bool {
        self.events.len() <= MAX_EVENTS
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(4 + LeftOut::BYTES + 8 + EVENT_BYTES * self.events.len());
        w.tag(b"CEV2");
        self.left_out.write(&mut w);
        w.u64(self.events.len() as u64);
        for e in &self.events {
            w.i64(e.user);
            w.i32(e.day);
            w.u64(e.amount.to_bits());
        }
        w.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Events, String> {
        let mut r = Reader::new(bytes);
        r.tag(b"CEV2")?;
        let left_out = LeftOut::read(&mut r)?;
        let n = r.len(EVENT_BYTES)?;
        let body = r.rest();
        if body.len() != n * EVENT_BYTES {
            return Err("trailing bytes in state".into());
        }
        // Fixed-size records: one bounds check for all of them, not three per event.
        let field = |b: &[u8], at: usize| -> [u8; 8] {
            let mut out = [0u8; 8];
            out.copy_from_slice(&b[at..at + 8]);
            out
        };
        let events = body
            .chunks_exact(EVENT_BYTES)
            .map(|b| Event {
                user: i64::from_le_bytes(field(b, 0)),
                day: i32::from_le_bytes([b[8], b[9], b[10], b[11]]),
                amount: f64::from_bits(u64::from_le_bytes(field(b, 12))),
            })
            .collect();
        Ok(Events { events, left_out })
    }

    /// The events grouped by user, in user id order, each user's sorted by day: ranges into the
    /// (re-sorted) events.
    pub fn by_user(&mut self) -> Vec<(i64, std::ops::Range<usize>)> {
        use rayon::slice::ParallelSliceMut;
        self.events.par_sort_unstable_by(|a, b| {
            a.user
                .cmp(&b.user)
                .then(a.day.cmp(&b.day))
                .then(a.amount.total_cmp(&b.amount))
        });
        let mut out = Vec::new();
        let mut start = 0;
        for i in 1..=self.events.len() {
            if i == self.events.len() || self.events[i].user != self.events[start].user {
                out.push((self.events[start].user, start..i));
                start = i;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_merge_and_group() {
        let mut a = Events::default();
        a.push(7, 100, 12.5);
        a.push(3, 90, -0.0);
        a.leave_out(Reason::NullAmount);
        let mut b = Events::default();
        b.push(7, 80, 1.0);
        b.leave_out(Reason::NullAmount);
        b.leave_out(Reason::AfterEnd);
        a.merge(b);
        let mut back = Events::decode(&a.encode()).unwrap();
        assert_eq!(back, a);
        assert_eq!(back.left_out.count(Reason::NullAmount), 2);
        assert_eq!(back.left_out.orders(), 3);
        let groups = back.by_user();
        assert_eq!(groups, vec![(3, 0..1), (7, 1..3)]);
        assert_eq!(back.events[1].day, 80);
        assert!(Events::decode(&a.encode()[..30]).is_err());
        assert!(Events::decode(b"XXXX").is_err());
        assert!(Events::default().by_user().is_empty());
    }
}
