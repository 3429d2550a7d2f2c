//! Per-socket sampling state, kept by the kernel in socket-local storage
//! (`BPF_MAP_TYPE_SK_STORAGE`, map `FLOW_STATE`): created when a process
//! connects (or at the first payload of a socket no connect announced),
//! freed by the kernel with the socket. It also holds the connecting
//! process ([`FlowOwner`]) until the flow's first sample carries it to
//! user space, so that a connection costs one ring record less. No hashing, no cookie, no LRU on
//! the packet path: the steady state of a flow (sampled, or not
//! interesting) is one helper call and a read of [`SocketFlow::done`].
//!
//! User space never writes this state (it cannot reach other processes'
//! sockets' storage, and a read-modify-write would race the kernel). To
//! let the kernel sample more of a flow (a JSON line still open, an opaque
//! flow's cadence), it writes the flow's new limit in the `REARM` map keyed
//! by socket cookie, then bumps the generation in `REARM_GEN`; a finished
//! direction checks `REARM` only when the generation moved.
//!
//! The kernel does not wait for user space where waiting would lose the
//! very bytes that matter: a direction that looks like JSON text and is
//! still blank (whitespace writes) or has a line open at its last sample
//! is held open, sample by sample, up to [`HOLD_CAP`] ([`next_hold`],
//! [`holds`]: pure functions the flow model in user space runs too, so
//! both agree on what the kernel samples). A user-space rearm arrives a
//! drain period later (up to 50 ms): a client that writes blanks and then
//! its login in one burst would be past the limit by then. A segment
//! longer than a sample is sampled in chunks ([`CHUNKS_PER_SEGMENT`]), so
//! that a login written in one write of several KiB is read whole.

/// Sampling state of one socket, both directions (indexed by
/// [`crate::event::direction`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketFlow {
    /// Samples sent to user space per direction.
    pub samples: [u16; 2],
    /// Samples allowed per direction.
    pub limit: [u16; 2],
    /// Per direction: what its samples so far say about holding it open
    /// past its limit ([`hold`]).
    pub hold: [u8; 2],
    /// Bit `1 << direction` once that direction is done: the steady state.
    pub done: u8,
    /// How the flow became known: [`origin`].
    pub origin: u8,
    /// The `REARM_GEN` value this flow last checked `REARM` at.
    pub rearm_gen: u32,
    /// Who opened the flow, taken at its connect (or first sendmsg) and
    /// sent with its first sample: the connect makes no record of its own.
    pub owner: FlowOwner,
}
const _: () = assert!(size_of::<SocketFlow>() == 16 + size_of::<FlowOwner>());

/// The process that opened a flow, as the connect hook saw it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowOwner {
    /// When it connected (`bpf_ktime_get_ns`); 0 once a sample has named
    /// the owner, and for flows no local process opened (adopted, the
    /// agent's own).
    pub opened_ns: u64,
    pub cgroup_id: u64,
    pub pid: u32,
    pub tgid: u32,
    pub comm: [u8; crate::event::COMM_LEN],
}
const _: () = assert!(size_of::<FlowOwner>() == 40);

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

/// Chunks of [`crate::event::SAMPLE_LEN`] bytes one segment is sampled in,
/// at most (each counts as a sample): 8 KiB, the flow model's per-direction
/// stream buffer.
pub const CHUNKS_PER_SEGMENT: u32 = 4;

/// Samples a direction may take in all while the kernel holds it open by
/// itself ([`holds`]). A client can always pad past any cap; this one
/// bounds what a flow costs (64 samples of at most 2 KiB per direction),
/// and user space counts directions that reach it still holding.
pub const HOLD_CAP: u16 = 64;

/// Bits of [`SocketFlow::hold`], per direction.
pub mod hold {
    /// The direction's first sample was taken.
    pub const STARTED: u8 = 1;
    /// It may be JSON text: it opened with `{` or a blank, and every chunk
    /// began and ended with printable ASCII or whitespace. Random binary
    /// that happens to open with such a byte loses it within a sample or
    /// two; TLS, HTTP and every binary protocol never have it.
    pub const TEXT: u8 = 2;
    /// A chunk began or ended with a non-blank byte: not only whitespace.
    pub const NONBLANK: u8 = 4;
    /// The last chunk did not end with a newline: a line is open.
    pub const OPEN: u8 = 8;
}

const fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

const fn is_textual(b: u8) -> bool {
    is_blank(b) || (b >= 0x20 && b < 0x7f)
}

/// A direction's [`hold`] state after a sample of `captured` bytes whose
/// first and last bytes are `first` and `last`. Only the two end bytes are
/// read: the kernel loads two bytes, never scans. A sample that captured
/// nothing ends holding for good.
pub const fn next_hold(state: u8, first: u8, last: u8, captured: u32) -> u8 {
    if captured == 0 {
        return hold::STARTED;
    }
    let mut s = state;
    if s & hold::STARTED == 0 {
        s = hold::STARTED;
        if first == b'{' || is_blank(first) {
            s |= hold::TEXT;
        }
    }
    if !is_textual(first) || !is_textual(last) {
        s &= !hold::TEXT;
    }
    if !is_blank(first) || !is_blank(last) {
        s |= hold::NONBLANK;
    }
    if last == b'\n' {
        s &= !hold::OPEN;
    } else {
        s |= hold::OPEN;
    }
    s
}

/// Whether a direction in `state` is held open past its limit: text that
/// is still blank, or has a line open.
pub const fn holds(state: u8) -> bool {
    state & hold::TEXT != 0 && (state & hold::NONBLANK == 0 || state & hold::OPEN != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(samples: &[&[u8]]) -> u8 {
        samples
            .iter()
            .fold(0, |s, b| next_hold(s, b[0], b[b.len() - 1], b.len() as u32))
    }

    #[test]
    fn blank_writes_and_open_lines_hold_complete_lines_do_not() {
        assert!(holds(after(&[b" "])));
        assert!(holds(after(&[b"\n", b"\r\n", b"\t  "])));
        assert!(holds(after(&[b" ", b"{\"id\":1,"])));
        assert!(holds(after(&[b"{\"id\":1,\"method\":\"lo"])));
        assert!(!holds(after(&[b"{\"id\":1}\n"])));
        assert!(!holds(after(&[b"  ", b"{\"id\":1}\n"])));
        assert!(holds(after(&[b"{\"id\":1}\n", b"{\"id\""])));
    }

    #[test]
    fn tls_http_and_binary_never_hold() {
        assert!(!holds(after(&[&[0x16, 0x03, 0x01, 0x02]])));
        assert!(!holds(after(&[b"GET / HTTP/1.1\r\n"])));
        assert!(!holds(after(&[
            b"POST /rpc HTTP/1.1\r\nContent-Length: 2\r\n\r\n{"
        ])));
        // Binary that happens to open with a blank loses it at once.
        assert!(!holds(after(&[&[b' ', 0x9c, 0x00, 0xf1]])));
        assert!(!holds(after(&[b" ", &[0xde, 0xad]])));
        // A sample that captured nothing ends it.
        assert!(!holds(next_hold(after(&[b" "]), 0, 0, 0)));
        assert!(!holds(next_hold(next_hold(0, 0, 0, 0), b' ', b' ', 1)));
    }
}
