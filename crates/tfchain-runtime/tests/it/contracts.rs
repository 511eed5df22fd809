//! Property: over random sequences of contract creation, node reports, top-ups, drained balances,
//! cancellations and block production, (1) total issuance equals the sum of balances and moves only
//! by fees and burns (down) and farming rewards (up); (2) every active contract is billed in its slot
//! of each period and at no other block; (3) no public IP is held by a contract that does not exist.

use std::collections::BTreeMap;

use proptest::prelude::*;
use tfchain_runtime::smart_contract::Call as ScCall;
use tfchain_runtime::tfgrid::{Call as GridCall, IpInput};
use tfchain_runtime::types::*;
use tfchain_runtime::{Call, Event, Genesis, Runtime, SignedTransaction, Transaction, balances};
use tfgrid_types::deployment::*;
use tfgrid_types::{AccountId, Keypair, Signature, UNITS_PER_TFT};

const GIB: u64 = 1024 * 1024 * 1024;

struct Chain {
    rt: Runtime,
    height: u64,
    time_ms: u64,
    issuance: u128,
}

fn key(name: &str) -> Keypair {
    Keypair::from_uri(&format!("//{name}")).unwrap()
}

impl Chain {
    /// Applies a call in a block of its own; returns whether the call succeeded.
    fn call(&mut self, who: &str, call: impl Into<Call>) -> bool {
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
    fn block(&mut self, tx: Option<SignedTransaction>) -> bool {
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
        let ok = match &tx {
            Some(tx) => {
                matches!(self.rt.apply_tx(tx, tx.encode().len()), Ok(r) if r.error.is_none())
            }
            None => true,
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
        ok
    }
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
    };
    let twin = |chain: &mut Chain, who: &str| {
        assert!(chain.call(
            who,
            GridCall::UserAcceptTc {
                document_link: "https://tc".into(),
                document_hash: "h".into()
            }
        ));
        assert!(chain.call(
            who,
            GridCall::CreateTwin {
                relay: None,
                pk: None
            }
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
    assert!(chain.call(
        "Alice",
        GridCall::CreateFarm {
            name: "farm".into(),
            public_ips: ips
        }
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
    assert!(chain.call("Bob", GridCall::CreateNode(spec)));
    for (user, amount) in USERS.iter().zip(funds) {
        assert!(chain.call(
            "Alice",
            balances::Call::Transfer {
                dest: key(user).account(),
                amount
            }
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn contracts_keep_the_ledger_sound(
        funds in proptest::array::uniform3(prop_oneof![Just(50_000u128), Just(UNITS_PER_TFT), Just(1000 * UNITS_PER_TFT)]),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let mut chain = setup(funds);
        for op in ops {
            match op {
                Op::Deploy { user, tag, ip } => {
                    let d = deployment(&chain, USERS[user], tag, ip);
                    chain.call(USERS[user], ScCall::CreateNodeContract { node_id: 1, deployment: d });
                }
                Op::Name { user, tag } => {
                    chain.call(USERS[user], ScCall::CreateNameContract { name: format!("name-{tag}") });
                }
                Op::Report { contract, cru } => {
                    let used = Resources { cru, mru: 2 * GIB * cru, sru: 10 * GIB, hru: GIB };
                    chain.call("Bob", ScCall::ReportContractResources { resources: vec![ContractResources { contract_id: contract, used }] });
                }
                Op::TopUp { user, tft } => {
                    chain.call("Alice", balances::Call::Transfer { dest: key(USERS[user]).account(), amount: tft * UNITS_PER_TFT });
                }
                Op::Drain { user } => {
                    let account: AccountId = key(USERS[user]).account();
                    let free = chain.rt.state.balance(&account);
                    // Leave just about the fee.
                    if free > 20_000 {
                        chain.call(USERS[user], balances::Call::Transfer { dest: key("Alice").account(), amount: free - 20_000 });
                    }
                }
                Op::Cancel { user, contract } => {
                    chain.call(USERS[user], ScCall::CancelContract { contract_id: contract });
                }
                Op::Blocks(n) => {
                    for _ in 0..n {
                        chain.block(None);
                    }
                }
            }
        }
    }
}
