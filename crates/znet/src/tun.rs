//! The TUN device with offloads, for gotatun: opened with `IFF_VNET_HDR` and TSO and checksum
//! offload turned on, so the network's namespace hands over TCP as super-segments of up to 64 KiB,
//! one read for dozens of packets (cut into packets by [`znet::offload`]); packets written back
//! carry an empty header (whole, checksummed packets). Reads and writes go through tokio's
//! readiness on the non-blocking descriptor.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use gotatun::packet::{Ip, Packet, PacketBufPool};
use gotatun::tun::{IpRecv, IpSend, MtuWatcher};
use tokio::io::unix::AsyncFd;
use znet::MTU;
use znet::offload::{VNET_HDR_LEN, VnetHdr, frames};

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
const TUN_F_CSUM: libc::c_uint = 0x01;
const TUN_F_TSO4: libc::c_uint = 0x02;
/// The largest frame a read returns: a 64 KiB super-segment behind its header.
const FRAME_MAX: usize = VNET_HDR_LEN + 65_535;

#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Opens TUN device `name` (created in this namespace) with offloads on.
pub fn open(name: &str) -> io::Result<(TunRx, TunTx)> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(io::Error::other(format!("bad TUN name {name:?}")));
    }
    // SAFETY: a plain open(2) of a NUL-terminated path; the descriptor is owned right after.
    let fd = unsafe {
        libc::open(
            c"/dev/net/tun".as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: IFF_TUN | IFF_NO_PI | IFF_VNET_HDR,
        _pad: [0; 22],
    };
    for (d, s) in req.name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    // SAFETY: TUNSETIFF reads and writes an ifreq, which `req` is, for the call's length.
    if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: TUNSETOFFLOAD takes its flags by value.
    if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: an `OwnedFd` keeps its one descriptor open for as long as it lives, inside the
    // `AsyncFd`.
    let fd = unsafe { AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)?;
    let fd = Arc::new(fd);
    Ok((
        TunRx {
            fd: fd.clone(),
            frame: vec![0; FRAME_MAX],
            scratch: Vec::new(),
            out: Vec::new(),
            reads: 0,
            packets: 0,
        },
        TunTx { fd },
    ))
}

/// The reading side: one read, then the packets it held.
pub struct TunRx {
    fd: Arc<AsyncFd<OwnedFd>>,
    frame: Vec<u8>,
    scratch: Vec<u8>,
    out: Vec<Packet<Ip>>,
    /// Reads done and the packets they held, said when the device goes.
    reads: u64,
    packets: u64,
}

impl Drop for TunRx {
    fn drop(&mut self) {
        tracing::info!(
            reads = self.reads,
            packets = self.packets,
            "TUN device closed"
        );
    }
}

/// The writing side: one packet a write, behind an empty header.
pub struct TunTx {
    fd: Arc<AsyncFd<OwnedFd>>,
}

impl TunRx {
    async fn read(&mut self) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            let frame = &mut self.frame;
            match guard.try_io(|fd| {
                // SAFETY: reads at most `frame.len()` bytes into `frame`.
                let n =
                    unsafe { libc::read(fd.as_raw_fd(), frame.as_mut_ptr().cast(), frame.len()) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            }) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}

impl IpRecv for TunRx {
    async fn recv<'a>(
        &'a mut self,
        pool: &mut PacketBufPool,
    ) -> io::Result<impl Iterator<Item = Packet<Ip>> + Send + 'a> {
        self.out.clear();
        while self.out.is_empty() {
            let n = self.read().await?;
            let Some(hdr) = VnetHdr::parse(&self.frame[..n]) else {
                continue;
            };
            let (frame, scratch, out) = (
                &mut self.frame[VNET_HDR_LEN..n],
                &mut self.scratch,
                &mut self.out,
            );
            let cut = frames(hdr, frame, scratch, |p| {
                let mut packet = pool.get();
                packet[..p.len()].copy_from_slice(p);
                packet.truncate(p.len());
                if let Ok(ip) = packet.try_into_ip() {
                    out.push(ip);
                }
            });
            if let Err(e) = cut {
                tracing::debug!("dropped a frame from the TUN device: {e:?}");
            }
            self.reads += 1;
        }
        self.packets += self.out.len() as u64;
        Ok(self.out.drain(..))
    }

    fn mtu(&self) -> MtuWatcher {
        MtuWatcher::new(MTU)
    }
}

impl IpSend for TunTx {
    async fn send(&mut self, packet: Packet<Ip>) -> io::Result<()> {
        let bytes = packet.into_bytes();
        let hdr = [0u8; VNET_HDR_LEN];
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| {
                let iov = [
                    libc::iovec {
                        iov_base: hdr.as_ptr() as *mut _,
                        iov_len: hdr.len(),
                    },
                    libc::iovec {
                        iov_base: bytes.as_ptr() as *mut _,
                        iov_len: bytes.len(),
                    },
                ];
                // SAFETY: both buffers outlive the call and are only read.
                let n = unsafe { libc::writev(fd.as_raw_fd(), iov.as_ptr(), 2) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            }) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}
