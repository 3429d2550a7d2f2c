//! assay's classifiers: pure functions from bytes (or a time series) to an
//! optional typed result, and the flow framing and sampling model that the
//! live agent and `assay pcap` share.
//!
//! No I/O, no clocks, no globals: that is what makes them fuzzable, testable
//! and usable offline. Callers turn their results into evidence. Each
//! module is named after the signal it reads in docs/signatures.md.
//!
//! - protocols: [`stratum`], [`stratum_v2`], [`tls`], [`dns`], [`p2p`], and
//!   the push beat of opaque flows, [`cadence`];
//! - chain use on plain HTTP and websocket ([`http`]): chain JSON-RPC
//!   ([`chain_rpc`]), a validator client's beacon-API calls ([`beacon`]),
//!   Bittensor's signed requests ([`bittensor`]);
//! - behaviour: [`work_loop`], a flow in lockstep with its owner's CPU;
//! - flows: [`flow`], which follows each direction of a flow from its first
//!   bytes and hands each segment to the classifier its framing calls for;
//! - processes: [`cmdline`] (command lines and config files), [`randomx`]
//!   (the FPU rounding marker);
//! - GPUs: [`gpu`];
//! - offline: [`pcap`], a capture file's flows through the same flow model;
//! - the kernel's ring buffer records, checked and decoded: [`record`];
//! - the names and pool domains detection reports by, from a data file an
//!   operator can extend: [`catalogue`].

pub mod beacon;
pub mod bittensor;
pub mod cadence;
pub mod catalogue;
pub mod chain_rpc;
pub mod cmdline;
pub mod dns;
pub mod flow;
pub mod gpu;
pub mod http;
pub mod p2p;
pub mod pcap;
pub mod randomx;
pub mod record;
pub mod stratum;
pub mod stratum_v2;
pub mod tls;
pub mod work_loop;

/// Which way bytes travelled, seen from the process that owns the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Written by the local process.
    Outbound,
    /// Received by the local process.
    Inbound,
}
