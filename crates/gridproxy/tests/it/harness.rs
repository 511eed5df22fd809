//! What the tests share: `gridproxy` as a process and its HTTP client (testkit's `explorer`), and a
//! small grid on a fast chain (farmer, nodes, a deployer with contracts).

use std::path::Path;
use std::process::Output;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
pub use testkit::PgServer;
pub use testkit::explorer::{Proxy, bills_indexed, bills_on_chain, get, request, twin_ids};
use testkit::{ChainProcess, tfgrid};
use tfchain_client::Client;
use tfchain_runtime::Call;
use tfchain_runtime::smart_contract::Call as ScCall;
use tfchain_runtime::tfgrid::Call as GridCall;
use tfchain_runtime::types::*;
use tfgrid_types::Keypair;
use tfgrid_types::deployment::{ResultData, ResultState, WorkloadResult};

pub const GIB: u64 = 1 << 30;

/// The capacity of the tests' nodes (a second, bigger one is made where sizes must differ).
pub const NODE_RESOURCES: Resources = Resources {
    hru: 1000 * GIB,
    sru: 500 * GIB,
    cru: 8,
    mru: 16 * GIB,
};

pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "command failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A chain with 0.2 s blocks billing every 5 blocks.
pub async fn fast_chain() -> ChainProcess {
    ChainProcess::start_with(|spec| {
        spec["block_time_ms"] = 200.into();
        spec["genesis"]["params"]["billing_period_blocks"] = 5.into();
    })
    .await
}

pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub use testkit::register_node;

pub async fn report_uptime(client: &Client, node: &Keypair) {
    client
        .execute(
            node,
            Call::Tfgrid(GridCall::ReportUptime {
                uptime_s: 1000,
                timestamp_hint_s: now_s(),
            }),
        )
        .await
        .unwrap();
}

/// The node reports its 0-db workload and the resources the contract uses.
pub async fn report_contract(client: &Client, node: &Keypair, contract_id: u64, hru: u64) {
    let result = WorkloadResult {
        name: "db".into(),
        created: now_s(),
        state: ResultState::Ok,
        message: String::new(),
        data: ResultData::Zdb {
            namespace: format!("{contract_id}-db"),
            ips: vec!["10.10.0.2".into()],
            port: 9900,
        },
    };
    client
        .execute(
            node,
            Call::SmartContract(ScCall::ReportDeploymentState {
                contract_id,
                version: 0,
                workloads: vec![result],
            }),
        )
        .await
        .unwrap();
    client
        .execute(
            node,
            Call::SmartContract(ScCall::ReportContractResources {
                resources: vec![ContractResources {
                    contract_id,
                    used: Resources {
                        hru,
                        ..Resources::default()
                    },
                }],
            }),
        )
        .await
        .unwrap();
}

/// A deployment file with a 0-db of `size_gib` and, if asked, a public IP.
pub fn zdb_file(dir: &Path, name: &str, size_gib: u64, with_ip: bool) -> String {
    let mut workloads = vec![json!({
        "version": 0, "name": "db", "type": "zdb",
        "data": { "size": size_gib * GIB, "mode": "user", "password": { "plain": "s3cret-pass" } }
    })];
    if with_ip {
        workloads
            .push(json!({ "version": 0, "name": "pip", "type": "ip", "data": { "v4": true } }));
    }
    let path = dir.join(name);
    std::fs::write(
        &path,
        serde_json::to_string(&json!({ "description": name, "workloads": workloads })).unwrap(),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

/// Runs the CLI against `chain` with the keystore in `home`.
pub fn cli(home: &Path, chain: &ChainProcess, args: &[&str]) -> String {
    ok(tfgrid(home, &chain.rpc_url(), args))
}
