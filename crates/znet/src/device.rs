//! The data plane of one network on one node: a gotatun WireGuard device whose TUN device sits in
//! the network's namespace (created here, then moved there, so its descriptor stays ours) and whose
//! UDP socket is bound in the namespace `znet` runs in (the node's own). It installs one route per
//! allowed IP, meets the peers it can reach, writes the bound port to the run directory and prints
//! it (after [`READY`]), applies a changed config on SIGHUP (peers added, updated or removed in
//! place, so sessions of peers that stayed go on) and stops on TERM or INT; the TUN device, and
//! with it its routes, goes when the process ends.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;

use crate::tun::{TunRx, TunTx};
use anyhow::{Context, Result, bail};
use gotatun::device::{Device, DeviceBuilder, Peer};
use gotatun::udp::socket::UdpSocketFactory;
use gotatun::x25519::{PublicKey, StaticSecret};
use tokio::signal::unix::{SignalKind, signal};
use znet::{Config, MTU, PORT_FILE, PeerConfig, READY, ip, key, peer_changes, route_changes};

/// How long [`meet_peers`] waits for each peer's answer.
const HANDSHAKE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// Socket buffers of 4 MiB: with the default, the receiver drops datagrams under load.
const UDP_BUFFER: usize = 4 << 20;

type Wg = Device<(UdpSocketFactory, TunTx, TunRx)>;

pub async fn run(dir: &Path) -> Result<()> {
    let mut config = Config::load(dir)?;
    let (tun_rx, tun_tx) = open_tun(&config)?;
    let device = DeviceBuilder::new()
        .with_udp(UdpSocketFactory {
            recv_buffer_size: Some(UDP_BUFFER),
            send_buffer_size: Some(UDP_BUFFER),
        })
        .with_ip_pair(tun_tx, tun_rx)
        .with_private_key(StaticSecret::from(key(&config.private_key)?))
        .with_peers(peers(&config)?)
        .build()
        .await
        .context("starting the WireGuard device")?;
    // Setting the port (re)binds the socket, with or without peers.
    let port = match config.listen_port {
        0 => free_port()?,
        p => p,
    };
    device
        .write(async |d| d.set_listen_port(port))
        .await
        .with_context(|| format!("listening on UDP port {port}"))?;
    let port = device.read(async |d| d.listen_port()).await;
    for route in config.routes() {
        ip(&[
            "-n",
            &config.netns,
            "route",
            "replace",
            &route,
            "dev",
            &config.tun,
        ])?;
    }
    std::fs::write(dir.join(PORT_FILE), port.to_string())?;
    tracing::info!(port, peers = config.peers.len(), netns = %config.netns, "up");
    // The line the node agent waits for.
    println!("{READY}{port}");

    let reachable = config
        .peers
        .iter()
        .filter(|p| p.endpoint.is_some())
        .map(|p| key(&p.public_key).map(PublicKey::from))
        .collect::<Result<Vec<_>>>()?;
    let mut meet = Box::pin(meet_peers(&device, reachable));
    let mut met = false;
    let (mut hup, mut term, mut int) = (
        signal(SignalKind::hangup())?,
        signal(SignalKind::terminate())?,
        signal(SignalKind::interrupt())?,
    );
    loop {
        tokio::select! {
            () = &mut meet, if !met => met = true,
            _ = hup.recv() => match reload(&device, &config, dir).await {
                Ok(new) => config = new,
                Err(e) => tracing::error!("keeping the running config: {e:#}"),
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    drop(meet);
    device.stop().await;
    Ok(())
}

/// Starts a handshake with every peer that has an endpoint, waiting a little for each: a
/// restarted device's peers may still hold sessions it forgot, and would otherwise notice only when
/// those time out (15 s). Runs beside the device, so an absent peer holds nothing up.
async fn meet_peers(device: &Wg, peers: Vec<PublicKey>) {
    for peer in &peers {
        let met = tokio::time::timeout(HANDSHAKE_WAIT, device.force_handshake(peer)).await;
        if let Ok(Err(e)) = met {
            tracing::warn!("no handshake with a peer: {e}");
        }
    }
}

/// Applies the run directory's config as it is now to the running device.
async fn reload(device: &Wg, old: &Config, dir: &Path) -> Result<Config> {
    let new = Config::load(dir)?;
    if (&new.netns, &new.tun, &new.private_key, &new.address)
        != (&old.netns, &old.tun, &old.private_key, &old.address)
    {
        bail!("only peers and the port change in place: restart znet for the rest");
    }
    let changes = peer_changes(old, &new);
    let gone = changes
        .removed
        .iter()
        .map(|k| key(k).map(PublicKey::from))
        .collect::<Result<Vec<_>>>()?;
    let added = changes.added.iter().map(peer).collect::<Result<Vec<_>>>()?;
    let changed = changes
        .changed
        .iter()
        .map(peer)
        .collect::<Result<Vec<_>>>()?;
    device
        .write(async |d| {
            for k in &gone {
                d.remove_peer(k).await;
            }
            d.add_peers(added);
            for p in changed {
                // A peer that dials in keeps the endpoint it roamed to: overwriting it with none
                // would cut it off until its next keepalive.
                d.modify_peer(&p.public_key, |m| {
                    m.clear_allowed_ips();
                    m.add_allowed_ips(p.allowed_ips.iter().copied());
                    m.set_keepalive(p.keepalive);
                    if p.endpoint.is_some() {
                        m.set_endpoint(p.endpoint);
                    }
                })
                .await;
            }
            if new.listen_port != 0 {
                d.set_listen_port(new.listen_port);
            }
        })
        .await?;
    let (removed, added) = route_changes(old, &new);
    for route in &removed {
        // Gone already when the device's address covered it; nothing else can have taken it.
        let _ = ip(&["-n", &new.netns, "route", "del", route, "dev", &new.tun]);
    }
    for route in &added {
        ip(&["-n", &new.netns, "route", "replace", route, "dev", &new.tun])?;
    }
    tracing::info!(
        peers = new.peers.len(),
        routes_added = added.len(),
        routes_removed = removed.len(),
        "reloaded"
    );
    Ok(new)
}

fn peers(config: &Config) -> Result<Vec<Peer>> {
    config.peers.iter().map(peer).collect()
}

fn peer(p: &PeerConfig) -> Result<Peer> {
    let mut peer = Peer::new(PublicKey::from(key(&p.public_key)?));
    peer.endpoint = p.endpoint;
    peer.keepalive = p.keepalive;
    for a in &p.allowed_ips {
        peer = peer.with_allowed_ip(a.parse().with_context(|| format!("allowed IP {a:?}"))?);
    }
    Ok(peer)
}

/// A UDP port free on every address now (the device binds it dual-stack right after).
fn free_port() -> Result<u16> {
    let socket = UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))?;
    Ok(socket.local_addr()?.port())
}

/// The TUN device (with offloads, see [`crate::tun`]), made here and moved into the network's
/// namespace with its address and the overlay's MTU, up.
fn open_tun(config: &Config) -> Result<(TunRx, TunTx)> {
    let tun = crate::tun::open(&config.tun)
        .with_context(|| format!("creating the TUN device {}", config.tun))?;
    let ns = config.netns.as_str();
    ip(&["link", "set", &config.tun, "netns", ns])?;
    ip(&["-n", ns, "addr", "add", &config.address, "dev", &config.tun])?;
    ip(&[
        "-n",
        ns,
        "link",
        "set",
        &config.tun,
        "mtu",
        &MTU.to_string(),
        "up",
    ])?;
    Ok(tun)
}
