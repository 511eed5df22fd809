//! Bills: `ContractBilled` appends a `bills` row (keyed by block and event index, so a block
//! applied once bills once; with the seconds credited for the node's downtime) and adds the
//! amount to the owner twin's `consumption`. A bill of a
//! contract the index does not know is an error: it would mean a lost event.

use tfchain_runtime::types::DiscountLevel;
use tfgrid_types::{Balance, ContractId};

use super::{Ctx, debug_name};
use crate::error::Error;
use crate::store::{Sql, int};

/// A `ContractBilled` event's fields.
pub(super) struct Billed<'a> {
    pub contract_id: ContractId,
    pub timestamp_s: u64,
    pub discount_level: &'a DiscountLevel,
    pub amount_billed: Balance,
    pub credited_s: u64,
}

/// `ContractBilled`, the `index`th event of its block.
pub(super) fn billed(
    ctx: &Ctx,
    sql: &mut dyn Sql,
    index: u64,
    bill: Billed<'_>,
) -> Result<(), Error> {
    let Billed {
        contract_id,
        timestamp_s,
        discount_level,
        amount_billed,
        credited_s,
    } = bill;
    let amount = int("amount billed", amount_billed)?;
    let twin = sql
        .query_opt(
            "SELECT twin_id FROM contracts WHERE contract_id = $1",
            &[int("contract id", contract_id)?],
        )?
        .ok_or_else(|| Error::Store(format!("a bill of unknown contract {contract_id}")))?
        .i64(0)?;
    sql.execute(
        "INSERT INTO bills (block_height, event_index, contract_id, twin_id, \
         timestamp_s, amount_billed, discount_level, credited_s) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            int("height", ctx.height)?,
            int("event index", index)?,
            int("contract id", contract_id)?,
            twin.into(),
            int("bill time", timestamp_s)?,
            amount.clone(),
            debug_name(discount_level).into(),
            int("credited seconds", credited_s)?,
        ],
    )?;
    sql.execute(
        "INSERT INTO consumption (twin_id, total_billed, last_bill_s) \
         VALUES ($1, $2, $3) ON CONFLICT (twin_id) DO UPDATE SET \
         total_billed = consumption.total_billed + excluded.total_billed, \
         last_bill_s = excluded.last_bill_s",
        &[twin.into(), amount, int("bill time", timestamp_s)?],
    )?;
    Ok(())
}
