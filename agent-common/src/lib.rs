//! Types shared by assay's eBPF programs (`assay-ebpf`) and its user-space
//! agent (`assay`).
//!
//! Everything here is `#[repr(C)]` with explicit padding, so that the kernel
//! and user space agree on every byte, and every size is pinned by a
//! compile-time assertion: changing a layout is a deliberate act that must
//! bump [`event::SCHEMA_VERSION`].
#![no_std]

pub mod config;
pub mod cpu;
pub mod deny;
pub mod event;
pub mod flow;
pub mod gpu;
