//! Kernel feature probes.
//!
//! Each probe asks the kernel itself (a syscall, a sysfs entry, a trial
//! load) rather than trusting a version number: distribution kernels
//! backport and disable features freely. Probes that need the eBPF object
//! (trial loads of fentry, LSM and tp_btf programs) live in the loader.

use std::{fmt, fs, path::Path};

use aya::{programs::ProgramType, sys::is_program_supported};

use super::{btf_offsets::VMLINUX_BTF, cgroup};

/// The outcome of one probe: available with a detail, or not with a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Available(String),
    Unavailable(String),
}

impl Probe {
    pub fn is_available(&self) -> bool {
        matches!(self, Self::Available(_))
    }

    pub fn detail(&self) -> &str {
        match self {
            Self::Available(detail) | Self::Unavailable(detail) => detail,
        }
    }

    fn from_bool(ok: bool, yes: impl Into<String>, no: impl Into<String>) -> Self {
        if ok {
            Self::Available(yes.into())
        } else {
            Self::Unavailable(no.into())
        }
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Available(detail) => write!(f, "yes ({detail})"),
            Self::Unavailable(reason) => write!(f, "no ({reason})"),
        }
    }
}

/// Everything probed without the eBPF object.
#[derive(Debug, Clone)]
pub struct Features {
    pub btf: Probe,
    pub raw_tracepoint: Probe,
    pub tracefs: Probe,
    pub kprobe: Probe,
    pub uprobe: Probe,
    pub cgroup2: Probe,
    pub perf_software: Probe,
    pub perf_hardware: Probe,
}

impl Features {
    pub fn probe() -> Self {
        Self {
            btf: Probe::from_bool(
                Path::new(VMLINUX_BTF).exists(),
                VMLINUX_BTF,
                format!("{VMLINUX_BTF} missing: kernel built without CONFIG_DEBUG_INFO_BTF"),
            ),
            raw_tracepoint: program_type(ProgramType::RawTracePoint, "raw_tracepoint"),
            tracefs: probe_tracefs(),
            kprobe: pmu("kprobe", "CONFIG_KPROBES"),
            uprobe: pmu("uprobe", "CONFIG_UPROBE_EVENTS"),
            cgroup2: match cgroup::cgroup2_mount() {
                Ok(path) => Probe::Available(format!("mounted at {}", path.display())),
                Err(err) => Probe::Unavailable(format!("{err:#}")),
            },
            perf_software: perf_event(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK, "cpu-clock"),
            perf_hardware: perf_event(
                PERF_TYPE_HARDWARE,
                PERF_COUNT_HW_INSTRUCTIONS,
                "instructions",
            ),
        }
    }
}

fn program_type(ty: ProgramType, name: &str) -> Probe {
    match is_program_supported(ty) {
        Ok(true) => Probe::Available(format!("{name} programs load")),
        Ok(false) => Probe::Unavailable(format!("kernel refuses {name} programs")),
        Err(err) => Probe::Unavailable(format!("probe failed: {err}")),
    }
}

fn probe_tracefs() -> Probe {
    for dir in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        if Path::new(dir).join("events").is_dir() {
            return Probe::Available(format!("mounted at {dir}"));
        }
    }
    let known = fs::read_to_string("/proc/filesystems")
        .map(|text| text.lines().any(|l| l.trim_end().ends_with("tracefs")))
        .unwrap_or(false);
    Probe::from_bool(
        known,
        "not mounted; mounted at /sys/kernel/tracing when a sensor needs it",
        "tracefs not supported by this kernel",
    )
}

fn pmu(name: &str, config: &str) -> Probe {
    let path = format!("/sys/bus/event_source/devices/{name}/type");
    Probe::from_bool(
        Path::new(&path).exists(),
        format!("{name} PMU present"),
        format!("no {path}: kernel built without {config}"),
    )
}

const PERF_TYPE_HARDWARE: u32 = 0;
const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_COUNT_HW_INSTRUCTIONS: u64 = 1;
const PERF_COUNT_SW_CPU_CLOCK: u64 = 0;

/// Opens (disabled) and closes one perf event on this thread.
fn perf_event(ty: u32, config: u64, name: &str) -> Probe {
    // struct perf_event_attr, zeroed: type @0, size @4, config @8, flags @40.
    let mut attr = [0u64; 16];
    let size = size_of_val(&attr) as u64;
    attr[0] = u64::from(ty) | (size << 32);
    attr[1] = config;
    attr[5] = 1; // disabled
    // SAFETY: perf_event_open reads `size` bytes of attr, which we own; the
    // returned fd, if any, is closed right away.
    let fd = unsafe { libc::syscall(libc::SYS_perf_event_open, attr.as_ptr(), 0, -1, -1, 0u64) };
    if fd >= 0 {
        // SAFETY: fd was just returned to us and is not used elsewhere.
        unsafe { libc::close(fd as i32) };
        return Probe::Available(format!("{name} opens"));
    }
    let err = std::io::Error::last_os_error();
    let why = match err.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::EOPNOTSUPP) => format!("{name}: no PMU ({err})"),
        _ => format!("{name}: {err}"),
    };
    Probe::Unavailable(why)
}
