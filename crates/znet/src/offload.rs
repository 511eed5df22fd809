//! TUN offloads, pure: with `IFF_VNET_HDR` and TSO on, the kernel hands the TUN device's reader
//! whole TCP super-segments (up to 64 KiB, one `read` instead of one per packet) behind a
//! `virtio_net_hdr`, and packets whose checksum is left to finish. [`frames`] turns one such read
//! into the IPv4 packets WireGuard carries: each segment gets its own IP header (length, id,
//! checksum) and TCP header (sequence number, flags, checksum), and a partial checksum is finished.

/// The `virtio_net_hdr` the kernel puts before each frame (10 bytes, host byte order).
pub const VNET_HDR_LEN: usize = 10;
const NEEDS_CSUM: u8 = 1;
const GSO_NONE: u8 = 0;
const GSO_TCPV4: u8 = 1;
const GSO_ECN: u8 = 0x80;

/// What the header says of the frame behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    pub fn parse(b: &[u8]) -> Option<VnetHdr> {
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        (b.len() >= VNET_HDR_LEN).then(|| VnetHdr {
            flags: b[0],
            gso_type: b[1],
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        })
    }
}

/// Why a frame was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    Short,
    NotIpv4Tcp,
    UnknownGso(u8),
}

/// The one's-complement sum of `data` added to `sum`, unfolded.
fn sum16(data: &[u8], mut sum: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The IPv4 header checksum of `header` (its checksum field counted as zero).
fn ip_checksum(header: &mut [u8]) {
    header[10..12].fill(0);
    let c = fold(sum16(header, 0));
    header[10..12].copy_from_slice(&c.to_be_bytes());
}

/// The TCP checksum of `segment` (IP header then TCP header and payload), from scratch.
fn tcp_checksum(segment: &mut [u8], ip_len: usize) {
    let tcp_len = segment.len() - ip_len;
    segment[ip_len + 16..ip_len + 18].fill(0);
    let mut pseudo = [0u8; 12];
    pseudo[..8].copy_from_slice(&segment[12..20]);
    pseudo[9] = 6;
    pseudo[10..12].copy_from_slice(&(tcp_len as u16).to_be_bytes());
    let c = fold(sum16(&segment[ip_len..], sum16(&pseudo, 0)));
    segment[ip_len + 16..ip_len + 18].copy_from_slice(&c.to_be_bytes());
}

/// Calls `each` with every IP packet that the frame behind header `hdr` holds: the frame itself
/// (its partial checksum finished), or the segments of a TCP super-segment, `gso_size` bytes of
/// payload each. `scratch` is reused between calls.
pub fn frames(
    hdr: VnetHdr,
    frame: &mut [u8],
    scratch: &mut Vec<u8>,
    mut each: impl FnMut(&[u8]),
) -> Result<(), FrameError> {
    match hdr.gso_type & !GSO_ECN {
        GSO_NONE => {
            if hdr.flags & NEEDS_CSUM != 0 {
                let (start, at) = (
                    usize::from(hdr.csum_start),
                    usize::from(hdr.csum_start) + usize::from(hdr.csum_offset),
                );
                if at + 2 > frame.len() {
                    return Err(FrameError::Short);
                }
                // The field holds the pseudo-header's sum: the rest is added to it.
                let c = fold(sum16(&frame[start..], 0));
                frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
            }
            each(frame);
            Ok(())
        }
        GSO_TCPV4 => segments(hdr, frame, scratch, each),
        other => Err(FrameError::UnknownGso(other)),
    }
}

fn segments(
    hdr: VnetHdr,
    frame: &[u8],
    scratch: &mut Vec<u8>,
    mut each: impl FnMut(&[u8]),
) -> Result<(), FrameError> {
    if frame.len() < 20 || frame[0] >> 4 != 4 || frame[9] != 6 {
        return Err(FrameError::NotIpv4Tcp);
    }
    let ip_len = usize::from(frame[0] & 0x0f) * 4;
    if frame.len() < ip_len + 20 {
        return Err(FrameError::Short);
    }
    let tcp_len = usize::from(frame[ip_len + 12] >> 4) * 4;
    let head = ip_len + tcp_len;
    let mss = usize::from(hdr.gso_size);
    if frame.len() < head || mss == 0 {
        return Err(FrameError::Short);
    }
    let payload = &frame[head..];
    let id = u16::from_be_bytes([frame[4], frame[5]]);
    let seq = u32::from_be_bytes(frame[ip_len + 4..ip_len + 8].try_into().expect("4 bytes"));
    let flags = frame[ip_len + 13];
    let count = payload.len().div_ceil(mss).max(1);
    for (i, chunk) in payload.chunks(mss).enumerate() {
        scratch.clear();
        scratch.extend_from_slice(&frame[..head]);
        scratch.extend_from_slice(chunk);
        let total = scratch.len() as u16;
        scratch[2..4].copy_from_slice(&total.to_be_bytes());
        scratch[4..6].copy_from_slice(&id.wrapping_add(i as u16).to_be_bytes());
        ip_checksum(&mut scratch[..ip_len]);
        let seq = seq.wrapping_add((i * mss) as u32);
        scratch[ip_len + 4..ip_len + 8].copy_from_slice(&seq.to_be_bytes());
        // FIN and PSH only on the last segment, CWR only on the first.
        let mut f = flags;
        if i + 1 < count {
            f &= !(0x01 | 0x08);
        }
        if i > 0 {
            f &= !0x80;
        }
        scratch[ip_len + 13] = f;
        tcp_checksum(scratch, ip_len);
        each(scratch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 TCP packet from 10.1.1.2:5000 to 10.1.2.2:80 with `payload`.
    fn packet(payload: &[u8], seq: u32, flags: u8) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&((40 + payload.len()) as u16).to_be_bytes());
        p[4..6].copy_from_slice(&7u16.to_be_bytes());
        p[8] = 64;
        p[9] = 6;
        p[12..16].copy_from_slice(&[10, 1, 1, 2]);
        p[16..20].copy_from_slice(&[10, 1, 2, 2]);
        p[20..22].copy_from_slice(&5000u16.to_be_bytes());
        p[22..24].copy_from_slice(&80u16.to_be_bytes());
        p[24..28].copy_from_slice(&seq.to_be_bytes());
        p[32] = 5 << 4;
        p[33] = flags;
        p.extend_from_slice(payload);
        p
    }

    /// Whether both of `p`'s checksums verify (a correct sum folds to zero).
    fn checksums_hold(p: &[u8]) -> bool {
        let ip_ok = fold(sum16(&p[..20], 0)) == 0;
        let mut pseudo = [0u8; 12];
        pseudo[..8].copy_from_slice(&p[12..20]);
        pseudo[9] = 6;
        pseudo[10..12].copy_from_slice(&((p.len() - 20) as u16).to_be_bytes());
        ip_ok && fold(sum16(&p[20..], sum16(&pseudo, 0))) == 0
    }

    #[test]
    fn a_super_segment_becomes_segments_with_their_own_headers() {
        let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
        let mut frame = packet(&payload, 1000, 0x18 | 0x01); // PSH, ACK, FIN
        let hdr = VnetHdr {
            flags: NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            gso_size: 1380,
            csum_start: 20,
            csum_offset: 16,
        };
        let mut out = Vec::new();
        frames(hdr, &mut frame, &mut Vec::new(), |p| out.push(p.to_vec())).unwrap();
        assert_eq!(out.len(), 3);
        let mut joined = Vec::new();
        for (i, p) in out.iter().enumerate() {
            assert!(checksums_hold(p), "segment {i}");
            assert_eq!(usize::from(u16::from_be_bytes([p[2], p[3]])), p.len());
            assert_eq!(u16::from_be_bytes([p[4], p[5]]), 7 + i as u16);
            let seq = u32::from_be_bytes(p[24..28].try_into().unwrap());
            assert_eq!(seq, 1000 + 1380 * i as u32);
            let last = i == 2;
            assert_eq!(p[33] & 0x09 != 0, last, "FIN and PSH on the last only");
            assert_eq!(p[33] & 0x10, 0x10, "ACK on every segment");
            joined.extend_from_slice(&p[40..]);
        }
        assert_eq!(joined, payload);
        assert!(out.iter().all(|p| p.len() <= 1420));
    }

    #[test]
    fn a_partial_checksum_is_finished() {
        let mut p = packet(b"hello", 1, 0x18);
        // What the kernel leaves in the field: the pseudo-header's sum, not complemented.
        let mut pseudo = [0u8; 12];
        pseudo[..8].copy_from_slice(&p[12..20]);
        pseudo[9] = 6;
        pseudo[10..12].copy_from_slice(&((p.len() - 20) as u16).to_be_bytes());
        let partial = !fold(sum16(&pseudo, 0));
        p[36..38].copy_from_slice(&partial.to_be_bytes());
        ip_checksum(&mut p[..20]);
        let hdr = VnetHdr {
            flags: NEEDS_CSUM,
            gso_type: GSO_NONE,
            gso_size: 0,
            csum_start: 20,
            csum_offset: 16,
        };
        let mut out = Vec::new();
        frames(hdr, &mut p, &mut Vec::new(), |p| out.push(p.to_vec())).unwrap();
        assert_eq!(out.len(), 1);
        assert!(checksums_hold(&out[0]));
    }

    #[test]
    fn headers_parse_and_bad_frames_are_refused() {
        let mut raw = [0u8; 10];
        raw[1] = GSO_TCPV4;
        raw[4..6].copy_from_slice(&1380u16.to_ne_bytes());
        assert_eq!(VnetHdr::parse(&raw).unwrap().gso_size, 1380);
        assert!(VnetHdr::parse(&raw[..9]).is_none());
        let hdr = VnetHdr::parse(&raw).unwrap();
        let mut short = vec![0x45u8; 10];
        assert!(frames(hdr, &mut short, &mut Vec::new(), |_| {}).is_err());
        let udp = VnetHdr { gso_type: 3, ..hdr };
        assert_eq!(
            frames(udp, &mut packet(b"x", 0, 0), &mut Vec::new(), |_| {}),
            Err(FrameError::UnknownGso(3))
        );
    }
}
