//! Flow events: a socket's connect, and the first bytes of sampled
//! segments.

use super::{COMM_LEN, EventHeader};

/// Address family values as the kernel numbers them.
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

/// A socket was connected from a process in the watched cgroup. The socket
/// cookie ties it to the [`SampleEvent`]s of the same flow.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ConnectEvent {
    pub header: EventHeader,
    pub cookie: u64,
    /// [`AF_INET`] or [`AF_INET6`].
    pub family: u16,
    /// IPPROTO_TCP (6) or IPPROTO_UDP (17).
    pub protocol: u8,
    pub _pad0: u8,
    /// Destination port, host byte order.
    pub dport: u16,
    pub _pad1: u16,
    /// Destination address: 4 bytes for IPv4, 16 for IPv6, network order.
    pub daddr: [u8; 16],
    pub comm: [u8; COMM_LEN],
}
const _: () = assert!(size_of::<ConnectEvent>() == 80);

/// Direction of a sampled segment, seen from the local socket.
pub mod direction {
    pub const EGRESS: u8 = 0;
    pub const INGRESS: u8 = 1;
}

/// Bytes of payload copied per sampled segment: enough for a whole stratum
/// login line (XMRig's lists every algorithm it supports: ~700 bytes) and a
/// full Ethernet-MSS segment.
pub const SAMPLE_LEN: usize = 2048;

/// The first bytes of one TCP segment's payload.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SampleEvent {
    pub header: EventHeader,
    pub cookie: u64,
    /// [`direction::EGRESS`] or [`direction::INGRESS`].
    pub direction: u8,
    /// 0-based index of this sample among the samples of its direction
    /// (a chunk of a long segment is a sample).
    pub segment: u8,
    /// 4 or 6.
    pub ip_version: u8,
    pub protocol: u8,
    /// Payload bytes in the whole segment (may exceed `offset + captured`).
    pub payload_len: u32,
    /// Bytes of `data` that are valid.
    pub captured: u32,
    /// Ports from the packet, host byte order.
    pub sport: u16,
    pub dport: u16,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    /// Where `data` starts in the segment's payload: a segment longer than
    /// [`SAMPLE_LEN`] is sampled in consecutive chunks
    /// ([`crate::flow::CHUNKS_PER_SEGMENT`] at most), each its own sample.
    pub offset: u32,
    pub _pad: u32,
    pub data: [u8; SAMPLE_LEN],
}
const _: () = assert!(size_of::<SampleEvent>() == 96 + SAMPLE_LEN);
// The eBPF side bounds copy lengths with a mask.
const _: () = assert!(SAMPLE_LEN.is_power_of_two());
