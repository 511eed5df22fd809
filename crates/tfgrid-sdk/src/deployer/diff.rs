//! The pure diff of a plan: the workloads a project wants against the deployment the chain holds,
//! and the gateway names it wants against the name contracts that exist, as actions (create,
//! update, replace, remove, keep); and the versions an apply writes to get there. No chain, no
//! files: the plan gathers what exists and hands it in.

use std::collections::BTreeMap;

use serde::Serialize;
use tfgrid_types::deployment::{Deployment, Secret, Workload, WorkloadData};
use tfgrid_types::{ContractId, Hash32, TwinId};

use super::state::secrets_digest;
use crate::Error;
use crate::http::Needs;
use crate::project::Size;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    /// Changed in place.
    Update,
    /// Removed, then created anew (its type cannot change in place).
    Replace,
    Remove,
    Keep,
}

/// What an apply does with a workload.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub action: Action,
    /// What it takes: cpu, memory, disk.
    pub detail: String,
}

/// What an apply does with a gateway name's name contract.
#[derive(Debug, Clone, Serialize)]
pub struct NameChange {
    pub name: String,
    pub action: Action,
    /// The name contract, when the twin holds it already.
    pub contract_id: Option<ContractId>,
}

/// Whether two workloads are the same but for their version and secrets (sealed on the chain,
/// so they cannot be compared).
pub fn same_workload(a: &Workload, b: &Workload) -> bool {
    let blank = |w: &Workload| {
        let mut w = w.clone();
        w.version = 0;
        for s in w.data.secrets_mut() {
            *s = Secret::Plain(String::new());
        }
        w
    };
    blank(a) == blank(b)
}

/// What a workload takes, as a person reads it.
pub fn detail(w: &WorkloadData) -> String {
    let c = w.capacity();
    let mut parts = Vec::new();
    if c.cru > 0 {
        parts.push(format!("{} cpu", c.cru));
    }
    if c.mru > 0 {
        parts.push(format!("{} memory", Size(c.mru)));
    }
    if c.sru > 0 {
        parts.push(format!("{} ssd", Size(c.sru)));
    }
    if c.hru > 0 {
        parts.push(format!("{} hdd", Size(c.hru)));
    }
    if c.ipv4u > 0 {
        parts.push("1 public ipv4".into());
    }
    parts.join(", ")
}

/// What a node needs free to take `workloads`: their cpus share the node's (the most any one
/// takes), the rest adds up.
pub fn needs(workloads: &[Workload]) -> Needs {
    workloads.iter().fold(Needs::default(), |n, w| {
        let c = w.data.capacity();
        Needs {
            cru: n.cru.max(c.cru),
            mru: n.mru + c.mru,
            sru: n.sru + c.sru,
            hru: n.hru + c.hru,
            ipv4: n.ipv4 + c.ipv4u,
            domain: n.domain || matches!(w.data, WorkloadData::GatewayNameProxy(_)),
            // Reached from outside: an FQDN's gateway, a public IP, a 0-db (its endpoint is the
            // node's address, which a hidden node's router hides).
            public_config: n.public_config
                || matches!(
                    w.data,
                    WorkloadData::GatewayFqdnProxy(_) | WorkloadData::Ip(_) | WorkloadData::Zdb(_)
                ),
        }
    })
}

/// Each workload of `old` against `new`: created, kept, updated in place, replaced (its type
/// cannot change in place) or removed. Those named in `secrets_changed` are not kept.
pub fn workload_changes(
    old: Option<&Deployment>,
    new: &[Workload],
    secrets_changed: &[String],
) -> Vec<Change> {
    let change = |w: &Workload, action| Change {
        name: w.name.clone(),
        kind: w.data.type_name(),
        action,
        detail: detail(&w.data),
    };
    let mut changes: Vec<Change> = new
        .iter()
        .map(|w| {
            let action = match old.and_then(|d| d.workload(&w.name)) {
                None => Action::Create,
                Some(prev) if same_workload(prev, w) && !secrets_changed.contains(&w.name) => {
                    Action::Keep
                }
                Some(_) if w.data.updatable() => Action::Update,
                Some(_) => Action::Replace,
            };
            change(w, action)
        })
        .collect();
    for w in old.map_or(&[][..], |d| &d.workloads[..]) {
        if !new.iter().any(|n| n.name == w.name) {
            changes.push(change(w, Action::Remove));
        }
    }
    changes
}

/// The workloads whose secrets may differ from those the chain holds sealed: those whose digest
/// differs from the one recorded when they were last applied, and those with secrets but no
/// record (the chain cannot tell: they are sealed anew rather than assumed unchanged).
pub fn secrets_changed(workloads: &[Workload], recorded: &BTreeMap<String, Hash32>) -> Vec<String> {
    workloads
        .iter()
        .filter(|w| secrets_digest(w).is_some_and(|d| recorded.get(&w.name) != Some(&d)))
        .map(|w| w.name.clone())
        .collect()
}

/// The deployments an apply writes, in order: when a workload is replaced, first one without it,
/// then the whole of `workloads`.
pub fn versions(workloads: &[Workload], changes: &[Change]) -> Vec<Vec<Workload>> {
    let replaced = |w: &Workload| {
        changes
            .iter()
            .any(|c| c.action == Action::Replace && c.name == w.name)
    };
    let mut out = Vec::new();
    if workloads.iter().any(replaced) {
        out.push(workloads.iter().filter(|w| !replaced(w)).cloned().collect());
    }
    out.push(workloads.to_vec());
    out
}

/// Who holds a gateway name now: the twin and the name contract.
pub type Holder = (TwinId, ContractId);

/// The name contracts of the gateway names a project wants, given who holds each (`held`, one per
/// wanted name): created when nobody does, kept when `twin` does; another twin's is an error.
pub fn wanted_names(
    held: &[(String, Option<Holder>)],
    twin: TwinId,
) -> Result<Vec<NameChange>, Error> {
    held.iter()
        .map(|(name, holder)| {
            let (action, contract_id) = match *holder {
                None => (Action::Create, None),
                Some((t, id)) if t == twin => (Action::Keep, Some(id)),
                Some((t, _)) => {
                    return Err(Error::NameTaken {
                        name: name.clone(),
                        twin: t,
                    });
                }
            };
            Ok(NameChange {
                name: name.clone(),
                action,
                contract_id,
            })
        })
        .collect()
}

/// The names the project created that it no longer wants: those it may cancel.
pub fn dropped_names<'a>(created: &'a [String], wanted: &[String]) -> Vec<&'a str> {
    created
        .iter()
        .filter(|n| !wanted.contains(n))
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfgrid_types::deployment::{Ip, Zdb, ZdbMode, Zmount};

    fn wl(name: &str, data: WorkloadData) -> Workload {
        Workload {
            version: 0,
            name: name.into(),
            metadata: String::new(),
            description: String::new(),
            data,
        }
    }

    fn zdb(name: &str, size: u64, password: &str) -> Workload {
        wl(
            name,
            WorkloadData::Zdb(Zdb {
                size,
                mode: ZdbMode::User,
                password: Secret::Plain(password.into()),
                public: false,
            }),
        )
    }

    fn disk(name: &str, size: u64) -> Workload {
        wl(name, WorkloadData::Zmount(Zmount { size }))
    }

    /// A public IP: it cannot change in place.
    fn ip(name: &str) -> Workload {
        wl(
            name,
            WorkloadData::Ip(Ip {
                v4: true,
                v6: false,
            }),
        )
    }

    fn deployment(workloads: Vec<Workload>) -> Deployment {
        Deployment {
            version: 3,
            twin_id: 1,
            metadata: String::new(),
            description: String::new(),
            signature_requirement: Deployment::single_signer(1),
            workloads,
        }
    }

    /// The diff as `name:action` words.
    fn check(old: Option<Vec<Workload>>, new: &[Workload], secrets: &[&str], expect: &str) {
        let old = old.map(deployment);
        let secrets: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        let got: Vec<String> = workload_changes(old.as_ref(), new, &secrets)
            .iter()
            .map(|c| {
                format!(
                    "{}:{}",
                    c.name,
                    serde_json::to_value(c.action).unwrap().as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(got.join(" "), expect);
    }

    #[test]
    fn workloads_against_what_the_chain_holds() {
        // Nothing yet: everything is created.
        check(None, &[zdb("db", 1, "p")], &[], "db:create");
        // The same but for its version and its (sealed) secret: kept.
        let mut sealed = zdb("db", 1, "p");
        sealed.version = 2;
        *sealed.data.secrets_mut()[0] = Secret::Sealed(vec![1, 2]);
        check(Some(vec![sealed]), &[zdb("db", 1, "p")], &[], "db:keep");
        // Its secret changed: updated, though nothing else did.
        check(
            Some(vec![zdb("db", 1, "old")]),
            &[zdb("db", 1, "new")],
            &["db"],
            "db:update",
        );
        // Bigger: updated in place.
        check(
            Some(vec![zdb("db", 1, "p")]),
            &[zdb("db", 2, "p")],
            &[],
            "db:update",
        );
        // Another type under the same name cannot change in place.
        check(Some(vec![disk("x", 1)]), &[ip("x")], &[], "x:replace");
        // Gone from the file: removed, after those it keeps.
        check(
            Some(vec![disk("d", 1), zdb("db", 1, "p")]),
            &[zdb("db", 1, "p")],
            &[],
            "db:keep d:remove",
        );
    }

    #[test]
    fn secrets_unknown_to_the_state_count_as_changed() {
        let (a, b) = (zdb("a", 1, "pw"), zdb("b", 1, "pw"));
        let recorded = super::super::state::digests(&[a.clone(), b.clone()]);
        assert!(secrets_changed(&[a.clone(), b.clone()], &recorded).is_empty());
        let changed = zdb("a", 1, "new");
        assert_eq!(secrets_changed(&[changed, b.clone()], &recorded), ["a"]);
        // No state file: the sealed secrets cannot be compared.
        assert_eq!(secrets_changed(&[a, b], &BTreeMap::new()), ["a", "b"]);
        // A workload without secrets never is.
        assert!(secrets_changed(&[disk("d", 1)], &BTreeMap::new()).is_empty());
    }

    #[test]
    fn a_replaced_workload_is_first_removed() {
        let new = [ip("x"), disk("d", 1)];
        let old = deployment(vec![disk("x", 1), disk("d", 1)]);
        let changes = workload_changes(Some(&old), &new, &[]);
        fn names(v: &[Workload]) -> Vec<&str> {
            v.iter().map(|w| w.name.as_str()).collect()
        }
        let steps = versions(&new, &changes);
        assert_eq!(
            steps.iter().map(|v| names(v)).collect::<Vec<_>>(),
            [vec!["d"], vec!["x", "d"]]
        );
        let plain = workload_changes(Some(&deployment(new.to_vec())), &new, &[]);
        assert_eq!(versions(&new, &plain).len(), 1);
    }

    #[test]
    fn gateway_names_against_their_holders() {
        let held = [
            ("free".to_string(), None),
            ("mine".to_string(), Some((2, 7))),
        ];
        let got = wanted_names(&held, 2).unwrap();
        assert_eq!(
            got.iter()
                .map(|n| (n.name.as_str(), n.action, n.contract_id))
                .collect::<Vec<_>>(),
            [
                ("free", Action::Create, None),
                ("mine", Action::Keep, Some(7))
            ]
        );
        let taken = [("theirs".to_string(), Some((5, 9)))];
        let err = wanted_names(&taken, 2).unwrap_err().to_string();
        assert_eq!(
            err,
            "the gateway name \"theirs\" is held by twin 5: choose another name"
        );
        let created = ["a".to_string(), "b".to_string()];
        assert_eq!(dropped_names(&created, &["b".to_string()]), ["a"]);
    }

    #[test]
    fn needs_share_cpu_and_add_the_rest() {
        let n = needs(&[zdb("a", 3, "p"), zdb("b", 4, "p"), disk("d", 5)]);
        assert_eq!((n.cru, n.sru + n.hru), (0, 12));
        assert!(!n.domain);
        assert!(
            n.public_config,
            "a 0-db is reached from outside: not on a hidden node"
        );
        assert!(!needs(&[disk("d", 5)]).public_config);
    }
}
