//! assay: an eBPF agent that tells what a Linux host's compute is really
//! producing: proof-of-work mining, blockchain nodes, AI training or
//! inference, from inside the kernel, with the evidence for each verdict.
//!
//! Data flows one way (docs/design.md), and the folders follow it:
//!
//! ```text
//! kernel sensor ─► sensors/ ─► tables/ ─► assay_classify ─► evidence/ ─► correlate/ ─► sinks/
//!  (agent-ebpf)    decode,      processes,  pure             one record    verdicts,      finding,
//!                  per family   flows,      classifiers      per sign      policy,        OCSF, file,
//!                               peers                                      persistence    NATS, metrics
//! ```
//!
//! - [`kernel`]: the loader, BTF offsets, kernel features, capabilities and
//!   cgroups: what the running kernel offers and which hook each sensor uses.
//! - [`sensors`]: one module per kernel event family (process, flow, FPU,
//!   CPU time, hygiene, CUDA, GPU telemetry): each takes its events and
//!   the tables and returns what it saw.
//! - [`tables`]: what is known about processes, workloads and peers.
//! - [`evidence`]: observations turned into evidence, per family.
//! - [`correlate`]: evidence into verdicts; policy; verdicts kept across
//!   restarts.
//! - [`sinks`]: where findings go.
//! - [`procfs`]: every read of /proc and of files processes name, on
//!   bounded blocking workers, never on the event loop.
//! - [`cli`]: the config file, `assay doctor`, `assay pcap`.
//! - [`agent`]: the event loop that joins them.

pub mod agent;
pub mod cli;
pub mod correlate;
pub mod enforce;
pub mod evidence;
pub mod kernel;
pub mod ledger;
pub mod procfs;
pub mod sensors;
pub mod sinks;
pub mod tables;
pub mod time;

pub use assay_classify as classify;
