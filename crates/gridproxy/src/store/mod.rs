//! The store behind one trait: the indexer and the API speak portable SQL (`$1`-numbered parameters,
//! BIGINT and TEXT columns, `ON CONFLICT` upserts, `LIMIT`/`OFFSET`) through [`Sql`], so SQLite (here)
//! and PostgreSQL can both carry them. Every write is one transaction; every read is one snapshot.

mod postgres;
mod sqlite;

pub use postgres::Postgres;
pub use sqlite::Sqlite;

use crate::error::Error;

/// A value bound to or read from SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(v.into())
    }
}
impl From<u16> for Value {
    fn from(v: u16) -> Self {
        Value::Int(v.into())
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(v.into())
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Converts an unsigned chain value to the store's signed 64-bit integers.
pub fn int(what: &'static str, v: impl TryInto<i64> + ToString + Copy) -> Result<Value, Error> {
    v.try_into().map(Value::Int).map_err(|_| Error::Overflow {
        what,
        value: v.to_string(),
    })
}

/// One result row, read by column index.
#[derive(Debug, Clone)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn value(&self, i: usize) -> Result<&Value, Error> {
        self.0
            .get(i)
            .ok_or_else(|| Error::Store(format!("no column {i}")))
    }

    pub fn i64(&self, i: usize) -> Result<i64, Error> {
        match self.value(i)? {
            Value::Int(v) => Ok(*v),
            Value::Null => Ok(0),
            Value::Text(t) => Err(Error::Store(format!("column {i} is text {t:?}"))),
        }
    }

    pub fn u64(&self, i: usize) -> Result<u64, Error> {
        let v = self.i64(i)?;
        u64::try_from(v).map_err(|_| Error::Store(format!("column {i} is negative: {v}")))
    }

    pub fn bool(&self, i: usize) -> Result<bool, Error> {
        Ok(self.i64(i)? != 0)
    }

    pub fn opt_str(&self, i: usize) -> Result<Option<String>, Error> {
        match self.value(i)? {
            Value::Text(t) => Ok(Some(t.clone())),
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(v.to_string())),
        }
    }

    pub fn str(&self, i: usize) -> Result<String, Error> {
        Ok(self.opt_str(i)?.unwrap_or_default())
    }

    pub fn opt_i64(&self, i: usize) -> Result<Option<i64>, Error> {
        match self.value(i)? {
            Value::Null => Ok(None),
            _ => self.i64(i).map(Some),
        }
    }
}

/// SQL inside one transaction.
pub trait Sql {
    /// Runs a statement; returns the rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, Error>;
    /// Runs a query; returns all its rows.
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, Error>;

    /// The first row, if any.
    fn query_opt(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, Error> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first column of the first row, which must exist.
    fn query_i64(&mut self, sql: &str, params: &[Value]) -> Result<i64, Error> {
        self.query_opt(sql, params)?
            .ok_or_else(|| Error::Store(format!("no row from {sql}")))?
            .i64(0)
    }
}

/// A database holding the index.
pub trait Store: Send + Sync + 'static {
    /// Runs `f` in one write transaction, committed only if `f` succeeds.
    fn write(&self, f: &mut dyn FnMut(&mut dyn Sql) -> Result<(), Error>) -> Result<(), Error>;
    /// Runs `f` in one read transaction: everything it reads comes from one committed state.
    fn read(&self, f: &mut dyn FnMut(&mut dyn Sql) -> Result<(), Error>) -> Result<(), Error>;
}

/// Reads a value from one snapshot of `store`.
pub fn read<T>(
    store: &dyn Store,
    mut f: impl FnMut(&mut dyn Sql) -> Result<T, Error>,
) -> Result<T, Error> {
    let mut out = None;
    store.read(&mut |sql| {
        out = Some(f(sql)?);
        Ok(())
    })?;
    out.ok_or_else(|| Error::Store("read produced nothing".into()))
}

/// Writes in one transaction of `store`, returning what `f` returns.
pub fn write<T>(
    store: &dyn Store,
    mut f: impl FnMut(&mut dyn Sql) -> Result<T, Error>,
) -> Result<T, Error> {
    let mut out = None;
    store.write(&mut |sql| {
        out = Some(f(sql)?);
        Ok(())
    })?;
    out.ok_or_else(|| Error::Store("write produced nothing".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_bind_by_number_and_writes_are_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("t.db")).unwrap();
        write(&store, |sql| {
            sql.execute(
                "INSERT INTO meta (key, value) VALUES ($2, $1)",
                &["one".into(), "k".into()],
            )
        })
        .unwrap();
        // A failing write leaves nothing behind.
        let failed = write(&store, |sql| {
            sql.execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2)",
                &["k2".into(), "two".into()],
            )?;
            Err::<(), _>(Error::Store("boom".into()))
        });
        assert!(failed.is_err());
        let rows = read(&store, |sql| {
            sql.query("SELECT key, value FROM meta ORDER BY key", &[])
        })
        .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].str(0).unwrap(), "k");
        assert_eq!(rows[0].str(1).unwrap(), "one");
        // A parameter count that does not match the statement is an error, not a silent NULL.
        let err = read(&store, |sql| {
            sql.query("SELECT value FROM meta WHERE key = $1", &[])
        })
        .unwrap_err();
        assert!(err.to_string().contains("parameters"), "{err}");
    }
}
