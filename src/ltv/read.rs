//! Feeding the source rows into the LTV fold.

use cda_analytics_core::calendar::Day;
use cda_analytics_core::ltv::{
    LtvFold, OrderRow, RunCounts, SegmentThresholds, StatusClass, UserLtv,
};
use cda_analytics_core::money::parse_minor;

use crate::config::Config;
use crate::errors::*;
use crate::source::Source;
use crate::spi_stream::{for_each_row, for_each_row_small};

/// Reads users, then successful (and NULL-status) orders, through the fold. `one_user` limits
/// both reads to one user.
pub fn compute(
    config: &Config,
    source: &Source,
    as_of: Day,
    one_user: Option<i64>,
    thresholds: &SegmentThresholds,
) -> (Vec<UserLtv>, RunCounts) {
    let mut fold = LtvFold::new(as_of);
    let scale = source.amount_scale;
    let read = |sql: &str,
                args: &[pgrx::datum::DatumWithOid<'_>],
                f: &mut dyn FnMut(&pgrx::spi::SpiHeapTupleData<'_>)| {
        if one_user.is_some() {
            for_each_row_small(sql, args, f)
        } else {
            for_each_row(sql, args, f)
        }
    };

    let users_sql = source.users_sql(one_user.is_some());
    let mut user_args: Vec<pgrx::datum::DatumWithOid<'_>> = vec![config.time_zone.clone().into()];
    user_args.extend(one_user.map(Into::into));
    read(&users_sql, &user_args, &mut |row| {
        let user_id = row.get::<i64>(1).or_raise("reading a user id");
        let day = row.get::<i32>(2).or_raise("reading a signup date");
        if let Err(e) = fold.add_user(user_id, day.map(Day)) {
            raise(
                ERRCODE_DATA_EXCEPTION,
                format!("{e} ({})", source.users),
                Some("user ids must be unique; calculate LTV over a table or view with one row per user".into()),
            );
        }
    });

    let orders_sql = source.orders_sql(one_user.is_some());
    let mut order_args: Vec<pgrx::datum::DatumWithOid<'_>> = vec![
        config.time_zone.clone().into(),
        config.successful_statuses.clone().into(),
    ];
    order_args.extend(one_user.map(Into::into));
    read(&orders_sql, &order_args, &mut |row| {
        let user_id = row.get::<i64>(1).or_raise("reading an order's user id");
        let day = row.get::<i32>(2).or_raise("reading an order date");
        let amount_text = row.get::<String>(3).or_raise("reading an order amount");
        let status_is_null = row
            .get::<bool>(4)
            .or_raise("reading an order status")
            .unwrap_or(false);
        let amount = amount_text.as_deref().map(|text| match parse_minor(text, scale) {
            Ok(parsed) => parsed,
            Err(e) => raise(
                ERRCODE_DATA_EXCEPTION,
                format!("{e}: order of user_id {} in {}", user_id.map_or("NULL".into(), |u| u.to_string()), source.orders),
                Some("Order amounts must be finite numbers; exclude bad rows with a view and point configure_source at it.".into()),
            ),
        });
        let status = if status_is_null {
            StatusClass::Null
        } else {
            StatusClass::Successful
        };
        let order = OrderRow {
            user_id,
            day: day.map(Day),
            amount: amount.map(|a| a.minor),
            status,
        };
        match fold.add_order(order) {
            Ok(None) if amount.is_some_and(|a| a.rounded) => fold.note_rounded_amount(),
            Ok(_) => {}
            Err(e) => raise(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, e.to_string(), None),
        }
    });

    fold.finish(thresholds)
}

/// One NOTICE listing everything a run left out or adjusted, so nothing is dropped silently.
/// Orders before signup are counted, not dropped: `with_info` mentions them for whole runs, while
/// a single user's row already shows them in `orders_before_signup`.
pub fn report_skipped(what: &str, c: &RunCounts, source: &Source, with_info: bool) {
    let users = &source.users;
    let orders = &source.orders;
    let items: Vec<String> = [
        (
            c.users_null_id,
            format!("users with a NULL user id in {users}"),
        ),
        (
            c.users_null_signup,
            format!("users with a NULL or infinite signup date in {users}"),
        ),
        (
            c.users_signup_after_as_of,
            "users who signed up after the as-of date".to_string(),
        ),
        (
            c.orders_null_status,
            "orders with a NULL status".to_string(),
        ),
        (c.orders_null_user, "orders with a NULL user id".to_string()),
        (
            c.orders_unknown_user,
            format!("orders whose user id is not in {users}"),
        ),
        (
            c.orders_null_date,
            "orders with a NULL or infinite date".to_string(),
        ),
        (
            c.orders_after_as_of,
            "orders dated after the as-of date".to_string(),
        ),
        (
            c.orders_null_amount,
            "orders with a NULL amount".to_string(),
        ),
        (
            c.orders_negative_amount,
            "orders with a negative amount".to_string(),
        ),
        (
            c.orders_of_left_out_users,
            "orders of the users left out".to_string(),
        ),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, text)| format!("{n} {text}"))
    .collect();
    let mut notes = Vec::new();
    if !items.is_empty() {
        notes.push(format!("left out: {}", items.join("; ")));
    }
    if with_info && c.orders_before_signup > 0 {
        notes.push(format!(
            "{} orders dated before their user's signup counted in lifetime only",
            c.orders_before_signup
        ));
    }
    if c.amounts_rounded > 0 {
        notes.push(format!(
            "{} amounts had more decimal places than {orders} keeps and were rounded half away from zero",
            c.amounts_rounded
        ));
    }
    if !notes.is_empty() {
        notice(
            format!("{what}: {}", notes.join("; ")),
            Some(format!(
                "{} users and {} orders read; {} orders counted.",
                c.users_read, c.orders_read, c.orders_counted
            )),
        );
    }
}
