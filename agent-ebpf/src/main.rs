//! assay's eBPF programs. One module per sensor; entry points stay thin and
//! hand off to `try_*` functions. Nothing here decides anything that user
//! space can decide: programs count, aggregate and sample, then stop.
#![no_std]
#![no_main]
#![allow(unreachable_pub, clippy::undocumented_unsafe_blocks)]

mod cpu;
mod cuda;
mod deny;
mod flows;
mod hygiene;
mod maps;
mod probes;
mod process;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    // Unreachable in a verified program: the verifier rejects any path that
    // could get here.
    loop {}
}

/// The kernel checks eBPF programs that use GPL-only helpers (e.g.
/// `bpf_probe_read_*`) against this license string.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
