//! The `totals` table: grid-wide counters kept up to date event by event (active contracts and
//! workloads), so `/stats` reads them instead of counting.

use crate::error::Error;
use crate::store::Sql;

/// Counter of contracts not deleted.
pub const ACTIVE_CONTRACTS: &str = "active_contracts";
/// Counter of reported workloads, not deleted, of contracts not deleted.
pub const ACTIVE_WORKLOADS: &str = "active_workloads";

/// Adds `delta` to a grid-wide counter.
pub(super) fn add_total(sql: &mut dyn Sql, name: &str, delta: i64) -> Result<(), Error> {
    if delta != 0 {
        sql.execute(
            "INSERT INTO totals (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = totals.value + excluded.value",
            &[name.into(), delta.into()],
        )?;
    }
    Ok(())
}

/// A grid-wide counter.
pub fn total(sql: &mut dyn Sql, name: &str) -> Result<i64, Error> {
    match sql.query_opt("SELECT value FROM totals WHERE name = $1", &[name.into()])? {
        Some(row) => row.i64(0),
        None => Ok(0),
    }
}
