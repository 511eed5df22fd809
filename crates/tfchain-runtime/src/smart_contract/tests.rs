//! Scenario tests of contracts and billing with exact amounts. The harness runs one block per call,
//! one second apart; block `h` has time `T0 + h` seconds. Dev spec: billing period 60 blocks, grace
//! period 600 blocks, TFT at 80 mUSD; prices in units-USD per hour (10^7 = 1 USD): CU 100000,
//! SU 50000, IP 40000, unique name 2500, NU 15000 per GB; TFT = units-USD × 1000 / 80.

use tfgrid_types::deployment::*;
use tfgrid_types::{Keypair, UNITS_PER_TFT};

use super::Call;
use crate::balances;
use crate::error::DispatchError;
use crate::event::Event;
use crate::testing::{Harness, account, node_spec};
use crate::tfgrid::{self, IpInput};
use crate::types::*;

const GIB: u64 = 1024 * 1024 * 1024;

fn key(name: &str) -> Keypair {
    Keypair::from_uri(&format!("//{name}")).unwrap()
}

/// Alice farms farm 1 (two public IPs); Bob's twin runs node 1; "User" (twin 3) holds `funds`.
/// Ends at height 9.
fn grid(funds: u128) -> Harness {
    let mut h = Harness::new();
    let (alice, bob, user) = (account("Alice"), account("Bob"), account("User"));
    h.twin(&alice);
    h.twin(&bob);
    let ips = vec![
        IpInput {
            ip: "185.206.122.33/24".into(),
            gw: "185.206.122.1".into(),
        },
        IpInput {
            ip: "185.206.122.34/24".into(),
            gw: "185.206.122.1".into(),
        },
    ];
    h.ok(
        &alice,
        tfgrid::Call::CreateFarm {
            name: "farm1".into(),
            public_ips: ips,
        },
    );
    h.ok(&bob, tfgrid::Call::CreateNode(node_spec(1)));
    h.ok(
        &alice,
        balances::Call::Transfer {
            dest: user,
            amount: funds,
        },
    );
    h.twin(&user);
    assert_eq!(h.height(), 9);
    h
}

fn zdb(name: &str, size: u64) -> Workload {
    Workload {
        version: 0,
        name: name.into(),
        metadata: String::new(),
        description: String::new(),
        data: WorkloadData::Zdb(Zdb {
            size,
            mode: ZdbMode::User,
            password: Secret::Plain("pw".into()),
            public: false,
        }),
    }
}

fn ip(name: &str) -> Workload {
    Workload {
        version: 0,
        name: name.into(),
        metadata: String::new(),
        description: String::new(),
        data: WorkloadData::Ip(Ip {
            v4: true,
            v6: false,
        }),
    }
}

/// A deployment of `twin`, sealed to node 1 (Bob) and signed by `signer`.
fn deployment(twin: u32, signer: &str, workloads: Vec<Workload>) -> Deployment {
    let mut d = Deployment {
        version: 0,
        twin_id: twin,
        metadata: String::new(),
        description: String::new(),
        signature_requirement: Deployment::single_signer(twin),
        workloads,
    };
    d.seal_secrets(&account("Bob"), &mut rand::thread_rng())
        .unwrap();
    d.sign(twin, &key(signer));
    d
}

fn create(node_id: u32, d: Deployment) -> Call {
    Call::CreateNodeContract {
        node_id,
        deployment: d,
    }
}

fn billed(events: &[Event], id: u64) -> Vec<u128> {
    bills_with_credit(events, id)
        .into_iter()
        .map(|(amount, _)| amount)
        .collect()
}

/// Reports 1 CU (2 cores, 4 GiB) and 2 SU (1200 GiB HDD, 200 GiB SSD) for the contract.
fn report_resources(h: &mut Harness, contract_id: u64) {
    let used = Resources {
        cru: 2,
        mru: 4 * GIB,
        hru: 1200 * GIB,
        sru: 200 * GIB,
    };
    report_used(h, contract_id, used);
}

/// Node 1 (Bob) reports having been up `uptime_s` seconds.
fn report_uptime(h: &mut Harness, uptime_s: u64) {
    let now = h.next_block_time_s();
    h.ok(
        &account("Bob"),
        tfgrid::Call::ReportUptime {
            uptime_s,
            timestamp_hint_s: now,
        },
    );
}

/// Node 1 (Bob) reports what the contract uses.
fn report_used(h: &mut Harness, contract_id: u64, used: Resources) {
    h.ok(
        &account("Bob"),
        Call::ReportContractResources {
            resources: vec![ContractResources { contract_id, used }],
        },
    );
}

#[test]
fn node_contract_rules() {
    let mut h = grid(10 * UNITS_PER_TFT);
    let (alice, bob, user, charlie) = (
        account("Alice"),
        account("Bob"),
        account("User"),
        account("Charlie"),
    );
    let d = deployment(3, "User", vec![zdb("db", 10 * GIB), ip("pip")]);

    h.fails(
        &charlie,
        create(1, d.clone()),
        DispatchError::NoTwin(charlie),
    );
    h.fails(&user, create(9, d.clone()), DispatchError::NodeNotFound(9));
    h.fails(
        &user,
        create(1, deployment(1, "Alice", vec![zdb("db", GIB)])),
        DispatchError::DeploymentNotOwned {
            deployment: 1,
            caller: 3,
        },
    );
    let mut bumped = d.clone();
    bumped.version = 1;
    bumped.workloads[0].version = 1;
    bumped.sign(3, &key("User"));
    h.fails(
        &user,
        create(1, bumped),
        DispatchError::DeploymentVersion(1),
    );
    let mut forged = d.clone();
    forged.signature_requirement.signatures[0].signature = key("Charlie").sign(&forged.hash().0);
    h.fails(
        &user,
        create(1, forged),
        DeploymentError::BadSignature(3).into(),
    );
    let mut plain = deployment(3, "User", vec![zdb("db", GIB)]);
    plain.workloads[0] = zdb("db", GIB);
    plain.sign(3, &key("User"));
    h.fails(
        &user,
        create(1, plain),
        DeploymentError::Unsealed("db".into()).into(),
    );
    let three_ips = deployment(3, "User", vec![ip("a"), ip("b"), ip("c")]);
    h.fails(
        &user,
        create(1, three_ips),
        DispatchError::NotEnoughPublicIps {
            farm: 1,
            needed: 3,
            free: 2,
        },
    );
    let mut cosigned = d.clone();
    cosigned
        .signature_requirement
        .requests
        .push(SignatureRequest {
            twin_id: 1,
            required: true,
            weight: 1,
        });
    cosigned.signature_requirement.signatures.clear();
    cosigned.sign(3, &key("User"));
    h.fails(
        &user,
        create(1, cosigned.clone()),
        DeploymentError::MissingSignature(1).into(),
    );
    cosigned.sign(1, &key("Alice"));
    h.ok(&user, create(1, cosigned));
    assert_eq!(h.state().contracts.len(), 1);

    // The contract holds the deployment and reserves the first free IP.
    h.ok(&user, create(1, d.clone()));
    let contract = h.state().contracts.get(&2).unwrap().clone();
    let ContractData::NodeContract(nc) = &contract.contract_type else {
        panic!()
    };
    assert_eq!((nc.deployment_hash, nc.public_ips), (d.hash(), 1));
    let farm_ips: Vec<u64> = h
        .state()
        .farms
        .get(&1)
        .unwrap()
        .public_ips
        .iter()
        .map(|ip| ip.contract_id)
        .collect();
    assert_eq!(farm_ips, vec![1, 2], "one IP for each contract");
    h.fails(
        &user,
        create(1, d.clone()),
        DispatchError::DuplicateDeployment {
            node: 1,
            hash: d.hash(),
            contract: 2,
        },
    );
    h.fails(
        &alice,
        tfgrid::Call::RemoveFarmIp {
            farm_id: 1,
            ip: "185.206.122.34/24".into(),
        },
        DispatchError::PublicIpInUse("185.206.122.34/24".into(), 2),
    );
    h.fails(
        &alice,
        tfgrid::Call::ChangePowerTarget {
            node_id: 1,
            target: Power::Down,
        },
        DispatchError::NodeHasContracts(1),
    );

    // Updates: the next version, same IP count, a new hash.
    let mut next = d.clone();
    next.version = 1;
    next.workloads[0] = Workload {
        version: 1,
        ..zdb("db", 20 * GIB)
    };
    next.signature_requirement.signatures.clear();
    next.seal_secrets(&bob, &mut rand::thread_rng()).unwrap();
    next.sign(3, &key("User"));
    let mut more_ips = next.clone();
    more_ips.workloads.push(Workload {
        version: 1,
        ..ip("pip2")
    });
    more_ips.signature_requirement.signatures.clear();
    more_ips.sign(3, &key("User"));
    h.fails(
        &user,
        Call::UpdateNodeContract {
            contract_id: 2,
            deployment: more_ips,
        },
        DispatchError::PublicIpCountChanged { old: 1, new: 2 },
    );
    h.fails(
        &charlie,
        Call::UpdateNodeContract {
            contract_id: 2,
            deployment: next.clone(),
        },
        DispatchError::NoTwin(charlie),
    );
    h.ok(
        &user,
        Call::UpdateNodeContract {
            contract_id: 2,
            deployment: next.clone(),
        },
    );
    assert_eq!(
        h.state().contract_id_by_node_hash.get(&(1, next.hash())),
        Some(&2)
    );
    assert_eq!(h.state().contract_id_by_node_hash.get(&(1, d.hash())), None);

    // Cancel frees the IP; deleting the node cancels the rest.
    h.fails(
        &alice,
        Call::CancelContract { contract_id: 2 },
        DispatchError::NotContractOwner {
            twin: 1,
            contract: 2,
        },
    );
    h.ok(&user, Call::CancelContract { contract_id: 2 });
    assert!(h.events().iter().any(
        |e| matches!(e, Event::IPsFreed { contract_id: 2, public_ips } if public_ips.len() == 1)
    ));
    assert_eq!(
        h.state().farms.get(&1).unwrap().public_ips[1].contract_id,
        0
    );
    h.fails(
        &user,
        Call::CancelContract { contract_id: 2 },
        DispatchError::ContractNotFound(2),
    );
    h.ok(&bob, tfgrid::Call::DeleteNode { node_id: 1 });
    assert!(h.events().iter().any(|e| matches!(
        e,
        Event::NodeContractCanceled {
            contract_id: 1,
            cause: Cause::NodeDeleted,
            ..
        }
    )));
    assert!(h.state().contracts.is_empty() && h.state().contract_id_by_node_hash.is_empty());
    assert!(
        h.state()
            .farms
            .get(&1)
            .unwrap()
            .public_ips
            .iter()
            .all(|ip| ip.contract_id == 0)
    );
    assert!(
        h.state()
            .contracts_to_bill_at
            .iter()
            .all(|(_, ids)| ids.is_empty())
    );
}

#[test]
fn standby_and_dedicated_nodes_refuse_deployments() {
    let mut h = grid(10 * UNITS_PER_TFT);
    let (alice, user) = (account("Alice"), account("User"));
    let d = deployment(3, "User", vec![zdb("db", GIB)]);
    h.ok(
        &alice,
        tfgrid::Call::ChangePowerTarget {
            node_id: 1,
            target: Power::Down,
        },
    );
    h.fails(
        &user,
        create(1, d.clone()),
        DispatchError::NodeNotAvailable(1),
    );
    h.ok(
        &alice,
        tfgrid::Call::ChangePowerTarget {
            node_id: 1,
            target: Power::Up,
        },
    );
    h.council(tfgrid::Call::SetFarmDedicated {
        farm_id: 1,
        dedicated: true,
    });
    h.fails(&user, create(1, d.clone()), DispatchError::NodeDedicated(1));
    h.ok(&user, Call::CreateRentContract { node_id: 1 });
    h.ok(&user, create(1, d));
}

#[test]
fn billing_exact_amounts_distribution_and_once_per_period() {
    let mut h = grid(10 * UNITS_PER_TFT);
    let user = account("User");
    let alice_before = h.balance(&account("Alice"));
    h.ok(
        &user,
        create(
            1,
            deployment(3, "User", vec![zdb("db", 10 * GIB), ip("pip")]),
        ),
    ); // block 10: contract 1, slot 1
    report_resources(&mut h, 1); // block 11
    h.take_history();
    let issuance_before = h.state().issuance();
    h.advance_to(62); // runs block 61, the contract's slot
    let events = h.take_history();
    // Hourly: 1 CU × 100000 + 2 SU × 50000 + 1 IP × 40000 = 240000 units-USD.
    // 51 s since creation: 240000 × 51 / 3600 = 3400 units-USD = 3400 × 1000 / 80 = 42500 units of TFT.
    assert_eq!(billed(&events, 1), vec![42_500]);
    // 10 % foundation, 5 % staking pool, 50 % the farmer (Alice's farm), 35 % burned.
    let policy = h.state().pricing_policies.get(&1).unwrap().terms.clone();
    assert_eq!(h.balance(&policy.foundation_account), 4_250);
    assert_eq!(h.balance(&h.state().params().staking_pool_account), 2_125);
    assert_eq!(h.balance(&account("Alice")) - alice_before, 21_250);
    assert!(events.contains(&Event::TokensBurned {
        contract_id: 1,
        amount: 14_875
    }));
    assert_eq!(issuance_before - h.state().issuance(), 14_875);

    // Five more periods: one bill each, 60 s = 4000 units-USD = 50000 units of TFT.
    h.advance_to(62 + 5 * 60);
    assert_eq!(billed(&h.take_history(), 1), vec![50_000; 5]);
    assert_eq!(h.state().contract_bills.get(&1).unwrap().len(), 6);
    assert_eq!(
        h.state().twin_consumption.get(&3).unwrap().total_billed,
        42_500 + 5 * 50_000
    );
}

#[test]
fn cancel_mid_period_bills_the_remainder() {
    let mut h = grid(10 * UNITS_PER_TFT);
    let user = account("User");
    h.ok(
        &user,
        create(
            1,
            deployment(3, "User", vec![zdb("db", 10 * GIB), ip("pip")]),
        ),
    ); // block 10
    report_resources(&mut h, 1); // block 11
    h.advance_to(30);
    h.ok(&user, Call::CancelContract { contract_id: 1 }); // block 30: 20 s of use
    // 240000 × 20 / 3600 = 1333 units-USD → 1333 × 1000 / 80 = 16662 units of TFT.
    assert_eq!(billed(h.events(), 1), vec![16_662]);
    h.advance_to(200);
    assert!(
        billed(&h.take_history(), 1).len() == 1,
        "nothing billed after the cancel"
    );
}

#[test]
fn grace_period_restore_and_deletion() {
    // 0.006 TFT pays the twin's fees but not the first bill.
    let mut h = grid(60_000);
    let (alice, user) = (account("Alice"), account("User"));
    h.ok(
        &user,
        create(
            1,
            deployment(3, "User", vec![zdb("db", 10 * GIB), ip("pip")]),
        ),
    ); // block 10
    report_resources(&mut h, 1);
    h.take_history();
    h.advance_to(62);
    let events = h.take_history();
    assert!(events.contains(&Event::ContractGracePeriodStarted {
        contract_id: 1,
        node_id: Some(1),
        twin_id: 3,
        block: 61
    }));
    assert_eq!(
        h.state().contracts.get(&1).unwrap().state,
        ContractState::GracePeriod { since_block: 61 }
    );
    assert_eq!(h.state().contract_billing.get(&1).unwrap().overdue, 42_500);
    h.fails(
        &user,
        Call::UpdateNodeContract {
            contract_id: 1,
            deployment: deployment(3, "User", vec![zdb("x", GIB)]),
        },
        DispatchError::ContractInGracePeriod(1),
    );

    // A top-up restores it at the next bill, which pays what was owed too: 42500 + 50000.
    h.ok(
        &alice,
        balances::Call::Transfer {
            dest: user,
            amount: UNITS_PER_TFT,
        },
    );
    h.take_history();
    h.advance_to(122);
    let events = h.take_history();
    assert_eq!(billed(&events, 1), vec![92_500]);
    assert!(events.contains(&Event::ContractGracePeriodEnded {
        contract_id: 1,
        node_id: Some(1),
        twin_id: 3
    }));
    assert_eq!(
        h.state().contracts.get(&1).unwrap().state,
        ContractState::Created
    );

    // Spend it all: grace again, and after 600 blocks unpaid the contract is deleted, its IP freed.
    let left = h.balance(&user)
        - h.fee_of(
            &balances::Call::Transfer {
                dest: alice,
                amount: 1,
            }
            .into(),
        );
    h.ok(
        &user,
        balances::Call::Transfer {
            dest: alice,
            amount: left,
        },
    );
    h.advance_to(182);
    assert!(matches!(
        h.state().contracts.get(&1).unwrap().state,
        ContractState::GracePeriod { since_block: 181 }
    ));
    h.take_history();
    h.advance_to(181 + 600 + 1);
    let events = h.take_history();
    assert!(events.contains(&Event::ContractGracePeriodElapsed {
        contract_id: 1,
        twin_id: 3
    }));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::NodeContractCanceled {
            contract_id: 1,
            cause: Cause::OutOfFunds,
            ..
        }
    )));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::IPsFreed { contract_id: 1, .. }))
    );
    assert!(h.state().contracts.get(&1).is_none());
    assert!(
        h.state()
            .farms
            .get(&1)
            .unwrap()
            .public_ips
            .iter()
            .all(|ip| ip.contract_id == 0)
    );
}

#[test]
fn rent_contracts() {
    let mut h = grid(10 * UNITS_PER_TFT);
    let (user, charlie) = (account("User"), account("Charlie"));
    h.ok(&user, Call::CreateRentContract { node_id: 1 }); // block 10: contract 1
    h.fails(
        &user,
        Call::CreateRentContract { node_id: 1 },
        DispatchError::NodeAlreadyRented(1),
    );
    h.twin(&charlie);
    h.fails(
        &charlie,
        create(1, deployment(4, "Charlie", vec![zdb("db", GIB)])),
        DispatchError::NodeRentedByOther { node: 1, renter: 3 },
    );
    h.ok(
        &user,
        create(1, deployment(3, "User", vec![zdb("db", GIB), ip("pip")])),
    ); // block 15: contract 2
    report_resources(&mut h, 2);
    h.fails(
        &user,
        Call::CancelContract { contract_id: 1 },
        DispatchError::RentContractInUse(1),
    );
    h.take_history();
    h.advance_to(63);
    let events = h.take_history();
    // The whole node: SU 500/200 = 2.5, CU 4 → 2.5 × 50000 + 4 × 100000 = 525000, half for renting:
    // 262500 units-USD an hour; 51 s: 3718 units-USD = 46475 units of TFT.
    assert_eq!(billed(&events, 1), vec![46_475]);
    // The node contract on the rented node pays its IP only: 47 s, 40000 × 47 / 3600 = 522 → 6525.
    assert_eq!(billed(&events, 2), vec![6_525]);
    h.ok(&user, Call::CancelContract { contract_id: 2 });
    h.ok(&user, Call::CancelContract { contract_id: 1 });
    assert!(h.state().rent_contract_by_node.is_empty());
    // An empty node can be rented; one with others' contracts cannot.
    h.ok(
        &charlie,
        create(1, deployment(4, "Charlie", vec![zdb("db", GIB)])),
    );
    h.fails(
        &user,
        Call::CreateRentContract { node_id: 1 },
        DispatchError::NodeNotEmpty(1),
    );
}

#[test]
fn rent_grace_drags_its_node_contracts() {
    let mut h = grid(60_000);
    let user = account("User");
    h.ok(&user, Call::CreateRentContract { node_id: 1 }); // contract 1, slot 1
    h.ok(
        &user,
        create(1, deployment(3, "User", vec![zdb("db", GIB)])),
    ); // contract 2, slot 2
    h.advance_to(62);
    let grace = |h: &Harness, id| {
        matches!(
            h.state().contracts.get(&id).unwrap().state,
            ContractState::GracePeriod { .. }
        )
    };
    assert!(grace(&h, 1) && grace(&h, 2));
    h.ok(
        &account("Alice"),
        balances::Call::Transfer {
            dest: user,
            amount: 10 * UNITS_PER_TFT,
        },
    );
    h.advance_to(122);
    assert!(!grace(&h, 1) && !grace(&h, 2));
}

#[test]
fn name_contracts_and_the_price_clamp() {
    let mut h = grid(10 * UNITS_PER_TFT);
    let (user, charlie) = (account("User"), account("Charlie"));
    h.fails(
        &user,
        Call::CreateNameContract { name: "No".into() },
        DispatchError::InvalidContractName("No".into()),
    );
    h.ok(
        &user,
        Call::CreateNameContract {
            name: "my-site".into(),
        },
    ); // block 11: contract 1
    h.twin(&charlie);
    h.fails(
        &charlie,
        Call::CreateNameContract {
            name: "my-site".into(),
        },
        DispatchError::NameTaken("my-site".into(), 1),
    );
    h.take_history();
    h.advance_to(62);
    // 2500 units-USD an hour; 50 s: 34 units-USD = 425 units of TFT. The name costs 0.03125 TFT an
    // hour, so User's 10 TFT last 4.4 months: the Bronze discount, 70 % paid: 297. Half of it goes
    // to the sales account (a name runs on no farmer's node).
    let events = h.take_history();
    assert_eq!(billed(&events, 1), vec![297]);
    assert!(events.iter().any(|e| matches!(
        e,
        Event::ContractBilled {
            discount_level: DiscountLevel::Bronze,
            ..
        }
    )));
    let sales = h
        .state()
        .pricing_policies
        .get(&1)
        .unwrap()
        .terms
        .certified_sales_account;
    assert_eq!(h.balance(&sales), 148);
    // A price below the council's minimum (10 mUSD) is clamped to it: 60 s = 41 units-USD → 4100,
    // and at that price 10 TFT are only 0.55 months of the name: no discount.
    h.council(Call::SetTftPrice { price_musd: 1 });
    h.take_history();
    h.advance_to(122);
    assert_eq!(billed(&h.take_history(), 1), vec![4_100]);
    assert!(
        h.council_fails(Call::SetTftPriceBounds {
            min_musd: 50,
            max_musd: 20
        })
        .contains("0 < min < max")
    );
    h.ok(&user, Call::CancelContract { contract_id: 1 });
    h.ok(
        &charlie,
        Call::CreateNameContract {
            name: "my-site".into(),
        },
    );
}

#[test]
fn reports_come_from_the_contract_node_only() {
    let mut h = grid(10 * UNITS_PER_TFT);
    let (bob, user) = (account("Bob"), account("User"));
    h.ok(
        &user,
        create(1, deployment(3, "User", vec![zdb("db", GIB)])),
    );
    let used = Resources {
        cru: 0,
        mru: 0,
        hru: GIB,
        sru: 0,
    };
    h.fails(
        &user,
        Call::ReportContractResources {
            resources: vec![ContractResources {
                contract_id: 1,
                used,
            }],
        },
        DispatchError::NoNode(3),
    );
    h.fails(
        &bob,
        Call::ReportContractResources {
            resources: vec![ContractResources {
                contract_id: 7,
                used,
            }],
        },
        DispatchError::ContractNotFound(7),
    );
    report_used(&mut h, 1, used);
    assert_eq!(h.last_fee(), 0, "node reports are free");
    assert_eq!(h.state().contract_resources.get(&1), Some(&used));

    let ok = WorkloadResult {
        name: "db".into(),
        created: h.now_s(),
        state: ResultState::Ok,
        message: String::new(),
        data: ResultData::Zdb {
            namespace: "3-1-db".into(),
            ips: vec!["10.0.0.2".into()],
            port: 9900,
        },
    };
    h.ok(
        &bob,
        Call::ReportDeploymentState {
            contract_id: 1,
            version: 0,
            workloads: vec![ok.clone()],
        },
    );
    assert_eq!(
        h.state().deployment_states.get(&1).unwrap().workloads,
        vec![ok.clone()]
    );
    let unknown = WorkloadResult {
        name: "nope".into(),
        ..ok
    };
    h.fails(
        &bob,
        Call::ReportDeploymentState {
            contract_id: 1,
            version: 0,
            workloads: vec![unknown],
        },
        DispatchError::UnknownWorkload("nope".into()),
    );

    // 1 GB over an hour: 15000 units-USD = 187500 units of TFT, added to the next bill; a repeated
    // report of the same window is not counted twice.
    let report = NruConsumption {
        contract_id: 1,
        timestamp: h.now_s(),
        window: 3600,
        nru: 1_000_000_000,
    };
    h.ok(
        &bob,
        Call::AddNruReports {
            reports: vec![report.clone()],
        },
    );
    h.ok(
        &bob,
        Call::AddNruReports {
            reports: vec![report],
        },
    );
    assert_eq!(
        h.state().contract_billing.get(&1).unwrap().unbilled_nu_usd,
        15_000
    );
}

#[test]
fn farming_rewards_follow_uptime() {
    let mut h = grid(UNITS_PER_TFT);
    let (alice, bob) = (account("Alice"), account("Bob"));
    // Reports every 10 s from block 10 to 60: 50 s up of the 51 s to block 61 (98 %).
    for height in (10..=60).step_by(10) {
        h.advance_to(height);
        let now = h.next_block_time_s();
        h.ok(
            &bob,
            tfgrid::Call::ReportUptime {
                uptime_s: 100 + height - 10,
                timestamp_hint_s: now,
            },
        );
    }
    let before = h.balance(&alice);
    h.take_history();
    h.advance_to(62);
    // Node 1: 3.75 CU and 2 SU; DIY policy 160 and 100 mUSD an hour: 800 mUSD an hour, for 50 s:
    // 11.111 mUSD, at the node's 80 mUSD per TFT: 1388875 units of TFT, minted to the farmer.
    let events = h.take_history();
    assert!(
        events.contains(&Event::FarmingRewardMinted {
            node_id: 1,
            farm_id: 1,
            amount: 1_388_875,
            uptime_percent: 98
        }),
        "{events:?}"
    );
    assert_eq!(h.balance(&alice) - before, 1_388_875);
    // Silent for the next period: nothing.
    h.advance_to(122);
    assert!(h.take_history().contains(&Event::FarmingRewardWithheld {
        node_id: 1,
        uptime_percent: 0
    }));
}

/// The bills of contract `id` in `events`: (amount, credited seconds).
fn bills_with_credit(events: &[Event], id: u64) -> Vec<(u128, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ContractBilled {
                contract_id,
                amount_billed,
                credited_s,
                ..
            } if *contract_id == id => Some((*amount_billed, *credited_s)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_node_down_for_10_of_60_minutes_bills_50() {
    let mut h = grid(100 * UNITS_PER_TFT);
    let user = account("User");
    report_uptime(&mut h, 1000); // block 10
    h.ok(
        &user,
        create(1, deployment(3, "User", vec![zdb("db", GIB)])),
    ); // block 11
    let used = Resources {
        cru: 4,
        mru: 16 * GIB,
        sru: 400 * GIB,
        hru: 9600 * GIB,
    };
    report_used(&mut h, 1, used); // block 12
    h.take_history();
    // Up, reporting every minute, for 21 minutes; then down for 10 (no report from block 1270 to
    // block 1870, where it reports again just started); then up until the contract ends.
    for height in (70..=1270).step_by(60) {
        h.advance_to(height);
        report_uptime(&mut h, 1000 + height - 10);
    }
    for height in (1870..3611).step_by(60) {
        h.advance_to(height);
        report_uptime(&mut h, height - 1870);
    }
    h.advance_to(3611);
    h.ok(&user, Call::CancelContract { contract_id: 1 }); // block 3611: an hour after creation
    let bills = bills_with_credit(&h.take_history(), 1);
    // 4 CU × 100000 + 10 SU × 50000 = 900000 units-USD an hour: 250 a second, 3125 units of TFT
    // a second at 80 mUSD. 50 minutes: 3000 s × 3125 = 9375000.
    let total: u128 = bills.iter().map(|(amount, _)| amount).sum();
    let credited: u64 = bills.iter().map(|(_, credited)| credited).sum();
    assert_eq!((total, credited), (9_375_000, 600), "{bills:?}");
    // While the node is silent for up to three intervals its time waits for evidence; past them
    // each bill credits the silence (nothing to pay), and the report on its return proves the
    // rest down.
    let credits: Vec<u64> = bills.iter().map(|b| b.1).filter(|c| *c > 0).collect();
    assert_eq!(credits, [171, 60, 60, 60, 60, 60, 60, 69], "{bills:?}");
    assert!(
        bills
            .iter()
            .all(|(amount, credited)| *credited == 0 || *amount == 0)
    );
    assert!(
        h.state().contract_bills.get(&1).is_none(),
        "an ended contract's bills go with it"
    );
}

#[test]
fn a_rent_contract_is_not_billed_while_its_node_is_down() {
    let mut h = grid(10 * UNITS_PER_TFT);
    let user = account("User");
    report_uptime(&mut h, 1000); // block 10
    h.ok(&user, Call::CreateRentContract { node_id: 1 }); // block 11: contract 1
    h.take_history();
    // Reports every minute to block 130, none until block 430 (just started again), then every
    // minute: down for the 300 s from block 130 to 430.
    for height in [70, 130, 430, 490, 550] {
        h.advance_to(height);
        let uptime_s = if height < 430 {
            1000 + height
        } else {
            height - 430
        };
        report_uptime(&mut h, uptime_s);
    }
    h.advance_to(602);
    let bills = bills_with_credit(&h.take_history(), 1);
    let credits: Vec<u64> = bills.iter().map(|b| b.1).filter(|c| *c > 0).collect();
    assert_eq!(credits, [171, 60, 69], "{bills:?}");
    assert!(
        bills
            .iter()
            .all(|(amount, credited)| (*credited > 0) == (*amount == 0)),
        "{bills:?}"
    );
}
