//! The command line's helpers: the `--config` file, `assay doctor`,
//! `assay pcap` and `assay report` (whose arguments are here; the others'
//! are in `main.rs`).

pub mod config_file;
pub mod doctor;
pub mod pcap;
pub mod report;
