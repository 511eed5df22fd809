//! PostgreSQL through the synchronous `postgres` client: one writer connection and a few readers,
//! each read a REPEATABLE READ, READ ONLY transaction (one snapshot). Values are bound by the type
//! the server infers for each parameter, so the portable SQL needs no casts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use postgres::types::{ToSql, Type};
use postgres::{IsolationLevel, NoTls, Statement};

use super::{Row, Sql, Store, Value};
use crate::error::Error;
use crate::limits::{READ_CONNECTIONS, STATEMENTS_CACHED_MAX};
use crate::schema::SCHEMA;

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        Error::Store(match e.as_db_error() {
            Some(db) => format!("postgres: {}", db.message()),
            None => format!("postgres: {e}"),
        })
    }
}

struct Conn {
    client: postgres::Client,
    statements: HashMap<String, Statement>,
}

/// A PostgreSQL database holding the index.
pub struct Postgres {
    writer: Mutex<Option<Conn>>,
    readers: Vec<Mutex<Option<Conn>>>,
    next_reader: AtomicUsize,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres").finish_non_exhaustive()
    }
}

impl Postgres {
    /// Connects to `url` (`postgres://user@host:port/db`) and creates the tables. Blocks: call it
    /// outside async code.
    pub fn open(url: &str) -> Result<Postgres, Error> {
        let connect = || -> Result<Conn, Error> {
            Ok(Conn {
                client: postgres::Client::connect(url, NoTls)?,
                statements: HashMap::new(),
            })
        };
        let mut writer = connect()?;
        writer.client.batch_execute(SCHEMA)?;
        let readers = (0..READ_CONNECTIONS)
            .map(|_| connect().map(|c| Mutex::new(Some(c))))
            .collect::<Result<_, _>>()?;
        Ok(Postgres {
            writer: Mutex::new(Some(writer)),
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }
}

impl Drop for Postgres {
    /// The client blocks on its own runtime when it closes; do that on a plain thread, so dropping
    /// the store inside async code cannot panic.
    fn drop(&mut self) {
        let mut conns: Vec<Conn> = Vec::new();
        for m in std::iter::once(&self.writer).chain(&self.readers) {
            if let Some(c) = m.lock().unwrap_or_else(|e| e.into_inner()).take() {
                conns.push(c);
            }
        }
        let _ = std::thread::spawn(move || drop(conns)).join();
    }
}

fn with_conn<T>(
    m: &Mutex<Option<Conn>>,
    f: impl FnOnce(&mut Conn) -> Result<T, Error>,
) -> Result<T, Error> {
    let mut guard = m.lock().unwrap_or_else(|e| e.into_inner());
    let conn = guard
        .as_mut()
        .ok_or_else(|| Error::Store("the store is closed".into()))?;
    f(conn)
}

impl Store for Postgres {
    fn write(&self, f: &mut dyn FnMut(&mut dyn Sql) -> Result<(), Error>) -> Result<(), Error> {
        with_conn(&self.writer, |conn| {
            let tx = conn.client.transaction()?;
            let mut sql = PgTx {
                tx,
                statements: &mut conn.statements,
            };
            f(&mut sql)?;
            sql.tx.commit()?;
            Ok(())
        })
    }

    fn read(&self, f: &mut dyn FnMut(&mut dyn Sql) -> Result<(), Error>) -> Result<(), Error> {
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        with_conn(&self.readers[i], |conn| {
            let tx = conn
                .client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let mut sql = PgTx {
                tx,
                statements: &mut conn.statements,
            };
            f(&mut sql)?;
            sql.tx.commit()?;
            Ok(())
        })
    }
}

struct PgTx<'a> {
    tx: postgres::Transaction<'a>,
    statements: &'a mut HashMap<String, Statement>,
}

impl PgTx<'_> {
    fn statement(&mut self, sql: &str) -> Result<Statement, Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let stmt = self.tx.prepare(sql)?;
        if self.statements.len() >= STATEMENTS_CACHED_MAX {
            self.statements.clear();
        }
        self.statements.insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }

    /// Each value as the type the server expects for its parameter.
    fn bind(stmt: &Statement, params: &[Value]) -> Result<Vec<Box<dyn ToSql + Sync>>, Error> {
        if stmt.params().len() != params.len() {
            return Err(Error::Store(format!(
                "{} parameters given to a statement with {}",
                params.len(),
                stmt.params().len()
            )));
        }
        stmt.params()
            .iter()
            .zip(params)
            .map(|(ty, v)| -> Result<Box<dyn ToSql + Sync>, Error> {
                let mismatch = || Error::Store(format!("cannot bind {v:?} as {ty}"));
                Ok(match (v, ty) {
                    (Value::Int(i), &Type::INT8) => Box::new(*i),
                    (Value::Int(i), &Type::INT4) => {
                        Box::new(i32::try_from(*i).map_err(|_| mismatch())?)
                    }
                    (Value::Int(i), &Type::INT2) => {
                        Box::new(i16::try_from(*i).map_err(|_| mismatch())?)
                    }
                    (Value::Int(i), &Type::TEXT | &Type::VARCHAR) => Box::new(i.to_string()),
                    (Value::Text(t), &Type::TEXT | &Type::VARCHAR) => Box::new(t.clone()),
                    (Value::Null, &Type::INT8) => Box::new(None::<i64>),
                    (Value::Null, &Type::INT4) => Box::new(None::<i32>),
                    (Value::Null, &Type::TEXT | &Type::VARCHAR) => Box::new(None::<String>),
                    _ => return Err(mismatch()),
                })
            })
            .collect()
    }
}

impl Sql for PgTx<'_> {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, Error> {
        let stmt = self.statement(sql)?;
        let values = Self::bind(&stmt, params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|b| &**b).collect();
        Ok(self.tx.execute(&stmt, &refs)?)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, Error> {
        let stmt = self.statement(sql)?;
        let values = Self::bind(&stmt, params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|b| &**b).collect();
        let rows = self.tx.query(&stmt, &refs)?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| {
                        let ty = row.columns()[i].type_();
                        Ok(match *ty {
                            Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(Value::Int),
                            Type::INT4 => row
                                .try_get::<_, Option<i32>>(i)?
                                .map(|v| Value::Int(v.into())),
                            Type::INT2 => row
                                .try_get::<_, Option<i16>>(i)?
                                .map(|v| Value::Int(v.into())),
                            Type::BOOL => row
                                .try_get::<_, Option<bool>>(i)?
                                .map(|v| Value::Int(v.into())),
                            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                                row.try_get::<_, Option<String>>(i)?.map(Value::Text)
                            }
                            _ => {
                                return Err(Error::Store(format!(
                                    "column {i} has type {ty}, which the store does not read"
                                )));
                            }
                        }
                        .unwrap_or(Value::Null))
                    })
                    .collect::<Result<Vec<_>, Error>>()
                    .map(Row)
            })
            .collect()
    }
}
