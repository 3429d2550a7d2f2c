//! User side of the CUDA driver sensor.
//!
//! - **Where**: library files from the linker cache, from `--cuda-library`,
//!   and from the maps of processes (container roots included), scanned at
//!   start, a few seconds after each exec, and every few minutes. Each
//!   distinct file (device, inode) gets its probes once.
//! - **Setup calls** (contexts, modules, kernels by name, allocations,
//!   run-time compiles) arrive as events and are kept per process.
//! - **Launches**: the launch probes are attached for a short window every
//!   period (the duty cycle: 0.25 s in 60 s by default); after each window the
//!   kernel's per-(process, function) launch table is read and cleared.
//!
//! Per process, each window's launches plus its setup history and mapped
//! libraries make a [`CudaWindow`]: what the GPU classifier judges.
//!
//! Libraries count by their content, not their names
//! ([`crate::procfs::identity`]): probes go only on files that export the
//! driver's or NVRTC's API, and a window's libraries are read on a worker
//! ([`with_libraries`]) after the window closes, never on the event loop.

use std::{
    collections::{BTreeSet, HashMap, HashSet, VecDeque},
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use assay_common::gpu::{CudaEvent, LaunchKey, LaunchStats, SLOT_NS, cuda_call};
use aya::{
    Ebpf,
    maps::{HashMap as BpfHashMap, MapData},
    programs::{UProbe, uprobe::UProbeLinkId, uprobe::UProbeScope},
};
use tracing::{debug, info, warn};

use crate::{
    classify::gpu::classify::{CudaActivity, KernelLaunches, MAX_KERNEL_NAMES, MappedLibraries},
    procfs::{
        identity::Identities,
        libraries::{self, GpuLibrary, Mapped},
    },
    sensors::decode::c_string,
};

/// Duty cycle of the launch probes.
#[derive(Debug, Clone, Copy)]
pub struct DutyCycle {
    pub window: Duration,
    pub period: Duration,
}

impl Default for DutyCycle {
    fn default() -> Self {
        Self {
            window: Duration::from_millis(250),
            period: Duration::from_secs(60),
        }
    }
}

/// Kernel names remembered per process, and processes followed.
const MAX_KERNELS_PER_PROCESS: usize = 4096;
const MAX_PROCESSES: usize = 4096;
/// Library files probed, at most.
const MAX_LIBRARIES: usize = 64;
/// When a new process's maps are looked at for GPU libraries: soon after
/// its exec, and again later (Python imports torch seconds after start).
const SCAN_AFTER_EXEC: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(20)];
/// Every process's maps, again, this often.
const FULL_SCAN_EVERY: Duration = Duration::from_secs(300);
/// Pending exec scans, at most (an exec storm must not grow this).
const MAX_PENDING_SCANS: usize = 8192;

/// Entry probes on the driver library: (program, symbols). Symbols a
/// driver version lacks are skipped.
const DRIVER_PROBES: [(&str, &[&str]); 5] = [
    (
        "assay_cu_ctx_create",
        &[
            "cuCtxCreate_v2",
            "cuCtxCreate_v3",
            "cuCtxCreate_v4",
            "cuDevicePrimaryCtxRetain",
        ],
    ),
    (
        "assay_cu_module_load",
        &[
            "cuModuleLoadData",
            "cuModuleLoadDataEx",
            "cuModuleLoadFatBinary",
            "cuLibraryLoadData",
        ],
    ),
    (
        "assay_cu_get_function",
        &["cuModuleGetFunction", "cuLibraryGetKernel"],
    ),
    (
        "assay_cu_get_function_ret",
        &["cuModuleGetFunction", "cuLibraryGetKernel"],
    ),
    (
        "assay_cu_mem_alloc",
        &["cuMemAlloc_v2", "cuMemAllocManaged", "cuMemAllocAsync"],
    ),
];
const LAUNCH_PROBES: [(&str, &[&str]); 2] = [
    (
        "assay_cu_launch",
        &["cuLaunchKernel", "cuLaunchKernel_ptsz"],
    ),
    (
        "assay_cu_launch_ex",
        &["cuLaunchKernelEx", "cuLaunchKernelEx_ptsz"],
    ),
];
const NVRTC_PROBES: [(&str, &[&str]); 1] = [("assay_nvrtc_compile", &["nvrtcCompileProgram"])];

/// What one process did on the GPU driver, over its life and the last
/// launch window.
#[derive(Debug, Clone, Default)]
pub struct ProcessCuda {
    pub contexts: u64,
    pub modules_loaded: u64,
    /// Module images by kind: ELF cubin, fatbin, PTX text, other.
    pub module_kinds: BTreeSet<&'static str>,
    pub runtime_compiles: u64,
    pub allocations: u64,
    pub bytes_allocated: u64,
    pub largest_alloc: u64,
    /// Function handle → kernel name.
    pub kernels: HashMap<u64, String>,
}

/// One process's launches during one window, by function.
#[derive(Debug, Clone, Default)]
pub struct WindowLaunches {
    pub window_s: f64,
    pub by_function: Vec<(u64, LaunchStats)>,
}

/// What the classifier gets for one process after a window: its setup
/// history and its last [`HISTORY_WINDOWS`] windows of launches, judged
/// together (a miner at 500 launches/s shows 1000 launches in eight 0.25 s
/// windows).
#[derive(Debug, Clone)]
pub struct CudaWindow {
    pub tgid: u32,
    pub setup: ProcessCuda,
    pub history: Vec<WindowLaunches>,
    /// The GPU libraries it maps, by their content ([`with_libraries`]
    /// fills them in on a worker).
    pub libraries: BTreeSet<GpuLibrary>,
    /// Files it maps named like GPU libraries whose content is none.
    pub unidentified: BTreeSet<String>,
}

/// Launch windows remembered per process.
pub const HISTORY_WINDOWS: usize = 16;

impl CudaWindow {
    /// The classifier's view of this process.
    pub fn activity(&self) -> CudaActivity {
        #[derive(Default)]
        struct Function {
            launches: u64,
            shape_changes: u64,
            gap_sum_us: f64,
            gap_sq_sum_us: f64,
            gaps: u64,
        }
        let mut functions: HashMap<u64, Function> = HashMap::new();
        let mut shapes: HashSet<([u32; 3], [u32; 3])> = HashSet::new();
        let (mut slices, mut busy_slices, mut window_s) = (0u32, 0u32, 0.0);
        for window in &self.history {
            window_s += window.window_s;
            let window_slices =
                ((window.window_s * 1e9 / SLOT_NS as f64).round() as u32).clamp(1, 64);
            let mut busy: u64 = 0;
            for (function, stats) in &window.by_function {
                let f = functions.entry(*function).or_default();
                f.launches += stats.launches;
                f.shape_changes += stats.shape_changes;
                f.gap_sum_us += stats.gap_sum_us as f64;
                f.gap_sq_sum_us += stats.gap_sq_sum_us as f64;
                f.gaps += stats.launches.saturating_sub(1);
                shapes.insert((stats.grid, stats.block));
                busy |= stats.busy_slots;
            }
            slices += window_slices;
            busy_slices += busy.count_ones().min(window_slices);
        }
        let mut by_launches: Vec<(u64, &Function)> =
            functions.iter().map(|(h, f)| (*h, f)).collect();
        by_launches.sort_by_key(|(handle, f)| (std::cmp::Reverse(f.launches), *handle));
        let launch_gap_cv = by_launches.first().and_then(|(_, f)| {
            if f.gaps < 2 {
                return None;
            }
            let n = f.gaps as f64;
            let mean = f.gap_sum_us / n;
            let variance = (f.gap_sq_sum_us / n - mean * mean).max(0.0);
            (mean > 0.0).then(|| variance.sqrt() / mean)
        });
        let libraries = &self.libraries;
        let has = |l: GpuLibrary| libraries.contains(&l);
        CudaActivity {
            window_s,
            launches: functions.values().map(|f| f.launches).sum(),
            distinct_kernels: functions.len(),
            kernels: by_launches
                .iter()
                .take(MAX_KERNEL_NAMES)
                .map(|(handle, f)| KernelLaunches {
                    name: self.setup.kernels.get(handle).cloned().unwrap_or_default(),
                    launches: f.launches,
                })
                .collect(),
            distinct_launch_shapes: shapes.len(),
            shape_changes: functions.values().map(|f| f.shape_changes).sum(),
            launch_gap_cv,
            busy_slices,
            slices,
            modules_loaded: self.setup.modules_loaded,
            runtime_compiles: self.setup.runtime_compiles,
            bytes_allocated: self.setup.bytes_allocated,
            largest_alloc: self.setup.largest_alloc,
            allocations: self.setup.allocations,
            libraries: MappedLibraries {
                libcuda: has(GpuLibrary::Cuda),
                nvrtc: has(GpuLibrary::Nvrtc),
                cublas: has(GpuLibrary::Cublas),
                cublas_lt: has(GpuLibrary::Cublas),
                cudnn: has(GpuLibrary::Cudnn),
                nccl: has(GpuLibrary::Nccl),
                tensorrt: has(GpuLibrary::TensorRt),
                torch: has(GpuLibrary::Torch),
                cupy: has(GpuLibrary::Cupy),
                onnxruntime: has(GpuLibrary::OnnxRuntime),
                xla: has(GpuLibrary::Xla),
                tensorflow: false,
                unidentified: self.unidentified.len() as u32,
            },
        }
    }
}

struct ProbedLibrary {
    path: PathBuf,
    library: GpuLibrary,
    launch_links: Vec<(&'static str, UProbeLinkId)>,
}

pub struct CudaSensor {
    duty: DutyCycle,
    launches: BpfHashMap<MapData, LaunchKey, LaunchStats>,
    libraries: HashMap<(u64, u64), ProbedLibrary>,
    processes: HashMap<u32, ProcessCuda>,
    /// Each process's last launch windows.
    histories: HashMap<u32, VecDeque<WindowLaunches>>,
    /// (when, pid) to scan.
    pending_scans: VecDeque<(Instant, u32)>,
    /// What library files are, by content; shared with the workers.
    pub identities: Arc<Identities>,
    last_full_scan: Instant,
    window_opened: Option<Instant>,
    next_window: Instant,
    pub stats: CudaStats,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct CudaStats {
    pub libraries_probed: u64,
    pub windows: u64,
    pub events: u64,
    pub launch_read_errors: u64,
}

impl CudaSensor {
    pub fn new(
        ebpf: &mut Ebpf,
        duty: DutyCycle,
        extra_libraries: &[PathBuf],
    ) -> anyhow::Result<Self> {
        let launches = BpfHashMap::try_from(
            ebpf.take_map("LAUNCHES")
                .ok_or_else(|| anyhow::anyhow!("map LAUNCHES missing"))?,
        )?;
        let now = Instant::now();
        let mut sensor = Self {
            duty,
            launches,
            libraries: HashMap::new(),
            processes: HashMap::new(),
            histories: HashMap::new(),
            pending_scans: VecDeque::new(),
            identities: Arc::default(),
            last_full_scan: now,
            window_opened: None,
            next_window: now + duty.period.min(Duration::from_secs(2)),
            stats: CudaStats::default(),
        };
        // Before the event loop runs: reading the files here blocks nothing.
        for path in extra_libraries {
            // The operator named the file: its content alone says what it is.
            let named = libraries::host_file(GpuLibrary::Cuda, path);
            let found = libraries::identify([named], &sensor.identities);
            if found.libraries.is_empty() {
                warn!(
                    path = %path.display(),
                    "--cuda-library: exports neither the CUDA driver's nor NVRTC's API; ignored"
                );
            }
            sensor.probe_found(ebpf, &found.libraries.into_iter().collect::<Vec<_>>());
        }
        let cached = libraries::identify(libraries::from_linker_cache(), &sensor.identities);
        sensor.probe_found(ebpf, &cached.libraries.into_iter().collect::<Vec<_>>());
        sensor.full_scan(ebpf);
        Ok(sensor)
    }

    pub fn libraries_probed(&self) -> usize {
        self.libraries.len()
    }

    /// Attaches the setup probes to a driver or NVRTC library file, once
    /// per (device, inode).
    fn probe_library(&mut self, ebpf: &mut Ebpf, mapped: &Mapped) {
        let probes: &[(&str, &[&str])] = match mapped.library {
            GpuLibrary::Cuda => &DRIVER_PROBES,
            GpuLibrary::Nvrtc => &NVRTC_PROBES,
            _ => return,
        };
        let Ok(meta) = std::fs::metadata(&mapped.path) else {
            return;
        };
        let identity = (meta.dev(), meta.ino());
        if self.libraries.contains_key(&identity) || self.libraries.len() >= MAX_LIBRARIES {
            return;
        }
        let mut attached = 0;
        for (program, symbols) in probes {
            for symbol in *symbols {
                match attach(ebpf, program, symbol, &mapped.path) {
                    Ok(_) => attached += 1,
                    Err(err) => {
                        debug!(symbol, path = %mapped.path.display(), "not probed: {err:#}")
                    }
                }
            }
        }
        if attached == 0 {
            warn!(path = %mapped.path.display(), "no CUDA symbol could be probed in this file");
            return;
        }
        info!(
            path = %mapped.path.display(),
            library = ?mapped.library,
            probes = attached,
            "CUDA probes attached"
        );
        self.stats.libraries_probed += 1;
        self.libraries.insert(
            identity,
            ProbedLibrary {
                path: mapped.path.clone(),
                library: mapped.library,
                launch_links: Vec::new(),
            },
        );
    }

    /// The startup scan, before the event loop runs: every process's maps.
    fn full_scan(&mut self, ebpf: &mut Ebpf) {
        self.last_full_scan = Instant::now();
        for mapped in find_libraries(
            &ScanRequest {
                pids: Vec::new(),
                full: true,
            },
            &self.identities,
        ) {
            self.probe_library(ebpf, &mapped);
        }
    }

    /// Libraries a scan on a worker found: each new file gets its probes.
    pub fn probe_found(&mut self, ebpf: &mut Ebpf, found: &[Mapped]) {
        for mapped in found {
            self.probe_library(ebpf, mapped);
        }
    }

    /// A process exec'd: look at its maps a little later.
    pub fn on_exec(&mut self, pid: u32) {
        let now = Instant::now();
        for after in SCAN_AFTER_EXEC {
            if self.pending_scans.len() < MAX_PENDING_SCANS {
                self.pending_scans.push_back((now + after, pid));
            }
        }
    }

    /// The sensor has seen this process use the driver.
    pub fn follows(&self, pid: u32) -> bool {
        self.processes.contains_key(&pid)
    }

    pub fn on_exit(&mut self, pid: u32) {
        self.processes.remove(&pid);
        self.histories.remove(&pid);
    }

    pub fn on_event(&mut self, event: &CudaEvent) {
        self.stats.events += 1;
        let tgid = event.header.tgid;
        if !self.processes.contains_key(&tgid) && self.processes.len() >= MAX_PROCESSES {
            return;
        }
        let process = self.processes.entry(tgid).or_default();
        match event.call {
            cuda_call::CTX_CREATE => process.contexts += 1,
            cuda_call::MODULE_LOAD => {
                process.modules_loaded += 1;
                process.module_kinds.insert(image_kind(event.value));
            }
            cuda_call::GET_FUNCTION
                if process.kernels.len() < MAX_KERNELS_PER_PROCESS
                    || process.kernels.contains_key(&event.handle) =>
            {
                process.kernels.insert(event.handle, c_string(&event.name));
            }
            cuda_call::MEM_ALLOC => {
                process.allocations += 1;
                process.bytes_allocated = process.bytes_allocated.saturating_add(event.value);
                process.largest_alloc = process.largest_alloc.max(event.value);
            }
            cuda_call::RUNTIME_COMPILE => process.runtime_compiles += 1,
            _ => {}
        }
    }

    /// Once a second: the maps scans that are due, for a worker to run
    /// ([`find_libraries`]); their findings come back to [`Self::probe_found`].
    pub fn scans_due(&mut self) -> Option<ScanRequest> {
        let now = Instant::now();
        let mut request = ScanRequest::default();
        while self.pending_scans.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, pid)) = self.pending_scans.pop_front() {
                request.pids.push(pid);
            }
        }
        if now.duration_since(self.last_full_scan) >= FULL_SCAN_EVERY {
            self.last_full_scan = now;
            request.full = true;
        }
        (request.full || !request.pids.is_empty()).then_some(request)
    }

    /// The launch window's duty cycle (called often: it only compares
    /// times unless a window opens or closes). Returns the processes seen
    /// when a window just closed.
    pub fn duty_cycle(&mut self, ebpf: &mut Ebpf) -> Vec<CudaWindow> {
        let now = Instant::now();
        match self.window_opened {
            None if now >= self.next_window => {
                self.open_window(ebpf);
                self.window_opened = Some(now);
                Vec::new()
            }
            Some(opened) if now.duration_since(opened) >= self.duty.window => {
                self.close_window(ebpf);
                self.window_opened = None;
                self.next_window = opened + self.duty.period;
                self.stats.windows += 1;
                self.collect(now.duration_since(opened).as_secs_f64())
            }
            _ => Vec::new(),
        }
    }

    fn open_window(&mut self, ebpf: &mut Ebpf) {
        for library in self.libraries.values_mut() {
            if library.library != GpuLibrary::Cuda {
                continue;
            }
            for (program, symbols) in LAUNCH_PROBES {
                for symbol in symbols {
                    if let Ok(link) = attach(ebpf, program, symbol, &library.path) {
                        library.launch_links.push((program, link));
                    }
                }
            }
        }
    }

    fn close_window(&mut self, ebpf: &mut Ebpf) {
        for library in self.libraries.values_mut() {
            for (program, link) in library.launch_links.drain(..) {
                if let Ok(p) = uprobe(ebpf, program)
                    && let Err(err) = p.detach(link)
                {
                    debug!("detaching {program}: {err}");
                }
            }
        }
    }

    /// Reads and clears the launch table; one window per process that
    /// launched, its libraries still to be read ([`with_libraries`]).
    fn collect(&mut self, window_s: f64) -> Vec<CudaWindow> {
        let mut by_process: HashMap<u32, Vec<(u64, LaunchStats)>> = HashMap::new();
        let mut keys = Vec::new();
        for item in self.launches.iter() {
            match item {
                Ok((key, stats)) => {
                    keys.push(key);
                    by_process
                        .entry(key.tgid)
                        .or_default()
                        .push((key.function, stats));
                }
                Err(_) => self.stats.launch_read_errors += 1,
            }
        }
        for key in keys {
            let _ = self.launches.remove(&key);
        }
        // Processes that set up the GPU but did not launch in this window
        // get an empty window: idleness is a fact too.
        for (&tgid, setup) in &self.processes {
            if !setup.kernels.is_empty() {
                by_process.entry(tgid).or_default();
            }
        }
        let mut windows = Vec::new();
        for (tgid, mut by_function) in by_process {
            by_function.sort_by_key(|(_, s)| std::cmp::Reverse(s.launches));
            if !self.histories.contains_key(&tgid) && self.histories.len() >= MAX_PROCESSES {
                continue;
            }
            let history = self.histories.entry(tgid).or_default();
            if history.len() >= HISTORY_WINDOWS {
                history.pop_front();
            }
            history.push_back(WindowLaunches {
                window_s,
                by_function,
            });
            if history.iter().all(|w| w.by_function.is_empty()) {
                continue;
            }
            windows.push(CudaWindow {
                tgid,
                setup: self.processes.get(&tgid).cloned().unwrap_or_default(),
                history: history.iter().cloned().collect(),
                libraries: BTreeSet::new(),
                unidentified: BTreeSet::new(),
            });
        }
        windows
    }
}

fn uprobe<'a>(ebpf: &'a mut Ebpf, program: &str) -> anyhow::Result<&'a mut UProbe> {
    let p = ebpf
        .program_mut(program)
        .ok_or_else(|| anyhow::anyhow!("program {program} missing from the eBPF object"))?;
    Ok(p.try_into()?)
}

fn attach(
    ebpf: &mut Ebpf,
    program: &str,
    symbol: &str,
    path: &Path,
) -> anyhow::Result<UProbeLinkId> {
    let p = uprobe(ebpf, program)?;
    Ok(p.attach(symbol, path, UProbeScope::AllProcesses)?)
}

/// What a module image is, from its first 8 bytes (little endian).
fn image_kind(magic: u64) -> &'static str {
    let bytes = magic.to_le_bytes();
    if bytes[..4] == *b"\x7fELF" {
        "cubin"
    } else if u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) == 0xBA55_ED50
        || u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) == 0x466243B1
    {
        "fatbin"
    } else if bytes.iter().all(|b| b.is_ascii() && *b != 0) {
        "ptx"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_images_are_told_apart_by_their_magic() {
        assert_eq!(
            image_kind(u64::from_le_bytes(*b"\x7fELF\x02\x01\x01\x00")),
            "cubin"
        );
        assert_eq!(image_kind(u64::from_le_bytes(*b"//\n// Ge")), "ptx");
        assert_eq!(image_kind(u64::from(0xBA55_ED50u32) | (1 << 32)), "fatbin");
        assert_eq!(image_kind(0), "other");
    }
}

/// Which processes' maps to read for GPU libraries.
#[derive(Debug, Default, Clone)]
pub struct ScanRequest {
    pub pids: Vec<u32>,
    /// Every process's (the periodic full scan).
    pub full: bool,
}

/// The driver and NVRTC libraries the requested processes map, by their
/// content (reads /proc and the files: run it on a worker).
pub fn find_libraries(request: &ScanRequest, identities: &Identities) -> Vec<Mapped> {
    let mut pids = request.pids.clone();
    if request.full
        && let Ok(dir) = std::fs::read_dir("/proc")
    {
        pids.extend(
            dir.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok()),
        );
    }
    let mut named = BTreeSet::new();
    for pid in pids {
        // Only what gets probes: the driver and NVRTC.
        named.extend(
            libraries::mapped_by(pid)
                .into_iter()
                .filter(|m| matches!(m.library, GpuLibrary::Cuda | GpuLibrary::Nvrtc)),
        );
    }
    // A file mapped by many processes is opened once per process (its
    // roots may differ) but parsed once ([`Identities`]).
    libraries::identify(named, identities)
        .libraries
        .into_iter()
        .filter(|m| matches!(m.library, GpuLibrary::Cuda | GpuLibrary::Nvrtc))
        .collect()
}

/// Closed windows with the libraries each process maps, read from its
/// maps and identified by content (reads /proc and the files: run it on a
/// worker). A process gone meanwhile keeps none.
pub fn with_libraries(mut windows: Vec<CudaWindow>, identities: &Identities) -> Vec<CudaWindow> {
    for window in &mut windows {
        let found = libraries::identify(libraries::mapped_by(window.tgid), identities);
        window.libraries = found.libraries.into_iter().map(|m| m.library).collect();
        window.unidentified = found.unidentified;
    }
    windows
}
