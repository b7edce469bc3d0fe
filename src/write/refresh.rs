//! What every refresh of a results table does the same way: run its statements in the caller's
//! transaction, and take the table's lock before reading the source.

use pgrx::datum::DatumWithOid;

use pgrx::prelude::*;

use crate::toolbox::errors::*;

/// Runs one writing statement; an SPI failure becomes an error that says what was being done.
pub fn execute(sql: &str, args: &[DatumWithOid<'_>], doing: &str) {
    Spi::connect_mut(|c| c.update(sql, None, args).map(|_| ())).or_raise(doing);
}

/// Serialises refreshes of `table` (in the extension's schema `ext`): SHARE ROW EXCLUSIVE
/// conflicts with itself and with writers, but not with readers, who keep reading the previous
/// results while a refresh runs. Taken before the refresh reads its source, so a refresh that
/// waited for another reads what that one committed instead of overwriting it with older results.
pub fn lock(ext: &str, table: &str) {
    execute(
        &format!("LOCK TABLE {ext}.{table} IN SHARE ROW EXCLUSIVE MODE"),
        &[],
        &format!("locking {table}"),
    );
}
