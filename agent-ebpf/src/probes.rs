//! Programs that exist only so the loader can ask the kernel "would you load
//! this?" (fentry needs BPF trampolines, LSM needs the `bpf` LSM). They are
//! loaded by `assay doctor` and the attach plan, never attached.

use aya_ebpf::{
    macros::{fentry, lsm},
    programs::{FEntryContext, LsmContext},
};

#[fentry(function = "do_nanosleep")]
pub fn assay_probe_fe(_ctx: FEntryContext) -> u32 {
    0
}

#[lsm(hook = "file_open")]
pub fn assay_probe_lsm(_ctx: LsmContext) -> i32 {
    0
}
