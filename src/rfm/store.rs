//! The RFM tables: the user's segment map, and writing a run's results (`ml_user_rfm`,
//! `ml_rfm_runs`) in the caller's transaction, so they commit together or not at all.

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

use cda_analytics_core::calendar::Day;
use cda_analytics_core::money::{div_round, format_minor};
use cda_analytics_core::rfm::{Breakpoints, Monetary, Ratio, SegmentRule, default_rules};

use super::{RfmRow, Scored};
use crate::errors::*;

use crate::results::execute as run;

/// The segment map: the rows of `rfm_segment_map` in priority order, or the default map when the
/// table is empty. The bool says whether the user's map is in use.
pub fn rules(ext: &str) -> (Vec<SegmentRule>, bool) {
    let sql = format!(
        "SELECT segment, r_min, r_max, f_min, f_max, m_min, m_max FROM {ext}.rfm_segment_map ORDER BY priority"
    );
    let rules = Spi::connect(|c| {
        let mut out = Vec::new();
        for row in c.select(&sql, None, &[])? {
            let score = |i: usize| -> Result<u8, pgrx::spi::SpiError> {
                Ok(row.get::<i16>(i)?.unwrap_or(0) as u8)
            };
            out.push(SegmentRule {
                name: row.get::<String>(1)?.unwrap_or_default(),
                r: (score(2)?, score(3)?),
                f: (score(4)?, score(5)?),
                m: (score(6)?, score(7)?),
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

fn unit(scale: u32) -> AnyNumeric {
    match AnyNumeric::try_from(format_minor(1, scale).as_str()) {
        Ok(u) => u,
        Err(e) => raise(ERRCODE_INTERNAL_ERROR, format!("minor unit: {e}"), None),
    }
}

/// Replaces the contents of `ml_user_rfm`: DELETE rather than TRUNCATE, so concurrent readers
/// keep seeing the previous results until this commits.
pub fn replace(ext: &str, rows: &[RfmRow], as_of: Day, run_id: i64, scale: u32) {
    run(
        &format!("DELETE FROM {ext}.ml_user_rfm"),
        &[],
        "clearing ml_user_rfm",
    );
    let score = |i: usize| -> Vec<Option<i16>> {
        rows.iter().map(|r| r.scores.map(|s| s[i] as i16)).collect()
    };
    // Segments travel as indexes into the few distinct names, not as a million strings.
    let mut names: Vec<String> = Vec::new();
    let segment_index: Vec<i16> = rows
        .iter()
        .map(|r| {
            let i = match names.iter().position(|n| *n == r.segment) {
                Some(i) => i,
                None => {
                    names.push(r.segment.clone());
                    names.len() - 1
                }
            };
            (i + 1) as i16
        })
        .collect();
    let args: Vec<DatumWithOid<'_>> = vec![
        rows.iter().map(|r| r.user_id).collect::<Vec<i64>>().into(),
        rows.iter()
            .map(|r| r.recency_days)
            .collect::<Vec<Option<i32>>>()
            .into(),
        rows.iter()
            .map(|r| r.frequency)
            .collect::<Vec<i64>>()
            .into(),
        rows.iter().map(|r| r.revenue).collect::<Vec<i64>>().into(),
        rows.iter()
            .map(|r| r.monetary)
            .collect::<Vec<Option<i64>>>()
            .into(),
        score(0).into(),
        score(1).into(),
        score(2).into(),
        segment_index.into(),
        names.into(),
        unit(scale).into(),
        as_of.0.into(),
        run_id.into(),
    ];
    let sql = format!(
        "INSERT INTO {ext}.ml_user_rfm (user_id, recency_days, frequency, revenue, monetary, r_score, f_score, \
             m_score, rfm_cell, segment, as_of_date, run_id) \
         SELECT u, rd, f::pg_catalog.int4, r * $11, m * $11, rs, fs, ms, \
             CASE WHEN rs IS NOT NULL THEN rs::pg_catalog.text || fs::pg_catalog.text || ms::pg_catalog.text END, \
             ($10::pg_catalog.text[])[seg], DATE '2000-01-01' + $12, $13 \
         FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.int8[]), pg_catalog.unnest($2::pg_catalog.int4[]), \
             pg_catalog.unnest($3::pg_catalog.int8[]), pg_catalog.unnest($4::pg_catalog.int8[]), \
             pg_catalog.unnest($5::pg_catalog.int8[]), pg_catalog.unnest($6::pg_catalog.int2[]), \
             pg_catalog.unnest($7::pg_catalog.int2[]), pg_catalog.unnest($8::pg_catalog.int2[]), \
             pg_catalog.unnest($9::pg_catalog.int2[])) \
             AS t(u, rd, f, r, m, rs, fs, ms, seg)"
    );
    run(&sql, &args, "writing ml_user_rfm");
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
    started: std::time::Instant,
) -> i64 {
    let bp = &scored.breakpoints;
    let customers = scored.rows.iter().filter(|r| r.scores.is_some()).count() as i64;
    let args: Vec<DatumWithOid<'_>> = vec![
        as_of.0.into(),
        mode.name().to_string().into(),
        (scored.rows.len() as i64).into(),
        customers.into(),
        (scored.rows.len() as i64 - customers).into(),
        bp.recency.to_vec().into(),
        bp.frequency.to_vec().into(),
        bp.monetary
            .iter()
            .map(|m| m.map(|r| shown(&r, scale)))
            .collect::<Vec<Option<String>>>()
            .into(),
        bp.monetary
            .iter()
            .map(|m| m.map(|r| r.num))
            .collect::<Vec<Option<i64>>>()
            .into(),
        bp.monetary
            .iter()
            .map(|m| m.map(|r| r.den))
            .collect::<Vec<Option<i64>>>()
            .into(),
        (if scored.custom_map {
            "rfm_segment_map"
        } else {
            "default"
        })
        .to_string()
        .into(),
        (started.elapsed().as_secs_f64() * 1e3).into(),
    ];
    let sql = format!(
        "INSERT INTO {ext}.ml_rfm_runs (as_of_date, monetary, users, customers_scored, users_without_orders, \
             recency_breakpoints, frequency_breakpoints, monetary_breakpoints, monetary_breakpoint_num, \
             monetary_breakpoint_den, segment_map, duration_ms) \
         VALUES (DATE '2000-01-01' + $1, $2, $3, $4, $5, $6, $7, $8::pg_catalog.numeric[], $9, $10, $11, $12) \
         RETURNING run_id"
    );
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
        let recency: Vec<Option<i32>> = row.get(3)?.unwrap_or_default();
        let num = four(row.get(5)?);
        let den = four(row.get(6)?);
        Ok::<_, pgrx::spi::SpiError>(Some(StoredRun {
            run_id: row.get::<i64>(1)?.unwrap_or_default(),
            mode: Monetary::parse(&row.get::<String>(2)?.unwrap_or_default())
                .unwrap_or(Monetary::Total),
            breakpoints: Breakpoints {
                recency: std::array::from_fn(|i| recency.get(i).copied().flatten()),
                frequency: four(row.get(4)?),
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
