//! The command line's helpers: the `--config` file, `assay doctor` and
//! `assay pcap`. The arguments themselves are in `main.rs`.

pub mod config_file;
pub mod doctor;
pub mod pcap;
