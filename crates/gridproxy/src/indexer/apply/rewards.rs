//! Farming rewards: `FarmingRewardMinted` appends a `farming_rewards` row (node, farm, amount,
//! uptime), keyed by block and event index like bills.

use tfgrid_types::{Balance, FarmId, NodeId};

use super::Ctx;
use crate::error::Error;
use crate::store::{Sql, int};

/// `FarmingRewardMinted`, the `index`th event of its block.
pub(super) fn minted(
    ctx: &Ctx,
    sql: &mut dyn Sql,
    index: u64,
    node_id: NodeId,
    farm_id: FarmId,
    amount: Balance,
    uptime_percent: u16,
) -> Result<(), Error> {
    sql.execute(
        "INSERT INTO farming_rewards (block_height, event_index, node_id, farm_id, \
         amount, uptime_percent, timestamp_s) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            int("height", ctx.height)?,
            int("event index", index)?,
            node_id.into(),
            farm_id.into(),
            int("reward", amount)?,
            uptime_percent.into(),
            ctx.now()?,
        ],
    )?;
    Ok(())
}
