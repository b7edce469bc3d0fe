//! The per-database configuration: which tables, columns and statuses to read, the time zone for
//! dates, and the LTV segment thresholds. Stored in one row of `cda_config` so that every session
//! and every scheduled job sees it; validated before it is stored.

use pgrx::prelude::*;

use crate::toolbox::errors::*;
use crate::toolbox::ident::quote_ident;
use crate::toolbox::statement::{InsertRow, execute};

/// The effective configuration. `Default` holds the defaults: the only place they are written.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub users_schema: String,
    pub users_table: String,
    pub user_id_column: String,
    pub registered_at_column: String,
    pub orders_schema: String,
    pub orders_table: String,
    pub order_user_id_column: String,
    pub order_date_column: String,
    pub status_column: String,
    pub amount_column: String,
    pub successful_statuses: Vec<String>,
    pub time_zone: String,
    /// Numeric text, in currency units.
    pub segment_vip: String,
    pub segment_high: String,
    pub segment_medium: String,
    pub segment_low: String,
    pub cac_margin: String,
    /// The role that set the stored configuration; None for the defaults.
    pub configured_by: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        let s = |v: &str| v.to_string();
        Config {
            users_schema: s("public"),
            users_table: s("users"),
            user_id_column: s("user_id"),
            registered_at_column: s("registered_at"),
            orders_schema: s("public"),
            orders_table: s("orders"),
            order_user_id_column: s("user_id"),
            order_date_column: s("created_at"),
            status_column: s("status"),
            amount_column: s("total_amount"),
            successful_statuses: vec![s("paid"), s("shipped"), s("completed")],
            time_zone: s("UTC"),
            segment_vip: s("1000"),
            segment_high: s("500"),
            segment_medium: s("100"),
            segment_low: s("50"),
            cac_margin: s("1"),
            configured_by: None,
        }
    }
}

impl Config {
    /// The stored configuration, or the defaults when none is stored.
    pub fn load(ext: &str) -> Config {
        let sql = format!(
            "SELECT users_schema, users_table, user_id_column, registered_at_column, orders_schema, \
                    orders_table, order_user_id_column, order_date_column, status_column, amount_column, \
                    successful_statuses, time_zone, segment_vip::text AS segment_vip, \
                    segment_high::text AS segment_high, segment_medium::text AS segment_medium, \
                    segment_low::text AS segment_low, cac_margin::text AS cac_margin, \
                    configured_by::text AS configured_by \
             FROM {ext}.cda_config WHERE singleton"
        );
        Spi::connect(|c| {
            let t = c.select(sql.as_str(), None, &[])?;
            if t.is_empty() {
                return Ok(Config::default());
            }
            let row = t.first();
            let text = |name: &str| -> Result<String, pgrx::spi::SpiError> {
                Ok(row.get_by_name::<String, _>(name)?.unwrap_or_default())
            };
            Ok::<_, pgrx::spi::SpiError>(Config {
                users_schema: text("users_schema")?,
                users_table: text("users_table")?,
                user_id_column: text("user_id_column")?,
                registered_at_column: text("registered_at_column")?,
                orders_schema: text("orders_schema")?,
                orders_table: text("orders_table")?,
                order_user_id_column: text("order_user_id_column")?,
                order_date_column: text("order_date_column")?,
                status_column: text("status_column")?,
                amount_column: text("amount_column")?,
                successful_statuses: row
                    .get_by_name::<Vec<String>, _>("successful_statuses")?
                    .unwrap_or_default(),
                time_zone: text("time_zone")?,
                segment_vip: text("segment_vip")?,
                segment_high: text("segment_high")?,
                segment_medium: text("segment_medium")?,
                segment_low: text("segment_low")?,
                cac_margin: text("cac_margin")?,
                configured_by: row.get_by_name::<String, _>("configured_by")?,
            })
        })
        .or_raise("reading cda_config")
    }

    /// Stores the configuration, with its author (`configured_by`, which the caller sets).
    pub fn store(&self, ext: &str) {
        let c = self.clone();
        let numeric = "{}::pg_catalog.numeric";
        let mut row = InsertRow::default();
        row.expr("singleton", "true")
            .arg("users_schema", c.users_schema)
            .arg("users_table", c.users_table)
            .arg("user_id_column", c.user_id_column)
            .arg("registered_at_column", c.registered_at_column)
            .arg("orders_schema", c.orders_schema)
            .arg("orders_table", c.orders_table)
            .arg("order_user_id_column", c.order_user_id_column)
            .arg("order_date_column", c.order_date_column)
            .arg("status_column", c.status_column)
            .arg("amount_column", c.amount_column)
            .arg("successful_statuses", c.successful_statuses)
            .arg("time_zone", c.time_zone)
            .arg_as("segment_vip", c.segment_vip, numeric)
            .arg_as("segment_high", c.segment_high, numeric)
            .arg_as("segment_medium", c.segment_medium, numeric)
            .arg_as("segment_low", c.segment_low, numeric)
            .arg_as("cac_margin", c.cac_margin, numeric)
            .expr("updated_at", "pg_catalog.now()")
            .arg_as(
                "configured_by",
                c.configured_by.unwrap_or_default(),
                "{}::pg_catalog.name",
            );
        let (sql, args) = row.upsert(&format!("{ext}.cda_config"), "singleton", &[], "");
        execute(&sql, &args, "storing cda_config");
    }

    /// Checks the values that do not name tables or columns: the status set, the time zone, the
    /// thresholds. Raises a clear error otherwise.
    pub fn check_values(&self) {
        if self.successful_statuses.is_empty() {
            raise(
                ERRCODE_INVALID_PARAMETER_VALUE,
                "successful_statuses must name at least one status",
                Some("For example: configure_source(successful_statuses => ARRAY['paid','shipped','completed'])".into()),
            );
        }
        check_time_zone(&self.time_zone);
        self.ltv_thresholds(2);
    }

    /// The segment thresholds in minor units at `scale`.
    pub fn ltv_thresholds(&self, scale: u32) -> cda_analytics_core::ltv::SegmentThresholds {
        let minor = |name: &str, text: &str| -> i64 {
            match cda_analytics_core::money::parse_minor(text, scale) {
                Ok(p) => p.minor,
                Err(e) => raise(
                    ERRCODE_INVALID_PARAMETER_VALUE,
                    format!("segment threshold {name}: {e}"),
                    None,
                ),
            }
        };
        let t = cda_analytics_core::ltv::SegmentThresholds::new(
            minor("segment_vip", &self.segment_vip),
            minor("segment_high", &self.segment_high),
            minor("segment_medium", &self.segment_medium),
            minor("segment_low", &self.segment_low),
        );
        match t {
            Ok(t) => t,
            Err(e) => raise(
                ERRCODE_INVALID_PARAMETER_VALUE,
                format!(
                    "{e} (got vip {}, high {}, medium {}, low {})",
                    self.segment_vip, self.segment_high, self.segment_medium, self.segment_low
                ),
                None,
            ),
        }
    }

    /// The configuration as (setting, value) rows.
    pub fn rows(&self) -> Vec<(String, String)> {
        let s = |k: &str, v: &str| (k.to_string(), v.to_string());
        vec![
            s(
                "users_table",
                &display_name(&self.users_schema, &self.users_table),
            ),
            s("user_id_column", &self.user_id_column),
            s("registered_at_column", &self.registered_at_column),
            s(
                "orders_table",
                &display_name(&self.orders_schema, &self.orders_table),
            ),
            s("order_user_id_column", &self.order_user_id_column),
            s("order_date_column", &self.order_date_column),
            s("status_column", &self.status_column),
            s("amount_column", &self.amount_column),
            s("successful_statuses", &self.successful_statuses.join(",")),
            s("time_zone", &self.time_zone),
            s("segment_vip", &self.segment_vip),
            s("segment_high", &self.segment_high),
            s("segment_medium", &self.segment_medium),
            s("segment_low", &self.segment_low),
            s("cac_margin", &self.cac_margin),
        ]
    }
}

/// `schema.table`, quoting only the parts that need it, so it reads like what a user would type.
fn display_name(schema: &str, table: &str) -> String {
    let part = |p: &str| {
        let plain = p
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if plain { p.to_string() } else { quote_ident(p) }
    };
    format!("{}.{}", part(schema), part(table))
}

fn check_time_zone(zone: &str) {
    // PostgreSQL itself decides: AT TIME ZONE raises 22023 "time zone ... not recognized".
    Spi::connect(|c| {
        c.select(
            "SELECT pg_catalog.now() AT TIME ZONE $1",
            None,
            &[zone.into()],
        )
        .map(|_| ())
    })
    .or_raise("checking the time zone");
}
