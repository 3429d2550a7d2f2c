//! Empty on purpose: the eBPF programs are the `assay` binary target of this
//! crate (src/main.rs), built for the BPF target by agent/build.rs.
#![no_std]
