//! Benchmark of billing at scale: a chain (runtime and redb store) holding 100,000 active node
//! contracts on the dev spec (billed in 60 slots, so about 1,667 a block), with used resources
//! reported for each. Measures every block of one billing period: time to produce, seal and commit,
//! and the billing cost per contract. The target: blocks stay well within the 1 s block time.
//! Run with `cargo xtask bench billing [contracts]`.

use std::sync::Arc;
use std::time::Instant;

use tfchain::chain::Chain;
use tfchain::spec::ChainSpec;
use tfchain::store::Store;
use tfchain_runtime::genesis::Endowment;
use tfchain_runtime::smart_contract::Call as ScCall;
use tfchain_runtime::tfgrid::{Call as GridCall, IpInput};
use tfchain_runtime::types::*;
use tfchain_runtime::{Call, Event, Transaction};
use tfgrid_types::deployment::*;
use tfgrid_types::{AccountId, Hash32, Keypair, UNITS_PER_TFT};

const GIB: u64 = 1024 * 1024 * 1024;
const CONTRACTS_PER_USER: usize = 100;

struct Bench {
    chain: Chain,
    genesis: Hash32,
    now_ms: u64,
    nonces: std::collections::HashMap<AccountId, u64>,
}

impl Bench {
    fn submit(&mut self, key: &Keypair, call: Call) {
        let nonce = self.nonces.entry(key.account()).or_insert(0);
        let tx = Transaction {
            signer: key.account(),
            nonce: *nonce,
            call,
        }
        .sign(key, &self.genesis);
        *nonce += 1;
        let len = tx.encode().len();
        self.chain.shared().admit(tx, len).expect("admitted");
    }

    /// Produces blocks until the pool is empty; returns the events of the last one.
    fn drain(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        while self.chain.shared().pool_len() > 0 {
            events = self.block().1;
        }
        events
    }

    fn block(&mut self) -> (f64, Vec<Event>) {
        self.now_ms += 1000;
        let start = Instant::now();
        let committed = self.chain.produce_block(self.now_ms).expect("block");
        let took = start.elapsed().as_secs_f64();
        (
            took,
            committed.events.iter().map(|r| r.event.clone()).collect(),
        )
    }
}

fn key(name: &str) -> Keypair {
    Keypair::from_seed(Hash32::of("bench billing", name.as_bytes()).0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let contracts: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let users: Vec<Keypair> = (0..contracts.div_ceil(CONTRACTS_PER_USER))
        .map(|i| key(&format!("user{i}")))
        .collect();
    let (farmer, node) = (key("farmer"), key("node"));
    let mut spec = ChainSpec::dev();
    for k in users.iter().chain([&farmer, &node]) {
        spec.genesis.balances.push(Endowment {
            account: k.account(),
            amount: 1_000 * UNITS_PER_TFT,
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("chain.redb")).unwrap());
    let chain = Chain::open(store, &spec, Keypair::from_uri("//Alice").unwrap()).unwrap();
    let genesis = chain.genesis_hash();
    let mut b = Bench {
        chain,
        genesis,
        now_ms: 1_700_000_000_000,
        nonces: Default::default(),
    };

    println!(
        "setting up {contracts} contracts of {} twins on one node...",
        users.len()
    );
    let setup = Instant::now();
    let tc = || {
        Call::Tfgrid(GridCall::UserAcceptTc {
            document_link: "https://tc".into(),
            document_hash: "h".into(),
        })
    };
    for k in users.iter().chain([&farmer, &node]) {
        b.submit(k, tc());
        b.submit(
            k,
            Call::Tfgrid(GridCall::CreateTwin {
                relay: None,
                pk: None,
            }),
        );
    }
    b.drain();
    let ips = vec![IpInput {
        ip: "185.206.122.33/24".into(),
        gw: "185.206.122.1".into(),
    }];
    b.submit(
        &farmer,
        Call::Tfgrid(GridCall::CreateFarm {
            name: "farm".into(),
            public_ips: ips,
        }),
    );
    b.drain();
    let spec_node = NodeSpec {
        farm_id: 1,
        resources: Resources {
            hru: 100_000 * GIB,
            sru: 100_000 * GIB,
            cru: 1024,
            mru: 4096 * GIB,
        },
        location: Location {
            city: "Ghent".into(),
            country: "Belgium".into(),
            latitude: "51".into(),
            longitude: "3".into(),
        },
        interfaces: vec![],
        secure_boot: false,
        virtualized: false,
        serial_number: None,
    };
    b.submit(&node, Call::Tfgrid(GridCall::CreateNode(spec_node)));
    b.drain();
    let twin_of = |i: usize| i as u32 + 1; // users registered first: twins 1..=users
    for i in 0..contracts {
        let user = i / CONTRACTS_PER_USER;
        let twin = twin_of(user);
        let mut d = Deployment {
            version: 0,
            twin_id: twin,
            metadata: String::new(),
            description: String::new(),
            signature_requirement: Deployment::single_signer(twin),
            workloads: vec![Workload {
                version: 0,
                name: format!("db{i}"),
                metadata: String::new(),
                description: String::new(),
                data: WorkloadData::Zdb(Zdb {
                    size: GIB,
                    mode: ZdbMode::Seq,
                    password: Secret::Plain("pw".into()),
                    public: false,
                }),
            }],
        };
        d.seal_secrets(&node.account(), &mut rand::thread_rng())
            .unwrap();
        d.sign(twin, &users[user]);
        b.submit(
            &users[user],
            Call::SmartContract(ScCall::CreateNodeContract {
                node_id: 1,
                deployment: d,
            }),
        );
    }
    b.drain();
    let used = Resources {
        hru: GIB,
        sru: 0,
        cru: 1,
        mru: 2 * GIB,
    };
    let ids: Vec<u64> = (1..=contracts as u64).collect();
    for chunk in ids.chunks(1024) {
        let resources = chunk
            .iter()
            .map(|&contract_id| ContractResources { contract_id, used })
            .collect();
        b.submit(
            &node,
            Call::SmartContract(ScCall::ReportContractResources { resources }),
        );
    }
    b.drain();
    println!("set up in {:.1} s", setup.elapsed().as_secs_f64());

    // One full billing period of empty blocks: every contract billed once.
    let period = spec.genesis.params.billing_period_blocks as usize;
    let mut times = Vec::with_capacity(period);
    let mut billed = 0usize;
    for _ in 0..period {
        let (took, events) = b.block();
        billed += events
            .iter()
            .filter(|e| matches!(e, Event::ContractBilled { .. }))
            .count();
        times.push(took);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = percentile(&times, 0.5);
    let per_block = billed as f64 / period as f64;
    println!(
        "{contracts} active contracts, billing period {period} blocks: {billed} bills in the period ({per_block:.0} per block)"
    );
    println!(
        "block time (bill, seal, commit to redb): median {:.1} ms, p90 {:.1} ms, max {:.1} ms; block time target {} ms",
        median * 1e3,
        percentile(&times, 0.9) * 1e3,
        times[times.len() - 1] * 1e3,
        spec.block_time_ms
    );
    println!(
        "billing cost per contract (whole block / bills): {:.1} µs",
        median * 1e6 / per_block.max(1.0)
    );
    println!(
        "headroom: a block uses {:.1} % of its time",
        median * 1e3 / spec.block_time_ms as f64 * 100.0
    );
    assert_eq!(
        billed, contracts,
        "every contract billed exactly once in the period"
    );
}
