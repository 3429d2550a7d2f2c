//! Per-flow state kept by the kernel in the `FLOWS` LRU map, keyed by socket
//! cookie.

/// Per-flow counters and the sampling budget.
///
/// The kernel samples a flow's first segments in each direction and then
/// stops: `sample_limit` is set from [`crate::config::Config::sample_segments`]
/// when the flow is first seen. It lives in the map, not in the program, so
/// that user space can raise it for a flow it wants to keep watching (job
/// cadence, a login split over many segments); nothing does so yet.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowState {
    /// IP bytes seen (headers included), indexed by [`crate::event::direction`].
    pub bytes: [u64; 2],
    /// Packets seen, indexed by direction.
    pub packets: [u32; 2],
    /// Samples sent to user space, indexed by direction.
    pub samples: [u16; 2],
    /// Samples allowed per direction.
    pub sample_limit: u16,
    pub _pad: u16,
}
const _: () = assert!(size_of::<FlowState>() == 32);

#[cfg(feature = "user")]
// SAFETY: #[repr(C)], integers only, explicit padding.
unsafe impl aya::Pod for FlowState {}

/// Samples per direction for an adopted flow (one no connect or sendmsg
/// announced: accepted by a local server, or older than the agent). Every
/// opening the classifiers read fits in two segments, and servers accept
/// many flows: they get fewer samples than flows a local process opened.
pub const ADOPTED_SAMPLE_SEGMENTS: u32 = 2;
