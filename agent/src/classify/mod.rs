//! Classifiers: pure functions from bytes to an optional typed result.
//!
//! No I/O, no clocks, no globals: that is what makes them fuzzable, testable
//! and usable offline (pcap). Callers turn their results into evidence.

pub mod cadence;
pub mod cmdline;
pub mod dns;
pub mod p2p;
pub mod randomx;
pub mod stratum;
pub mod stratum_v2;
pub mod tls;

/// Which way bytes travelled, seen from the process that owns the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Written by the local process.
    Outbound,
    /// Received by the local process.
    Inbound,
}
