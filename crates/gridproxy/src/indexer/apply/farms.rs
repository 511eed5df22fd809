//! Farms and their public IPs: `FarmStored`/`FarmUpdated` upsert the `farms` row and replace the
//! farm's `public_ips`; the payout address, certification and dedication events change one column.
//! A farm's free and total IP counts are recounted once per block for the farms it touched.

use tfchain_runtime::types::{Farm, FarmCertification};
use tfgrid_types::FarmId;

use super::{Ctx, debug_name};
use crate::error::Error;
use crate::store::{Sql, int};

/// `FarmStored`, `FarmUpdated`.
pub(super) fn stored(ctx: &mut Ctx, sql: &mut dyn Sql, f: &Farm) -> Result<(), Error> {
    sql.execute(
        "INSERT INTO farms (farm_id, name, twin_id, pricing_policy_id, certification, \
         dedicated, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (farm_id) DO UPDATE SET name = excluded.name, \
         twin_id = excluded.twin_id, pricing_policy_id = excluded.pricing_policy_id, \
         certification = excluded.certification, dedicated = excluded.dedicated",
        &[
            f.id.into(),
            f.name.as_str().into(),
            f.twin_id.into(),
            f.pricing_policy_id.into(),
            debug_name(&f.certification).into(),
            f.dedicated_farm.into(),
            ctx.now()?,
        ],
    )?;
    sql.execute("DELETE FROM public_ips WHERE farm_id = $1", &[f.id.into()])?;
    for ip in &f.public_ips {
        sql.execute(
            "INSERT INTO public_ips (farm_id, ip, gateway, contract_id) \
             VALUES ($1, $2, $3, $4)",
            &[
                f.id.into(),
                ip.ip.as_str().into(),
                ip.gateway.as_str().into(),
                int("contract id", ip.contract_id)?,
            ],
        )?;
    }
    // A farm created with its IPs: count them as for IPs added later.
    ctx.touched_farms.insert(f.id);
    Ok(())
}

/// `FarmPayoutV2AddressRegistered`.
pub(super) fn payout_address(
    sql: &mut dyn Sql,
    farm_id: FarmId,
    address: &str,
) -> Result<(), Error> {
    sql.execute(
        "UPDATE farms SET stellar_address = $2 WHERE farm_id = $1",
        &[farm_id.into(), address.into()],
    )?;
    Ok(())
}

/// `FarmCertificationSet`.
pub(super) fn certification(
    sql: &mut dyn Sql,
    farm_id: FarmId,
    certification: &FarmCertification,
) -> Result<(), Error> {
    sql.execute(
        "UPDATE farms SET certification = $2 WHERE farm_id = $1",
        &[farm_id.into(), debug_name(certification).into()],
    )?;
    Ok(())
}

/// `FarmMarkedAsDedicated`.
pub(super) fn dedicated(sql: &mut dyn Sql, farm_id: FarmId, dedicated: bool) -> Result<(), Error> {
    sql.execute(
        "UPDATE farms SET dedicated = $2 WHERE farm_id = $1",
        &[farm_id.into(), dedicated.into()],
    )?;
    Ok(())
}

/// Recounts a farm's free and total public IPs, at the end of a block that touched them.
pub(super) fn count_ips(sql: &mut dyn Sql, farm_id: FarmId) -> Result<(), Error> {
    sql.execute(
        "UPDATE farms SET \
         free_ips = (SELECT COUNT(*) FROM public_ips p WHERE p.farm_id = $1 AND p.contract_id = 0), \
         total_ips = (SELECT COUNT(*) FROM public_ips p WHERE p.farm_id = $1) \
         WHERE farm_id = $1",
        &[farm_id.into()],
    )?;
    Ok(())
}
