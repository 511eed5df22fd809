//! The checks a plan makes before anything is created, pure: whether the node the file names has
//! room for the project beside its other contracts (counted as the node counts it, so a node that
//! passes does not refuse), which of the nodes the explorer found has room for a group beside what
//! the plan put there already, and whether the account can pay an hour of what the project asks.

use tfchain_runtime::types::Resources;
use tfgrid_types::Balance;
use tfgrid_types::capacity::free;
use tfgrid_types::deployment::Capacity;

use std::collections::BTreeMap;

use tfgrid_types::NodeId;

use crate::Error;
use crate::http::{ExplorerNode, Needs};

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Why node `node_id` (of `total`, its other contracts using `others`) cannot take `needs`, if it
/// cannot: every resource short, with what is free.
pub fn room(node_id: u32, total: Resources, others: Capacity, needs: &Needs) -> Result<(), String> {
    let free = free(
        total.mru, total.sru, total.hru, others.mru, others.sru, others.hru,
    );
    let mut short = Vec::new();
    if needs.cru > total.cru {
        short.push(format!("{} cpu (it has {} in all)", needs.cru, total.cru));
    }
    for (what, need, free) in [
        ("memory", needs.mru, free.mru),
        ("ssd", needs.sru, free.sru),
        ("hdd", needs.hru, free.hru),
    ] {
        if need > free {
            short.push(format!("{} {what} ({} free)", gib(need), gib(free)));
        }
    }
    match short.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "node {node_id}, named in the file, has not the room: it needs {}",
            short.join(", ")
        )),
    }
}

/// The first of the nodes the explorer `found` for `needs` (each has room for them alone) that also
/// has room for what the plan put on it already (`placed`, by node).
pub fn pick<'a>(
    found: &'a [ExplorerNode],
    placed: &BTreeMap<NodeId, Needs>,
    needs: &Needs,
) -> Option<&'a ExplorerNode> {
    found.iter().find(|n| {
        let Some(p) = placed.get(&n.node_id) else {
            return true;
        };
        p.mru + needs.mru <= n.free.mru
            && p.sru + needs.sru <= n.free.sru
            && p.hru + needs.hru <= n.free.hru
            && p.ipv4 + needs.ipv4 <= n.free_ips
    })
}

/// Refuses a plan whose cost an hour grows beyond what the account holds.
pub fn funds(
    project: &str,
    cost_per_hour: Balance,
    cost_per_hour_now: Balance,
    available: Balance,
) -> Result<(), Error> {
    if cost_per_hour > cost_per_hour_now && available < cost_per_hour {
        return Err(Error::InsufficientFunds {
            project: project.to_owned(),
            cost_per_hour,
            available,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn node() -> Resources {
        // 2 GiB memory and 20 GiB SSD are the system's.
        Resources {
            cru: 4,
            mru: 8 * GIB,
            sru: 120 * GIB,
            hru: 50 * GIB,
        }
    }

    fn check(others: Capacity, needs: Needs, expect: Result<(), &str>) {
        assert_eq!(
            room(1, node(), others, &needs),
            expect.map_err(str::to_owned)
        );
    }

    #[test]
    fn room_on_a_named_node() {
        let zdb = |hru| Needs {
            hru,
            ..Needs::default()
        };
        check(Capacity::default(), zdb(50 * GIB), Ok(()));
        check(
            Capacity::default(),
            zdb(51 * GIB),
            Err(
                "node 1, named in the file, has not the room: it needs 51.0 GiB hdd (50.0 GiB free)",
            ),
        );
        // Other contracts take their share.
        let others = Capacity {
            hru: 20 * GIB,
            mru: 5 * GIB,
            ..Capacity::default()
        };
        check(others, zdb(30 * GIB), Ok(()));
        let big = Needs {
            cru: 8,
            mru: 2 * GIB,
            sru: 100 * GIB,
            ..Needs::default()
        };
        check(
            others,
            big,
            Err(
                "node 1, named in the file, has not the room: it needs 8 cpu (it has 4 in all), \
                 2.0 GiB memory (1.0 GiB free)",
            ),
        );
    }

    #[test]
    fn a_found_node_takes_a_group_beside_those_placed_on_it() {
        let node = |id: u32, mru: u64| -> ExplorerNode {
            serde_json::from_value(serde_json::json!({
                "nodeId": id, "farmId": 1, "farmName": "f", "status": "up", "country": "",
                "city": "", "uptime": 0, "lastUptimeReport": 0, "certificationType": "Diy",
                "total_resources": { "cru": 4, "mru": mru, "sru": 0, "hru": 0 },
                "used_resources": { "mru": 0, "sru": 0, "hru": 0 },
                "free_resources": { "mru": mru, "sru": 0, "hru": 0 },
                "farm_free_ips": 0,
            }))
            .unwrap()
        };
        let found = [node(1, 4 * GIB), node(2, 3 * GIB)];
        let memory = |mru| Needs {
            mru,
            ..Needs::default()
        };
        let id = |n: Option<&ExplorerNode>| n.map(|n| n.node_id);
        assert_eq!(
            id(pick(&found, &BTreeMap::new(), &memory(2 * GIB))),
            Some(1)
        );
        // Node 1 holds 3 GiB of another group already: 2 more do not fit beside them.
        let placed = BTreeMap::from([(1, memory(3 * GIB))]);
        assert_eq!(id(pick(&found, &placed, &memory(2 * GIB))), Some(2));
        assert_eq!(id(pick(&found, &placed, &memory(GIB))), Some(1));
        let both = BTreeMap::from([(1, memory(3 * GIB)), (2, memory(2 * GIB))]);
        assert_eq!(id(pick(&found, &both, &memory(2 * GIB))), None);
    }

    #[test]
    fn funds_for_an_hour_of_what_grows() {
        assert!(funds("p", 10, 0, 10).is_ok());
        let short = funds("p", 10, 0, 9).unwrap_err().to_string();
        assert!(short.starts_with("insufficient funds: p costs"), "{short}");
        // What does not cost more than it does now needs nothing more.
        assert!(funds("p", 10, 10, 0).is_ok());
    }
}
