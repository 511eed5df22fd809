//! Benchmark of the explorer at grid scale: 10,000 nodes in 100 farms, 100,000 node contracts with
//! reported resources and workload states, and their bills, fed as blocks of events through the
//! indexer's `apply_block` into SQLite (one transaction per block, as when following the chain);
//! then the API served on loopback answers filtered `/nodes` queries and `/stats` over HTTP.
//! Prints the indexing rate (events per second) and median and p99 latency per query, against the
//! issue's targets (`/nodes` p99 under 10 ms, `/stats` under 5 ms), for SQLite and then for
//! PostgreSQL (a server of its own, when Debian's `postgresql` is installed). `/stats` is measured
//! twice: as served (computed once per indexed block and second) and cold (a new block before every
//! request, so each one computes). The peer (the Go grid proxy on PostgreSQL) publishes no
//! benchmark and cannot run here, so there is no ratio to print.
//! Run with `cargo bench -p gridproxy --bench gridproxy -- [nodes] [contracts]`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gridproxy::api::{AppState, router};
use gridproxy::indexer::{self, Progress};
use gridproxy::store::{self, Postgres, Sqlite, Store};
use serde_json::json;
use tfchain_client::BlockView;
use tfchain_runtime::types::*;
use tfchain_runtime::{Event, EventRecord, Header};
use tfgrid_types::deployment::{Deployment, ResultData, ResultState, WorkloadResult};
use tfgrid_types::{Hash32, Keypair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GIB: u64 = 1 << 30;
const FARMS: u32 = 100;
const IPS_PER_FARM: u32 = 8;
const EVENTS_PER_BLOCK: usize = 2_000;
const REQUESTS_PER_QUERY: usize = 500;
const COUNTRIES: &[&str] = &[
    "Belgium", "Egypt", "Germany", "Brazil", "Japan", "Kenya", "Canada", "India",
];

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

struct Feeder {
    store: Arc<dyn Store>,
    height: u64,
    pending: Vec<Event>,
    events: u64,
    apply_time: Duration,
    author: tfgrid_types::AccountId,
}

impl Feeder {
    fn push(&mut self, event: Event) {
        self.pending.push(event);
        if self.pending.len() >= EVENTS_PER_BLOCK {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let header = Header {
            parent_hash: Hash32([0; 32]),
            height: self.height,
            timestamp_ms: now_s() * 1000,
            tx_root: Hash32([0; 32]),
            state_root: Hash32([0; 32]),
            events_root: Hash32([0; 32]),
            author: self.author,
        };
        let events: Vec<EventRecord> = std::mem::take(&mut self.pending)
            .into_iter()
            .map(|event| EventRecord {
                tx_index: None,
                event,
            })
            .collect();
        self.events += events.len() as u64;
        let block = BlockView {
            hash: header.hash(),
            header,
            txs: vec![],
            events,
        };
        let start = Instant::now();
        assert!(store::write(&*self.store, |sql| indexer::apply_block(sql, &block)).unwrap());
        self.apply_time += start.elapsed();
        self.height += 1;
    }
}

fn deployment(twin: u32, i: u64) -> Deployment {
    serde_json::from_value(json!({
        "version": 0, "twin_id": twin, "description": format!("d{i}"),
        "signature_requirement": { "requests": [], "weight_required": 0 },
        "workloads": [{ "version": 0, "name": "db", "type": "zdb",
            "data": { "size": (1 + i % 10) * GIB, "mode": "user", "password": { "plain": "x" } } }],
    }))
    .unwrap()
}

async fn get(port: u16, path: &str) -> (u16, usize) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let status = String::from_utf8_lossy(&raw[9..12]).parse().unwrap();
    (status, raw.len())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let nodes: u32 = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let contracts: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    // GRIDPROXY_BENCH_DB keeps the SQLite database at that path, for looking at query plans.
    let path = std::env::var_os("GRIDPROXY_BENCH_DB")
        .map_or_else(|| dir.path().join("bench.sqlite"), std::path::PathBuf::from);
    println!("store: SQLite");
    let mut met = run(Arc::new(Sqlite::open(&path).unwrap()), nodes, contracts).await;
    if testkit::postgres::bin_dir().is_some() {
        let pg = testkit::PgServer::start().await;
        let url = pg.url();
        println!("\nstore: PostgreSQL");
        let store = tokio::task::spawn_blocking(move || {
            Arc::new(Postgres::open(&url).unwrap()) as Arc<dyn Store>
        })
        .await
        .unwrap();
        met &= run(store, nodes, contracts).await;
    } else {
        println!(
            "\nPostgreSQL is not installed (Debian package `postgresql`): its run is left out"
        );
    }
    println!("\ntargets {}", if met { "met" } else { "missed" });
}

/// Indexes the grid into `store`, then serves and measures it; returns whether the targets were met.
async fn run(store: Arc<dyn Store>, nodes: u32, contracts: u64) -> bool {
    let feed_store = store.clone();
    let (events, blocks, apply_time) =
        tokio::task::spawn_blocking(move || index(feed_store, nodes, contracts))
            .await
            .unwrap();
    let rate = events as f64 / apply_time.as_secs_f64();
    println!(
        "indexed {events} events in {blocks} blocks: {:.2} s in apply_block, {rate:.0} events/s",
        apply_time.as_secs_f64(),
    );
    serve_and_query(store, blocks).await
}

/// Feeds the grid's events as blocks; returns events, blocks and the time spent applying them.
fn index(store: Arc<dyn Store>, nodes: u32, contracts: u64) -> (u64, u64, Duration) {
    let author = Keypair::from_uri("//Alice").unwrap().account();
    let mut feed = Feeder {
        store,
        height: 0,
        pending: Vec::new(),
        events: 0,
        apply_time: Duration::ZERO,
        author,
    };
    println!("indexing {nodes} nodes in {FARMS} farms and {contracts} node contracts");
    let users: u32 = 1_000;
    let twin_count = FARMS + nodes + users;
    for id in 1..=twin_count {
        feed.push(Event::TwinStored(Twin {
            version: TWIN_VERSION,
            id,
            account_id: {
                let mut seed = [7u8; 32];
                seed[..4].copy_from_slice(&id.to_le_bytes());
                Keypair::from_seed(seed).account()
            },
            relay: Some("relay.grid.tf".into()),
            pk: None,
        }));
    }
    for farm in 1..=FARMS {
        feed.push(Event::FarmStored(Farm {
            version: FARM_VERSION,
            id: farm,
            name: format!("farm{farm}"),
            twin_id: farm,
            pricing_policy_id: 1,
            certification: FarmCertification::NotCertified,
            public_ips: (0..IPS_PER_FARM)
                .map(|i| PublicIp {
                    ip: format!("185.{}.{}.{}/24", farm / 250, farm % 250, i + 1),
                    gateway: format!("185.{}.{}.254", farm / 250, farm % 250),
                    contract_id: 0,
                })
                .collect(),
            dedicated_farm: farm.is_multiple_of(10),
        }));
    }
    for node in 1..=nodes {
        let gib = |n: u64| n * GIB;
        feed.push(Event::NodeStored(Node {
            version: NODE_VERSION,
            id: node,
            farm_id: 1 + node % FARMS,
            twin_id: FARMS + node,
            resources: Resources {
                hru: gib(1000 * (1 + node as u64 % 8)),
                sru: gib(250 * (1 + node as u64 % 4)),
                cru: 4 + node as u64 % 28,
                mru: gib(8 * (1 + node as u64 % 16)),
            },
            location: Location {
                city: format!("city{}", node % 300),
                country: COUNTRIES[node as usize % COUNTRIES.len()].into(),
                latitude: "0".into(),
                longitude: "0".into(),
            },
            public_config: (node % 20 == 0).then(|| PublicConfig {
                ip4: Ip4Config {
                    ip: "185.206.122.50/24".into(),
                    gw: "185.206.122.1".into(),
                },
                ip6: None,
                domain: Some(format!("gw{node}.grid.tf")),
            }),
            created: now_s(),
            farming_policy_id: 1,
            interfaces: vec![],
            certification: NodeCertification::Diy,
            secure_boot: false,
            virtualized: false,
            serial_number: None,
            connection_price: 80,
        }));
        if node % 4 != 0 {
            feed.push(Event::NodeUptimeReported {
                node_id: node,
                timestamp_s: now_s(),
                uptime_s: 3600,
            });
        }
    }
    // Only nodes outside dedicated farms take node contracts.
    let shared: Vec<u32> = (1..=nodes)
        .filter(|n| !(1 + n % FARMS).is_multiple_of(10))
        .collect();
    for id in 1..=contracts {
        let twin = FARMS + nodes + 1 + (id % users as u64) as u32;
        let node_id = shared[(id as usize * 7919) % shared.len()];
        let d = deployment(twin, id);
        feed.push(Event::ContractCreated(Contract {
            version: 4,
            contract_id: id,
            twin_id: twin,
            state: ContractState::Created,
            contract_type: ContractData::NodeContract(NodeContract {
                node_id,
                deployment_hash: d.hash(),
                deployment: d,
                public_ips: 0,
                public_ips_list: vec![],
            }),
        }));
        feed.push(Event::DeploymentStateReported {
            contract_id: id,
            node_id,
            version: 0,
            workloads: vec![WorkloadResult {
                name: "db".into(),
                created: now_s(),
                state: ResultState::Ok,
                message: String::new(),
                data: ResultData::Zdb {
                    namespace: format!("{id}-db"),
                    ips: vec![],
                    port: 9900,
                },
            }],
        });
        feed.push(Event::UpdatedUsedResources {
            contract_id: id,
            used: Resources {
                hru: (1 + id % 10) * GIB,
                ..Resources::default()
            },
        });
        feed.push(Event::ContractBilled {
            contract_id: id,
            timestamp_s: now_s(),
            discount_level: DiscountLevel::None,
            amount_billed: 1_000 + id as u128,
            credited_s: 0,
        });
    }
    feed.flush();
    (feed.events, feed.height, feed.apply_time)
}

/// Serves the API on loopback and measures the queries; returns whether they met their targets.
async fn serve_and_query(store: Arc<dyn Store>, blocks: u64) -> bool {
    let progress = Arc::new(Progress::default());
    progress
        .indexed_height
        .store(blocks as i64, std::sync::atomic::Ordering::Release);
    let state = AppState::new(store, progress.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    let queries = [
        ("/nodes?status=up&free_mru=8589934592&size=50", Some(10.0)),
        (
            "/nodes?farm_ids=1,2,3,4,5&free_hru=2199023255552",
            Some(10.0),
        ),
        (
            "/nodes?country=Belgium&sort_by=free_mru&sort_order=desc",
            Some(10.0),
        ),
        (
            "/nodes?available_for=11200&free_ips=1&status=up&ret_count=true",
            Some(10.0),
        ),
        ("/nodes?domain=true&status=up", Some(10.0)),
        ("/nodes?page=100&size=50&sort_by=free_hru", Some(10.0)),
        ("/stats", Some(5.0)),
        ("/stats?status=up", Some(5.0)),
        ("/stats (cold)", None),
        ("/stats?status=up (cold)", None),
    ];
    println!(
        "{:<66} {:>9} {:>9} {:>8}",
        "query", "p50 ms", "p99 ms", "target"
    );
    let mut all_met = true;
    for (label, target_ms) in queries {
        let (path, cold) = match label.strip_suffix(" (cold)") {
            Some(path) => (path, true),
            None => (label, false),
        };
        let (status, _) = get(port, path).await;
        assert_eq!(status, 200, "{path}");
        let mut times = Vec::with_capacity(REQUESTS_PER_QUERY);
        for _ in 0..REQUESTS_PER_QUERY {
            if cold {
                // As if a block was indexed: no answer computed before it may serve.
                progress
                    .indexed_height
                    .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            }
            let start = Instant::now();
            get(port, path).await;
            times.push(start.elapsed());
        }
        times.sort();
        let p50 = percentile(&times, 0.50).as_secs_f64() * 1e3;
        let p99 = percentile(&times, 0.99).as_secs_f64() * 1e3;
        let verdict = match target_ms {
            Some(target_ms) if p99 < target_ms => format!("<{target_ms}"),
            Some(target_ms) => {
                all_met = false;
                format!("MISSED {target_ms}")
            }
            None => "-".into(),
        };
        println!("{label:<66} {p50:>9.2} {p99:>9.2} {verdict:>8}");
    }
    all_met
}
