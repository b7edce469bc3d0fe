//! A per-backend cache of what was looked up in the catalog (the extension's schema, the checked
//! source tables and columns), so that calculate_user_ltv() does not repeat a dozen catalog
//! queries per call. Any relation cache invalidation (a table or column altered, renamed or
//! dropped by any session, or rolled back) starts a new generation, and cached entries from an
//! older generation are looked up again.

// Registers a relation cache invalidation callback.
#![allow(unsafe_code)]

use std::cell::{Cell, RefCell};

use pgrx::prelude::*;

use super::{Config, Source};
use crate::toolbox::errors::*;
use crate::toolbox::ident::quote_ident;

thread_local! {
    static GENERATION: Cell<u64> = const { Cell::new(0) };
    static REGISTERED: Cell<bool> = const { Cell::new(false) };
    static EXT_SCHEMA: RefCell<Option<(u64, String)>> = const { RefCell::new(None) };
    static SOURCE: RefCell<Option<(u64, Config, Source)>> =
        const { RefCell::new(None) };
}

unsafe extern "C-unwind" fn invalidated(_arg: pg_sys::Datum, _relid: pg_sys::Oid) {
    GENERATION.with(|g| g.set(g.get().wrapping_add(1)));
}

/// The current generation; registers the invalidation callback on first use.
fn generation() -> u64 {
    if !REGISTERED.with(|r| r.replace(true)) {
        // SAFETY: registering a callback that only bumps a counter; once per backend.
        unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(invalidated), pg_sys::Datum::from(0)) };
    }
    GENERATION.with(Cell::get)
}

/// The schema this extension was created in, quoted, for schema-qualified SQL; looked up when
/// not cached for this generation.
pub fn ext_schema() -> String {
    let gen_now = generation();
    if let Some(s) = EXT_SCHEMA.with(|c| {
        c.borrow()
            .as_ref()
            .filter(|(g, _)| *g == gen_now)
            .map(|(_, s)| s.clone())
    }) {
        return s;
    }
    let s = lookup_ext_schema();
    EXT_SCHEMA.with(|c| *c.borrow_mut() = Some((gen_now, s.clone())));
    s
}

/// `config`'s source checked against the catalog (`super::tables::resolve`), when not cached
/// for this configuration and generation; then, every time, that the role that set the
/// configuration may read it (`super::tables::check_readable`). The caller has locked the tables
/// (`super::tables::lock`): taking a lock processes the invalidations of any change that
/// committed meanwhile, so the generation read after it tells whether the cached source still
/// describes the tables as they are locked.
pub fn source(config: &Config) -> Source {
    let source = cached_source(config);
    if let Some(role) = &config.configured_by {
        super::tables::check_readable(&source, role);
    }
    source
}

fn cached_source(config: &Config) -> Source {
    let gen_now = generation();
    if let Some(s) = SOURCE.with(|c| {
        c.borrow()
            .as_ref()
            .filter(|(g, cfg, _)| *g == gen_now && cfg == config)
            .map(|(_, _, s)| s.clone())
    }) {
        return s;
    }
    let s = super::tables::resolve(config);
    // The check may itself have caused invalidations; key by the generation it started in.
    SOURCE.with(|c| *c.borrow_mut() = Some((gen_now, config.clone(), s.clone())));
    s
}

/// The extension's schema, quoted; refuses to go on when the installed catalog is not this
/// library's version (a new package installed, `ALTER EXTENSION cda_analytics UPDATE` not run
/// yet): the library would read and write tables laid out for another version.
fn lookup_ext_schema() -> String {
    let found: Option<(String, String)> = Spi::connect(|c| {
        let t = c.select(
            "SELECT n.nspname::text, e.extversion::text FROM pg_catalog.pg_extension e \
             JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'cda_analytics'",
            None,
            &[],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        let row = t.first();
        Ok(row.get::<String>(1)?.zip(row.get::<String>(2)?))
    })
    .or_raise("looking up the extension schema");
    match found {
        Some((schema, version)) if version == env!("CARGO_PKG_VERSION") => quote_ident(&schema),
        Some((_, version)) => raise(
            ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!(
                "cda_analytics is installed at version {version} in this database, but the library is version {}",
                env!("CARGO_PKG_VERSION")
            ),
            Some(
                "Run ALTER EXTENSION cda_analytics UPDATE; as the extension's owner (docs/upgrading.md). Until then the results tables and views still answer, and the functions the library computes refuse."
                    .into(),
            ),
        ),
        None => raise(
            ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "extension cda_analytics is not installed in this database",
            None,
        ),
    }
}
