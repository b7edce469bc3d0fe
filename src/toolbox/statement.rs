//! Writing statements run through SPI in the caller's transaction, and rows to insert built
//! column by column.

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

use super::errors::*;

/// Runs one writing statement; an SPI failure becomes an error that says what was being done.
pub fn execute(sql: &str, args: &[DatumWithOid<'_>], doing: &str) {
    Spi::connect_mut(|c| c.update(sql, None, args).map(|_| ())).or_raise(doing);
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

    /// The statement that inserts the row into `table` (schema-qualified, with an alias if
    /// `set` uses one) or, when a row with the same `key` exists, updates every other column to
    /// the new row's value; `set` gives other expressions for some columns (by name) and sets
    /// more (`column = expression`). Then `tail` (a RETURNING clause, say); and its parameters.
    pub fn upsert(
        self,
        table: &str,
        key: &str,
        set: &[(&str, &str)],
        tail: &str,
    ) -> (String, Vec<DatumWithOid<'a>>) {
        let mut updates: Vec<String> = self
            .columns
            .iter()
            .filter(|c| c.as_str() != key)
            .map(|c| match set.iter().find(|(name, _)| name == c) {
                Some((_, expr)) => format!("{c} = {expr}"),
                None => format!("{c} = excluded.{c}"),
            })
            .collect();
        for (name, expr) in set {
            if !self.columns.iter().any(|c| c == name) {
                updates.push(format!("{name} = {expr}"));
            }
        }
        let conflict = format!(
            " ON CONFLICT ({key}) DO UPDATE SET {}{tail}",
            updates.join(", ")
        );
        self.statement(table, &conflict)
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
