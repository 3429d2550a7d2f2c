//! deny-egress (enforcement): the endpoints a workload may no longer
//! reach, by cgroup. User space writes one [`DenyKey`] per (cgroup,
//! endpoint) into the `DENY` hash map and sets `DENY_ARMED[0]` while the
//! map holds any; the cgroup sock_addr programs (connect4/6, sendmsg4/6)
//! read the flag first, so that a host that never denies pays one array
//! read per connect and nothing more, then look the destination up twice:
//! with its port, and with port 0 (any port of that address). A hit
//! refuses the connect or sendmsg: the caller gets EPERM.
//!
//! Addresses and ports are kept exactly as the kernel hands them to the
//! programs (`bpf_sock_addr.user_ip4/user_ip6/user_port`: network byte
//! order), so the kernel side compares without converting; user space
//! converts once when it writes ([`DenyKey::new`]).

/// Entries the map holds at most: a verdict names a handful of endpoints,
/// a host has a handful of verdicts acted on.
pub const DENY_ENTRIES: u32 = 4096;

/// The value of `DENY_ARMED[0]` while the map holds entries.
pub const ARMED: u32 = 1;

/// One endpoint a cgroup may not reach.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DenyKey {
    /// The cgroup v2 id of the calling process (`bpf_get_current_cgroup_id`).
    pub cgroup_id: u64,
    /// `AF_INET` or `AF_INET6`: which program looks it up.
    pub family: u16,
    /// Network byte order, as in `user_port`; 0: any port.
    pub port: u16,
    pub _pad: u32,
    /// Network byte order, as in `user_ip6` (IPv4: `user_ip4` in the first
    /// word, the rest 0).
    pub addr: [u32; 4],
}
const _: () = assert!(size_of::<DenyKey>() == 32);

#[cfg(feature = "user")]
// SAFETY: #[repr(C)], integers only, explicit padding.
unsafe impl aya::Pod for DenyKey {}

impl DenyKey {
    /// The key for `cgroup_id` reaching `octets` (4 or 16 bytes, in
    /// network order) on `port` (host order; 0: any).
    pub fn new(cgroup_id: u64, family: u16, octets: &[u8], port: u16) -> Self {
        let mut addr = [0u32; 4];
        for (word, chunk) in addr.iter_mut().zip(octets.chunks(4)) {
            let mut bytes = [0u8; 4];
            bytes[..chunk.len()].copy_from_slice(chunk);
            *word = u32::from_ne_bytes(bytes);
        }
        Self {
            cgroup_id,
            family,
            port: port.to_be(),
            _pad: 0,
            addr,
        }
    }
}
