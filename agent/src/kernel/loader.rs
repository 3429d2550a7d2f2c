//! The loader: probes the kernel, builds an attach plan (per sensor, the
//! best hook that works here), loads the eBPF object and attaches.
//!
//! A sensor that cannot run is reported with its reason, never fatal: the
//! agent runs with what it has. `assay doctor` runs the same plan with
//! `attach = false`: every program is loaded (so the verifier has its say)
//! but nothing is attached.

use std::{
    fs::File,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};
use assay_common::config::{Config, KernelOffsets};
use aya::{
    Btf, Ebpf, EbpfLoader,
    programs::{
        BtfTracePoint, CgroupAttachMode, CgroupDevice, CgroupSkb, CgroupSkbAttachType,
        CgroupSockAddr, CgroupSysctl, FEntry, Lsm, PerfEvent, Program, RawTracePoint, UProbe,
        perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent},
    },
};
use tracing::{debug, info, warn};

use crate::kernel::{
    btf_offsets::{self, VMLINUX_BTF},
    cgroup,
    features::{Features, Probe},
};

/// Frequency of the `cpu-clock` samples per CPU: 99 Hz (not 100, so that
/// sampling does not beat with 100 Hz timers) gives ±1 % CPU resolution
/// over a 5 s window at a cost of 99 tiny program runs per CPU-second.
pub const CPU_SAMPLE_HZ: u64 = 99;

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Attach the network programs here; default: the cgroup v2 root.
    pub cgroup: Option<PathBuf>,
    pub sample_segments: u32,
    /// Sizes of the process and flow ring buffers (KiB); the object's own
    /// sizes when not given.
    pub process_ring_kib: Option<u32>,
    pub flow_ring_kib: Option<u32>,
    /// Also attach empty cgroup_skb programs next to the flow programs
    /// (`cargo xtask bench` measures the dispatch floor with them).
    pub bench_floor: bool,
    /// Attach (run) or only load (doctor).
    pub attach: bool,
    /// Run the miner-hygiene syscall tracepoints (see `--no-hygiene`).
    pub hygiene: bool,
    /// Programs to unload again once everything is attached (`cargo xtask
    /// bench --itemise` measures what each part of the agent costs by
    /// taking it away; raw tracepoint links cannot be detached from
    /// outside).
    pub bench_unload: Vec<String>,
}

/// One row of the attach plan.
#[derive(Debug, Clone)]
pub struct SensorStatus {
    pub sensor: &'static str,
    /// The hook in use, or why the sensor is off.
    pub state: Probe,
}

/// Everything probed and decided; the loaded object when it loaded.
pub struct Loaded {
    pub features: Features,
    /// fentry and LSM: probed by trial loads of the object's probe programs.
    pub fentry: Probe,
    pub lsm: Probe,
    pub tp_btf: Probe,
    pub offsets: KernelOffsets,
    pub sensors: Vec<SensorStatus>,
    pub ebpf: Ebpf,
    /// Where the network programs are attached.
    pub cgroup: Option<PathBuf>,
}

impl Loaded {
    /// True when at least one sensor runs (or would run, for doctor).
    pub fn anything_useful(&self) -> bool {
        self.sensors.iter().any(|s| s.state.is_available())
    }
}

/// The compiled eBPF object, embedded at build time by build.rs.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/assay"));

pub fn load(options: &LoadOptions) -> Result<Loaded> {
    if OBJECT.is_empty() {
        bail!(
            "this assay binary was built with AYA_BUILD_SKIP=1 and carries no eBPF programs; \
             rebuild it with `cargo xtask build` (or plain cargo build without AYA_BUILD_SKIP)"
        );
    }
    crate::kernel::caps::check()?;
    raise_memlock_limit();
    let features = Features::probe();
    let btf = if features.btf.is_available() {
        match Btf::from_sys_fs() {
            Ok(btf) => Some(btf),
            Err(err) => {
                warn!("cannot read kernel BTF: {err}; BTF-typed hooks are off");
                None
            }
        }
    } else {
        None
    };
    let offsets = match btf_offsets::resolve(Path::new(VMLINUX_BTF)) {
        Ok((offsets, missing)) => {
            for field in missing {
                warn!(
                    "kernel field {} not found ({}): events will report 0 for it",
                    field.path, field.reason
                );
            }
            offsets
        }
        Err(err) => {
            warn!("{err:#}: process events will lack ppid, exe and argv");
            KernelOffsets::ALL_UNKNOWN
        }
    };
    let config = Config {
        agent_tgid: std::process::id(),
        sample_segments: options.sample_segments,
        offsets,
    };
    let mut loader = EbpfLoader::new();
    // A map this kernel lacks (socket-local storage before Linux 5.2) must
    // not stop the whole agent: the programs that use it fail to load, and
    // their sensor says why (`plan_flows`), while the others run.
    loader
        .btf(btf.as_ref())
        .allow_unsupported_maps()
        .override_global("CONFIG", &config, true);
    for (ring, kib) in [
        (
            &assay_common::config::ring::PROCESS,
            options.process_ring_kib,
        ),
        (&assay_common::config::ring::FLOW, options.flow_ring_kib),
    ] {
        if let Some(kib) = kib {
            loader.map_max_entries(ring.map, ring_bytes(kib));
        }
    }
    let mut ebpf = loader
        .load(OBJECT)
        .context("loading the eBPF object failed (is this process root, or does it have CAP_BPF and CAP_PERFMON?)")?;

    let fentry = trial_load_fentry(&mut ebpf, btf.as_ref());
    let lsm = trial_load_lsm(&mut ebpf, btf.as_ref());

    let mut sensors = Vec::new();
    let (process, tp_btf) = plan_process(&mut ebpf, btf.as_ref(), &features, options.attach);
    sensors.push(SensorStatus {
        sensor: "process",
        state: process,
    });

    sensors.push(SensorStatus {
        sensor: "cpu-randomx",
        state: plan_cpu(&mut ebpf, btf.as_ref(), &features, &offsets, options.attach),
    });

    sensors.push(SensorStatus {
        sensor: "cpu-time",
        state: plan_cpu_time(&mut ebpf, &features, options.attach),
    });
    sensors.push(SensorStatus {
        sensor: "cuda",
        state: plan_cuda(&mut ebpf, &features),
    });

    let cgroup_path = match &options.cgroup {
        Some(path) => Ok(path.clone()),
        None => cgroup::cgroup2_mount(),
    };
    let flows = match &cgroup_path {
        Ok(path) => plan_flows(&mut ebpf, path, options.attach, options.bench_floor),
        Err(err) => Probe::Unavailable(format!("{err:#}")),
    };
    sensors.push(SensorStatus {
        sensor: "hygiene",
        state: match &cgroup_path {
            _ if !options.hygiene => Probe::Unavailable("turned off (--no-hygiene)".into()),
            Ok(path) => plan_hygiene(&mut ebpf, btf.as_ref(), &features, path, options.attach),
            Err(err) => Probe::Unavailable(format!("{err:#}")),
        },
    });
    sensors.push(SensorStatus {
        sensor: "flows",
        state: flows,
    });
    for name in &options.bench_unload {
        if name == "*" {
            // Every program: what is not loaded (a fallback not taken) is
            // no error.
            for (_, program) in ebpf.programs_mut() {
                let _ = unload(program);
            }
            info!("every program unloaded for the benchmark (--bench-unload '*')");
            continue;
        }
        match ebpf.program_mut(name) {
            Some(program) => match unload(program) {
                Ok(()) => info!(program = %name, "unloaded for the benchmark (--bench-unload)"),
                Err(err) => warn!(program = %name, "--bench-unload: {err}"),
            },
            None => warn!(program = %name, "--bench-unload: no such program"),
        }
    }

    Ok(Loaded {
        features,
        fentry,
        lsm,
        tp_btf,
        offsets,
        sensors,
        ebpf,
        cgroup: cgroup_path.ok(),
    })
}

/// Detaches and unloads one of the programs the agent attaches
/// (`--bench-unload`).
fn unload(program: &mut Program) -> Result<(), aya::programs::ProgramError> {
    match program {
        Program::BtfTracePoint(p) => p.unload(),
        Program::RawTracePoint(p) => p.unload(),
        Program::CgroupSockAddr(p) => p.unload(),
        Program::CgroupSkb(p) => p.unload(),
        Program::PerfEvent(p) => p.unload(),
        Program::CgroupDevice(p) => p.unload(),
        Program::CgroupSysctl(p) => p.unload(),
        _ => Err(aya::programs::ProgramError::UnexpectedProgramType),
    }
}

/// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
        debug!(
            "setrlimit(RLIMIT_MEMLOCK): {}; fine on kernels >= 5.11",
            std::io::Error::last_os_error()
        );
    }
}

/// The first line of an error chain: verifier logs are long.
fn short(err: &dyn std::fmt::Display) -> String {
    let text = format!("{err:#}");
    debug!("{text}");
    text.lines().next().unwrap_or_default().to_owned()
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T>
where
    &'a mut T: TryFrom<&'a mut Program, Error = aya::programs::ProgramError>,
{
    let program = ebpf
        .program_mut(name)
        .with_context(|| format!("program {name} missing from the eBPF object"))?;
    Ok(program.try_into()?)
}

fn trial_load_fentry(ebpf: &mut Ebpf, btf: Option<&Btf>) -> Probe {
    let Some(btf) = btf else {
        return Probe::Unavailable("needs kernel BTF".into());
    };
    let result =
        program::<FEntry>(ebpf, "assay_probe_fe").and_then(|p| Ok(p.load("do_nanosleep", btf)?));
    match result {
        Ok(()) => Probe::Available("fentry programs load".into()),
        Err(err) => Probe::Unavailable(format!(
            "trial load failed: {} (BPF trampolines unavailable)",
            short(&err)
        )),
    }
}

fn trial_load_lsm(ebpf: &mut Ebpf, btf: Option<&Btf>) -> Probe {
    let active = std::fs::read_to_string("/sys/kernel/security/lsm").unwrap_or_default();
    if !active.split(',').any(|l| l.trim() == "bpf") {
        return Probe::Unavailable(format!(
            "the bpf LSM is not active (/sys/kernel/security/lsm: {:?})",
            active.trim()
        ));
    }
    let Some(btf) = btf else {
        return Probe::Unavailable("needs kernel BTF".into());
    };
    match program::<Lsm>(ebpf, "assay_probe_lsm").and_then(|p| Ok(p.load("file_open", btf)?)) {
        Ok(()) => Probe::Available("LSM programs load".into()),
        Err(err) => Probe::Unavailable(format!("trial load failed: {}", short(&err))),
    }
}

/// Process sensor: tp_btf when it loads, else raw tracepoints.
fn plan_process(
    ebpf: &mut Ebpf,
    btf: Option<&Btf>,
    features: &Features,
    attach: bool,
) -> (Probe, Probe) {
    const TRACEPOINTS: [(&str, &str, &str); 3] = [
        ("sched_process_exec", "assay_exec_btf", "assay_exec_raw"),
        ("sched_process_fork", "assay_fork_btf", "assay_fork_raw"),
        ("sched_process_exit", "assay_exit_btf", "assay_exit_raw"),
    ];
    let tp_btf = match btf {
        None => Probe::Unavailable("needs kernel BTF".into()),
        Some(btf) => {
            let result: Result<()> = TRACEPOINTS.iter().try_for_each(|(tp, name, _)| {
                let p = program::<BtfTracePoint>(ebpf, name)?;
                p.load(tp, btf)?;
                if attach {
                    p.attach()?;
                }
                Ok(())
            });
            match result {
                Ok(()) => Probe::Available("tp_btf programs load".into()),
                Err(err) => Probe::Unavailable(format!("tp_btf: {}", short(&err))),
            }
        }
    };
    if tp_btf.is_available() {
        let verb = if attach { "attached" } else { "would attach" };
        return (
            Probe::Available(format!(
                "tp_btf sched_process_exec, sched_process_fork, sched_process_exit ({verb})"
            )),
            tp_btf,
        );
    }
    // Unload whatever half of the tp_btf pair loaded before falling back.
    for (_, name, _) in TRACEPOINTS {
        if let Ok(p) = program::<BtfTracePoint>(ebpf, name) {
            let _ = p.unload();
        }
    }
    if !features.raw_tracepoint.is_available() {
        return (
            Probe::Unavailable(format!(
                "{}; raw tracepoints: {}",
                tp_btf.detail(),
                features.raw_tracepoint.detail()
            )),
            tp_btf,
        );
    }
    let result: Result<()> = TRACEPOINTS.iter().try_for_each(|(tp, _, name)| {
        let p = program::<RawTracePoint>(ebpf, name)?;
        p.load()?;
        if attach {
            p.attach(tp)?;
        }
        Ok(())
    });
    let state = match result {
        Ok(()) => Probe::Available(format!(
            "raw_tp sched_process_exec, sched_process_fork, sched_process_exit ({}; {})",
            if attach { "attached" } else { "would attach" },
            tp_btf.detail()
        )),
        Err(err) => Probe::Unavailable(format!("{}; raw_tp: {}", tp_btf.detail(), short(&err))),
    };
    (state, tp_btf)
}

/// CPU sensor (RandomX fingerprint): the `x86_fpu_regs_deactivated`
/// tracepoint, BTF-typed when possible.
fn plan_cpu(
    ebpf: &mut Ebpf,
    btf: Option<&Btf>,
    features: &Features,
    offsets: &KernelOffsets,
    attach: bool,
) -> Probe {
    const TRACEPOINT: &str = "x86_fpu_regs_deactivated";
    if offsets.fpu_fpstate == KernelOffsets::UNKNOWN
        || offsets.fpstate_mxcsr == KernelOffsets::UNKNOWN
    {
        return Probe::Unavailable(
            "the kernel's BTF does not say where a task's saved MXCSR is (fpu.fpstate, \
             fpstate.regs, fxregs_state.mxcsr)"
                .into(),
        );
    }
    let verb = if attach { "attached" } else { "would attach" };
    let mut why = String::from("needs kernel BTF");
    if let Some(btf) = btf {
        let result = program::<BtfTracePoint>(ebpf, "assay_fpu_btf").and_then(|p| {
            p.load(TRACEPOINT, btf)?;
            if attach {
                p.attach()?;
            }
            Ok(())
        });
        match result {
            Ok(()) => return Probe::Available(format!("tp_btf {TRACEPOINT} ({verb})")),
            Err(err) => why = format!("tp_btf: {}", short(&err)),
        }
    }
    if !features.raw_tracepoint.is_available() {
        return Probe::Unavailable(why);
    }
    let result = program::<RawTracePoint>(ebpf, "assay_fpu_raw").and_then(|p| {
        p.load()?;
        if attach {
            p.attach(TRACEPOINT)?;
        }
        Ok(())
    });
    match result {
        Ok(()) => Probe::Available(format!("raw_tp {TRACEPOINT} ({verb}; {why})")),
        Err(err) => Probe::Unavailable(format!(
            "{why}; raw_tp: {} (not an x86 kernel, or no x86_fpu tracepoints)",
            short(&err)
        )),
    }
}

/// CPU time per process: a `cpu-clock` perf event on every online CPU at
/// [`CPU_SAMPLE_HZ`], counting samples per process.
fn plan_cpu_time(ebpf: &mut Ebpf, features: &Features, attach: bool) -> Probe {
    if !features.perf_software.is_available() {
        return Probe::Unavailable(features.perf_software.detail().to_owned());
    }
    let result = (|| -> Result<usize> {
        let p = program::<PerfEvent>(ebpf, "assay_cpu_sample")?;
        p.load()?;
        if !attach {
            return Ok(0);
        }
        let cpus = aya::util::online_cpus()
            .map_err(|(what, err)| anyhow::anyhow!("cannot list online CPUs ({what}): {err}"))?;
        for &cpu in &cpus {
            p.attach(
                PerfEventConfig::Software(SoftwareEvent::CpuClock),
                PerfEventScope::AllProcessesOneCpu { cpu },
                SamplePolicy::Frequency(CPU_SAMPLE_HZ),
                false,
            )
            .with_context(|| format!("cpu-clock on CPU {cpu}"))?;
        }
        Ok(cpus.len())
    })();
    match result {
        Ok(0) => Probe::Available(format!(
            "perf cpu-clock at {CPU_SAMPLE_HZ} Hz (would attach)"
        )),
        Ok(cpus) => Probe::Available(format!(
            "perf cpu-clock at {CPU_SAMPLE_HZ} Hz on {cpus} CPUs (attached)"
        )),
        Err(err) => Probe::Unavailable(short(&err)),
    }
}

/// The CUDA driver sensor's uprobe programs, loaded; the agent attaches
/// them to each driver library it finds (see `cuda.rs`).
pub const CUDA_PROGRAMS: [&str; 8] = [
    "assay_cu_ctx_create",
    "assay_cu_module_load",
    "assay_cu_get_function",
    "assay_cu_get_function_ret",
    "assay_cu_mem_alloc",
    "assay_cu_launch",
    "assay_cu_launch_ex",
    "assay_nvrtc_compile",
];

fn plan_cuda(ebpf: &mut Ebpf, features: &Features) -> Probe {
    if !features.uprobe.is_available() {
        return Probe::Unavailable(features.uprobe.detail().to_owned());
    }
    let result = CUDA_PROGRAMS
        .iter()
        .try_for_each(|name| -> Result<()> { Ok(program::<UProbe>(ebpf, name)?.load()?) });
    match result {
        Ok(()) => Probe::Available(
            "uprobes on libcuda/libnvrtc, launch probes duty-cycled (attached per library found)"
                .into(),
        ),
        Err(err) => Probe::Unavailable(short(&err)),
    }
}

/// Miner hygiene: cgroup device and sysctl programs at the watched cgroup
/// (asked only on device opens and /proc/sys accesses: no cost elsewhere),
/// and the `module_load` tracepoint where the kernel has loadable modules.
fn plan_hygiene(
    ebpf: &mut Ebpf,
    btf: Option<&Btf>,
    features: &Features,
    cgroup_path: &Path,
    attach: bool,
) -> Probe {
    let result = (|| -> Result<()> {
        let cgroup = File::open(cgroup_path)
            .with_context(|| format!("cannot open cgroup {}", cgroup_path.display()))?;
        let p = program::<CgroupDevice>(ebpf, "assay_dev_access")?;
        p.load()?;
        if attach {
            p.attach(&cgroup, CgroupAttachMode::Single)?;
        }
        let p = program::<CgroupSysctl>(ebpf, "assay_sysctl")?;
        p.load()?;
        if attach {
            p.attach(&cgroup, CgroupAttachMode::Single)?;
        }
        Ok(())
    })();
    if let Err(err) = result {
        return Probe::Unavailable(short(&err));
    }
    let verb = if attach { "attached" } else { "would attach" };
    // Without CONFIG_MODULES there is no module_load tracepoint (and no
    // msr module to load).
    let modules = std::path::Path::new("/proc/modules").exists();
    let module_hook = if !modules {
        "no module loads (kernel without loadable modules)".to_owned()
    } else {
        let btf_hook = btf
            .ok_or_else(|| anyhow::anyhow!("no BTF"))
            .and_then(|btf| {
                let p = program::<BtfTracePoint>(ebpf, "assay_module_load_btf")?;
                p.load("module_load", btf)?;
                if attach {
                    p.attach()?;
                }
                Ok(())
            });
        match btf_hook {
            Ok(()) => "tp_btf module_load".to_owned(),
            Err(_) if features.raw_tracepoint.is_available() => {
                let raw = program::<RawTracePoint>(ebpf, "assay_module_load_raw").and_then(|p| {
                    p.load()?;
                    if attach {
                        p.attach("module_load")?;
                    }
                    Ok(())
                });
                match raw {
                    Ok(()) => "raw_tp module_load".to_owned(),
                    Err(err) => format!("no module loads ({})", short(&err)),
                }
            }
            Err(err) => format!("no module loads ({})", short(&err)),
        }
    };
    Probe::Available(format!(
        "cgroup device + sysctl programs at {}, {module_hook} ({verb})",
        cgroup_path.display()
    ))
}

/// Flow sensor: cgroup sock_addr connect hooks and cgroup_skb sampling.
///
/// Attached through bpf_link (kernel >= 5.7), which coexists with other
/// programs on the same cgroup whatever the mode: the kernel refuses any
/// flag other than 0 ("Single") on a link.
fn plan_flows(ebpf: &mut Ebpf, cgroup_path: &Path, attach: bool, bench_floor: bool) -> Probe {
    if !aya::sys::is_map_supported(aya::maps::MapType::SkStorage).unwrap_or(false) {
        return Probe::Unavailable(
            "this kernel has no socket-local storage (BPF_MAP_TYPE_SK_STORAGE, Linux 5.2 with \
             BTF), which holds each flow's sampling state; the other sensors run"
                .into(),
        );
    }
    let result = (|| -> Result<()> {
        let cgroup = File::open(cgroup_path)
            .with_context(|| format!("cannot open cgroup {}", cgroup_path.display()))?;
        for name in [
            "assay_connect4",
            "assay_connect6",
            "assay_sendmsg4",
            "assay_sendmsg6",
        ] {
            let p = program::<CgroupSockAddr>(ebpf, name)?;
            p.load()?;
            if attach {
                p.attach(&cgroup, CgroupAttachMode::Single)?;
            }
        }
        let floor = [
            ("assay_floor_out", CgroupSkbAttachType::Egress),
            ("assay_floor_in", CgroupSkbAttachType::Ingress),
        ];
        for (name, direction) in [
            ("assay_flow_out", CgroupSkbAttachType::Egress),
            ("assay_flow_in", CgroupSkbAttachType::Ingress),
        ]
        .into_iter()
        .chain(floor.into_iter().filter(|_| bench_floor))
        {
            let p = program::<CgroupSkb>(ebpf, name)?;
            p.load()?;
            if attach {
                p.attach(&cgroup, direction, CgroupAttachMode::Single)?;
            }
        }
        Ok(())
    })();
    match result {
        Ok(()) => Probe::Available(format!(
            "cgroup connect4/6 + sendmsg4/6 + cgroup_skb egress/ingress, per-socket state in socket-local storage, at {} ({})",
            cgroup_path.display(),
            if attach { "attached" } else { "would attach" }
        )),
        Err(err) => Probe::Unavailable(short(&err)),
    }
}

/// Logs the plan: one line per sensor, the hook chosen or why it is off.
pub fn log_plan(loaded: &Loaded) {
    for s in &loaded.sensors {
        match &s.state {
            Probe::Available(hook) => info!(sensor = s.sensor, "on: {hook}"),
            Probe::Unavailable(why) => warn!(sensor = s.sensor, "off: {why}"),
        }
    }
}

/// A ring buffer's size in bytes: a power of two of at least one page, as
/// the kernel requires.
fn ring_bytes(kib: u32) -> u32 {
    kib.saturating_mul(1024).max(4096).next_power_of_two()
}
