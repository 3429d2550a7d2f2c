//! Flow events: the first bytes of sampled segments, the first of a flow
//! naming the process that opened it.

use super::{COMM_LEN, EventHeader};

/// Address family values as the kernel numbers them.
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

/// Direction of a sampled segment, seen from the local socket.
pub mod direction {
    pub const EGRESS: u8 = 0;
    pub const INGRESS: u8 = 1;
}

/// Bytes of payload copied per sampled segment: enough for a whole stratum
/// login line (XMRig's lists every algorithm it supports: ~700 bytes) and a
/// full Ethernet-MSS segment.
pub const SAMPLE_LEN: usize = 2048;

/// Sizes a sample record's `data` comes in: a sample reserves the
/// smallest class its bytes fit in, so that a 64-byte request does not
/// cost the ring (and the reader's copy) a whole [`SAMPLE_LEN`].
pub const SAMPLE_CLASSES: [usize; 3] = [128, 512, SAMPLE_LEN];

/// The first bytes of one TCP segment's (or UDP datagram's) payload.
///
/// The first sample of a flow a local process opened also names its owner:
/// the header's `pid`, `tgid` and `cgroup_id`, and `comm` and `opened_ns`,
/// taken at the connect (or first sendmsg), which makes no record of its
/// own. Every other sample has zeros there.
///
/// The kernel writes `SampleEvent<N>` for `N` in [`SAMPLE_CLASSES`]; user
/// space decodes any of them into a `SampleEvent` (the largest), the bytes
/// past `N` zero.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SampleEvent<const N: usize = SAMPLE_LEN> {
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
    /// When the owner connected the socket (`bpf_ktime_get_ns`), on the
    /// sample that names the owner; 0 on every other.
    pub opened_ns: u64,
    /// The owner's command name, on the sample that names it.
    pub comm: [u8; COMM_LEN],
    pub data: [u8; N],
}

/// Bytes of a sample record before its `data`.
pub const SAMPLE_HEAD_LEN: usize = 120;
const _: () = assert!(size_of::<SampleEvent>() == SAMPLE_HEAD_LEN + SAMPLE_LEN);
const _: () = assert!(size_of::<SampleEvent<128>>() == SAMPLE_HEAD_LEN + 128);
// The eBPF side bounds copy lengths with a mask.
const _: () = assert!(SAMPLE_LEN.is_power_of_two());
const _: () = assert!(
    SAMPLE_CLASSES[0].is_power_of_two()
        && SAMPLE_CLASSES[1].is_power_of_two()
        && SAMPLE_CLASSES[2] == SAMPLE_LEN
);
