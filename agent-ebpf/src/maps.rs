//! Every map and the load-time configuration global, in one place.

use assay_common::{
    config::{Config, counter},
    flow::{REARM_ENTRIES, SocketFlow},
};
use aya_ebpf::{
    btf_maps::SkStorage,
    macros::{btf_map, map},
    maps::{Array, LruHashMap, PerCpuArray, RingBuf},
};

/// Kernel → user space events, rare ones only, one ring per family so that
/// a storm in one (an exec storm) cannot starve another (flow samples):
/// process lifecycle (exec, exit, fork).
#[map]
pub static PROCESS_EVENTS: RingBuf = RingBuf::with_byte_size(2 << 20, 0);

/// Flows: connects and payload samples.
#[map]
pub static FLOW_EVENTS: RingBuf = RingBuf::with_byte_size(4 << 20, 0);

/// The other sensors: miner hygiene and the CUDA driver.
#[map]
pub static SENSOR_EVENTS: RingBuf = RingBuf::with_byte_size(1 << 20, 0);

/// What the kernel side dropped, per CPU; indexes in [`counter`].
#[map]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

/// Per-socket sampling state (assay_common::flow), freed with the socket.
#[btf_map]
pub static FLOW_STATE: SkStorage<SocketFlow> = SkStorage::new();

/// New sample limits user space asks for, by socket cookie.
#[map]
pub static REARM: LruHashMap<u64, u32> = LruHashMap::with_max_entries(REARM_ENTRIES, 0);

/// Bumped by user space after it writes [`REARM`].
#[map]
pub static REARM_GEN: Array<u32> = Array::with_max_entries(1, 0);

/// Set by the agent at load time (aya `EbpfLoader::override_global`).
#[unsafe(no_mangle)]
static CONFIG: Config = Config::DEFAULT;

#[inline(always)]
pub fn config() -> Config {
    // A volatile read: otherwise the compiler folds the default value in.
    unsafe { core::ptr::read_volatile(&raw const CONFIG) }
}

#[inline(always)]
pub fn count(index: u32) {
    if let Some(slot) = COUNTERS.get_ptr_mut(index) {
        // Per-CPU slot: no other CPU writes it.
        unsafe { *slot += 1 };
    }
}

/// Bytes waiting in a ring above which a submit wakes user space at
/// once. Below it, user space drains on its own short timer: one wakeup per
/// burst instead of one per event keeps exec storms and connection storms
/// cheap, at the price of at most one drain period of latency (the agent
/// drains every 50 ms).
const WAKEUP_AT_BYTES: u64 = 64 * 1024;
/// A CPU asks a ring how much is waiting at one record in this many: the
/// question reads the ring's consumer position, a cache line the agent
/// writes from another CPU, and cost about 100 ns a record (measured in
/// `assay_connect4` and the packet programs under rr-connect). A ring is
/// then woken at most this many records (of at most 2.2 KiB each) per CPU
/// past the threshold: far inside the smallest ring (1 MiB).
const QUERY_EVERY: u32 = 16;
const BPF_RB_AVAIL_DATA: u64 = 0;
const BPF_RB_NO_WAKEUP: u64 = 1;
const BPF_RB_FORCE_WAKEUP: u64 = 2;

/// Which ring a record goes to, for [`wakeup_flags`].
pub mod ring_slot {
    pub const PROCESS: u32 = 0;
    pub const FLOW: u32 = 1;
    pub const SENSOR: u32 = 2;
    pub const COUNT: u32 = 3;
}

/// Per CPU and ring ([`ring_slot`]): records submitted since this CPU last
/// asked the ring how much is waiting.
#[map]
static SINCE_QUERY: PerCpuArray<u32> = PerCpuArray::with_max_entries(ring_slot::COUNT, 0);

/// Flags for `submit` to `ring` (in slot `slot` of [`ring_slot`]): wake the
/// reader only when enough is waiting, asked at one record in
/// [`QUERY_EVERY`].
#[inline(always)]
pub fn wakeup_flags(ring: &RingBuf, slot: u32) -> u64 {
    if let Some(since) = SINCE_QUERY.get_ptr_mut(slot) {
        // Per-CPU slot: no other CPU writes it.
        unsafe {
            if *since + 1 < QUERY_EVERY {
                *since += 1;
                return BPF_RB_NO_WAKEUP;
            }
            *since = 0;
        }
    }
    if ring.query(BPF_RB_AVAIL_DATA) >= WAKEUP_AT_BYTES {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    }
}
