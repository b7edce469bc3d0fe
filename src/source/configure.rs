//! The configuration's SQL functions: `configure_source` (through its SQL wrapper over
//! `_configure_source`), `configure_ltv`, `reset_configuration` and `cda_configuration`. A change
//! is checked against the catalog before it is stored.

use pgrx::prelude::*;

use super::{Config, ext_schema};
use crate::toolbox::errors::*;

/// The schema and name of the table `rel`; 42P01 when there is none (a hand-made OID).
pub(super) fn relation_name(rel: pg_sys::Oid) -> (String, String) {
    let names = Spi::connect(|c| {
        let t = c.select(
            "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1",
            None,
            &[rel.into()],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        let row = t.first();
        Ok::<_, pgrx::spi::SpiError>(Some((
            row.get::<String>(1)?.unwrap_or_default(),
            row.get::<String>(2)?.unwrap_or_default(),
        )))
    })
    .or_raise("looking up a table name");
    match names {
        Some(n) => n,
        None => raise(
            ERRCODE_UNDEFINED_TABLE,
            format!("relation with OID {} does not exist", rel.to_u32()),
            None,
        ),
    }
}

fn config_table(
    config: &Config,
) -> TableIterator<'static, (name!(setting, String), name!(value, String))> {
    TableIterator::new(config.rows())
}

/// Changes where the source data is read from; NULL arguments keep their current value. The
/// SQL wrapper `configure_source` takes regclass arguments, resolved in the caller's search_path.
#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe, name = "_configure_source")]
#[search_path(pg_catalog, pg_temp)]
fn configure_source_impl(
    users_table: Option<pg_sys::Oid>,
    user_id_column: Option<String>,
    registered_at_column: Option<String>,
    orders_table: Option<pg_sys::Oid>,
    order_user_id_column: Option<String>,
    order_date_column: Option<String>,
    status_column: Option<String>,
    amount_column: Option<String>,
    successful_statuses: Option<Vec<Option<String>>>,
    time_zone: Option<String>,
) -> TableIterator<'static, (name!(setting, String), name!(value, String))> {
    let ext = ext_schema();
    let mut config = Config::load(&ext);
    if let Some(rel) = users_table {
        (config.users_schema, config.users_table) = relation_name(rel);
    }
    if let Some(rel) = orders_table {
        (config.orders_schema, config.orders_table) = relation_name(rel);
    }
    let set = |slot: &mut String, v: Option<String>| {
        if let Some(v) = v {
            *slot = v;
        }
    };
    set(&mut config.user_id_column, user_id_column);
    set(&mut config.registered_at_column, registered_at_column);
    set(&mut config.order_user_id_column, order_user_id_column);
    set(&mut config.order_date_column, order_date_column);
    set(&mut config.status_column, status_column);
    set(&mut config.amount_column, amount_column);
    set(&mut config.time_zone, time_zone);
    if let Some(statuses) = successful_statuses {
        if statuses.iter().any(Option::is_none) {
            raise(
                ERRCODE_NULL_VALUE_NOT_ALLOWED,
                "successful_statuses must not contain NULL",
                None,
            );
        }
        config.successful_statuses = statuses.into_iter().flatten().collect();
    }
    save(config, &ext)
}

/// Changes the LTV segment thresholds (currency units, inclusive lower bounds) and the margin
/// used for the recommended maximum CAC; NULL arguments keep their current value.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn configure_ltv(
    segment_vip: default!(Option<AnyNumeric>, "NULL"),
    segment_high: default!(Option<AnyNumeric>, "NULL"),
    segment_medium: default!(Option<AnyNumeric>, "NULL"),
    segment_low: default!(Option<AnyNumeric>, "NULL"),
    cac_margin: default!(Option<AnyNumeric>, "NULL"),
) -> TableIterator<'static, (name!(setting, String), name!(value, String))> {
    let ext = ext_schema();
    let mut config = Config::load(&ext);
    let set = |slot: &mut String, v: Option<AnyNumeric>| {
        if let Some(v) = v {
            *slot = v.to_string();
        }
    };
    set(&mut config.segment_vip, segment_vip);
    set(&mut config.segment_high, segment_high);
    set(&mut config.segment_medium, segment_medium);
    set(&mut config.segment_low, segment_low);
    set(&mut config.cac_margin, cac_margin);
    let margin_ok =
        cda_analytics_core::money::parse_minor(&config.cac_margin, 6).is_ok_and(|p| p.minor > 0);
    if !margin_ok {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "cac_margin must be a positive number, got {}",
                config.cac_margin
            ),
            Some(
                "The recommended maximum CAC is the average 6-month LTV times this margin.".into(),
            ),
        );
    }
    save(config, &ext)
}

/// Forgets the stored configuration, the items' too: the defaults apply again.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn reset_configuration() -> TableIterator<'static, (name!(setting, String), name!(value, String))> {
    let ext = ext_schema();
    Spi::connect_mut(|c| {
        c.update(format!("DELETE FROM {ext}.cda_config").as_str(), None, &[])?;
        c.update(
            format!("DELETE FROM {ext}.cda_item_config").as_str(),
            None,
            &[],
        )
        .map(|_| ())
    })
    .or_raise("resetting cda_config");
    config_table(&Config::default())
}

/// The configuration in effect, as (setting, value) rows.
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn cda_configuration() -> TableIterator<'static, (name!(setting, String), name!(value, String))> {
    config_table(&Config::load(&ext_schema()))
}

/// The version of the loaded library and of the installed catalog (`pg_extension.extversion`).
/// They differ once a new library is installed and `ALTER EXTENSION cda_analytics UPDATE` has not
/// run yet: the functions of the old catalog then run on the new library.
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn cda_analytics_version()
-> TableIterator<'static, (name!(library, String), name!(catalog, Option<String>))> {
    // A select, not Spi::get_one, which would assign a transaction id (pgrx-notes.md).
    let catalog = Spi::connect(|c| {
        let t = c.select(
            "SELECT extversion::pg_catalog.text FROM pg_catalog.pg_extension WHERE extname = 'cda_analytics'",
            None,
            &[],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        t.first().get::<String>(1)
    })
    .or_raise("reading the installed version");
    TableIterator::once((env!("CARGO_PKG_VERSION").to_string(), catalog))
}

/// Stores `config` as set by the current role, once its tables are locked and checked, and that
/// role may read them; returns it as (setting, value) rows.
fn save(
    mut config: Config,
    ext: &str,
) -> TableIterator<'static, (name!(setting, String), name!(value, String))> {
    config.configured_by = Some(current_user());
    let _ = super::tables::lock(&config);
    super::validate(&config);
    config.store(ext);
    config_table(&config)
}

/// The role that runs the statement, which becomes the configuration's author.
fn current_user() -> String {
    Spi::get_one::<String>("SELECT CURRENT_USER::pg_catalog.text")
        .or_raise("reading the current user")
        .unwrap_or_default()
}
