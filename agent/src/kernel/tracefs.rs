//! tracefs: where classic tracepoints are described. The hygiene sensor
//! attaches to `syscalls:sys_enter_*` tracepoints and reads syscall
//! arguments at offsets that each tracepoint's `format` file states; they
//! are read here at load time, never hard-coded.
//!
//! Many hosts do not mount tracefs at boot (this one does not): the agent
//! mounts it at /sys/kernel/tracing when a sensor needs it, and leaves it
//! mounted (other tools expect it there).

use std::{
    ffi::CString,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};
use assay_common::config::{KernelOffsets, SyscallOffsets};

const MOUNT_POINTS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// The mounted tracefs, if any.
pub fn mounted() -> Option<PathBuf> {
    MOUNT_POINTS
        .iter()
        .map(PathBuf::from)
        .find(|dir| dir.join("events").is_dir())
}

/// The mounted tracefs, mounting it at /sys/kernel/tracing when absent.
pub fn mount() -> Result<PathBuf> {
    if let Some(dir) = mounted() {
        return Ok(dir);
    }
    let target = Path::new(MOUNT_POINTS[0]);
    let c = |s: &str| CString::new(s).expect("no NUL");
    let (source, dir, fstype) = (c("nodev"), c(MOUNT_POINTS[0]), c("tracefs"));
    // SAFETY: NUL-terminated strings that outlive the call; no data.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            dir.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        bail!(
            "mounting tracefs at {} failed: {}",
            target.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(target.to_path_buf())
}

/// Offset of `field` in a tracepoint record, from the text of its
/// `format` file (`field:const char * filename;\toffset:24;\tsize:8;…`).
pub fn field_offset(format: &str, field: &str) -> Option<u32> {
    format.lines().find_map(|line| {
        let declaration = line.trim().strip_prefix("field:")?;
        let (declaration, rest) = declaration.split_once(';')?;
        let name = declaration
            .rsplit(|c: char| c.is_whitespace() || c == '*')
            .next()?;
        if name != field {
            return None;
        }
        let offset = rest
            .split(';')
            .find_map(|part| part.trim().strip_prefix("offset:"))?;
        offset.trim().parse().ok()
    })
}

/// The syscall argument offsets the hygiene programs need.
pub fn syscall_offsets(tracefs: &Path) -> Result<SyscallOffsets> {
    let format = |tracepoint: &str| -> Result<String> {
        let path = tracefs
            .join("events/syscalls")
            .join(tracepoint)
            .join("format");
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
    };
    let offset = |text: &str, tracepoint: &str, field: &str| -> Result<u32> {
        field_offset(text, field)
            .with_context(|| format!("{tracepoint}'s format has no field {field}"))
    };
    let openat = format("sys_enter_openat")?;
    let mmap = format("sys_enter_mmap")?;
    let offsets = SyscallOffsets {
        openat_filename: offset(&openat, "sys_enter_openat", "filename")?,
        openat_flags: offset(&openat, "sys_enter_openat", "flags")?,
        mmap_len: offset(&mmap, "sys_enter_mmap", "len")?,
        mmap_flags: offset(&mmap, "sys_enter_mmap", "flags")?,
    };
    // A record is small; an offset beyond it means the format was misread.
    for value in [
        offsets.openat_filename,
        offsets.openat_flags,
        offsets.mmap_len,
        offsets.mmap_flags,
    ] {
        if value == KernelOffsets::UNKNOWN || value > 512 {
            bail!("implausible syscall argument offset {value}");
        }
    }
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENAT: &str = "name: sys_enter_openat\nID: 782\nformat:\n\
        \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
        \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
        \tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\
        \tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;\n\
        \tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;\n\
        \tfield:int flags;\toffset:32;\tsize:8;\tsigned:0;\n\
        \tfield:umode_t mode;\toffset:40;\tsize:8;\tsigned:0;\n\n\
        print fmt: \"dfd: 0x%08lx, filename: 0x%08lx\", ((unsigned long)(REC->dfd))\n";

    #[test]
    fn offsets_are_read_by_field_name() {
        assert_eq!(field_offset(OPENAT, "filename"), Some(24));
        assert_eq!(field_offset(OPENAT, "flags"), Some(32));
        assert_eq!(field_offset(OPENAT, "common_pid"), Some(4));
        // `mode` is not `common_mode`; unknown names are None.
        assert_eq!(field_offset(OPENAT, "len"), None);
        assert_eq!(field_offset("garbage\nfield:broken", "flags"), None);
    }

    #[test]
    fn this_kernels_formats_parse_when_tracefs_is_mounted() {
        let Some(dir) = mounted() else {
            return;
        };
        let offsets = syscall_offsets(&dir).unwrap();
        assert!(offsets.openat_filename > 8 && offsets.mmap_flags > 8);
    }
}
