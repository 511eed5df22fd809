//! The `meta` table: the store's schema version and chain (genesis hash), the last block applied,
//! and values kept as JSON (the prices billing uses, see [`super::prices`]).

use tfgrid_types::Hash32;

use crate::error::Error;
use crate::schema::SCHEMA_VERSION;
use crate::store::Sql;

/// Where the index stands: the last block applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indexed {
    pub height: u64,
    pub hash: String,
    pub timestamp_ms: u64,
}

fn meta(sql: &mut dyn Sql, key: &str) -> Result<Option<String>, Error> {
    match sql.query_opt("SELECT value FROM meta WHERE key = $1", &[key.into()])? {
        Some(row) => row.opt_str(0),
        None => Ok(None),
    }
}

fn set_meta(sql: &mut dyn Sql, key: &str, value: String) -> Result<(), Error> {
    sql.execute(
        "INSERT INTO meta (key, value) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[key.into(), value.into()],
    )?;
    Ok(())
}

fn parse_meta<T: std::str::FromStr>(key: &str, v: Option<String>) -> Result<Option<T>, Error> {
    v.map(|s| {
        s.parse()
            .map_err(|_| Error::Store(format!("meta {key} is not a number: {s:?}")))
    })
    .transpose()
}

/// The last block applied, if any.
pub fn indexed(sql: &mut dyn Sql) -> Result<Option<Indexed>, Error> {
    let Some(height) = parse_meta("last_height", meta(sql, "last_height")?)? else {
        return Ok(None);
    };
    Ok(Some(Indexed {
        height,
        hash: meta(sql, "last_hash")?.unwrap_or_default(),
        timestamp_ms: parse_meta("last_timestamp_ms", meta(sql, "last_timestamp_ms")?)?
            .unwrap_or(0),
    }))
}

/// Records `last` as the last block applied.
pub(super) fn set_indexed(sql: &mut dyn Sql, last: &Indexed) -> Result<(), Error> {
    set_meta(sql, "last_height", last.height.to_string())?;
    set_meta(sql, "last_hash", last.hash.clone())?;
    set_meta(sql, "last_timestamp_ms", last.timestamp_ms.to_string())
}

/// Binds the store to one chain (by genesis hash) and one schema version; refuses any other.
pub fn bind_chain(sql: &mut dyn Sql, genesis: &Hash32) -> Result<(), Error> {
    match meta(sql, "schema_version")? {
        None => set_meta(sql, "schema_version", SCHEMA_VERSION.into())?,
        Some(v) if v == SCHEMA_VERSION => {}
        Some(v) => {
            return Err(Error::Store(format!(
                "the store has schema version {v}, this program writes {SCHEMA_VERSION}"
            )));
        }
    }
    let genesis = genesis.to_string();
    match meta(sql, "genesis_hash")? {
        None => set_meta(sql, "genesis_hash", genesis),
        Some(stored) if stored == genesis => Ok(()),
        Some(stored) => Err(Error::OtherChain {
            stored,
            chain: genesis,
        }),
    }
}

/// Whether `key` holds a value.
pub(super) fn is_set(sql: &mut dyn Sql, key: &str) -> Result<bool, Error> {
    Ok(meta(sql, key)?.is_some())
}

/// A value kept as JSON, if set.
pub(super) fn meta_json<T: serde::de::DeserializeOwned>(
    sql: &mut dyn Sql,
    key: &str,
) -> Result<Option<T>, Error> {
    meta(sql, key)?
        .map(|v| serde_json::from_str(&v).map_err(|e| Error::Store(format!("meta {key}: {e}"))))
        .transpose()
}

pub(super) fn set_meta_json(
    sql: &mut dyn Sql,
    key: &str,
    value: &impl serde::Serialize,
) -> Result<(), Error> {
    let text =
        serde_json::to_string(value).map_err(|e| Error::Store(format!("meta {key}: {e}")))?;
    set_meta(sql, key, text)
}
