//! Why a user or an order is left out of a run: one vocabulary for every read. The purchases
//! read (LTV, RFM) and the events read (segmentation, CLV, churn, anomalies) classify their rows
//! by the same [`Reason`]s, the SQL that classifies rows writes their [`Reason::code`]s, the
//! transition functions decode them with [`Reason::from_code`], every NOTICE lists
//! [`Reason::label`]s in [`Reason::ALL`]'s order, and the LTV run record stores the counts in the
//! columns [`Reason::run_column`] names.

use crate::ltv::wire::{Reader, Writer};

/// Why a user or an order is left out, in the order the reports list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A user row whose id is NULL.
    UserNullId,
    /// A user whose signup date is NULL or infinite.
    UserNullSignup,
    /// A user who signed up after the run's end day.
    UserSignupAfterEnd,
    /// An order whose status is NULL (orders with another status than the successful ones are
    /// not read at all).
    NullStatus,
    NullUserId,
    /// An order whose user id is not in the users table.
    UnknownUser,
    /// An order whose date is NULL or infinite.
    NullDate,
    /// An order dated after the run's end day.
    AfterEnd,
    NullAmount,
    NegativeAmount,
    /// An amount that is NaN or infinite, where a read counts it instead of raising an error.
    NonFiniteAmount,
    /// An order of a user left out for one of the user reasons.
    OfLeftOutUser,
}

use Reason::*;

impl Reason {
    /// Every reason, in the order the reports list them.
    pub const ALL: [Reason; 12] = [
        UserNullId,
        UserNullSignup,
        UserSignupAfterEnd,
        NullStatus,
        NullUserId,
        UnknownUser,
        NullDate,
        AfterEnd,
        NullAmount,
        NegativeAmount,
        NonFiniteAmount,
        OfLeftOutUser,
    ];

    /// How many reasons there are.
    pub const COUNT: usize = Self::ALL.len();

    /// The number a query or a transition function gives a row left out for this reason; 0
    /// stands for a row that counts.
    pub const fn code(self) -> i32 {
        self as i32 + 1
    }

    /// The reason of a [`Reason::code`]; None for 0 (counted) and for numbers that are no code.
    pub fn from_code(code: i32) -> Option<Reason> {
        let i = usize::try_from(code.checked_sub(1)?).ok()?;
        Self::ALL.get(i).copied()
    }

    /// Whether it is a reason to leave out a user (else an order).
    pub const fn is_user(self) -> bool {
        matches!(self, UserNullId | UserNullSignup | UserSignupAfterEnd)
    }

    /// What a report says of the rows left out for this reason, after their number. `users`
    /// names the users table (quoted as the SQL does).
    pub fn label(self, users: &str) -> String {
        match self {
            UserNullId => format!("users with a NULL user id in {users}"),
            UserNullSignup => format!("users with a NULL or infinite signup date in {users}"),
            UserSignupAfterEnd => "users who signed up after the as-of date".into(),
            NullStatus => "orders with a NULL status".into(),
            NullUserId => "orders with a NULL user id".into(),
            UnknownUser => format!("orders whose user id is not in {users}"),
            NullDate => "orders with a NULL or infinite date".into(),
            AfterEnd => "orders dated after the as-of date".into(),
            NullAmount => "orders with a NULL amount".into(),
            NegativeAmount => "orders with a negative amount".into(),
            NonFiniteAmount => "orders with a non-finite amount".into(),
            OfLeftOutUser => "orders of the users left out".into(),
        }
    }

    /// The column of the LTV run record (`ml_ltv_runs`) that counts this reason. The LTV read
    /// raises an error for a non-finite amount instead of counting it.
    pub const fn run_column(self) -> Option<&'static str> {
        Some(match self {
            UserNullId => "users_skipped_null_id",
            UserNullSignup => "users_skipped_null_signup",
            UserSignupAfterEnd => "users_skipped_signup_after_as_of",
            NullStatus => "orders_skipped_null_status",
            NullUserId => "orders_skipped_null_user",
            UnknownUser => "orders_skipped_unknown_user",
            NullDate => "orders_skipped_null_date",
            AfterEnd => "orders_skipped_after_as_of",
            NullAmount => "orders_skipped_null_amount",
            NegativeAmount => "orders_skipped_negative_amount",
            NonFiniteAmount => return None,
            OfLeftOutUser => "orders_skipped_user_left_out",
        })
    }
}

/// How many rows a read left out, by [`Reason`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeftOut([i64; Reason::COUNT]);

impl LeftOut {
    /// Counts `n` more rows left out for `reason`.
    #[inline(always)]
    pub fn add(&mut self, reason: Reason, n: i64) {
        self.0[reason as usize] += n;
    }

    /// The rows left out for `reason`.
    pub fn count(&self, reason: Reason) -> i64 {
        self.0[reason as usize]
    }

    /// Adds another part's counts to these.
    pub fn merge(&mut self, other: &LeftOut) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    /// The users left out, for all user reasons.
    pub fn users(&self) -> i64 {
        Reason::ALL
            .iter()
            .filter(|r| r.is_user())
            .map(|&r| self.count(r))
            .sum()
    }

    /// The orders left out, for all order reasons.
    pub fn orders(&self) -> i64 {
        Reason::ALL
            .iter()
            .filter(|r| !r.is_user())
            .map(|&r| self.count(r))
            .sum()
    }

    /// A report's items, "N label" in [`Reason::ALL`]'s order, for the reasons with rows and
    /// that `listed` keeps. `users` names the users table.
    pub fn items(&self, users: &str, listed: impl Fn(Reason) -> bool) -> Vec<String> {
        Reason::ALL
            .iter()
            .filter(|&&r| self.count(r) > 0 && listed(r))
            .map(|&r| format!("{} {}", self.count(r), r.label(users)))
            .collect()
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        for n in self.0 {
            w.i64(n);
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, String> {
        let mut out = LeftOut::default();
        for n in out.0.iter_mut() {
            *n = r.i64()?;
        }
        Ok(out)
    }

    /// Bytes on the wire.
    pub(crate) const BYTES: usize = 8 * Reason::COUNT;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_zero_is_counted() {
        for r in Reason::ALL {
            assert_eq!(Reason::from_code(r.code()), Some(r));
        }
        assert_eq!(Reason::from_code(0), None);
        assert_eq!(Reason::from_code(-1), None);
        assert_eq!(Reason::from_code(Reason::COUNT as i32 + 1), None);
        assert_eq!(Reason::from_code(i32::MIN), None);
    }

    #[test]
    fn codes_are_distinct_and_positive() {
        let mut codes: Vec<i32> = Reason::ALL.iter().map(|r| r.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Reason::COUNT);
        assert!(codes.iter().all(|&c| c > 0));
    }

    #[test]
    fn labels_name_the_users_table_and_say_users_or_orders() {
        for r in Reason::ALL {
            let label = r.label("\"s\".\"u\"");
            let noun = if r.is_user() { "users " } else { "orders " };
            assert!(label.starts_with(noun), "{label}");
        }
        assert!(
            Reason::UnknownUser
                .label("\"s\".\"u\"")
                .ends_with("\"s\".\"u\"")
        );
    }

    #[test]
    fn counts_split_into_users_and_orders_and_report_in_order() {
        let mut a = LeftOut::default();
        a.add(Reason::UnknownUser, 2);
        a.add(Reason::UserNullId, 1);
        let mut b = LeftOut::default();
        b.add(Reason::NullStatus, 3);
        b.add(Reason::AfterEnd, 4);
        a.merge(&b);
        assert_eq!((a.users(), a.orders()), (1, 9));
        let items = a.items("u", |r| r != Reason::AfterEnd);
        assert_eq!(
            items,
            [
                "1 users with a NULL user id in u",
                "3 orders with a NULL status",
                "2 orders whose user id is not in u"
            ]
        );
        let mut w = Writer::with_capacity(LeftOut::BYTES);
        a.write(&mut w);
        let bytes = w.into_bytes();
        assert_eq!(bytes.len(), LeftOut::BYTES);
        assert_eq!(LeftOut::read(&mut Reader::new(&bytes)), Ok(a));
    }
}
