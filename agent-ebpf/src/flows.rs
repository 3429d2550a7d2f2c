//! Flow sensor.
//!
//! `connect4/6` and `sendmsg4/6` (cgroup sock_addr) run in the calling
//! process's context: that is where a TCP or UDP flow is attributed to a pid,
//! comm and cgroup, kept in its per-socket state in socket-local storage
//! ([`FLOW_STATE`]), and sent to user space with the flow's first sample: a
//! connect makes no ring record of its own, so a connection costs one
//! record less, and one that never carries a byte costs none. `sendmsg`
//! only matters for unconnected UDP sockets (the kernel calls it only when
//! an address is given): the first send creates the state.
//!
//! Samples come in three sizes ([`SAMPLE_CLASSES`]): a 64-byte request
//! reserves 128 bytes of ring, not 2 KiB.
//!
//! `cgroup_skb` egress/ingress then samples the first `limit` payload-carrying
//! segments (or datagrams) of each direction of a flow (a segment longer
//! than a sample in chunks, each a sample) and marks the direction done,
//! unless it looks like JSON text still blank or with a line open: then it
//! holds it open by itself, bounded (`assay_common::flow::holds`), rather
//! than wait for user space and miss the login that follows. The steady state of every packet after that
//! is one `bpf_sk_storage_get` and a read of the done bits: no cookie, no
//! hash, no write, no parsing. A direction still open parses each segment,
//! ACKs included: giving up on a direction after some empty segments would
//! let a pool that pushes first blind the sampler to the client's login.
//!
//! A packet with payload on a socket without state (a connection accepted
//! by a local server, or one opened before the agent started) is adopted: it
//! gets a smaller budget, and user space finds its owner from the socket
//! tables when the samples say something. Packets without payload never
//! adopt.
//!
//! User space asks for more samples through [`REARM`] and [`REARM_GEN`]
//! (see `assay_common::flow`): a done direction looks at them only when the
//! generation moved.

use assay_common::{
    config::counter,
    event::{EventHeader, SAMPLE_CLASSES, SAMPLE_LEN, SampleEvent, direction, kind},
    flow::{
        ADOPTED_SAMPLE_SEGMENTS, CHUNKS_PER_SEGMENT, DONE_BOTH, FlowOwner, HOLD_CAP, SocketFlow,
        holds, next_hold, origin,
    },
};
use aya_ebpf::{
    bindings::BPF_SK_STORAGE_GET_F_CREATE,
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
        bpf_ktime_get_ns,
        generated::{bpf_get_socket_cookie, bpf_sk_storage_get, bpf_skb_load_bytes},
    },
    macros::{cgroup_skb, cgroup_sock_addr},
    programs::{SkBuffContext, SockAddrContext},
};

use crate::{
    deny,
    maps::{FLOW_EVENTS, FLOW_STATE, REARM, REARM_GEN, config, count, ring_slot, wakeup_flags},
};

/// Return value of cgroup sock_addr and skb programs that lets the operation
/// proceed: this sensor observes; only deny-egress (`crate::deny`, opt-in
/// enforcement) ever refuses.
const ALLOW: i32 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const SOCK_STREAM: u32 = 1;
const SOCK_DGRAM: u32 = 2;

#[cgroup_sock_addr(connect4)]
pub fn assay_connect4(ctx: SockAddrContext) -> i32 {
    if deny::denied4(&ctx) {
        return deny::REFUSE;
    }
    on_connect(&ctx);
    ALLOW
}

#[cgroup_sock_addr(connect6)]
pub fn assay_connect6(ctx: SockAddrContext) -> i32 {
    if deny::denied6(&ctx) {
        return deny::REFUSE;
    }
    on_connect(&ctx);
    ALLOW
}

#[cgroup_sock_addr(sendmsg4)]
pub fn assay_sendmsg4(ctx: SockAddrContext) -> i32 {
    if deny::denied4(&ctx) {
        return deny::REFUSE;
    }
    on_first_sendmsg(&ctx);
    ALLOW
}

#[cgroup_sock_addr(sendmsg6)]
pub fn assay_sendmsg6(ctx: SockAddrContext) -> i32 {
    if deny::denied6(&ctx) {
        return deny::REFUSE;
    }
    on_first_sendmsg(&ctx);
    ALLOW
}

#[cgroup_skb(egress)]
pub fn assay_flow_out(ctx: SkBuffContext) -> i32 {
    sample(&ctx, direction::EGRESS);
    ALLOW
}

#[cgroup_skb(ingress)]
pub fn assay_flow_in(ctx: SkBuffContext) -> i32 {
    sample(&ctx, direction::INGRESS);
    ALLOW
}

/// Do nothing, at the same attach points as the flow programs: `cargo
/// xtask bench` attaches them (`--bench-floor`) to measure what the
/// kernel's cgroup_skb dispatch alone costs in each direction, apart from
/// the flow programs' bodies. Each reads one field of its own, so that the
/// linker cannot fold them into one another.
#[cgroup_skb(egress)]
pub fn assay_floor_out(ctx: SkBuffContext) -> i32 {
    core::hint::black_box(ctx.len());
    ALLOW
}

#[cgroup_skb(ingress)]
pub fn assay_floor_in(ctx: SkBuffContext) -> i32 {
    core::hint::black_box(unsafe { (*ctx.skb.skb).protocol });
    ALLOW
}

/// The state a socket opened by a local process starts with: its sample
/// budget, and the process, which the first sample will name.
#[inline(always)]
fn opened_state(pid_tgid: u64, own: bool) -> SocketFlow {
    if own {
        return SocketFlow {
            done: DONE_BOTH,
            origin: origin::OWN,
            ..SocketFlow::default()
        };
    }
    let budget = config().sample_segments.min(u16::MAX as u32) as u16;
    SocketFlow {
        limit: [budget; 2],
        origin: origin::OPENED,
        owner: FlowOwner {
            opened_ns: unsafe { bpf_ktime_get_ns() },
            cgroup_id: unsafe { bpf_get_current_cgroup_id() },
            pid: pid_tgid as u32,
            tgid: (pid_tgid >> 32) as u32,
            comm: bpf_get_current_comm().unwrap_or([0; 16]),
        },
        ..SocketFlow::default()
    }
}

#[inline(always)]
fn on_connect(ctx: &SockAddrContext) {
    let socket_type = unsafe { (*ctx.sock_addr).type_ };
    let pid_tgid = bpf_get_current_pid_tgid();
    let own = (pid_tgid >> 32) as u32 == config().agent_tgid;
    if !own && socket_type != SOCK_STREAM && socket_type != SOCK_DGRAM {
        return;
    }
    // The flow's state starts now, so that its very first segment is
    // sampled and names this process. A connect on a socket that has state
    // already (a UDP re-connect) keeps it. The agent's own flows are known
    // and done.
    let mut init = opened_state(pid_tgid, own);
    if unsafe { FLOW_STATE.get_or_insert_ptr_mut(ctx, Some(&mut init)) }.is_null() {
        count(counter::FLOW_INSERT_FAILED);
    }
}

/// An unconnected UDP socket names its peer on every send: the first send
/// attributes the socket like a connect would; later sends cost one
/// storage lookup.
#[inline(always)]
fn on_first_sendmsg(ctx: &SockAddrContext) {
    if !unsafe { FLOW_STATE.get_ptr_mut(ctx) }.is_null() {
        return;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let own = (pid_tgid >> 32) as u32 == config().agent_tgid;
    let mut init = opened_state(pid_tgid, own);
    if unsafe { FLOW_STATE.get_or_insert_ptr_mut(ctx, Some(&mut init)) }.is_null() {
        count(counter::FLOW_INSERT_FAILED);
    }
}

/// Where a TCP segment's or UDP datagram's payload starts, and its
/// addresses.
struct Segment {
    ip_version: u8,
    protocol: u8,
    saddr: [u8; 16],
    daddr: [u8; 16],
    sport: u16,
    dport: u16,
    payload_offset: u32,
    payload_len: u32,
}

/// Parses the IP and TCP/UDP headers of a cgroup_skb packet (which starts at
/// the network header). `None` when they cannot be read or are neither TCP
/// nor UDP; `payload_len` is 0 for a segment without payload (an ACK).
///
/// Headers are read straight from the packet's linear data, where they
/// almost always are: one bounds check, no helper call per field. A packet
/// whose headers are not all there (paged, or truncated) is read field by
/// field through `bpf_skb_load_bytes`.
#[inline(always)]
fn parse_segment(ctx: &SkBuffContext) -> Option<Segment> {
    match parse_linear(ctx) {
        Headers::Parsed(segment) => Some(segment),
        Headers::Neither => None,
        Headers::Elsewhere => parse_loaded(ctx),
    }
}

/// What the packet's linear data holds.
enum Headers {
    Parsed(Segment),
    /// Readable, but neither TCP nor UDP over IPv4 or IPv6.
    Neither,
    /// The headers are not all in the linear data (paged, or short).
    Elsewhere,
}

/// Byte `at` of the packet, which the caller bounds-checked.
#[inline(always)]
unsafe fn byte(at: usize) -> u8 {
    unsafe { *(at as *const u8) }
}

#[inline(always)]
unsafe fn be16(at: usize) -> u16 {
    unsafe { u16::from_be_bytes([byte(at), byte(at + 1)]) }
}

#[inline(always)]
fn parse_linear(ctx: &SkBuffContext) -> Headers {
    let skb = ctx.skb.skb;
    let (start, end) = unsafe { ((*skb).data as usize, (*skb).data_end as usize) };
    // 40 bytes: a whole IPv6 header, or an IPv4 header and the start of
    // what follows it.
    if start + 40 > end {
        return Headers::Elsewhere;
    }
    let first = unsafe { byte(start) };
    let mut segment = Segment {
        ip_version: first >> 4,
        protocol: 0,
        saddr: [0; 16],
        daddr: [0; 16],
        sport: 0,
        dport: 0,
        payload_offset: 0,
        payload_len: 0,
    };
    let l4_offset = match segment.ip_version {
        4 => unsafe {
            segment.protocol = byte(start + 9);
            // The header length, in 32-bit words (the mask keeps it
            // bounded for the verifier): 20 to 60 bytes.
            ((first & 0x0f) as usize) * 4
        },
        6 => unsafe {
            segment.protocol = byte(start + 6);
            40
        },
        _ => return Headers::Neither,
    };
    let l4 = start + l4_offset;
    // TCP: ports, then the data offset at 12; UDP: an 8-byte header.
    if l4 + 14 > end {
        return Headers::Elsewhere;
    }
    unsafe {
        segment.sport = be16(l4);
        segment.dport = be16(l4 + 2);
    }
    let payload_offset = match segment.protocol {
        IPPROTO_TCP => l4_offset as u32 + ((unsafe { byte(l4 + 12) } >> 4) as u32) * 4,
        IPPROTO_UDP => l4_offset as u32 + 8,
        _ => return Headers::Neither,
    };
    segment.payload_offset = payload_offset;
    segment.payload_len = ctx.len().saturating_sub(payload_offset);
    // Addresses only go into samples: an ACK does without them.
    if segment.payload_len > 0 {
        unsafe {
            if segment.ip_version == 4 {
                let mut i = 0;
                while i < 4 {
                    segment.saddr[i] = byte(start + 12 + i);
                    segment.daddr[i] = byte(start + 16 + i);
                    i += 1;
                }
            } else {
                let mut i = 0;
                while i < 16 {
                    segment.saddr[i] = byte(start + 8 + i);
                    segment.daddr[i] = byte(start + 24 + i);
                    i += 1;
                }
            }
        }
    }
    Headers::Parsed(segment)
}

/// [`parse_segment`] for a packet whose headers are not all in its linear
/// data: each field through `bpf_skb_load_bytes`.
#[inline(always)]
fn parse_loaded(ctx: &SkBuffContext) -> Option<Segment> {
    let first: u8 = ctx.load(0).ok()?;
    let mut segment = Segment {
        ip_version: first >> 4,
        protocol: 0,
        saddr: [0; 16],
        daddr: [0; 16],
        sport: 0,
        dport: 0,
        payload_offset: 0,
        payload_len: 0,
    };
    let l4_offset: usize = match segment.ip_version {
        4 => {
            segment.protocol = ctx.load::<u8>(9).ok()?;
            let src: [u8; 4] = ctx.load(12).ok()?;
            let dst: [u8; 4] = ctx.load(16).ok()?;
            segment.saddr[..4].copy_from_slice(&src);
            segment.daddr[..4].copy_from_slice(&dst);
            ((first & 0x0f) as usize) * 4
        }
        6 => {
            // Extension headers are rare on TCP and UDP flows; such
            // packets are counted as unparsed, not sampled.
            segment.protocol = ctx.load::<u8>(6).ok()?;
            segment.saddr = ctx.load(8).ok()?;
            segment.daddr = ctx.load(24).ok()?;
            40
        }
        _ => return None,
    };
    segment.sport = u16::from_be(ctx.load(l4_offset).ok()?);
    segment.dport = u16::from_be(ctx.load(l4_offset + 2).ok()?);
    let payload_offset = match segment.protocol {
        IPPROTO_TCP => {
            let data_offset: u8 = ctx.load(l4_offset + 12).ok()?;
            l4_offset as u32 + ((data_offset >> 4) as u32) * 4
        }
        IPPROTO_UDP => l4_offset as u32 + 8,
        _ => return None,
    };
    segment.payload_offset = payload_offset;
    segment.payload_len = ctx.len().saturating_sub(payload_offset);
    Some(segment)
}

/// The address of [`FLOW_STATE`] for the storage helpers.
#[inline(always)]
fn flow_state_map() -> *mut core::ffi::c_void {
    core::ptr::addr_of!(FLOW_STATE).cast_mut().cast()
}

#[inline(always)]
fn sample(ctx: &SkBuffContext, dir: u8) {
    let skb = ctx.skb.skb;
    let sk = unsafe { (*skb).__bindgen_anon_2.sk };
    if sk.is_null() {
        return;
    }
    let state =
        unsafe { bpf_sk_storage_get(flow_state_map(), sk.cast(), core::ptr::null_mut(), 0) }
            .cast::<SocketFlow>();
    let d = (dir & 1) as usize;
    let bit = 1u8 << d;
    if state.is_null() {
        adopt(ctx, sk.cast(), d, dir);
        return;
    }
    // The steady state of every flow: done, nothing to write.
    if unsafe { (*state).done } & bit != 0 && !rearmed(ctx, state, bit) {
        return;
    }
    let Some(segment) = parse_segment(ctx) else {
        count(counter::PACKET_UNPARSED);
        return;
    };
    take_sample(ctx, state, d, dir, &segment);
}

/// Starts following a flow that no connect or sendmsg announced, from its
/// first packet with payload.
#[inline(always)]
fn adopt(ctx: &SkBuffContext, sk: *mut core::ffi::c_void, d: usize, dir: u8) {
    let Some(segment) = parse_segment(ctx) else {
        return;
    };
    if segment.payload_len == 0 {
        return;
    }
    let budget = config().sample_segments.min(ADOPTED_SAMPLE_SEGMENTS) as u16;
    let mut init = SocketFlow {
        limit: [budget; 2],
        origin: origin::ADOPTED,
        ..SocketFlow::default()
    };
    let state = unsafe {
        bpf_sk_storage_get(
            flow_state_map(),
            sk,
            core::ptr::from_mut(&mut init).cast(),
            BPF_SK_STORAGE_GET_F_CREATE.into(),
        )
    }
    .cast::<SocketFlow>();
    if state.is_null() {
        count(counter::FLOW_INSERT_FAILED);
        return;
    }
    count(counter::FLOW_ADOPTED);
    take_sample(ctx, state, d, dir, &segment);
}

/// A done direction that user space asked more samples of: reopened.
/// Looks at [`REARM`] only when [`REARM_GEN`] moved since this flow last
/// looked. Returns whether the direction `bit` is open now.
#[inline(always)]
fn rearmed(ctx: &SkBuffContext, state: *mut SocketFlow, bit: u8) -> bool {
    let Some(generation) = REARM_GEN.get(0).copied() else {
        return false;
    };
    unsafe {
        if (*state).rearm_gen == generation {
            return false;
        }
        (*state).rearm_gen = generation;
    }
    let cookie = unsafe { bpf_get_socket_cookie(ctx.skb.skb.cast()) };
    let Some(limit) = (unsafe { REARM.get(cookie) }).copied() else {
        return false;
    };
    let limit = limit.min(u16::MAX as u32) as u16;
    unsafe {
        let mut d = 0;
        while d < 2 {
            if limit > (*state).limit[d] {
                (*state).limit[d] = limit;
                (*state).done &= !(1u8 << d);
            }
            d += 1;
        }
        (*state).done & bit == 0
    }
}

/// Samples a segment of an open direction that carries payload: in chunks
/// of [`SAMPLE_LEN`] when it is longer (up to [`CHUNKS_PER_SEGMENT`]), each
/// chunk one sample. At the limit, a direction that looks like JSON text
/// still blank or with a line open is held open one more sample, up to
/// [`HOLD_CAP`] ([`holds`]); otherwise it is done.
#[inline(always)]
fn take_sample(ctx: &SkBuffContext, state: *mut SocketFlow, d: usize, dir: u8, segment: &Segment) {
    let bit = 1u8 << d;
    unsafe {
        if (*state).samples[d] >= (*state).limit[d] {
            (*state).done |= bit;
            return;
        }
    }
    if segment.payload_len == 0 {
        return;
    }
    let cookie = unsafe { bpf_get_socket_cookie(ctx.skb.skb.cast()) };
    let mut chunk: u32 = 0;
    while chunk < CHUNKS_PER_SEGMENT {
        let offset = chunk * SAMPLE_LEN as u32;
        let taken = unsafe {
            let taken = (*state).samples[d];
            if taken >= (*state).limit[d] {
                (*state).done |= bit;
                return;
            }
            (*state).samples[d] = taken + 1;
            taken
        };
        let remaining = segment.payload_len.saturating_sub(offset);
        let (first, last, captured) = if remaining <= SAMPLE_CLASSES[0] as u32 {
            emit_chunk::<{ SAMPLE_CLASSES[0] }>(ctx, state, cookie, dir, segment, taken, offset)
        } else if remaining <= SAMPLE_CLASSES[1] as u32 {
            emit_chunk::<{ SAMPLE_CLASSES[1] }>(ctx, state, cookie, dir, segment, taken, offset)
        } else {
            emit_chunk::<SAMPLE_LEN>(ctx, state, cookie, dir, segment, taken, offset)
        };
        unsafe {
            let hold = next_hold((*state).hold[d], first, last, captured);
            (*state).hold[d] = hold;
            if taken + 1 >= (*state).limit[d] {
                if holds(hold) && taken + 1 < HOLD_CAP {
                    (*state).limit[d] = taken + 2;
                } else {
                    (*state).done |= bit;
                    return;
                }
            }
        }
        if offset + SAMPLE_LEN as u32 >= segment.payload_len {
            return;
        }
        chunk += 1;
    }
}

/// Sends one sample: the chunk of the segment's payload at `offset`, in a
/// record whose `data` holds `N` bytes (one of [`SAMPLE_CLASSES`], the
/// smallest the chunk fits in). The flow's first sample also names its
/// owner, from the socket's state. Returns the chunk's first and last bytes
/// and its length (0 when nothing was captured: the ring was full or the
/// bytes could not be read).
#[inline(always)]
fn emit_chunk<const N: usize>(
    ctx: &SkBuffContext,
    state: *mut SocketFlow,
    cookie: u64,
    dir: u8,
    segment: &Segment,
    taken: u16,
    offset: u32,
) -> (u8, u8, u32) {
    let skb = ctx.skb.skb;
    let Some(mut entry) = FLOW_EVENTS.reserve::<SampleEvent<N>>(0) else {
        count(counter::SAMPLE_LOST);
        return (0, 0, 0);
    };
    let event = entry.as_mut_ptr();
    // The same value as the clamp, in a form the verifier can bound to
    // [1, N]: it loses the lower bound of a plain clamp, and black_box
    // keeps LLVM from folding the mask away.
    let remaining = segment.payload_len.saturating_sub(offset);
    let clamped = core::hint::black_box(remaining.clamp(1, N as u32));
    let mut captured = ((clamped - 1) & (N as u32 - 1)) + 1;
    let mut ends = (0u8, 0u8);
    unsafe {
        // Named once: the first sample that reaches the ring carries the
        // owner, and the state forgets it.
        let owner = (*state).owner;
        let named = owner.opened_ns != 0;
        if named {
            (*state).owner.opened_ns = 0;
        }
        (*event).header = EventHeader {
            kind: kind::FLOW_SAMPLE,
            size: size_of::<SampleEvent<N>>() as u32,
            timestamp_ns: bpf_ktime_get_ns(),
            pid: if named { owner.pid } else { 0 },
            tgid: if named { owner.tgid } else { 0 },
            cgroup_id: if named { owner.cgroup_id } else { 0 },
        };
        (*event).opened_ns = if named { owner.opened_ns } else { 0 };
        (*event).comm = if named { owner.comm } else { [0; 16] };
        (*event).cookie = cookie;
        (*event).direction = dir;
        (*event).segment = taken.min(u8::MAX as u16) as u8;
        (*event).ip_version = segment.ip_version;
        (*event).protocol = segment.protocol;
        (*event).payload_len = segment.payload_len;
        (*event).sport = segment.sport;
        (*event).dport = segment.dport;
        (*event).saddr = segment.saddr;
        (*event).daddr = segment.daddr;
        (*event).offset = offset;
        (*event)._pad = 0;
        let dst = (&raw mut (*event).data).cast::<core::ffi::c_void>();
        if bpf_skb_load_bytes(skb.cast(), segment.payload_offset + offset, dst, captured) != 0 {
            captured = 0;
        } else {
            let data = &(*event).data;
            ends = (data[0], data[((captured - 1) & (N as u32 - 1)) as usize]);
        }
        (*event).captured = captured;
    }
    entry.submit(wakeup_flags(&FLOW_EVENTS, ring_slot::FLOW));
    (ends.0, ends.1, captured)
}
