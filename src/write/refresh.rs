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

/// One row to insert, built column by column, so that each value stands next to the column it
/// goes to and the statement's column list, values and parameters cannot drift apart.
#[derive(Default)]
pub struct InsertRow<'a> {
    columns: Vec<String>,
    values: Vec<String>,
    args: Vec<DatumWithOid<'a>>,
}

impl<'a> InsertRow<'a> {
    /// `column` gets `value`, a parameter.
    pub fn arg(&mut self, column: &str, value: impl Into<DatumWithOid<'a>>) -> &mut Self {
        self.arg_as(column, value, "{}")
    }

    /// `column` gets `value`, a parameter, through `template`, in which `{}` stands for the
    /// parameter (for example `{}::pg_catalog.numeric`).
    pub fn arg_as(
        &mut self,
        column: &str,
        value: impl Into<DatumWithOid<'a>>,
        template: &str,
    ) -> &mut Self {
        self.args.push(value.into());
        let param = format!("${}", self.args.len());
        self.expr(column, &template.replace("{}", &param))
    }

    /// `column` gets the SQL expression `sql`.
    pub fn expr(&mut self, column: &str, sql: &str) -> &mut Self {
        self.columns.push(column.to_string());
        self.values.push(sql.to_string());
        self
    }

    /// The statement that inserts the row into `table` (schema-qualified), then `tail` (a
    /// RETURNING clause, say), and its parameters.
    pub fn statement(self, table: &str, tail: &str) -> (String, Vec<DatumWithOid<'a>>) {
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES ({}){tail}",
            self.columns.join(", "),
            self.values.join(", ")
        );
        (sql, self.args)
    }
}
