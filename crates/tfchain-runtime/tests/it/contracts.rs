//! Property: over random sequences of contract creation, node reports, top-ups, drained balances,
//! cancellations and block production, (1) total issuance equals the sum of balances and moves only
//! by fees and burns (down) and farming rewards (up); (2) every active contract is billed in its slot
//! of each period and at no other block; (3) no public IP is held by a contract that does not exist;
//! (4) every call's result is the one its inputs call for (a deployment is refused only for want
//! of a public IP or of the fee, a cancellation only of a contract the user does not own). Over the
//! run, contracts must have been created and billed, so the properties cannot hold vacuously.

use std::collections::BTreeMap;

use proptest::prelude::*;
use tfchain_runtime::smart_contract::Call as ScCall;
use tfchain_runtime::tfgrid::{Call as GridCall, IpInput};
use tfchain_runtime::types::*;
use tfchain_runtime::{
    Call, DispatchError, Event, Genesis, Runtime, SignedTransaction, Transaction, TxInvalid,
    balances,
};
use tfgrid_types::deployment::*;
use tfgrid_types::{AccountId, Keypair, Signature, UNITS_PER_TFT};

const GIB: u64 = 1024 * 1024 * 1024;

struct Chain {
    rt: Runtime,
    height: u64,
    time_ms: u64,
    issuance: u128,
    /// `ContractCreated` events seen.
    created: u32,
    /// `ContractBilled` events seen with an amount.
    billed: u32,
}

/// What became of one call: included and done (`Ok(None)`), included and failed, or refused.
type Applied = Result<Option<DispatchError>, TxInvalid>;

fn key(name: &str) -> Keypair {
    Keypair::from_uri(&format!("//{name}")).unwrap()
}

impl Chain {
    /// Applies a call in a block of its own.
    fn call(&mut self, who: &str, call: impl Into<Call>) -> Applied {
        let signer = key(who).account();
        let nonce = self.rt.state.accounts.get(&signer).map_or(0, |a| a.nonce);
        let tx = SignedTransaction {
            tx: Transaction {
                signer,
                nonce,
                call: call.into(),
            },
            signature: Signature([0; 64]),
        };
        self.block(Some(tx))
    }

    /// Produces one block (with at most one transaction) and checks the invariants on it.
    fn block(&mut self, tx: Option<SignedTransaction>) -> Applied {
        self.height += 1;
        self.time_ms += 1000;
        let before: BTreeMap<u64, u64> = self
            .rt
            .state
            .contract_billing
            .iter()
            .map(|(id, b)| (*id, b.last_billed_s))
            .collect();
        self.rt.begin_block(self.height, self.time_ms);
        let applied = match &tx {
            Some(tx) => self.rt.apply_tx(tx, tx.encode().len()).map(|r| r.error),
            None => Ok(None),
        };
        let outcome = self.rt.finish_block();
        let now_s = self.time_ms / 1000;
        let state = &self.rt.state;

        // (1) Supply.
        for record in &outcome.events {
            match &record.event {
                Event::TransactionFeePaid { fee, .. } => self.issuance -= fee,
                Event::TokensBurned { amount, .. } => self.issuance -= amount,
                Event::FarmingRewardMinted { amount, .. } => self.issuance += amount,
                Event::ContractCreated(_) => self.created += 1,
                Event::ContractBilled { amount_billed, .. } if *amount_billed > 0 => {
                    self.billed += 1
                }
                _ => {}
            }
        }
        let sum: u128 = state.accounts.iter().map(|(_, a)| a.free).sum();
        assert_eq!(state.issuance(), sum, "issuance is the sum of balances");
        assert_eq!(
            state.issuance(),
            self.issuance,
            "issuance moved by fees, burns and rewards only"
        );

        // (2) Billing: contracts of this slot were billed now, others were not touched.
        let period = state.params().billing_period_blocks;
        for (id, billing) in state.contract_billing.iter() {
            match before.get(id) {
                Some(_) if id % period == self.height % period => {
                    // A transaction in this block may have canceled it (then it is gone) or created it.
                    assert_eq!(
                        billing.last_billed_s, now_s,
                        "contract {id} skipped in its slot at {}",
                        self.height
                    );
                }
                Some(last) => assert_eq!(
                    billing.last_billed_s, *last,
                    "contract {id} billed outside its slot"
                ),
                None => assert_eq!(
                    billing.last_billed_s, now_s,
                    "a new contract starts billing now"
                ),
            }
        }

        // (3) Public IPs.
        for (_, farm) in state.farms.iter() {
            for ip in farm.public_ips.iter().filter(|ip| ip.contract_id != 0) {
                let contract = state
                    .contracts
                    .get(&ip.contract_id)
                    .expect("an IP is held by a live contract");
                let ContractData::NodeContract(c) = &contract.contract_type else {
                    panic!("held by a non-node contract")
                };
                assert!(c.public_ips_list.iter().any(|l| l.ip == ip.ip));
            }
        }
        applied
    }
}

/// Asserts a call was included and done.
fn done(applied: Applied) {
    assert_eq!(applied, Ok(None));
}

const USERS: [&str; 3] = ["U1", "U2", "U3"];

fn setup(funds: [u128; 3]) -> Chain {
    let rt = Runtime::new(Genesis::dev().build().unwrap().state);
    let issuance = rt.state.issuance();
    let mut chain = Chain {
        rt,
        height: 0,
        time_ms: 1_700_000_000_000,
        issuance,
        created: 0,
        billed: 0,
    };
    let twin = |chain: &mut Chain, who: &str| {
        done(chain.call(
            who,
            GridCall::UserAcceptTc {
                document_link: "https://tc".into(),
                document_hash: "h".into(),
            },
        ));
        done(chain.call(
            who,
            GridCall::CreateTwin {
                relay: None,
                pk: None,
            },
        ));
    };
    twin(&mut chain, "Alice");
    twin(&mut chain, "Bob");
    let ips = (10..13)
        .map(|i| IpInput {
            ip: format!("185.206.122.{i}/24"),
            gw: "185.206.122.1".into(),
        })
        .collect();
    done(chain.call(
        "Alice",
        GridCall::CreateFarm {
            name: "farm".into(),
            public_ips: ips,
        },
    ));
    let spec = NodeSpec {
        farm_id: 1,
        resources: Resources {
            hru: 0,
            sru: 500 * GIB,
            cru: 8,
            mru: 16 * GIB,
        },
        location: Location {
            city: "Ghent".into(),
            country: "Belgium".into(),
            latitude: "51".into(),
            longitude: "3".into(),
        },
        interfaces: vec![],
        secure_boot: false,
        virtualized: true,
        serial_number: None,
    };
    done(chain.call("Bob", GridCall::CreateNode(spec)));
    for (user, amount) in USERS.iter().zip(funds) {
        done(chain.call(
            "Alice",
            balances::Call::Transfer {
                dest: key(user).account(),
                amount,
            },
        ));
        twin(&mut chain, user);
    }
    chain
}

fn deployment(chain: &Chain, user: &str, tag: u32, with_ip: bool) -> Deployment {
    let twin = *chain
        .rt
        .state
        .twin_id_by_account
        .get(&key(user).account())
        .unwrap();
    let mut workloads = vec![Workload {
        version: 0,
        name: format!("db{tag}"),
        metadata: String::new(),
        description: String::new(),
        data: WorkloadData::Zdb(Zdb {
            size: GIB,
            mode: ZdbMode::Seq,
            password: Secret::Plain("p".into()),
            public: false,
        }),
    }];
    if with_ip {
        workloads.push(Workload {
            version: 0,
            name: "pip".into(),
            metadata: String::new(),
            description: String::new(),
            data: WorkloadData::Ip(Ip {
                v4: true,
                v6: false,
            }),
        });
    }
    let mut d = Deployment {
        version: 0,
        twin_id: twin,
        metadata: String::new(),
        description: String::new(),
        signature_requirement: Deployment::single_signer(twin),
        workloads,
    };
    d.seal_secrets(&key("Bob").account(), &mut rand::thread_rng())
        .unwrap();
    d.sign(twin, &key(user));
    d
}

#[derive(Debug, Clone)]
enum Op {
    Deploy { user: usize, tag: u32, ip: bool },
    Name { user: usize, tag: u8 },
    Report { contract: u64, cru: u64 },
    TopUp { user: usize, tft: u128 },
    Drain { user: usize },
    Cancel { user: usize, contract: u64 },
    Blocks(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0usize..3;
    prop_oneof![
        3 => (user.clone(), 0u32..1000, any::<bool>()).prop_map(|(user, tag, ip)| Op::Deploy { user, tag, ip }),
        1 => (user.clone(), 0u8..5).prop_map(|(user, tag)| Op::Name { user, tag }),
        2 => (1u64..12, 1u64..16).prop_map(|(contract, cru)| Op::Report { contract, cru }),
        1 => (user.clone(), 1u128..20).prop_map(|(user, tft)| Op::TopUp { user, tft }),
        1 => user.clone().prop_map(|user| Op::Drain { user }),
        1 => (user.clone(), 1u64..12).prop_map(|(user, contract)| Op::Cancel { user, contract }),
        3 => (1u64..150).prop_map(Op::Blocks),
    ]
}

/// Whether the call was refused because the signer cannot pay its fee (a drained user).
fn cannot_pay(applied: &Applied) -> bool {
    matches!(applied, Err(TxInvalid::CannotPayFee { .. }))
}

/// A public IP of the farm that no contract holds.
fn free_ip(chain: &Chain) -> bool {
    let farm = chain.rt.state.farms.get(&1).unwrap();
    farm.public_ips.iter().any(|ip| ip.contract_id == 0)
}

/// Creates a node contract: refused only for want of a public IP or of the fee.
fn deploy(chain: &mut Chain, user: &str, tag: u32, ip: bool) {
    let d = deployment(chain, user, tag, ip);
    let had_ip = free_ip(chain);
    let before = chain.created;
    let applied = chain.call(
        user,
        ScCall::CreateNodeContract {
            node_id: 1,
            deployment: d,
        },
    );
    match applied {
        Ok(None) => assert_eq!(chain.created, before + 1, "created without an event"),
        Ok(Some(DispatchError::NotEnoughPublicIps { .. })) => assert!(ip && !had_ip),
        other => assert!(cannot_pay(&other), "deploy: {other:?}"),
    }
}

/// Cancels a contract: done if the user owns it (then it is gone), refused otherwise.
fn cancel(chain: &mut Chain, user: &str, contract: u64) {
    let state = &chain.rt.state;
    let twin = state.twin_id_by_account.get(&key(user).account()).copied();
    let owner = state.contracts.get(&contract).map(|c| c.twin_id);
    let applied = chain.call(
        user,
        ScCall::CancelContract {
            contract_id: contract,
        },
    );
    match applied {
        Ok(None) => {
            assert_eq!(owner, twin);
            assert!(chain.rt.state.contracts.get(&contract).is_none());
        }
        Ok(Some(DispatchError::ContractNotFound(_))) => assert_eq!(owner, None),
        Ok(Some(DispatchError::NotContractOwner { .. })) => {
            assert!(owner.is_some() && owner != twin)
        }
        other => assert!(cannot_pay(&other), "cancel: {other:?}"),
    }
}

/// Runs one operation and checks its call's result against what its inputs call for.
fn run(chain: &mut Chain, op: Op) {
    match op {
        Op::Deploy { user, tag, ip } => deploy(chain, USERS[user], tag, ip),
        Op::Name { user, tag } => {
            let name = format!("name-{tag}");
            let taken = chain.rt.state.contract_id_by_name.get(&name).is_some();
            let applied = chain.call(USERS[user], ScCall::CreateNameContract { name });
            match applied {
                Ok(None) => assert!(!taken),
                Ok(Some(DispatchError::NameTaken(..))) => assert!(taken),
                other => assert!(cannot_pay(&other), "name: {other:?}"),
            }
        }
        Op::Report { contract, cru } => {
            let used = Resources {
                cru,
                mru: 2 * GIB * cru,
                sru: 10 * GIB,
                hru: GIB,
            };
            let kind = chain
                .rt
                .state
                .contracts
                .get(&contract)
                .map(|c| matches!(c.contract_type, ContractData::NodeContract(_)));
            let applied = chain.call(
                "Bob",
                ScCall::ReportContractResources {
                    resources: vec![ContractResources {
                        contract_id: contract,
                        used,
                    }],
                },
            );
            let expect = match kind {
                Some(true) => None,
                Some(false) => Some(DispatchError::NotNodeContract(contract)),
                None => Some(DispatchError::ContractNotFound(contract)),
            };
            assert_eq!(applied, Ok(expect));
        }
        Op::TopUp { user, tft } => done(chain.call(
            "Alice",
            balances::Call::Transfer {
                dest: key(USERS[user]).account(),
                amount: tft * UNITS_PER_TFT,
            },
        )),
        Op::Drain { user } => {
            let account: AccountId = key(USERS[user]).account();
            let free = chain.rt.state.balance(&account);
            // Leave just about the fee.
            if free > 20_000 {
                let applied = chain.call(
                    USERS[user],
                    balances::Call::Transfer {
                        dest: key("Alice").account(),
                        amount: free - 20_000,
                    },
                );
                match applied {
                    Ok(None) => {}
                    // The fee came first, and the rest no longer covers the amount.
                    Ok(Some(DispatchError::InsufficientFunds { .. })) => {}
                    other => panic!("drain: {other:?}"),
                }
            }
        }
        Op::Cancel { user, contract } => cancel(chain, USERS[user], contract),
        Op::Blocks(n) => {
            for _ in 0..n {
                done(chain.block(None));
            }
        }
    }
}

#[test]
fn contracts_keep_the_ledger_sound() {
    let funds = proptest::array::uniform3(prop_oneof![
        Just(50_000u128),
        Just(UNITS_PER_TFT),
        Just(1000 * UNITS_PER_TFT)
    ]);
    let strategy = (funds, proptest::collection::vec(op(), 1..40));
    let totals = std::cell::Cell::new((0u32, 0u32));
    proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(24))
        .run(&strategy, |(funds, ops)| {
            let mut chain = setup(funds);
            for op in ops {
                run(&mut chain, op);
            }
            let (created, billed) = totals.get();
            totals.set((created + chain.created, billed + chain.billed));
            Ok(())
        })
        .unwrap();
    let (created, billed) = totals.get();
    assert!(
        created > 0 && billed > 0,
        "{created} contracts created, {billed} bills"
    );
}
