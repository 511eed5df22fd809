//! VMs end to end: `tfgrid image vm` builds an image from this machine's kernel (Debian's
//! `linux-image-amd64`) and busybox; a node runs a `zmachine` of it under QEMU (TCG here: these
//! machines' CPUs have no hardware virtualization) beside a container on the same private network.
//! The guest gets its environment, its volume and its address; the container reaches the VM's web
//! server; a grace period pauses the VM's CPUs and a top-up resumes them; a VM that dies is
//! restarted; a cancel leaves no process, namespace, mount or file behind.

use std::time::Duration;

use serde_json::json;
use testkit::{Grid, ok, wait_for};
use tfgrid_types::deployment::{ResultData, ResultState};
use tfgrid_types::{Hash32, Keypair, UNITS_PER_TFT};
use zos::primitives::MachineRuntime;
use zos::primitives::network::Networks;
use zos::primitives::vm::Vms;

use crate::zos::{Guard, fund, reported, spend_everything};

/// A VM boots in seconds under KVM, in many more under emulation on a loaded machine.
const BOOT: Duration = Duration::from_secs(120);

fn qemu_pid(vm_dir: &std::path::Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(vm_dir.join("pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    std::path::Path::new(&format!("/proc/{pid}"))
        .exists()
        .then_some(pid)
}

#[tokio::test(flavor = "multi_thread")]
async fn zos_runs_vms_beside_containers() {
    let grid = Grid::start(|spec| {
        spec["block_time_ms"] = json!(200);
        spec["genesis"]["params"]["billing_period_blocks"] = json!(5);
    })
    .await;
    let (client, home) = (&grid.client, grid.home.path());
    let cli = |args: &[&str]| grid.cli(args);
    let alice = Keypair::from_uri("//Alice").unwrap();

    // The images: a VM image from this machine's kernel, and the busybox container image.
    let vm_tar = home.join("vm.tar");
    let built = ok(cli(&["image", "vm", vm_tar.to_str().unwrap()]));
    assert!(
        built.contains("a VM image booting /boot/vmlinuz-"),
        "{built}"
    );
    let hub_dir = home.join("hub");
    let push = |archive: &std::path::Path| {
        let pushed: serde_json::Value = serde_json::from_str(&ok(cli(&[
            "--json",
            "image",
            "push",
            archive.to_str().unwrap(),
            "--hub-dir",
            hub_dir.to_str().unwrap(),
        ])))
        .unwrap();
        pushed["hash"].as_str().unwrap().to_owned()
    };
    let vm_hash = push(&vm_tar);
    let container_hash = push(&crate::zos::busybox_image(home));
    let hub_addr = format!("127.0.0.1:{}", testkit::free_port());
    let _hub = Guard(
        std::process::Command::new(testkit::bin("tfgrid"))
            .args(["hub", "serve", "--dir", hub_dir.to_str().unwrap()])
            .args(["--listen", &hub_addr])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );

    let seed = Hash32::of("zos test", b"node vms").0;
    let data = tempfile::tempdir().unwrap();
    let zos = grid
        .add_node(1, seed, "cru=4,mru=8G,sru=100G,hru=50G", data.path())
        .await;
    // A user with a little TFT, so that spending it all brings a grace period.
    let user = Keypair::from_uri("//VmUser").unwrap();
    fund(client, &user, UNITS_PER_TFT).await;
    ok(cli(&["--key", "//VmUser", "twin", "create"]));

    let flist = |hash: &str| format!("http://{hub_addr}/{hash}.tar");
    let deployment = json!({ "workloads": [
        { "version": 0, "name": "net", "type": "network", "data": {
            "ip_range": "10.20.0.0/16", "subnet": "10.20.1.0/24",
            "wireguard_private_key": { "plain": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=" },
            "wireguard_listen_port": 3000 } },
        { "version": 0, "name": "vol", "type": "volume", "data": { "size": 64 * 1024 * 1024 } },
        { "version": 0, "name": "vm", "type": "zmachine", "data": {
            "flist": flist(&vm_hash), "flist_hash": vm_hash,
            "network": { "interfaces": [{ "network": "net", "ip": "10.20.1.2" }] },
            "compute_capacity": { "cpu": 1, "memory": 268435456 },
            "mounts": [{ "name": "vol", "mountpoint": "/data" }],
            "entrypoint": "echo \"$GREETING from $(hostname)\" > /data/greeting; \
                echo \"$GREETING\" > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
            "env": { "GREETING": { "plain": "hello from a VM" } } } },
        { "version": 0, "name": "peer", "type": "zmachine", "data": {
            "flist": flist(&container_hash), "flist_hash": container_hash,
            "network": { "interfaces": [{ "network": "net", "ip": "10.20.1.3" }] },
            "compute_capacity": { "cpu": 1, "memory": 268435456 },
            "entrypoint": "until wget -q -O /tmp/page http://10.20.1.2/; do sleep 1; done; \
                exec sleep 100000" } }
    ] });
    let file = home.join("vm.json");
    std::fs::write(&file, deployment.to_string()).unwrap();
    ok(cli(&[
        "--key",
        "//VmUser",
        "contract",
        "create",
        "--node",
        "1",
        file.to_str().unwrap(),
    ]));
    let result = reported(client, 1, "vm").await;
    assert_eq!(
        result.state,
        ResultState::Ok,
        "{}\n{}",
        result.message,
        zos.log()
    );
    let id = "3-1-vm";
    assert_eq!(
        result.data,
        ResultData::Zmachine {
            id: id.into(),
            ip: "10.20.1.2".into()
        }
    );
    let vm_dir = data.path().join("vms").join(id);
    let first = qemu_pid(&vm_dir).expect("QEMU runs the VM");
    let cmdline = std::fs::read_to_string(format!("/proc/{first}/cmdline")).unwrap();
    assert!(
        cmdline.contains("-m\x00256M\x00") && cmdline.contains("-smp\x001\x00"),
        "{cmdline:?}"
    );

    // The guest took its environment, its hostname and its volume, and serves its network.
    let greeting = data.path().join("volumes/3-1-vol/mnt/greeting");
    let log = || std::fs::read_to_string(vm_dir.join("output.log")).unwrap_or_default();
    let text = wait_for("the VM's entrypoint", BOOT, || async {
        std::fs::read_to_string(&greeting)
            .ok()
            .filter(|t| t.ends_with('\n'))
    })
    .await;
    assert_eq!(text, "hello from a VM from vm\n", "{}", log());
    let page = data.path().join("containers/3-1-peer/rootfs/tmp/page");
    let page = wait_for("the container's fetch from the VM", BOOT, || async {
        std::fs::read_to_string(&page)
            .ok()
            .filter(|p| p.ends_with('\n'))
    })
    .await;
    assert_eq!(page, "hello from a VM\n");

    // A grace period pauses the VM's CPUs; a top-up resumes them.
    let vms = Vms::new(data.path().join("vms"));
    spend_everything(client, &user, &alice).await;
    wait_for("the paused report", Duration::from_secs(60), || async {
        (reported(client, 1, "vm").await.state == ResultState::Paused).then_some(())
    })
    .await;
    assert_eq!(vms.status(id).as_deref(), Some("paused"));
    fund(client, &user, 10 * UNITS_PER_TFT).await;
    wait_for("the resumed report", Duration::from_secs(60), || async {
        (reported(client, 1, "vm").await.state == ResultState::Ok).then_some(())
    })
    .await;
    assert_eq!(vms.status(id).as_deref(), Some("running"));

    // A VM whose QEMU dies is started again, and says so.
    std::process::Command::new("kill")
        .args(["-9", &first.to_string()])
        .status()
        .unwrap();
    wait_for("the VM's restart", Duration::from_secs(60), || async {
        qemu_pid(&vm_dir).filter(|pid| *pid != first)
    })
    .await;
    let restarted = wait_for("the restart's report", Duration::from_secs(60), || async {
        let r = reported(client, 1, "vm").await;
        r.message
            .contains("the VM exited and was restarted")
            .then_some(r)
    })
    .await;
    assert_eq!(restarted.state, ResultState::Ok);

    // Cancel: no QEMU, namespace, mount or file is left.
    let last = qemu_pid(&vm_dir);
    ok(cli(&["--key", "//VmUser", "contract", "cancel", "1"]));
    wait_for("the VM's removal", Duration::from_secs(60), || async {
        (!vm_dir.exists()).then_some(())
    })
    .await;
    if let Some(pid) = last {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists()
                || std::fs::read(format!("/proc/{pid}/cmdline"))
                    .unwrap()
                    .is_empty(),
            "QEMU still runs"
        );
    }
    let networks = Networks::new(data.path());
    wait_for(
        "the namespaces' removal",
        Duration::from_secs(30),
        || async {
            [networks.namespace("3-net"), networks.container(id)]
                .iter()
                .all(|ns| !std::path::Path::new("/var/run/netns").join(ns).exists())
                .then_some(())
        },
    )
    .await;
    // The container and the volume go after the VM, in reverse type order.
    wait_for("the mounts' removal", Duration::from_secs(30), || async {
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
        (!mounts.contains(&*data.path().to_string_lossy())).then_some(())
    })
    .await;
}
