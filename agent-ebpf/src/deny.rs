//! deny-egress: refuses a connect or sendmsg from a cgroup to an endpoint
//! user space put in [`DENY`] (see `assay_common::deny`). Called first by
//! each cgroup sock_addr program; on a host that never denies, the one
//! cost is the read of [`DENY_ARMED`] (an array lookup the verifier
//! inlines). Nothing here runs on the packet path (cgroup_skb).

use assay_common::{
    deny::{DENY_ENTRIES, DenyKey},
    event::{AF_INET, AF_INET6},
};
use aya_ebpf::{
    helpers::bpf_get_current_cgroup_id,
    macros::map,
    maps::{Array, HashMap},
    programs::SockAddrContext,
};

/// Return value of a cgroup sock_addr program that refuses the call: the
/// caller gets EPERM.
pub const REFUSE: i32 = 0;

/// (cgroup, family, address, port or 0) → 1: what may not be reached.
#[map]
pub static DENY: HashMap<DenyKey, u8> = HashMap::with_max_entries(DENY_ENTRIES, 0);

/// `[0]` non-zero while [`DENY`] holds entries.
#[map]
pub static DENY_ARMED: Array<u32> = Array::with_max_entries(1, 0);

#[inline(always)]
fn armed() -> bool {
    DENY_ARMED.get(0).is_some_and(|armed| *armed != 0)
}

/// Whether `key` (its port as called) or its address on any port is denied.
#[inline(always)]
fn listed(mut key: DenyKey) -> bool {
    if unsafe { DENY.get(key) }.is_some() {
        return true;
    }
    key.port = 0;
    unsafe { DENY.get(key) }.is_some()
}

/// For connect4 and sendmsg4.
#[inline(always)]
pub fn denied4(ctx: &SockAddrContext) -> bool {
    if !armed() {
        return false;
    }
    let addr = ctx.sock_addr;
    let key = DenyKey {
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        family: AF_INET,
        port: unsafe { (*addr).user_port } as u16,
        _pad: 0,
        addr: [unsafe { (*addr).user_ip4 }, 0, 0, 0],
    };
    listed(key)
}

/// For connect6 and sendmsg6 (IPv4 through an IPv6 socket arrives here
/// v4-mapped; user space lists that form too).
#[inline(always)]
pub fn denied6(ctx: &SockAddrContext) -> bool {
    if !armed() {
        return false;
    }
    let addr = ctx.sock_addr;
    let key = DenyKey {
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        family: AF_INET6,
        port: unsafe { (*addr).user_port } as u16,
        _pad: 0,
        // Word by word, each a load at a fixed offset of the context: the
        // verifier refuses a load through a ctx pointer moved by an
        // offset, which a copy of the whole array compiles to.
        addr: unsafe {
            [
                core::ptr::read_volatile(&raw const (*addr).user_ip6[0]),
                core::ptr::read_volatile(&raw const (*addr).user_ip6[1]),
                core::ptr::read_volatile(&raw const (*addr).user_ip6[2]),
                core::ptr::read_volatile(&raw const (*addr).user_ip6[3]),
            ]
        },
    };
    listed(key)
}
