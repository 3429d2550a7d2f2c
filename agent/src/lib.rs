//! assay: an eBPF agent that tells what a Linux host's compute is really
//! producing: proof-of-work mining, blockchain nodes, AI training or
//! inference, from inside the kernel, with the evidence for each verdict.
//!
//! Data flows one way (DESIGN.md): kernel sensors → ring buffer →
//! [`events`] → tables ([`process_table`], [`flows`]) → [`classify`] →
//! [`evidence`] → [`correlate`] → [`sink`].

pub mod agent;
pub mod classify;
pub mod config_file;
pub mod correlate;
pub mod cpu;
pub mod cpu_time;
pub mod cuda;
pub mod doctor;
pub mod events;
pub mod evidence;
pub mod fleet;
pub mod flows;
pub mod gpu;
pub mod hygiene;
pub mod kernel;
pub mod loader;
pub mod metrics;
pub mod net_evidence;
pub mod ocsf;
pub mod pcap;
pub mod pmu;
pub mod policy;
pub mod process_table;
pub mod sink;
pub mod time;
pub mod workload;
