//! Kernel struct field offsets, read from the running kernel's BTF.
//!
//! The eBPF programs read a handful of `task_struct`, `mm_struct` and
//! `linux_binprm` fields. Their offsets change with every kernel build, so
//! they are never hard-coded: they are looked up here, by name, at load time
//! and handed to the programs as a global. A field that cannot be found is
//! marked unknown; the programs then report 0 for it instead of reading
//! garbage.

use std::path::Path;

use anyhow::{Context as _, Result};
use assay_common::config::KernelOffsets;
use btf_rs::{Btf, Type};

/// Where the kernel exposes its own BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// One field a program needs, and why it may be missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingField {
    pub path: &'static str,
    pub reason: String,
}

/// Resolves every offset in [`KernelOffsets`]; fields not found are
/// [`KernelOffsets::UNKNOWN`] and listed in the second return value.
pub fn resolve(btf_path: &Path) -> Result<(KernelOffsets, Vec<MissingField>)> {
    let btf = Btf::from_file(btf_path)
        .with_context(|| format!("cannot parse kernel BTF at {}", btf_path.display()))?;
    let mut missing = Vec::new();
    let mut field = |path: &'static str| {
        let (structure, member) = path.split_once('.').expect("struct.field");
        match member_offset(&btf, structure, member) {
            Ok(offset) => offset,
            Err(err) => {
                missing.push(MissingField {
                    path,
                    reason: format!("{err:#}"),
                });
                KernelOffsets::UNKNOWN
            }
        }
    };
    let offsets = KernelOffsets {
        task_real_parent: field("task_struct.real_parent"),
        task_tgid: field("task_struct.tgid"),
        task_mm: field("task_struct.mm"),
        task_exit_code: field("task_struct.exit_code"),
        mm_arg_start: field("mm_struct.arg_start"),
        mm_arg_end: field("mm_struct.arg_end"),
        bprm_filename: field("linux_binprm.filename"),
        fpu_fpstate: field("fpu.fpstate"),
        fpstate_mxcsr: match (field("fpstate.regs"), field("fxregs_state.mxcsr")) {
            (KernelOffsets::UNKNOWN, _) | (_, KernelOffsets::UNKNOWN) => KernelOffsets::UNKNOWN,
            (regs, mxcsr) => regs + mxcsr,
        },
        task_pid: field("task_struct.pid"),
        // Only kernels with loadable modules have it: not worth a warning.
        module_name: member_offset(&btf, "module", "name").unwrap_or(KernelOffsets::UNKNOWN),
        task_signal: field("task_struct.signal"),
        signal_live: field("signal_struct.live"),
        _pad: 0,
    };
    Ok((offsets, missing))
}

/// Byte offset of `member` in `struct structure`, looking through anonymous
/// structs and unions (as `mm_struct` wraps most of its fields in one).
pub fn member_offset(btf: &Btf, structure: &str, member: &str) -> Result<u32> {
    let candidates = btf
        .resolve_types_by_name(structure)
        .with_context(|| format!("struct {structure} not in BTF"))?;
    for candidate in candidates {
        if let Type::Struct(s) = candidate
            && let Some(bits) = find_member(btf, &s, member, 0)?
        {
            anyhow::ensure!(bits % 8 == 0, "{structure}.{member} is a bitfield");
            return Ok(bits / 8);
        }
    }
    anyhow::bail!("struct {structure} has no member {member}")
}

fn find_member(btf: &Btf, s: &btf_rs::Struct, wanted: &str, base_bits: u32) -> Result<Option<u32>> {
    for m in &s.members {
        let name = btf.resolve_name(m).unwrap_or_default();
        let bits = base_bits + m.bit_offset();
        if name == wanted {
            return Ok(Some(bits));
        }
        if name.is_empty() {
            let inner = resolve_through_modifiers(btf, btf.resolve_chained_type(m)?)?;
            if let Type::Struct(inner) | Type::Union(inner) = inner
                && let Some(found) = find_member(btf, &inner, wanted, bits)?
            {
                return Ok(Some(found));
            }
        }
    }
    Ok(None)
}

fn resolve_through_modifiers(btf: &Btf, mut ty: Type) -> Result<Type> {
    loop {
        ty = match &ty {
            Type::Typedef(t) => btf.resolve_chained_type(t)?,
            Type::Const(t) | Type::Volatile(t) | Type::Restrict(t) => {
                btf.resolve_chained_type(t)?
            }
            _ => return Ok(ty),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reads this machine's kernel BTF: every field the programs use must be
    // found on the kernel the suites run on.
    #[test]
    fn every_field_resolves_on_the_running_kernel() {
        let path = Path::new(VMLINUX_BTF);
        if !path.exists() {
            // The privileged suites fail loudly on such a kernel; here it is not an error.
            return;
        }
        let (offsets, missing) = resolve(path).unwrap();
        assert!(missing.is_empty(), "{missing:?}");
        assert_ne!(offsets.task_tgid, KernelOffsets::UNKNOWN);
        // arg_start sits inside an anonymous struct in mm_struct since 5.x:
        // a plain member walk would miss it.
        assert!(offsets.mm_arg_end > offsets.mm_arg_start);
        // fxregs_state: cwd, swd, twd, fop (8 bytes), rip/rdp or fip..fos
        // (16 bytes), then mxcsr: 24 bytes into the register image.
        assert_ne!(offsets.fpstate_mxcsr, KernelOffsets::UNKNOWN);
    }
}
