//! The provision engine's pure half: from what runs (the contract's old record), the deployment the
//! contract now holds and the node's capacity, the steps that bring one to the other. Removals come
//! first, in reverse type order; then the deployment's workloads in type order (volumes before the
//! machines that mount them, networks before the machines that join them). A workload whose sealed
//! form is the same as what runs, and that runs, is kept as it is; a workload that would over-commit
//! memory or disk, or that this node cannot run, is refused here with the reason; the rest is
//! installed. A workload whose type changed under the same name is removed and installed anew.
//!
//! Admission counts every kept and installed workload as using its capacity, in order; a later
//! failure of an install does not give its room to the workloads after it in the same job (the
//! next job counts what really runs).

use tfchain_runtime::types::Resources;
use tfgrid_types::deployment::{Capacity, Deployment, ResultState, Workload, WorkloadResult};

use crate::store::Local;

#[derive(Debug, Clone, PartialEq)]
pub enum Step<'a> {
    /// A workload of the old record that must go (no longer wanted, or its type changed).
    Remove(&'a Workload),
    /// Unchanged and running: its result stays.
    Keep(&'a Workload, WorkloadResult),
    Install(&'a Workload),
    /// Not installed, for the reason given.
    Refuse(&'a Workload, String),
}

/// The room a job may use: the node's total and what the node's other contracts run.
#[derive(Debug, Clone, Copy)]
pub struct Room {
    pub total: Resources,
    pub others: Capacity,
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1024.0 * 1024.0 * 1024.0))
}

/// Why `need` does not fit beside `used` on a node of `total`, if it does not: the same free
/// capacity the explorer offers, so a node it offers does not refuse.
pub fn over_commit(need: Capacity, used: Capacity, total: Resources) -> Option<String> {
    let free = tfgrid_types::capacity::free(
        total.mru, total.sru, total.hru, used.mru, used.sru, used.hru,
    );
    [
        ("memory", need.mru, free.mru, total.mru),
        ("SSD", need.sru, free.sru, total.sru),
        ("HDD", need.hru, free.hru, total.hru),
    ]
    .into_iter()
    .find(|(_, need, free, _)| need > free)
    .map(|(what, need, free, total)| {
        format!(
            "not enough {what}: the workload needs {}, the node has {} free of {}",
            gib(need),
            gib(free),
            gib(total)
        )
    })
}

/// Capacity of the workloads that run (ok or paused).
pub fn running_capacity(local: &Local) -> Capacity {
    local
        .deployment
        .workloads
        .iter()
        .filter(|w| running(local, &w.name).is_some())
        .fold(Capacity::default(), |acc, w| acc + w.data.capacity())
}

/// The result of `name` in `local` if it runs (ok or paused).
fn running<'a>(local: &'a Local, name: &str) -> Option<&'a WorkloadResult> {
    local
        .results
        .iter()
        .find(|r| r.name == name && matches!(r.state, ResultState::Ok | ResultState::Paused))
}

/// The steps from `old` to deployment `sealed` (as the contract holds it) whose secrets are open in
/// `opened`; `unsupported` says why this node cannot run a workload, if it cannot.
pub fn plan<'a>(
    old: Option<&'a Local>,
    sealed: &Deployment,
    opened: &'a Deployment,
    room: Room,
    unsupported: impl Fn(&Workload) -> Option<String>,
) -> Vec<Step<'a>> {
    let mut steps = Vec::new();
    if let Some(old) = old {
        let mut gone: Vec<&Workload> = old
            .deployment
            .workloads
            .iter()
            .filter(|w| {
                sealed
                    .workload(&w.name)
                    .is_none_or(|new| new.data.type_name() != w.data.type_name())
            })
            .collect();
        gone.sort_by_key(|w| std::cmp::Reverse(w.data.install_rank()));
        steps.extend(gone.into_iter().map(Step::Remove));
    }
    let mut order: Vec<&Workload> = opened.workloads.iter().collect();
    order.sort_by_key(|w| w.data.install_rank());
    let mut used = room.others;
    for w in order {
        let unchanged = old.and_then(|o| {
            let same = o.deployment.workload(&w.name).is_some() && {
                o.deployment.workload(&w.name) == sealed.workload(&w.name)
            };
            same.then(|| running(o, &w.name)).flatten()
        });
        let step = match (unchanged, unsupported(w)) {
            (Some(result), _) => Step::Keep(w, result.clone()),
            (None, Some(why)) => Step::Refuse(w, why),
            (None, None) => match over_commit(w.data.capacity(), used, room.total) {
                Some(why) => Step::Refuse(w, why),
                None => Step::Install(w),
            },
        };
        if matches!(step, Step::Keep(..) | Step::Install(_)) {
            used = used + w.data.capacity();
        }
        steps.push(step);
    }
    steps
}

#[cfg(test)]
mod tests {
    use tfgrid_types::deployment::{ResultData, WorkloadData, Zmount};

    use super::*;
    use crate::store::{local_for_test, zdb_for_test as zdb};

    const GIB: u64 = 1024 * 1024 * 1024;

    fn disk(name: &str, size: u64) -> Workload {
        Workload {
            data: WorkloadData::Zmount(Zmount { size }),
            ..zdb(name, 0, "")
        }
    }

    fn ok(name: &str) -> WorkloadResult {
        WorkloadResult {
            name: name.into(),
            created: 1,
            state: ResultState::Ok,
            message: String::new(),
            data: ResultData::None,
        }
    }

    fn room(sru_gib: u64) -> Room {
        Room {
            total: Resources {
                cru: 4,
                mru: 64 * GIB,
                sru: sru_gib * GIB + tfgrid_types::capacity::SYSTEM_SRU_BYTES,
                hru: 100 * GIB,
            },
            others: Capacity::default(),
        }
    }

    fn names(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                Step::Remove(w) => format!("remove {}", w.name),
                Step::Keep(w, _) => format!("keep {}", w.name),
                Step::Install(w) => format!("install {}", w.name),
                Step::Refuse(w, why) => format!("refuse {}: {why}", w.name),
            })
            .collect()
    }

    #[test]
    fn a_new_deployment_installs_in_type_order() {
        let new = local_for_test(vec![zdb("db", GIB, "pw"), disk("data", GIB)]).deployment;
        let steps = plan(None, &new, &new, room(10), |_| None);
        assert_eq!(names(&steps), ["install data", "install db"]);
    }

    #[test]
    fn an_update_keeps_what_is_unchanged_and_removes_what_is_gone_first() {
        let mut old = local_for_test(vec![
            zdb("kept", GIB, "pw"),
            zdb("changed", GIB, "pw"),
            disk("gone", GIB),
            zdb("failed", GIB, "pw"),
        ]);
        old.results = vec![ok("kept"), ok("changed"), ok("gone")];
        old.results.push(WorkloadResult {
            state: ResultState::Error,
            ..ok("failed")
        });
        let new = local_for_test(vec![
            zdb("kept", GIB, "pw"),
            zdb("changed", GIB, "new password"),
            zdb("failed", GIB, "pw"),
        ])
        .deployment;
        let steps = plan(Some(&old), &new, &new, room(10), |_| None);
        assert_eq!(
            names(&steps),
            [
                "remove gone",
                "keep kept",
                "install changed",
                "install failed"
            ]
        );
        assert_eq!(steps[1], Step::Keep(&new.workloads[0], ok("kept")));
    }

    #[test]
    fn a_changed_type_under_the_same_name_replaces_the_old_workload() {
        let mut old = local_for_test(vec![disk("x", GIB)]);
        old.results = vec![ok("x")];
        let new = local_for_test(vec![zdb("x", GIB, "pw")]).deployment;
        let steps = plan(Some(&old), &new, &new, room(10), |_| None);
        assert_eq!(names(&steps), ["remove x", "install x"]);
    }

    #[test]
    fn admission_counts_what_runs_and_what_goes_before() {
        let new = local_for_test(vec![disk("a", 6 * GIB), disk("b", 6 * GIB)]).deployment;
        let steps = plan(None, &new, &new, room(10), |_| None);
        assert_eq!(steps[0], Step::Install(&new.workloads[0]));
        let Step::Refuse(w, why) = &steps[1] else {
            panic!("b should be refused: {steps:?}");
        };
        assert_eq!(w.name, "b");
        assert_eq!(
            why,
            "not enough SSD: the workload needs 6.0 GiB, the node has 4.0 GiB free of 30.0 GiB"
        );
        // Other contracts' running workloads take room too.
        let crowded = Room {
            others: Capacity {
                sru: 9 * GIB,
                ..Capacity::default()
            },
            ..room(10)
        };
        let steps = plan(None, &new, &new, crowded, |_| None);
        assert!(steps.iter().all(|s| matches!(s, Step::Refuse(..))));
    }

    #[test]
    fn what_the_node_cannot_run_is_refused_with_the_reason() {
        let new = local_for_test(vec![zdb("db", GIB, "pw"), disk("data", GIB)]).deployment;
        let unsupported = |w: &Workload| {
            matches!(w.data, WorkloadData::Zmount(_)).then(|| "no volumes here".to_owned())
        };
        let steps = plan(None, &new, &new, room(10), unsupported);
        assert_eq!(
            names(&steps),
            ["refuse data: no volumes here", "install db"]
        );
    }
}
