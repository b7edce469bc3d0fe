//! The LTV row as stored in `ml_user_ltv_rows`: what does not move with the as-of day by itself
//! (`days_since_last_order` is derived from `last_order_date` when read), so a day's refresh
//! changes the rows of the users who ordered, crossed a horizon or changed segment, not every
//! row. See [`crate::stored`].

use super::UserLtv;
use crate::stored::Fingerprint;

/// The stored row's format; see [`Fingerprint::new`].
const FINGERPRINT_VERSION: u8 = 2;

/// The fingerprint of everything a stored LTV row holds, at amount scale `scale`. The averages
/// are left out: they follow from the revenue and order counts, which are in.
pub fn fingerprint(row: &UserLtv, scale: u32) -> [u8; 16] {
    let mut f = Fingerprint::new(FINGERPRINT_VERSION, scale);
    f.i64(row.user_id).i64(i64::from(row.signup.0));
    for &v in row.revenue.iter().chain(&row.orders) {
        f.i64(v);
    }
    for d in [row.first_order, row.last_order] {
        f.opt_i64(d.map(|d| i64::from(d.0)));
    }
    for h in row.horizon_complete {
        f.bool(h);
    }
    f.i64(row.orders_before_signup)
        .bytes(row.segment.name().as_bytes())
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Day;
    use crate::ltv::Segment;

    fn row(user_id: i64) -> UserLtv {
        UserLtv {
            user_id,
            signup: Day(8000),
            revenue: [100, 200, 300, 400],
            orders: [1, 2, 3, 4],
            first_order: Some(Day(8001)),
            last_order: Some(Day(8100)),
            days_since_last_order: Some(10),
            horizon_complete: [true, true, false],
            orders_before_signup: 0,
            segment: Segment::Low,
        }
    }

    #[test]
    fn every_stored_value_moves_the_fingerprint() {
        let base = row(7);
        let edits: Vec<fn(&mut UserLtv)> = vec![
            |r| r.user_id = 8,
            |r| r.signup = Day(8001),
            |r| r.revenue[0] = 101,
            |r| r.revenue[3] = 401,
            |r| r.orders[1] = 3,
            |r| r.orders[3] = 5,
            |r| r.first_order = None,
            |r| r.last_order = Some(Day(8101)),
            |r| r.horizon_complete[2] = true,
            |r| r.orders_before_signup = 1,
            |r| r.segment = Segment::Medium,
        ];
        let print = fingerprint(&base, 2);
        assert_ne!(print, fingerprint(&base, 3), "the amount scale");
        for (n, edit) in edits.iter().enumerate() {
            let mut r = base.clone();
            edit(&mut r);
            assert_ne!(print, fingerprint(&r, 2), "edit {n}");
        }
        // Derived when read, so not part of what is stored.
        let mut r = base.clone();
        r.days_since_last_order = Some(11);
        assert_eq!(print, fingerprint(&r, 2));
    }

    #[test]
    fn a_none_differs_from_a_zero() {
        let mut a = row(1);
        let mut b = row(1);
        a.first_order = None;
        b.first_order = Some(Day(0));
        assert_ne!(fingerprint(&a, 2), fingerprint(&b, 2));
    }
}
