//! The aggregate queries of the purchases read, for what the own scans do not read: a single
//! user, and the sources listed in src/read/table_scan.rs.

use crate::read::query::{Params, timestamp_expr};
use crate::source::Source;
use crate::toolbox::ident::text_array_literal;

/// `SELECT _ltv_users(...)` over the users table, or one user of it.
pub fn users_sql(
    source: &Source,
    ext: &str,
    zone: &str,
    as_of: i32,
    one: Option<i64>,
    params: &mut Params<'_>,
) -> String {
    let ts = timestamp_expr(
        &format!("u.{}", source.registered_at),
        source.registered_at_kind,
        zone,
        params,
    );
    let as_of = params.bind(as_of);
    let filter = match one {
        Some(id) => format!(" WHERE u.{} = {}", source.user_id, params.bind(id)),
        None => String::new(),
    };
    format!(
        "SELECT {ext}._ltv_users(u.{}::pg_catalog.int8, {ts}, {as_of}) FROM {} u{filter}",
        source.user_id, source.users
    )
}

/// `SELECT _ltv_orders(...)` over the successful and NULL-status orders (a NULL status is
/// read to be counted), or one user's. A plain text status is compared by the fold;
/// otherwise the query filters with the column's own equality.
pub fn orders_sql(
    source: &Source,
    ext: &str,
    zone: &str,
    statuses: &[String],
    users: Vec<u8>,
    one: Option<i64>,
    params: &mut Params<'_>,
) -> String {
    let users = params.bind(users);
    let ts = timestamp_expr(
        &format!("o.{}", source.order_date),
        source.order_date_kind,
        zone,
        params,
    );
    let amount = if source.amount_is_numeric {
        format!("o.{}", source.amount)
    } else {
        format!("o.{}::pg_catalog.numeric", source.amount)
    };
    // The statuses and the scale are written into the query as constants: as parameters the
    // executor fetched each of them again for every order, about 3% of the read.
    let statuses = text_array_literal(statuses, "status");
    let scale = source.amount_scale as i32;
    let one = one.map(|id| format!("o.{} = {}", source.order_user_id, params.bind(id)));
    let (uid, status, orders) = (&source.order_user_id, &source.status, &source.orders);
    if source.status_is_plain_text {
        // The fold compares the statuses itself (src/read/purchases/aggregate.rs).
        let filter = one.map_or(String::new(), |f| format!(" WHERE {f}"));
        return format!(
            "SELECT {ext}._ltv_orders({users}, o.{uid}::pg_catalog.int8, {ts}, {amount}, \
             o.{status}::pg_catalog.text, {statuses}, {scale}) FROM {orders} o{filter}"
        );
    }
    let filter = one.map_or(String::new(), |f| format!(" AND {f}"));
    format!(
        "SELECT {ext}._ltv_orders({users}, o.{uid}::pg_catalog.int8, {ts}, {amount}, o.{status} IS NULL, {scale}) \
         FROM {orders} o WHERE (o.{status}::pg_catalog.text = ANY ({statuses}) OR o.{status} IS NULL){filter}"
    )
}
