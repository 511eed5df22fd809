//! Twins: `TwinStored` and `TwinUpdated` upsert the `twins` row (account, relay, public key); the
//! creation time is the block's of the first event.

use tfchain_runtime::types::Twin;

use super::Ctx;
use crate::error::Error;
use crate::store::Sql;

/// `TwinStored`, `TwinUpdated`.
pub(super) fn stored(ctx: &Ctx, sql: &mut dyn Sql, t: &Twin) -> Result<(), Error> {
    sql.execute(
        "INSERT INTO twins (twin_id, account_id, relay, public_key, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (twin_id) DO UPDATE SET \
         account_id = excluded.account_id, relay = excluded.relay, \
         public_key = excluded.public_key",
        &[
            t.id.into(),
            t.account_id.to_string().into(),
            t.relay.clone().into(),
            t.pk.as_ref().map(hex::encode).into(),
            ctx.now()?,
        ],
    )?;
    Ok(())
}
