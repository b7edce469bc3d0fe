//! What every refresh of a results table does the same way: take the table's lock before
//! reading the source, and run its statements in the caller's transaction
//! (`crate::toolbox::statement`).

use crate::toolbox::statement::execute;

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
