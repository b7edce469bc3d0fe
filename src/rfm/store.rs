//! The RFM tables: the user's segment map, and writing a run's results (`ml_user_rfm_rows`,
//! `ml_rfm_as_of`, `ml_rfm_runs`) in the caller's transaction, so they commit together or not at all.

// The row source `_rfm_pending_rows`, a C-level set-returning function.
#![allow(unsafe_code)]

use pgrx::prelude::*;

use cda_analytics_core::calendar::Day;
use cda_analytics_core::money::{div_round, format_minor};
use cda_analytics_core::rfm::{Breakpoints, Monetary, Ratio, SegmentRule, default_rules};

use super::{RfmRow, Scored};
use crate::toolbox::errors::*;
use crate::write::row_source::{InsertFrom, Picked};

use crate::toolbox::statement::{InsertRow, execute as run};
use crate::write::stored_rows::{Stored, Written, replace_changed};
use cda_analytics_core::stored::{Fingerprint, IdPrint};

/// The segment map: the rows of `rfm_segment_map` in priority order, or the default map when the
/// table is empty. The bool says whether the user's map is in use.
pub fn rules(ext: &str) -> (Vec<SegmentRule>, bool) {
    let sql = format!(
        "SELECT segment, r_min, r_max, f_min, f_max, m_min, m_max FROM {ext}.rfm_segment_map ORDER BY priority"
    );
    let rules = Spi::connect(|c| {
        let mut out = Vec::new();
        for row in c.select(&sql, None, &[])? {
            let score = |name: &str| -> Result<u8, pgrx::spi::SpiError> {
                Ok(row.get_by_name::<i16, _>(name)?.unwrap_or(0) as u8)
            };
            out.push(SegmentRule {
                name: row.get_by_name::<String, _>("segment")?.unwrap_or_default(),
                r: (score("r_min")?, score("r_max")?),
                f: (score("f_min")?, score("f_max")?),
                m: (score("m_min")?, score("m_max")?),
            });
        }
        Ok::<_, pgrx::spi::SpiError>(out)
    })
    .or_raise("reading rfm_segment_map");
    if rules.is_empty() {
        (default_rules(), false)
    } else {
        (rules, true)
    }
}

/// The stored row's format; see `cda_analytics_core::stored::Fingerprint::new`.
const FINGERPRINT_VERSION: u8 = 1;

/// Each row's `(user id, fingerprint)`, computed side by side. Calls nothing in PostgreSQL, so
/// that it can run on the worker threads.
pub fn fingerprints(rows: &[RfmRow], as_of: Day, scale: u32) -> Vec<IdPrint> {
    use rayon::prelude::*;
    rows.par_iter()
        .with_min_len(4096)
        .map(|r| (r.user_id, fingerprint(r, as_of, scale)))
        .collect()
}

/// The fingerprint of everything a stored RFM row holds (the last order's day rather than the
/// recency, which moves with the as-of day).
fn fingerprint(r: &RfmRow, as_of: Day, scale: u32) -> [u8; 16] {
    Fingerprint::new(FINGERPRINT_VERSION, scale)
        .i64(r.user_id)
        .opt_i64(last_order(r, as_of).map(i64::from))
        .i64(r.frequency)
        .i64(r.revenue)
        .opt_i64(r.monetary)
        .opt_i64(
            r.scores
                .map(|[a, b, c]| i64::from(a) * 100 + i64::from(b) * 10 + i64::from(c)),
        )
        .bytes(r.segment.as_bytes())
        .finish()
}

fn last_order(r: &RfmRow, as_of: Day) -> Option<i32> {
    r.recency_days.map(|d| as_of.0 - d)
}

/// Makes `ml_user_rfm_rows` hold `rows`, rewriting only the rows whose stored values changed
/// (`crate::write::stored_rows`). The rows reach the INSERT through `_rfm_pending_rows`, which reads them
/// from this backend's memory with numerics built in their storage format (`crate::write::row_source`), as
/// the LTV refresh writes: an `unnest` of nine arrays, with a numeric multiplication and a text
/// concatenation per row, cost more than the INSERT.
pub fn replace(
    ext: &str,
    rows: &[RfmRow],
    new: &[IdPrint],
    stored: Stored,
    as_of: Day,
    scale: u32,
) -> Written {
    replace_changed(ext, "ml_user_rfm_rows", stored, new, |pick| {
        let pending = Pending {
            rows: Picked::new(rows, new, pick),
            as_of,
            scale,
        };
        crate::write::row_source::park(pending, |token| {
            let sql = InsertFrom::new(
                &format!("{ext}.ml_user_rfm_rows"),
                &format!("{ext}._rfm_pending_rows"),
                row::COLUMNS,
            )
            .sql();
            run(&sql, &[token.into()], "writing ml_user_rfm_rows");
        });
    })
}

/// Points `ml_user_rfm` at the run that wrote the rows.
pub fn set_as_of(ext: &str, as_of: Day, run_id: i64) {
    run(
        &format!(
            "INSERT INTO {ext}.ml_rfm_as_of (as_of_date, run_id) VALUES (DATE '2000-01-01' + $1, $2) \
             ON CONFLICT (singleton) DO UPDATE SET as_of_date = excluded.as_of_date, run_id = excluded.run_id"
        ),
        &[as_of.0.into(), run_id.into()],
        "writing ml_rfm_as_of",
    );
}

/// The rows being written, parked by [`replace`] for `_rfm_pending_rows`.
#[derive(Clone, Copy)]
struct Pending {
    rows: Picked<RfmRow>,
    as_of: Day,
    scale: u32,
}

row_columns! {
    /// The columns of `_rfm_pending_rows`, which are `ml_user_rfm_rows`'s.
    mod row {
        user_id: INT8OID,
        fingerprint: BYTEAOID,
        last_order_date: DATEOID,
        frequency: INT4OID,
        revenue: NUMERICOID,
        monetary: NUMERICOID,
        r_score: INT2OID,
        f_score: INT2OID,
        m_score: INT2OID,
        rfm_cell: TEXTOID,
        segment: TEXTOID,
    }
}

v1_finfo!(pg_finfo_cda_rfm_pending_rows);
/// `_rfm_pending_rows(token)`: the rows [`replace`] is writing, as the columns of
/// `ml_user_rfm_rows`, in materialize mode.
///
/// # Safety
/// Called by the executor as the set-returning `_rfm_pending_rows(token)`.
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_rfm_pending_rows(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: as the caller vouches.
    let (Pending { rows, as_of, scale }, mut out) = unsafe {
        crate::write::row_source::row_source::<Pending>(
            fcinfo,
            "_rfm_pending_rows",
            "calculate_all_rfm()",
            row::COLUMNS,
        )
    };
    let put = |r: &RfmRow, print: &[u8; 16]| {
        out.int8(row::user_id, r.user_id);
        out.bytea(row::fingerprint, Some(print));
        out.date(row::last_order_date, last_order(r, as_of).map(Day));
        out.int4(
            row::frequency,
            Some(r.frequency.min(i64::from(i32::MAX)) as i32),
        );
        out.numeric(row::revenue, Some(r.revenue), scale);
        out.numeric(row::monetary, r.monetary, scale);
        for (k, col) in [row::r_score, row::f_score, row::m_score]
            .into_iter()
            .enumerate()
        {
            out.int2(col, r.scores.map(|s| i16::from(s[k])));
        }
        let cell = r.scores.map(|[a, b, c]| [b'0' + a, b'0' + b, b'0' + c]);
        out.text(row::rfm_cell, cell.as_ref().map(|c| &c[..]));
        out.text(row::segment, Some(r.segment.as_bytes()));
        out.put();
    };
    // SAFETY: replace keeps the rows alive and unchanged while its INSERT, the only caller with
    // the token, runs.
    unsafe { rows.for_each(put) };
    pg_sys::Datum::from(0usize)
}

/// A monetary breakpoint as a number: exact for totals, to two more places than the amounts for
/// averages (the stored fraction is what later scoring uses).
fn shown(r: &Ratio, scale: u32) -> String {
    if r.den == 1 {
        format_minor(r.num as i128, scale)
    } else {
        format_minor(div_round(r.num as i128 * 100, r.den as i128), scale + 2)
    }
}

/// Appends the run to `ml_rfm_runs` and returns its id.
pub fn record_run(
    ext: &str,
    as_of: Day,
    mode: Monetary,
    scored: &Scored,
    scale: u32,
    elapsed: std::time::Duration,
    written: Written,
) -> i64 {
    let bp = &scored.breakpoints;
    let customers = scored.rows.iter().filter(|r| r.scores.is_some()).count() as i64;
    let mut row = InsertRow::default();
    row.arg_as("as_of_date", as_of.0, "DATE '2000-01-01' + {}")
        .arg("monetary", mode.name().to_string())
        .arg("users", scored.rows.len() as i64)
        .arg("customers_scored", customers)
        .arg("users_without_orders", scored.rows.len() as i64 - customers)
        .arg("recency_breakpoints", bp.recency.to_vec())
        .arg("frequency_breakpoints", bp.frequency.to_vec())
        .arg_as(
            "monetary_breakpoints",
            bp.monetary
                .iter()
                .map(|m| m.map(|r| shown(&r, scale)))
                .collect::<Vec<Option<String>>>(),
            "{}::pg_catalog.numeric[]",
        )
        .arg(
            "monetary_breakpoint_num",
            bp.monetary
                .iter()
                .map(|m| m.map(|r| r.num))
                .collect::<Vec<Option<i64>>>(),
        )
        .arg(
            "monetary_breakpoint_den",
            bp.monetary
                .iter()
                .map(|m| m.map(|r| r.den))
                .collect::<Vec<Option<i64>>>(),
        )
        .arg(
            "segment_map",
            match scored.custom_map {
                true => "rfm_segment_map",
                false => "default",
            }
            .to_string(),
        )
        .arg("duration_ms", elapsed.as_secs_f64() * 1e3)
        .arg("rows_written", written.rows_written as i64)
        .arg("rows_removed", written.rows_removed as i64);
    let (sql, args) = row.statement(&format!("{ext}.ml_rfm_runs"), " RETURNING run_id");
    let id = Spi::connect_mut(|c| c.update(&sql, None, &args)?.first().get::<i64>(1))
        .or_raise("recording the RFM run");
    id.unwrap_or_default()
}

pub struct StoredRun {
    pub run_id: i64,
    pub mode: Monetary,
    pub breakpoints: Breakpoints,
}

/// The breakpoints of the latest run, for scoring one user.
pub fn latest_run(ext: &str) -> StoredRun {
    let sql = format!(
        "SELECT run_id, monetary, recency_breakpoints, frequency_breakpoints, monetary_breakpoint_num, \
             monetary_breakpoint_den FROM {ext}.ml_rfm_runs ORDER BY run_id DESC LIMIT 1"
    );
    let found = Spi::connect(|c| {
        let t = c.select(&sql, None, &[])?;
        if t.is_empty() {
            return Ok(None);
        }
        let row = t.first();
        let four = |v: Option<Vec<Option<i64>>>| -> [Option<i64>; 4] {
            let v = v.unwrap_or_default();
            std::array::from_fn(|i| v.get(i).copied().flatten())
        };
        let recency: Vec<Option<i32>> = row.get_by_name("recency_breakpoints")?.unwrap_or_default();
        let num = four(row.get_by_name("monetary_breakpoint_num")?);
        let den = four(row.get_by_name("monetary_breakpoint_den")?);
        Ok::<_, pgrx::spi::SpiError>(Some(StoredRun {
            run_id: row.get_by_name::<i64, _>("run_id")?.unwrap_or_default(),
            mode: Monetary::parse(
                &row.get_by_name::<String, _>("monetary")?
                    .unwrap_or_default(),
            )
            .unwrap_or(Monetary::Total),
            breakpoints: Breakpoints {
                recency: std::array::from_fn(|i| recency.get(i).copied().flatten()),
                frequency: four(row.get_by_name("frequency_breakpoints")?),
                monetary: std::array::from_fn(|i| match (num[i], den[i]) {
                    (Some(num), Some(den)) if den > 0 => Some(Ratio { num, den }),
                    _ => None,
                }),
            },
        }))
    })
    .or_raise("reading ml_rfm_runs");
    match found {
        Some(r) => r,
        None => raise(
            ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "no RFM run to score against: ml_rfm_runs is empty",
            Some("Scores are quintiles of the whole customer base; run SELECT calculate_all_rfm(); first.".into()),
        ),
    }
}
