//! `assay doctor`: the attach plan as a table, without attaching anything.

use std::fmt::Write as _;

use crate::{kernel::features::Probe, loader::Loaded};

fn row(out: &mut String, name: &str, probe: &Probe) {
    let (state, detail) = match probe {
        Probe::Available(d) => ("yes", d),
        Probe::Unavailable(d) => ("no", d),
    };
    let _ = writeln!(out, "  {name:<20} {state:<4} {detail}");
}

/// Renders what the kernel offers and what each sensor would use.
pub fn report(loaded: &Loaded) -> String {
    let mut out = String::new();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let _ = writeln!(out, "kernel {}", release.trim());
    let _ = writeln!(out, "\nkernel features");
    let f = &loaded.features;
    for (name, probe) in [
        ("BTF", &f.btf),
        ("tp_btf", &loaded.tp_btf),
        ("raw tracepoints", &f.raw_tracepoint),
        ("tracefs", &f.tracefs),
        ("kprobes", &f.kprobe),
        ("fentry/fexit", &loaded.fentry),
        ("LSM programs", &loaded.lsm),
        ("uprobes", &f.uprobe),
        ("cgroup v2", &f.cgroup2),
        ("perf software", &f.perf_software),
        ("perf hardware", &f.perf_hardware),
    ] {
        row(&mut out, name, probe);
    }
    let _ = writeln!(out, "\nsensors");
    for s in &loaded.sensors {
        row(&mut out, s.sensor, &s.state);
    }
    let verdict = if loaded.anything_useful() {
        "assay can run here"
    } else {
        "no sensor can run here"
    };
    let _ = writeln!(out, "\n{verdict}");
    out
}
