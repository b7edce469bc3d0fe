//! Streams a query's rows through a callback in batches, so memory stays bounded however many
//! rows the query returns.
//!
//! A cursor's fetched batch lives until the SPI connection that fetched it ends, so each batch
//! gets its own connection and the cursor is carried between them by name.

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiHeapTupleData;

use crate::errors::OrRaise;

pub const BATCH_ROWS: i64 = 50_000;

pub fn for_each_row<F>(sql: &str, args: &[DatumWithOid<'_>], mut f: F)
where
    F: FnMut(&SpiHeapTupleData<'_>),
{
    let name = Spi::connect(|c| {
        c.try_open_cursor(sql, args)
            .map(|cur| cur.detach_into_name())
    })
    .or_raise("opening a cursor over the source rows");
    loop {
        let more = Spi::connect(|c| -> Result<bool, pgrx::spi::SpiError> {
            let mut cursor = c.find_cursor(&name)?;
            let table = cursor.fetch(BATCH_ROWS)?;
            let n = table.len() as i64;
            for row in table {
                f(&row);
            }
            if n == BATCH_ROWS {
                cursor.detach_into_name();
                Ok(true)
            } else {
                // Dropping the cursor closes it.
                Ok(false)
            }
        })
        .or_raise("reading the source rows");
        if !more {
            break;
        }
    }
}

/// The same for a query known to return few rows (one user's orders): no cursor.
pub fn for_each_row_small<F>(sql: &str, args: &[DatumWithOid<'_>], mut f: F)
where
    F: FnMut(&SpiHeapTupleData<'_>),
{
    Spi::connect(|c| -> Result<(), pgrx::spi::SpiError> {
        for row in c.select(sql, None, args)? {
            f(&row);
        }
        Ok(())
    })
    .or_raise("reading the source rows");
}
