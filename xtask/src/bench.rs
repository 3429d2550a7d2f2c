//! `cargo xtask bench`: overhead, footprint and detection latency, measured
//! side by side in one run.
//!
//! Each workload runs alternately without and with the agent attached
//! (A B A B …, `--rounds` pairs), so that drift on a noisy machine hits both
//! sides alike; the result is the median throughput of each side, their
//! ratio, and the spread of the per-pair ratios. The agent runs with its
//! default settings (the whole host: the cgroup v2 root). While it runs, its
//! CPU time and RSS are read from /proc. Detection latency is the agent's own
//! `decided_after_ms` (first packet of the flow → verdict) over a series of
//! emulated miners. Output: a Markdown report on stdout and in
//! target/bench/report.md.

use std::{
    fmt::Write as _,
    fs,
    io::{BufRead, BufReader},
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        OnceLock,
        mpsc::{self, Receiver},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{cargo, status, workspace_root};

pub(crate) struct Options {
    pub rounds: usize,
    pub secs: f64,
    pub latency_samples: usize,
    pub workloads: Vec<String>,
    /// The agent on the last CPU, workloads on the others.
    pub pin: bool,
    /// Also measure each workload with parts of the agent taken away.
    pub itemise: bool,
}

/// CPU lists for `taskset -c`, when `--pin` is given: set once at the
/// start of a run.
struct Pinning {
    agent: String,
    load: String,
}

static PINNING: OnceLock<Option<Pinning>> = OnceLock::new();

/// `program`, run on `cpus(pinning)` when the run is pinned: both sides of
/// every A/B pair are pinned alike, so the ratio compares like with like.
fn pinned_command(program: &Path, cpus: impl Fn(&Pinning) -> &str) -> Command {
    match PINNING.get().and_then(Option::as_ref) {
        Some(pinning) => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", cpus(pinning)]).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

fn pinning(pin: bool) -> Result<Option<Pinning>> {
    if !pin {
        return Ok(None);
    }
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        bail!("--pin needs two CPUs at least: the agent gets the last, the workload the others");
    }
    let last = cores - 1;
    Ok(Some(Pinning {
        agent: last.to_string(),
        load: if last == 1 {
            "0".to_string()
        } else {
            format!("0-{}", last - 1)
        },
    }))
}

const WORKLOADS: [(&str, &str); 9] = [
    (
        "rr",
        "loopback request/response, one connection, 64 B messages",
    ),
    (
        "rr-connect",
        "loopback request/response, new connection each",
    ),
    ("exec", "fork+exec of /bin/true"),
    ("syscalls", "getppid loop"),
    (
        "opens",
        "open+close loop (hygiene sensor's openat tracepoint)",
    ),
    ("cpu", "integer hashing loop (CPU-bound)"),
    (
        "redis-c1",
        "redis-benchmark PING, 1 client (real loopback request/response)",
    ),
    ("redis-c8", "redis-benchmark PING, 8 clients"),
    (
        "pingpong",
        "pipe ping-pong between two processes (context switches)",
    ),
];

/// Workloads that also get a calibration run with empty cgroup_skb
/// programs next to the flow programs (`--bench-floor`): the kernel's
/// dispatch floor, apart from the flow programs' bodies.
const FLOOR_WORKLOADS: [&str; 3] = ["rr", "redis-c1", "redis-c8"];

pub(crate) fn run(options: Options) -> Result<()> {
    if !crate::is_root() {
        bail!("the benchmarks attach the agent: run as root (sudo -E cargo xtask bench)");
    }
    let _ = PINNING.set(pinning(options.pin)?);
    status(cargo().args(["build", "--release", "--package", "assay", "--bin", "assay"]))?;
    status(cargo().args([
        "build",
        "--release",
        "--package",
        "assay-tests",
        "--bin",
        "assay-load",
        "--bin",
        "assay-emu",
        "--bin",
        "assay-gpu-emu",
    ]))?;
    // Apart: with `--bin` filters cargo builds no library target, and these
    // are cdylibs.
    status(cargo().args([
        "build",
        "--release",
        "--package",
        "assay-fake-cuda",
        "--package",
        "assay-fake-nvrtc",
    ]))?;
    let release = workspace_root().join("target/release");
    let agent_bin = release.join("assay");
    let load_bin = release.join("assay-load");
    let emu_bin = release.join("assay-emu");
    let gpu_emu_bin = release.join("assay-gpu-emu");

    let mut report = String::new();
    let _ = writeln!(report, "{}", machine_description());
    let _ = writeln!(
        report,
        "rounds: {} A/B pairs of {} s per workload",
        options.rounds, options.secs
    );
    match PINNING.get().and_then(Option::as_ref) {
        Some(pinning) => {
            let _ = writeln!(
                report,
                "pinned: agent on CPU {}, workloads on CPU {}\n",
                pinning.agent, pinning.load
            );
        }
        None => report.push('\n'),
    }

    // Idle footprint.
    let mut agent = RunningAgent::start(&agent_bin)?;
    let idle = agent.sample_footprint(Duration::from_secs(5));
    let idle_summary = agent.stop()?;
    let _ = writeln!(report, "## Agent footprint\n");
    let _ = writeln!(
        report,
        "| state | agent CPU (% of one core) | RSS (MiB) | ring-buffer events/s | kernel drops |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|");
    footprint_row(&mut report, "idle (5 s)", &idle, &idle_summary);

    // Idle again after a connection storm: the flow table is full, and
    // stays so until its flows expire (10 minutes). Work done per tick over
    // the whole table shows here, not in a fresh agent's idle row.
    let mut agent = RunningAgent::start(&agent_bin)?;
    run_load(&load_bin, "rr-connect", STORM_SECS)?;
    thread::sleep(Duration::from_secs(2));
    let after_storm = agent.sample_footprint(Duration::from_secs(20));
    let storm_summary = agent.stop()?;
    footprint_row(
        &mut report,
        &format!("idle for 20 s after {STORM_SECS} s of rr-connect (flow table full)"),
        &after_storm,
        &storm_summary,
    );

    // Footprint with 10 000 processes tracked (each one exec'd while the
    // agent runs, so each is in its process table).
    let mut agent = RunningAgent::start(&agent_bin)?;
    let mut crowd = Vec::with_capacity(CROWD);
    for _ in 0..CROWD {
        crowd.push(
            Command::new("sleep")
                .arg("600")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("spawn a sleeping process")?,
        );
    }
    let crowded = agent.sample_footprint(Duration::from_secs(3));
    let crowd_summary = agent.stop();
    for mut child in crowd {
        let _ = child.kill();
        let _ = child.wait();
    }
    let crowd_summary = crowd_summary?;
    footprint_row(
        &mut report,
        &format!(
            "{CROWD} sleeping processes ({} in the process table)",
            crowd_summary.processes
        ),
        &crowded,
        &crowd_summary,
    );

    let peer = Peer::available();
    let mut peers = String::new();
    let _ = writeln!(
        peers,
        "\n## Peer on the same workload (same run)\n\n{}\n",
        match &peer {
            Some(_) => format!(
                "bpftrace exec/exit monitor, one printf per event: `{}`",
                PEER_SCRIPT
            ),
            None => "bpftrace not available: peer comparison skipped".to_owned(),
        }
    );
    let _ = writeln!(
        peers,
        "| workload | without (ops/s, median) | assay ratio | bpftrace ratio |"
    );
    let _ = writeln!(peers, "|---|---|---|---|");

    // The kernel's own accounting of every program's runs and time, on for
    // the runs that read it; as it was when the bench ends.
    let _stats = BpfStats::save()?;
    let mut itemised = String::new();
    if options.itemise {
        let _ = writeln!(
            itemised,
            "\n## Itemised (`--itemise`): the slowdown with a part of the agent taken away\n\n\
             Each row is {} pairs of the workload alone and beside a variant: the agent\n\
             less the programs named (unloaded once attached, `--bench-unload`), or no\n\
             agent but a process that only wakes now and then on the agent's CPU (the\n\
             control: what any such process costs here). The full agent's row is the\n\
             overhead table's; what a part costs is the full slowdown less its row's.\n",
            options.rounds
        );
        let _ = writeln!(
            itemised,
            "| workload | beside | ratio, median | per-pair ratios | slowdown |"
        );
        let _ = writeln!(itemised, "|---|---|---|---|---|");
    }
    let mut kernel = String::new();
    let _ = writeln!(
        kernel,
        "\n## Kernel cost per program (BPF statistics, `kernel.bpf_stats_enabled`)\n\n\
         ns/run is `run_time_ns / run_cnt` over the runs with the agent; the\n\
         floor is an empty cgroup_skb program at the same attach point in a\n\
         calibration run (`--bench-floor`), and the body is ns/run less the\n\
         floor. The statistics' own clock reads are in every figure; they are\n\
         on only for these runs, not for the pairs of the overhead table.\n"
    );
    let _ = writeln!(
        kernel,
        "| workload | program | runs per op | ns/run | floor ns/run | body ns/run |"
    );
    let _ = writeln!(kernel, "|---|---|---|---|---|---|");
    let mut overhead = String::new();
    let _ = writeln!(
        overhead,
        "\n## Overhead (throughput with agent / without)\n"
    );
    let _ = writeln!(
        overhead,
        "| workload | without (ops/s, median) | with (ops/s, median) | ratio | per-pair ratios (min–max) | slowdown |"
    );
    let _ = writeln!(overhead, "|---|---|---|---|---|---|");
    for (name, description) in WORKLOADS {
        if !options.workloads.is_empty() && !options.workloads.iter().any(|w| w == name) {
            continue;
        }
        eprintln!("bench: {name} ({description})");
        let mut without = Vec::new();
        let mut with = Vec::new();
        let mut footprints = Vec::new();
        let mut summaries = Vec::new();
        let mut with_peer = Vec::new();
        let mut programs = ProgramCosts::default();
        let mut floor = ProgramCosts::default();
        // The pairs run with the statistics off, as a host runs the agent:
        // their clock reads (two per program run) would be counted as the
        // agent's cost.
        BpfStats::set(false)?;
        for _ in 0..options.rounds {
            without.push(run_load(&load_bin, name, options.secs)?);
            if let Some(peer) = peer.as_ref().filter(|_| PEER_WORKLOADS.contains(&name)) {
                let _attached = peer.attach()?;
                with_peer.push(run_load(&load_bin, name, options.secs)?);
            }
            let mut agent = RunningAgent::start(&agent_bin)?;
            let before = agent.cpu_ticks();
            let started = Instant::now();
            with.push(run_load(&load_bin, name, options.secs)?);
            footprints.push(agent.footprint_since(before, started.elapsed()));
            summaries.push(agent.stop()?);
        }
        // Then one run each with the statistics on: the programs' own cost,
        // and the floor.
        BpfStats::set(true)?;
        {
            let mut agent = RunningAgent::start(&agent_bin)?;
            let programs_before = bpf_program_stats();
            let ops_per_s = run_load(&load_bin, name, options.secs)?;
            programs.add(
                &programs_before,
                &bpf_program_stats(),
                ops_per_s * options.secs,
            );
            agent.stop()?;
        }
        if FLOOR_WORKLOADS.contains(&name) {
            let mut agent = RunningAgent::start_with(&agent_bin, &["--bench-floor"])?;
            let programs_before = bpf_program_stats();
            let ops_per_s = run_load(&load_bin, name, options.secs)?;
            floor.add(
                &programs_before,
                &bpf_program_stats(),
                ops_per_s * options.secs,
            );
            agent.stop()?;
        }
        BpfStats::set(false)?;
        if options.itemise {
            let _ = write!(
                itemised,
                "{}",
                itemise(&agent_bin, &load_bin, name, &options)?
            );
        }
        let _ = write!(kernel, "{}", programs.rows(name, &floor));
        let ratios: Vec<f64> = with.iter().zip(&without).map(|(w, o)| w / o).collect();
        let (lo, hi) = min_max(&ratios);
        // The median of the per-pair ratios: each pair ran back to back, so
        // drift between pairs cancels out of each ratio.
        let ratio = median(&ratios);
        let _ = writeln!(
            overhead,
            "| {name}: {description} | {:.0} | {:.0} | {ratio:.4} | {lo:.4}–{hi:.4} | {:+.2} % |",
            median(&without),
            median(&with),
            (1.0 - ratio) * 100.0
        );
        if !with_peer.is_empty() {
            let _ = writeln!(
                peers,
                "| {name} | {:.0} | {ratio:.4} | {:.4} |",
                median(&without),
                median(&with_peer) / median(&without)
            );
        }
        let cpu: Vec<f64> = footprints.iter().map(|f| f.cpu_percent).collect();
        let rss: Vec<f64> = footprints.iter().map(|f| f.rss_mib).collect();
        let rate: Vec<f64> = summaries
            .iter()
            .map(|s| s.events as f64 / s.lifetime_secs)
            .collect();
        let drops: u64 = summaries.iter().map(|s| s.kernel_dropped).sum();
        let _ = writeln!(
            report,
            "| under {name} | {:.2} | {:.1} | {:.0} | {drops} |",
            median(&cpu),
            rss.iter().cloned().fold(0.0, f64::max),
            median(&rate)
        );
    }
    report.push_str(&overhead);
    report.push_str(&itemised);
    report.push_str(&kernel);
    if peer.is_some() {
        report.push_str(&peers);
    }
    if options.workloads.is_empty() || options.workloads.iter().any(|w| w == "cuda-launch") {
        eprintln!("bench: cuda-launch (launch-bound loop on the stand-in CUDA driver)");
        report.push_str(&cuda_launch(&agent_bin, &gpu_emu_bin, &release, &options)?);
    }

    if options.latency_samples > 0 {
        let latencies = detection_latency(&agent_bin, &emu_bin, options.latency_samples)?;
        let _ = writeln!(report, "\n## Detection latency (first packet → finding)\n");
        let _ = writeln!(
            report,
            "| case | samples | p50 (ms) | p95 (ms) | max (ms) |"
        );
        let _ = writeln!(report, "|---|---|---|---|---|");
        let _ = writeln!(
            report,
            "| plaintext stratum (ST1/ST3/ST4/ST5 in turn) | {} | {:.3} | {:.3} | {:.3} |",
            latencies.len(),
            percentile(&latencies, 50.0),
            percentile(&latencies, 95.0),
            min_max(&latencies).1
        );
    }

    let dir = workspace_root().join("target/bench");
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("report.md"), &report)?;
    println!("{report}");
    Ok(())
}

/// The CUDA sensor's cost on a launch-bound loop (`assay-gpu-emu --pattern
/// launch-loop` on the stand-in driver): without the agent; with the launch
/// probes attached the whole run (the worst case, what a window costs); and
/// duty-cycled (100 ms in every 24 s, the default's 1/240 ratio on a scale
/// the run covers), averaged over the run.
fn cuda_launch(
    agent_bin: &Path,
    emu_bin: &Path,
    release: &Path,
    options: &Options,
) -> Result<String> {
    let dir = workspace_root().join("target/bench/fake-cuda");
    fs::create_dir_all(&dir)?;
    for (built, name) in [
        ("libassay_fake_cuda.so", "libcuda.so.1"),
        ("libassay_fake_nvrtc.so", "libnvrtc.so.12"),
    ] {
        fs::copy(release.join(built), dir.join(name))
            .with_context(|| format!("copy the stand-in {name}"))?;
    }
    let cuda = dir.join("libcuda.so.1");
    let run = |secs: f64, cost_us: &str| -> Result<f64> {
        let out = Command::new(emu_bin)
            .arg("--lib-dir")
            .arg(&dir)
            .args(["--pattern", "launch-loop", "--seconds", &secs.to_string()])
            .args(["--launch-cost-us", cost_us])
            .output()
            .with_context(|| format!("run {}", emu_bin.display()))?;
        if !out.status.success() {
            bail!("launch-loop: {}", String::from_utf8_lossy(&out.stderr));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        match text.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["ops", ops, "secs", secs] => Ok(ops.parse::<f64>()? / secs.parse::<f64>()?),
            _ => bail!("launch-loop: unexpected output {text:?}"),
        }
    };
    let agent_with = |window_ms: &str, period_ms: &str| -> Result<RunningAgent> {
        RunningAgent::start_with(
            agent_bin,
            &[
                "--cuda-library",
                cuda.to_str().unwrap_or_default(),
                "--launch-window-ms",
                window_ms,
                "--launch-period-ms",
                period_ms,
            ],
        )
    };
    // Runs long enough to hold a whole duty-cycle period.
    let secs = options.secs.max(24.0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## CUDA sensor on a launch-bound loop (stand-in driver)\n"
    );
    let _ = writeln!(
        out,
        "| launch cost | configuration | launches/s (median) | ratio to without | per-pair ratios (min–max) | slowdown |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    // The stand-in's bare launch (~20 ns: the worst case there is), and 4 µs
    // per launch, about what the real driver costs the host.
    for (cost_us, cost_label) in [("0", "stand-in, ~20 ns"), ("4", "4 µs (real-driver-like)")] {
        let (mut without, mut attached, mut duty) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..options.rounds {
            without.push(run(secs, cost_us)?);
            // The first window opens 2 s after start; a 60 s window then
            // covers the whole run.
            let mut agent = agent_with("60000", "120000")?;
            std::thread::sleep(Duration::from_millis(2500));
            attached.push(run(secs, cost_us)?);
            agent.stop()?;
            // The default ratio (0.25 s in 60 s) on a scale the run covers.
            let mut agent = agent_with("100", "24000")?;
            duty.push(run(secs, cost_us)?);
            agent.stop()?;
        }
        let _ = writeln!(
            out,
            "| {cost_label} | without the agent | {:.0} | 1 | — | — |",
            median(&without)
        );
        for (label, with) in [
            ("launch probes attached the whole run", &attached),
            (
                "duty-cycled, 1/240 (100 ms in every 24 s, the default's ratio)",
                &duty,
            ),
        ] {
            let ratios: Vec<f64> = with.iter().zip(&without).map(|(w, o)| w / o).collect();
            let (lo, hi) = min_max(&ratios);
            let ratio = median(with) / median(&without);
            let _ = writeln!(
                out,
                "| {cost_label} | {label} | {:.0} | {ratio:.4} | {lo:.4}–{hi:.4} | {:+.2} % |",
                median(with),
                (1.0 - ratio) * 100.0
            );
        }
    }
    Ok(out)
}

/// A peer approach on the same hooks: what a bpftrace-based exec monitor
/// (one printf to user space per event) costs on the same workload.
const PEER_SCRIPT: &str = "tracepoint:sched:sched_process_exec { printf(\"exec %d %s\\n\", pid, str(args->filename)); } tracepoint:sched:sched_process_exit { printf(\"exit %d\\n\", pid); }";
const PEER_WORKLOADS: [&str; 1] = ["exec"];

struct Peer;

impl Peer {
    fn available() -> Option<Self> {
        let found = Command::new("bpftrace")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return None;
        }
        // Classic tracepoints need tracefs.
        if !Path::new("/sys/kernel/tracing/events").is_dir() {
            let _ = Command::new("mount")
                .args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"])
                .status();
        }
        Some(Self)
    }

    /// Starts bpftrace and waits until its probes are attached.
    fn attach(&self) -> Result<KillOnDrop> {
        let mut child = Command::new("bpftrace")
            .args(["-e", PEER_SCRIPT])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("start bpftrace")?;
        let stdout = child.stdout.take().expect("stdout");
        let child = KillOnDrop(child);
        let lines = lines(stdout);
        wait_for_line(&lines, "Attaching", Duration::from_secs(30))
            .context("bpftrace did not attach")?;
        // Keep draining its output, as a monitor would.
        thread::spawn(move || while lines.recv().is_ok() {});
        Ok(child)
    }
}

fn wait_for_line(lines: &Receiver<String>, needle: &str, timeout: Duration) -> Result<String> {
    let deadline = Instant::now() + timeout;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return Ok(line),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    bail!("no line with {needle:?} in time")
}

fn machine_description() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cores = thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("machine: {cpu}, {cores} cores, Linux {}", kernel.trim())
}

/// What `--itemise` runs in place of the whole agent.
enum Variant {
    /// The agent with these programs unloaded once attached, and these
    /// extra arguments.
    Less {
        label: &'static str,
        unload: &'static [&'static str],
        args: &'static [&'static str],
    },
    /// No agent: a process that only wakes every 20 ms, on the agent's CPU.
    Waker,
}

const VARIANTS: [Variant; 6] = [
    Variant::Less {
        label: "the agent without its FPU program",
        unload: &["assay_fpu_btf", "assay_fpu_raw"],
        args: &[],
    },
    Variant::Less {
        label: "the agent without its packet programs",
        unload: &["assay_flow_in", "assay_flow_out"],
        args: &[],
    },
    Variant::Less {
        label: "the agent with empty packet programs in their place",
        unload: &["assay_flow_in", "assay_flow_out"],
        args: &["--bench-floor"],
    },
    Variant::Less {
        label: "the agent without its connect and sendmsg programs",
        unload: &[
            "assay_connect4",
            "assay_connect6",
            "assay_sendmsg4",
            "assay_sendmsg6",
        ],
        args: &[],
    },
    Variant::Less {
        label: "the agent without any program (user space alone)",
        unload: &["*"],
        args: &[],
    },
    Variant::Waker,
];

/// Rows of the itemised table for one workload: pairs of the workload
/// alone and beside each variant.
fn itemise(agent_bin: &Path, load_bin: &Path, name: &str, options: &Options) -> Result<String> {
    let mut rows = String::new();
    for variant in &VARIANTS {
        let label = match variant {
            Variant::Less { label, .. } => *label,
            Variant::Waker => "no agent: a process waking every 20 ms on the agent's CPU",
        };
        eprintln!("bench: {name}, beside {label}");
        let mut ratios = Vec::new();
        for _ in 0..options.rounds {
            let without = run_load(load_bin, name, options.secs)?;
            let with = match variant {
                Variant::Less { unload, args, .. } => {
                    let mut agent_args: Vec<&str> = args.to_vec();
                    for program in *unload {
                        agent_args.extend(["--bench-unload", program]);
                    }
                    let mut agent = RunningAgent::start_with(agent_bin, &agent_args)?;
                    let with = run_load(load_bin, name, options.secs);
                    agent.stop()?;
                    with?
                }
                Variant::Waker => {
                    let mut waker = pinned_command(load_bin, |p| &p.agent)
                        .args(["waker", "3600"])
                        .stdout(Stdio::null())
                        .spawn()
                        .context("start the waker")?;
                    let with = run_load(load_bin, name, options.secs);
                    let _ = waker.kill();
                    let _ = waker.wait();
                    with?
                }
            };
            ratios.push(with / without);
        }
        let (lo, hi) = min_max(&ratios);
        let ratio = median(&ratios);
        let _ = writeln!(
            rows,
            "| {name} | {label} | {ratio:.4} | {lo:.4}–{hi:.4} | {:+.2} % |",
            (1.0 - ratio) * 100.0
        );
    }
    Ok(rows)
}

/// `kernel.bpf_stats_enabled`, put back as it was when dropped.
struct BpfStats {
    was: String,
}

impl BpfStats {
    fn save() -> Result<Self> {
        let was =
            fs::read_to_string(BPF_STATS).with_context(|| format!("cannot read {BPF_STATS}"))?;
        Ok(Self {
            was: was.trim().to_owned(),
        })
    }

    fn set(on: bool) -> Result<()> {
        fs::write(BPF_STATS, if on { "1" } else { "0" })
            .with_context(|| format!("cannot write {BPF_STATS}"))
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = fs::write(BPF_STATS, &self.was);
    }
}

fn run_load(bin: &Path, workload: &str, secs: f64) -> Result<f64> {
    let out = pinned_command(bin, |p| &p.load)
        .args([workload, &secs.to_string()])
        .output()
        .with_context(|| format!("run {}", bin.display()))?;
    if !out.status.success() {
        bail!("{workload}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        ["ops", ops, "secs", secs] => Ok(ops.parse::<f64>()? / secs.parse::<f64>()?),
        _ => bail!("{workload}: unexpected output {text:?}"),
    }
}

struct Footprint {
    cpu_percent: f64,
    rss_mib: f64,
}

/// One row of the footprint table: the agent's CPU and RSS in `state`, and
/// its events and drops over its life.
fn footprint_row(report: &mut String, state: &str, footprint: &Footprint, summary: &Summary) {
    let _ = writeln!(
        report,
        "| {state} | {:.3} | {:.1} | {:.1} | {} |",
        footprint.cpu_percent,
        footprint.rss_mib,
        summary.events as f64 / summary.lifetime_secs,
        summary.kernel_dropped
    );
}

/// Processes alive at once for the "many processes" footprint.
const CROWD: usize = 10_000;
/// Seconds of connection storm before the "idle after a storm" footprint.
const STORM_SECS: f64 = 6.0;

struct Summary {
    events: u64,
    /// Processes in the agent's table when it stopped.
    processes: u64,
    kernel_dropped: u64,
    lifetime_secs: f64,
}

struct RunningAgent {
    child: Child,
    logs: Receiver<String>,
    findings: Receiver<String>,
    started: Instant,
}

impl RunningAgent {
    fn start(bin: &Path) -> Result<Self> {
        Self::start_with(bin, &[])
    }

    fn start_with(bin: &Path, args: &[&str]) -> Result<Self> {
        let mut child = pinned_command(bin, |p| &p.agent)
            .args(["--format", "native"])
            .args(args)
            .env("ASSAY_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let logs = lines(child.stderr.take().expect("stderr"));
        let findings = lines(child.stdout.take().expect("stdout"));
        let agent = Self {
            child,
            logs,
            findings,
            started: Instant::now(),
        };
        agent.wait_log("agent ready", Duration::from_secs(30))?;
        Ok(agent)
    }

    fn wait_log(&self, needle: &str, timeout: Duration) -> Result<String> {
        wait_for_line(&self.logs, needle, timeout).context("agent log")
    }

    fn cpu_ticks(&self) -> u64 {
        let stat =
            fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let after_comm = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat; 12 and 13 after the comm.
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        field(11) + field(12)
    }

    fn rss_mib(&self) -> f64 {
        let status =
            fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    }

    fn footprint_since(&self, ticks_before: u64, elapsed: Duration) -> Footprint {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let used = self.cpu_ticks().saturating_sub(ticks_before) as f64 / hz;
        Footprint {
            cpu_percent: used / elapsed.as_secs_f64() * 100.0,
            rss_mib: self.rss_mib(),
        }
    }

    fn sample_footprint(&self, period: Duration) -> Footprint {
        let before = self.cpu_ticks();
        let started = Instant::now();
        thread::sleep(period);
        self.footprint_since(before, started.elapsed())
    }

    fn stop(&mut self) -> Result<Summary> {
        let lifetime_secs = self.started.elapsed().as_secs_f64();
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait()?;
        if !status.success() {
            bail!("agent exited with {status}");
        }
        let bye = self.wait_log("detached; bye", Duration::from_secs(5))?;
        let value = |key: &str| {
            bye.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(Summary {
            events: value("events="),
            processes: value("processes="),
            kernel_dropped: value("kernel_dropped="),
            lifetime_secs,
        })
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        // Stopped already: the child is reaped and kill fails harmlessly.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines<R: std::io::Read + Send + 'static>(reader: R) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn detection_latency(agent_bin: &Path, emu_bin: &PathBuf, samples: usize) -> Result<Vec<f64>> {
    let mut pool = KillOnDrop(
        Command::new(emu_bin)
            .arg("pool")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let mut line = String::new();
    BufReader::new(pool.0.stdout.as_mut().expect("stdout")).read_line(&mut line)?;
    let port = line
        .trim()
        .strip_prefix("listening ")
        .context("pool port")?
        .to_owned();
    let mut agent = RunningAgent::start(agent_bin)?;
    let mut latencies = Vec::new();
    for i in 0..samples {
        let variant = ["st1", "st3", "st4", "st5"][i % 4];
        let mut client = Command::new(emu_bin);
        client.args([
            "stratum",
            "--variant",
            variant,
            "--connect",
            &format!("127.0.0.1:{port}"),
            "--hold-ms",
            "0",
        ]);
        // Each miner in a session of its own: a workload of its own, so each
        // opens a verdict (miners sharing a session share one verdict).
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            client.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut client = client.stdout(Stdio::null()).spawn()?;
        let pid = client.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .context("no finding for a bench miner within 10 s")?;
            let finding = agent.findings.recv_timeout(left)?;
            let value: serde_json::Value = serde_json::from_str(&finding)?;
            if value["process"]["pid"] == pid && value["event"] == "verdict.opened" {
                latencies.push(
                    value["decided_after_ms"]
                        .as_f64()
                        .context("decided_after_ms")?,
                );
                break;
            }
        }
        client.wait()?;
    }
    agent.stop()?;
    drop(pool);
    Ok(latencies)
}

/// A helper process that must not outlive the benchmark, even on error.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// Runs and run time of every loaded program named `assay_*`, by id, from
/// `bpftool prog show -j` (empty when bpftool is missing).
fn bpf_program_stats() -> std::collections::HashMap<u64, (String, u64, u64)> {
    let Ok(output) = Command::new("bpftool")
        .args(["prog", "show", "-j"])
        .output()
    else {
        return std::collections::HashMap::new();
    };
    let programs: Vec<serde_json::Value> =
        serde_json::from_slice(&output.stdout).unwrap_or_default();
    programs
        .iter()
        .filter_map(|p| {
            let name = p["name"].as_str()?;
            name.starts_with("assay").then(|| {
                (
                    p["id"].as_u64().unwrap_or(0),
                    (
                        name.to_owned(),
                        p["run_cnt"].as_u64().unwrap_or(0),
                        p["run_time_ns"].as_u64().unwrap_or(0),
                    ),
                )
            })
        })
        .collect()
}

/// Per program name: runs, nanoseconds, and the workload's operations over
/// the same runs.
#[derive(Default)]
struct ProgramCosts {
    by_name: std::collections::BTreeMap<String, (u64, u64)>,
    ops: f64,
}

impl ProgramCosts {
    fn add(
        &mut self,
        before: &std::collections::HashMap<u64, (String, u64, u64)>,
        after: &std::collections::HashMap<u64, (String, u64, u64)>,
        ops: f64,
    ) {
        self.ops += ops;
        for (id, (name, runs, ns)) in after {
            let (runs0, ns0) = before.get(id).map_or((0, 0), |(_, r, n)| (*r, *n));
            let slot = self.by_name.entry(name.clone()).or_default();
            slot.0 += runs.saturating_sub(runs0);
            slot.1 += ns.saturating_sub(ns0);
        }
    }

    fn ns_per_run(&self, name: &str) -> Option<f64> {
        let (runs, ns) = self.by_name.get(name)?;
        (*runs > 0).then(|| *ns as f64 / *runs as f64)
    }

    /// Table rows: the programs that ran at least once per 1000 ops.
    fn rows(&self, workload: &str, floor: &Self) -> String {
        let mut out = String::new();
        for (name, (runs, ns)) in &self.by_name {
            let per_op = *runs as f64 / self.ops.max(1.0);
            if *runs == 0 || per_op < 0.001 {
                continue;
            }
            let ns_run = *ns as f64 / *runs as f64;
            let floor_name = match name.as_str() {
                "assay_flow_out" => Some("assay_floor_out"),
                "assay_flow_in" => Some("assay_floor_in"),
                _ => None,
            };
            let floor_ns = floor_name.and_then(|f| floor.ns_per_run(f));
            let (floor_cell, body_cell) = match floor_ns {
                Some(f) => (
                    format!("{f:.1}"),
                    format!("{:.1}", floor.ns_per_run(name).unwrap_or(ns_run) - f),
                ),
                None => ("".to_owned(), "".to_owned()),
            };
            let _ = writeln!(
                out,
                "| {workload} | {name} | {per_op:.3} | {ns_run:.1} | {floor_cell} | {body_cell} |"
            );
        }
        out
    }
}
