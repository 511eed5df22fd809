//! SQLite in WAL mode: one writer connection, a few readers that never wait for it. Parameters
//! `$1`..`$n` are bound by name, so a statement may use them in any order or more than once.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rusqlite::types::ValueRef;

use super::{Row, Sql, Store, Value};
use crate::error::Error;
use crate::limits::READ_CONNECTIONS;
use crate::schema::SCHEMA;

/// SQLite in WAL mode: one writer connection, a few readers that never wait for it.
#[derive(Debug)]
pub struct Sqlite {
    writer: Mutex<rusqlite::Connection>,
    readers: Vec<Mutex<rusqlite::Connection>>,
    next_reader: AtomicUsize,
}

impl Sqlite {
    /// Opens (or creates) the database file and its tables.
    pub fn open(path: &Path) -> Result<Sqlite, Error> {
        let open = || -> Result<rusqlite::Connection, Error> {
            let conn = rusqlite::Connection::open(path)?;
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            // A commit is durable in the WAL; checkpoints make it durable in the file.
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.pragma_update(None, "foreign_keys", "OFF")?;
            Ok(conn)
        };
        let writer = open()?;
        // The one dialect difference: in SQLite an `INTEGER PRIMARY KEY` is the row id (64 bits, as
        // BIGINT), so rows are stored in id order and looked up without a second index.
        writer.execute_batch(&SCHEMA.replace("BIGINT PRIMARY KEY", "INTEGER PRIMARY KEY"))?;
        let readers = (0..READ_CONNECTIONS)
            .map(|_| open().map(Mutex::new))
            .collect::<Result<_, _>>()?;
        Ok(Sqlite {
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }
}

fn lock(m: &Mutex<rusqlite::Connection>) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
    // A panic while holding a connection leaves no open transaction behind (it rolls back on drop).
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Store for Sqlite {
    fn write(&self, f: &mut dyn FnMut(&mut dyn Sql) -> Result<(), Error>) -> Result<(), Error> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut sql = SqliteTx(&tx);
        f(&mut sql)?;
        tx.commit()?;
        Ok(())
    }

    fn read(&self, f: &mut dyn FnMut(&mut dyn Sql) -> Result<(), Error>) -> Result<(), Error> {
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let mut conn = lock(&self.readers[i]);
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Deferred)?;
        let mut sql = SqliteTx(&tx);
        f(&mut sql)?;
        tx.finish()?;
        Ok(())
    }
}

struct SqliteTx<'a>(&'a rusqlite::Transaction<'a>);

impl SqliteTx<'_> {
    /// Binds `$1`..`$n` by name, so the numbering need not follow the order of appearance.
    fn prepare(&self, sql: &str, params: &[Value]) -> Result<rusqlite::CachedStatement<'_>, Error> {
        let mut stmt = self.0.prepare_cached(sql)?;
        for (n, value) in params.iter().enumerate() {
            let name = format!("${}", n + 1);
            let Some(index) = stmt.parameter_index(&name)? else {
                return Err(Error::Store(format!("{name} is not used in {sql}")));
            };
            match value {
                Value::Null => stmt.raw_bind_parameter(index, rusqlite::types::Null)?,
                Value::Int(v) => stmt.raw_bind_parameter(index, v)?,
                Value::Text(t) => stmt.raw_bind_parameter(index, t)?,
            }
        }
        if stmt.parameter_count() != params.len() {
            return Err(Error::Store(format!(
                "{} parameters given to {sql}, which has {}",
                params.len(),
                stmt.parameter_count()
            )));
        }
        Ok(stmt)
    }
}

impl Sql for SqliteTx<'_> {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, Error> {
        let mut stmt = self.prepare(sql, params)?;
        Ok(stmt.raw_execute()? as u64)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, Error> {
        let mut stmt = self.prepare(sql, params)?;
        let columns = stmt.column_count();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match row.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Int(v),
                    ValueRef::Real(v) => Value::Int(v as i64),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Text(hex::encode(b)),
                });
            }
            out.push(Row(values));
        }
        Ok(out)
    }
}
