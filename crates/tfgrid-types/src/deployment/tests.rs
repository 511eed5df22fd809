//! Tests of deployments: hashing, validation of every workload type, references, secrets, the
//! multi-signature rules and updates.

use super::*;
use std::collections::BTreeMap;

fn key(name: &str) -> Keypair {
    Keypair::from_uri(&format!("//{name}")).unwrap()
}

/// Twins 1..=3 are Alice, Bob, Charlie.
fn account_of(twin: TwinId) -> Option<AccountId> {
    ["Alice", "Bob", "Charlie"]
        .get(twin as usize - 1)
        .map(|n| key(n).account())
}

fn wl(name: &str, data: WorkloadData) -> Workload {
    Workload {
        version: 0,
        name: name.into(),
        metadata: String::new(),
        description: String::new(),
        data,
    }
}

fn zdb(size: u64) -> WorkloadData {
    WorkloadData::Zdb(Zdb {
        size,
        mode: ZdbMode::User,
        password: Secret::Plain("pass".into()),
        public: false,
    })
}

fn vm() -> WorkloadData {
    WorkloadData::Zmachine(Zmachine {
        flist: "http://hub/busybox.tar".into(),
        flist_hash: String::new(),
        network: ZmachineNetwork {
            public_ip: "pip".into(),
            interfaces: vec![NetworkInterface {
                network: "net".into(),
                ip: "10.20.1.2".into(),
            }],
        },
        size: 0,
        compute_capacity: ComputeCapacity {
            cpu: 2,
            memory: 512 * MIB,
        },
        mounts: vec![Mount {
            name: "disk".into(),
            mountpoint: "/data".into(),
        }],
        entrypoint: "/bin/sh".into(),
        env: BTreeMap::from([("GREETING".to_string(), Secret::Plain("hello".into()))]),
        corex: false,
    })
}

fn net() -> WorkloadData {
    WorkloadData::Network(Network {
        ip_range: "10.20.0.0/16".into(),
        subnet: "10.20.1.0/24".into(),
        wireguard_private_key: Secret::Plain("key".into()),
        wireguard_listen_port: 3000,
        peers: vec![],
    })
}

/// A deployment of every kind of workload, sealed to node key "node" and signed by Alice (twin 1).
fn full() -> Deployment {
    let mut d = Deployment {
        version: 0,
        twin_id: 1,
        metadata: "{}".into(),
        description: "test".into(),
        signature_requirement: Deployment::single_signer(1),
        workloads: vec![
            wl("net", net()),
            wl("disk", WorkloadData::Zmount(Zmount { size: GIB })),
            wl(
                "pip",
                WorkloadData::Ip(Ip {
                    v4: true,
                    v6: false,
                }),
            ),
            wl("vm", vm()),
            wl("db", zdb(10 * GIB)),
            wl(
                "logs",
                WorkloadData::Zlogs(Zlogs {
                    zmachine: "vm".into(),
                    output: "redis://10.0.0.1:6379/logs".into(),
                }),
            ),
            wl(
                "web",
                WorkloadData::GatewayNameProxy(GatewayNameProxy {
                    name: "web".into(),
                    tls_passthrough: false,
                    backends: vec!["http://10.20.1.2:8080".into()],
                    network: Some("net".into()),
                }),
            ),
        ],
    };
    d.seal_secrets(&key("node").account(), &mut rand::thread_rng())
        .unwrap();
    d.sign(1, &key("Alice"));
    d
}

#[test]
fn a_full_deployment_is_valid_and_signed() {
    let d = full();
    assert_eq!(d.check(), Ok(()));
    assert_eq!(d.verify_signatures(account_of), Ok(()));
    let cap = d.capacity();
    assert_eq!(
        (cap.cru, cap.mru, cap.hru, cap.ipv4u),
        (2, 512 * MIB, 10 * GIB, 1)
    );
    assert_eq!(
        cap.sru,
        GIB + 500 * MIB,
        "zmount plus the minimum root size"
    );
    assert_eq!(d.public_ipv4_count(), 1);
}

#[test]
fn hash_covers_content_but_not_signatures() {
    let d = full();
    let mut resigned = d.clone();
    resigned.sign(2, &key("Bob"));
    assert_eq!(resigned.hash(), d.hash());
    let mut changed = d.clone();
    changed.workloads[4].data = zdb(11 * GIB);
    assert_ne!(changed.hash(), d.hash());
    let mut reordered = d.clone();
    reordered.workloads.swap(0, 1);
    assert_ne!(reordered.hash(), d.hash());
}

#[test]
fn json_follows_zero_os_shape_and_round_trips() {
    let d = full();
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["workloads"][4]["type"], "zdb");
    assert_eq!(json["workloads"][4]["data"]["mode"], "user");
    assert!(json["workloads"][4]["data"]["password"]["sealed"].is_string());
    let back: Deployment = serde_json::from_value(json).unwrap();
    assert_eq!(back, d);
}

#[test]
fn secrets_are_sealed_to_the_node_only() {
    let d = full();
    let open = d.open_secrets(&key("node")).unwrap();
    let WorkloadData::Zdb(z) = &open.workload("db").unwrap().data else {
        unreachable!()
    };
    assert_eq!(z.password, Secret::Plain("pass".into()));
    assert!(matches!(
        d.open_secrets(&key("other")),
        Err(DeploymentError::Unsealed(_))
    ));
    let mut plain = d.clone();
    plain.workloads[4].data = zdb(GIB);
    assert_eq!(plain.check(), Err(DeploymentError::Unsealed("db".into())));
}

/// Asserts that changing the full deployment with `f` makes `check` fail with a message holding `expect`.
fn rejects(f: impl FnOnce(&mut Deployment), expect: &str) {
    let mut d = full();
    f(&mut d);
    d.seal_secrets(&key("node").account(), &mut rand::thread_rng())
        .unwrap();
    let err = d.check().expect_err(expect).to_string();
    assert!(err.contains(expect), "expected {expect:?} in {err:?}");
}

fn zmachine(d: &mut Deployment) -> &mut Zmachine {
    match &mut d.workloads[3].data {
        WorkloadData::Zmachine(m) => m,
        _ => unreachable!(),
    }
}

#[test]
fn workload_rules() {
    rejects(
        |d| d.workloads[0].name = "bad name".into(),
        "1 to 36 letters",
    );
    rejects(|d| d.workloads[0].name = "x".repeat(37), "1 to 36 letters");
    rejects(
        |d| d.workloads[1].name = "net".into(),
        "two workloads are named \"net\"",
    );
    rejects(|d| d.workloads[1].version = 1, "above the deployment's 0");
    rejects(|d| d.workloads.clear(), "1 to 256 workloads");
    rejects(
        |d| zmachine(d).compute_capacity.cpu = 0,
        "cpu must be at least 1",
    );
    rejects(
        |d| zmachine(d).compute_capacity.memory = 100 * MIB,
        "at least 250 MiB",
    );
    rejects(
        |d| zmachine(d).network.interfaces.clear(),
        "exactly one network interface",
    );
    rejects(
        |d| zmachine(d).network.interfaces[0].ip = "nope".into(),
        "not an IPv4 address",
    );
    rejects(|d| zmachine(d).flist.clear(), "flist");
    rejects(
        |d| zmachine(d).network.public_ip = "db".into(),
        "not an ip workload",
    );
    rejects(
        |d| zmachine(d).mounts[0].name = "db".into(),
        "not a zmount or volume",
    );
    rejects(
        |d| zmachine(d).mounts[0].mountpoint = "data".into(),
        "not an absolute path",
    );
    rejects(
        |d| d.workloads[1].data = WorkloadData::Zmount(Zmount { size: 0 }),
        "size must be more than 0",
    );
    rejects(|d| d.workloads[4].data = zdb(0), "size must be more than 0");
    rejects(
        |d| {
            d.workloads[2].data = WorkloadData::Ip(Ip {
                v4: false,
                v6: false,
            })
        },
        "v4, v6 or both",
    );
    rejects(
        |d| {
            d.workloads[5].data = WorkloadData::Zlogs(Zlogs {
                zmachine: "db".into(),
                output: "redis://x".into(),
            })
        },
        "not a zmachine",
    );
    rejects(
        |d| {
            d.workloads[5].data = WorkloadData::Zlogs(Zlogs {
                zmachine: "vm".into(),
                output: "http://x".into(),
            })
        },
        "redis://, ws://",
    );
    rejects(
        |d| {
            let WorkloadData::Network(n) = &mut d.workloads[0].data else {
                unreachable!()
            };
            n.subnet = "10.21.1.0/24".into();
        },
        "not inside ip_range",
    );
    let gateway = |backend: &str, passthrough: bool| {
        WorkloadData::GatewayNameProxy(GatewayNameProxy {
            name: "web".into(),
            tls_passthrough: passthrough,
            backends: vec![backend.into()],
            network: None,
        })
    };
    rejects(
        |d| d.workloads[6].data = gateway("10.0.0.1:80", false),
        "must be http://",
    );
    for local in [
        "http://127.0.0.1",
        "http://0.0.0.0:8080",
        "[::]:443",
        "[::ffff:127.0.0.1]:443",
    ] {
        let passthrough = !local.starts_with("http://");
        rejects(
            |d| d.workloads[6].data = gateway(local, passthrough),
            "loopback or unspecified",
        );
    }
    rejects(
        |d| d.workloads[6].data = gateway("http://10.0.0.1", true),
        "ip:port with TLS passthrough",
    );
    rejects(
        |d| {
            d.workloads[6].data = WorkloadData::GatewayFqdnProxy(GatewayFqdnProxy {
                fqdn: "nodot".into(),
                tls_passthrough: false,
                backends: vec!["http://10.0.0.1".into()],
                network: None,
            })
        },
        "not a domain name",
    );
    rejects(
        |d| d.signature_requirement.requests[0].twin_id = 2,
        "must be in the signature requests",
    );
    rejects(
        |d| d.description = "x".repeat(70_000),
        "bytes, at most 65536 allowed",
    );
}

/// A deployment of Alice (twin 1) that Bob (2) and Charlie (3) may co-sign.
fn multisig(
    requests: &[(TwinId, bool, u32)],
    weight_required: u32,
    signers: &[TwinId],
) -> Result<(), DeploymentError> {
    let mut d = full();
    d.signature_requirement = SignatureRequirement {
        requests: requests
            .iter()
            .map(|&(twin_id, required, weight)| SignatureRequest {
                twin_id,
                required,
                weight,
            })
            .collect(),
        weight_required,
        signatures: vec![],
    };
    for &twin in signers {
        d.sign(twin, &key(["Alice", "Bob", "Charlie"][twin as usize - 1]));
    }
    d.verify_signatures(account_of)
}

#[test]
fn multi_signature_rules() {
    let all = [(1, true, 1), (2, true, 1), (3, false, 1)];
    assert_eq!(
        multisig(&all, 2, &[1, 2]),
        Ok(()),
        "an optional signer may be absent"
    );
    assert_eq!(multisig(&all, 3, &[1, 2, 3]), Ok(()));
    assert_eq!(
        multisig(&all, 2, &[1]),
        Err(DeploymentError::MissingSignature(2))
    );
    assert_eq!(
        multisig(&all, 3, &[1, 2]),
        Err(DeploymentError::InsufficientWeight { got: 2, needed: 3 })
    );
    // The owner is required even when its request says otherwise.
    assert_eq!(
        multisig(&[(1, false, 1), (2, true, 5)], 5, &[2]),
        Err(DeploymentError::MissingSignature(1))
    );
    assert_eq!(
        multisig(&[(1, true, 1)], 1, &[1, 3]),
        Err(DeploymentError::UnrequestedSignature(3))
    );
    assert_eq!(
        multisig(&[(1, true, 1), (4, false, 1)], 1, &[1]),
        Ok(()),
        "an absent optional twin need not exist"
    );

    let mut forged = full();
    forged.signature_requirement.signatures[0].signature = key("Bob").sign(&forged.hash().0);
    assert_eq!(
        forged.verify_signatures(account_of),
        Err(DeploymentError::BadSignature(1))
    );
    let mut tampered = full();
    tampered.description = "changed after signing".into();
    assert_eq!(
        tampered.verify_signatures(account_of),
        Err(DeploymentError::BadSignature(1))
    );
}

fn next(old: &Deployment, f: impl FnOnce(&mut Deployment)) -> Deployment {
    let mut new = old.clone();
    new.version += 1;
    new.signature_requirement.signatures.clear();
    f(&mut new);
    new.seal_secrets(&key("node").account(), &mut rand::thread_rng())
        .unwrap();
    new.sign(1, &key("Alice"));
    new
}

#[test]
fn update_rules() {
    let old = full();
    let grown = next(&old, |d| {
        d.workloads[4].data = zdb(20 * GIB);
        d.workloads[4].version = 1;
        d.workloads.push(Workload {
            version: 1,
            ..wl("db2", zdb(GIB))
        });
    });
    assert_eq!(grown.check_upgrade(&old, account_of), Ok(()));

    let err = |d: Deployment| d.check_upgrade(&old, account_of).unwrap_err().to_string();
    assert!(err(next(&old, |d| d.version = 5)).contains("version must be 1"));
    assert!(
        err(next(&old, |d| d.workloads[4].data = zdb(20 * GIB))).contains("must have version 1")
    );
    assert!(
        err(next(&old, |d| d.workloads.push(wl("db2", zdb(GIB)))))
            .contains("new workload \"db2\" must have version 1")
    );
    assert!(
        err(next(&old, |d| {
            d.workloads[1].data = WorkloadData::Volume(Volume { size: GIB });
            d.workloads[1].version = 1;
        }))
        .contains("cannot change its type")
    );
    assert!(
        err(next(&old, |d| {
            zmachine(d).compute_capacity.memory = GIB;
            d.workloads[3].version = 1;
        }))
        .contains("cannot change in place")
    );

    // A co-signed deployment cannot be updated by the owner alone, even if the update drops Bob.
    let mut cosigned = full();
    cosigned.signature_requirement = SignatureRequirement {
        requests: vec![
            SignatureRequest {
                twin_id: 1,
                required: true,
                weight: 1,
            },
            SignatureRequest {
                twin_id: 2,
                required: true,
                weight: 1,
            },
        ],
        weight_required: 2,
        signatures: vec![],
    };
    cosigned.sign(1, &key("Alice"));
    cosigned.sign(2, &key("Bob"));
    assert_eq!(cosigned.verify_signatures(account_of), Ok(()));
    let alone = next(&cosigned, |d| {
        d.signature_requirement = Deployment::single_signer(1)
    });
    assert_eq!(
        alone.check_upgrade(&cosigned, account_of),
        Err(DeploymentError::MissingSignature(2))
    );
    let mut with_bob = alone.clone();
    with_bob
        .signature_requirement
        .requests
        .push(SignatureRequest {
            twin_id: 2,
            required: false,
            weight: 0,
        });
    with_bob.signature_requirement.signatures.clear();
    with_bob.sign(1, &key("Alice"));
    with_bob.sign(2, &key("Bob"));
    assert_eq!(with_bob.check_upgrade(&cosigned, account_of), Ok(()));
}
