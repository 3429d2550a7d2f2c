//! Per-socket sampling state, kept by the kernel in socket-local storage
//! (`BPF_MAP_TYPE_SK_STORAGE`, map `FLOW_STATE`): created when a process
//! connects (or at the first payload of a socket no connect announced),
//! freed by the kernel with the socket. No hashing, no cookie, no LRU on
//! the packet path: the steady state of a flow (sampled, or not
//! interesting) is one helper call and a read of [`SocketFlow::done`].
//!
//! User space never writes this state (it cannot reach other processes'
//! sockets' storage, and a read-modify-write would race the kernel). To
//! let the kernel sample more of a flow (a JSON line still open, an opaque
//! flow's cadence), it writes the flow's new limit in the `REARM` map keyed
//! by socket cookie, then bumps the generation in `REARM_GEN`; a finished
//! direction checks `REARM` only when the generation moved.

/// Sampling state of one socket, both directions (indexed by
/// [`crate::event::direction`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketFlow {
    /// Samples sent to user space per direction.
    pub samples: [u16; 2],
    /// Samples allowed per direction.
    pub limit: [u16; 2],
    pub _pad: [u8; 2],
    /// Bit `1 << direction` once that direction is done: the steady state.
    pub done: u8,
    /// How the flow became known: [`origin`].
    pub origin: u8,
    /// The `REARM_GEN` value this flow last checked `REARM` at.
    pub rearm_gen: u32,
}
const _: () = assert!(size_of::<SocketFlow>() == 16);

#[cfg(feature = "user")]
// SAFETY: #[repr(C)], integers only, no padding.
unsafe impl aya::Pod for SocketFlow {}

/// Values of [`SocketFlow::origin`].
pub mod origin {
    /// A local process connected it (or sent on it unconnected).
    pub const OPENED: u8 = 1;
    /// Seen first with payload, no connect announced: accepted by a local
    /// server, or older than the agent.
    pub const ADOPTED: u8 = 2;
    /// The agent's own: never sampled.
    pub const OWN: u8 = 3;
}

/// Both directions done.
pub const DONE_BOTH: u8 = 0b11;

/// Samples per direction for an adopted flow (one no connect or sendmsg
/// announced: accepted by a local server, or older than the agent). Every
/// opening the classifiers read fits in two segments, and servers accept
/// many flows: they get fewer samples than flows a local process opened.
pub const ADOPTED_SAMPLE_SEGMENTS: u32 = 2;

/// Flows whose re-arm the kernel can hold at once (LRU: the oldest go).
pub const REARM_ENTRIES: u32 = 4096;
