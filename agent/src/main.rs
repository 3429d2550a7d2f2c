//! The `assay` command line.

use std::{io::IsTerminal as _, path::PathBuf, process::ExitCode};

use anyhow::Result;
use assay::classify::catalogue::Catalogue;
use assay::{
    agent,
    cli::{doctor, pcap},
    kernel::loader,
    sensors::cuda,
};
use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// assay: an eBPF agent that tells what this host's compute is really
/// producing (proof-of-work mining, blockchain nodes, AI) per workload, with
/// the evidence for each verdict.
///
/// Findings are written to stdout as JSON lines; logs go to stderr. Needs
/// root, or CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_SYS_PTRACE and
/// CAP_DAC_READ_SEARCH (see deploy/assay.service).
#[derive(Debug, Parser)]
#[command(
    name = "assay",
    version,
    propagate_version = true,
    args_override_self = true
)]
struct Cli {
    /// Read options from this TOML file first: the long option names as
    /// keys (`output-file = "/var/log/assay.jsonl"`, `no-hygiene = true`,
    /// `cuda-library = ["…", "…"]`); options on the command line override
    /// it. Unknown keys and wrong values are refused with their line.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A catalogue file (TOML, the format of the built-in
    /// classify/data/catalogue.toml, `version = 1`): Bitcoin-family magics
    /// and CryptoNote network ids with their names, and mining-pool domains,
    /// added to the built-in ones without a rebuild. A bad file is refused
    /// with the reason. `assay doctor` shows what is loaded.
    #[arg(long, global = true, value_name = "FILE")]
    catalogue: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
    /// Log filter (tracing EnvFilter syntax), e.g. "info" or "assay=debug".
    #[arg(long, global = true, env = "ASSAY_LOG", default_value = "info")]
    log: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agent (the default when no command is given).
    Run(RunArgs),
    /// Probe the kernel and print the attach plan as a table, attaching
    /// nothing; then the GPU, and the outputs and policy the options name,
    /// each tried. Exits 0 when at least one sensor can run and every
    /// configured output and the policy are usable, 1 when no sensor can
    /// run, 2 when the probe itself failed (e.g. not enough privilege), 3
    /// when a configured output or the policy is not usable.
    Doctor(RunArgs),
    /// Classify the flows of a capture file (pcap or pcapng) with the
    /// agent's own classifiers, offline. Needs no privilege.
    ///
    /// Flows are sampled as the agent samples them: the first
    /// --sample-segments payload segments of each direction (more, up to
    /// 16, while a stratum line is still open), each cut at 2048 bytes; TCP
    /// in sequence order, retransmissions skipped, a gap stopping that
    /// direction. The initiator is the side that sent the SYN, else the one
    /// that sent the first packet. Link types: Ethernet, Linux cooked (SLL,
    /// SLL2: `-i any`), raw IPv4/IPv6, BSD loopback.
    ///
    /// Prints a table, one line per flow that carried payload: flow number,
    /// transport, initiator -> responder, packets and payload bytes each
    /// way (> sent by the initiator, < by the responder), protocol
    /// (stratum-v1, stratum-v2, stratum-v2-noise, tls, dns, a p2p network,
    /// devp2p-discv4, or unknown) and what identified it; then a summary:
    /// packets read, skipped by reason, flows.
    ///
    /// Exits 0 when the whole file was read, 2 when it could not be (not a
    /// capture, truncated, corrupt): the error names the file and the byte
    /// offset, after the flows read up to there.
    Pcap(PcapArgs),
    /// Record GPU telemetry from NVML (per device: utilisation, memory,
    /// power, clocks, PCIe; per process: memory and utilisation every
    /// 10 s) at 1 Hz, as the JSON-lines trace `--gpu-replay` reads
    /// (docs/gpu-trace-format.md). Exits 1 when NVML is unavailable.
    GpuRecord(GpuRecordArgs),
    /// The compute-use report: per workload, what was declared and what the
    /// ledger observed, per class (CPU core-seconds, GPU seconds, energy,
    /// share of its compute), with `mismatch` and its reason, the verdicts
    /// behind it, and host totals with the undeclared and mismatched
    /// shares. Reads the ledger the agent keeps in --state-dir; needs no
    /// privilege beyond reading it.
    ///
    /// Exits 0 with the report written, 2 when the ledger or the
    /// declarations cannot be read (a corrupt ledger is named; the agent
    /// sets it aside at its next start).
    Report(assay::cli::report::ReportArgs),
}

#[derive(Debug, Clone, Args)]
struct GpuRecordArgs {
    /// Where to write the trace ("-": standard output).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// How long to record.
    #[arg(long, default_value_t = 120)]
    seconds: u64,
}

#[derive(Debug, Clone, Args)]
struct PcapArgs {
    /// The capture file: pcap (any byte order, micro- or nanosecond) or
    /// pcapng.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// One JSON object per flow per line instead of the table (summary on
    /// stderr). Fields: flow, transport ("tcp"/"udp"), initiator and
    /// responder {addr, packets, bytes, sampled, retransmissions, gaps},
    /// handshake_seen, first_seen, last_seen (RFC 3339), protocol (null
    /// when unknown); when found: stratum {variant, variant_name, methods,
    /// decisive, agent, login, worker, algorithms, messages}, tls {sni,
    /// alpn, ja4, server_hello, selected_alpn}, dns {names, addresses,
    /// queries, responses}, p2p {network, message, confidence, and magic
    /// or network_id (hex) with chain when the network is listed},
    /// stratum_v2 {protocol, endpoint, vendor, device, version,
    /// noise_client}, devp2p_discv4, stratum_rejections.
    #[arg(long)]
    json: bool,
    /// Payload segments classified in each direction of a flow, as the
    /// agent's --sample-segments.
    #[arg(
        long,
        default_value_t = assay::classify::pcap::DEFAULT_SAMPLES_PER_DIRECTION,
        value_parser = clap::value_parser!(u32).range(1..=64)
    )]
    sample_segments: u32,
}

#[derive(Debug, Clone, Args)]
struct RunArgs {
    /// cgroup v2 directory to attach the network sensors to; every process
    /// below it is watched. Default: the cgroup v2 root (the whole host),
    /// found in /proc/self/mountinfo.
    #[arg(long, value_name = "DIR")]
    cgroup: Option<PathBuf>,
    /// Payload segments sampled in each direction of every new flow before
    /// the kernel stops looking at it.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    sample_segments: u32,
    /// Host name written in findings. Default: the kernel's hostname.
    #[arg(long)]
    host: Option<String>,
    /// Size of the ring buffer that carries process events (exec, exit,
    /// fork), in KiB, rounded up to a power of two (default 2048). Each
    /// event family has its own ring: a storm in one cannot starve another,
    /// and what each drops is counted (`assay_ring_dropped_total`).
    #[arg(long, value_name = "KIB", value_parser = clap::value_parser!(u32).range(4..=1_048_576))]
    process_ring_kib: Option<u32>,
    /// Size of the ring buffer that carries flow events (connects and
    /// payload samples), in KiB, rounded up to a power of two (default
    /// 4096).
    #[arg(long, value_name = "KIB", value_parser = clap::value_parser!(u32).range(4..=1_048_576))]
    flow_ring_kib: Option<u32>,
    /// For `cargo xtask bench`: also attach empty cgroup_skb programs next
    /// to the flow programs, so that the kernel's BPF statistics separate
    /// the dispatch floor from the flow programs' own cost.
    #[arg(long)]
    bench_floor: bool,
    /// For `cargo xtask bench --itemise`: unload this eBPF program once
    /// everything is attached, to measure what the rest costs ("*": every
    /// program). Repeatable.
    #[arg(long, value_name = "PROGRAM", hide = true)]
    bench_unload: Vec<String>,
    /// Do not watch for miner hygiene (MSR writes, huge-page reservations,
    /// the msr module). Its cgroup device and sysctl programs are asked
    /// only when a device node is opened or a /proc/sys file accessed;
    /// turn it off where even that is unwanted.
    #[arg(long)]
    no_hygiene: bool,
    /// A CUDA driver (libcuda.so*) or NVRTC (libnvrtc.so*) library to probe,
    /// besides those in the linker cache and those processes map (which
    /// are found by themselves). Repeatable.
    #[arg(long, value_name = "PATH")]
    cuda_library: Vec<PathBuf>,
    /// How long the CUDA launch probes stay attached in each period
    /// (a uprobe costs ~2 µs per kernel launch while attached).
    #[arg(long, default_value = "250", value_name = "MS", value_parser = clap::value_parser!(u64).range(50..=60_000))]
    launch_window_ms: u64,
    /// Policy file (TOML): rules that allow, downgrade or ignore verdicts
    /// by class, container, pod, service, cgroup, executable or user; the
    /// format is in the README. A file with an error is refused at start,
    /// naming its line.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Write the verdicts an `allow` rule suppressed, as
    /// `verdict.suppressed` lines naming the rule (they are counted either
    /// way).
    #[arg(long)]
    log_suppressed: bool,
    /// Act on verdicts as the policy's `[[enforce]]` rules say (throttle,
    /// freeze, kill). Without it, every action that would have been taken
    /// is only recorded, with `mode: "dry-run"`.
    #[arg(long)]
    enforce: bool,
    /// A cgroup v2 path glob never acted on, nor anything below it.
    /// Repeatable; replaces the default list (the host's ssh and systemd
    /// units, init.scope). The agent's own cgroup is always protected.
    #[arg(long, value_name = "GLOB")]
    protect: Vec<String>,
    /// More enforcement actions than this within a minute stand
    /// enforcement down until the agent restarts.
    #[arg(long, default_value_t = assay::enforce::rails::DEFAULT_MAX_ACTIONS_PER_MINUTE, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    max_actions_per_minute: u32,
    /// Shape of each finding line: `ocsf` (an OCSF 1.3 Detection Finding,
    /// class_uid 2004, with assay's own finding in `unmapped.assay`;
    /// docs/finding.schema.json) or `native` (assay's own finding alone,
    /// see the README).
    #[arg(long, value_enum, default_value = "ocsf")]
    format: assay::sinks::Format,
    /// Also write findings, one JSON line each, to this file (appended;
    /// rotated to FILE.1, FILE.2, … at --output-file-max-mb).
    #[arg(long, value_name = "FILE")]
    output_file: Option<PathBuf>,
    /// Size at which the findings file is rotated.
    #[arg(long, default_value_t = 100, value_name = "MiB", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    output_file_max_mb: u64,
    /// Rotated findings files kept (the oldest is deleted).
    #[arg(long, default_value_t = 5, value_name = "N")]
    output_file_keep: u32,
    /// Serve Prometheus metrics at http://ADDR/metrics ("off": none). On
    /// localhost by default: expose it elsewhere deliberately.
    #[arg(long, default_value = "127.0.0.1:9464", value_name = "ADDR")]
    metrics_listen: String,
    /// Publish every finding to NATS JetStream at this URL
    /// (nats://host:4222), on <prefix>.findings.<host> in stream <PREFIX>,
    /// at least once; credentials from ASSAY_NATS_TOKEN or
    /// ASSAY_NATS_USER/ASSAY_NATS_PASSWORD.
    #[arg(long, value_name = "URL")]
    nats: Option<String>,
    /// Subject prefix for --nats.
    #[arg(long, default_value = "assay", value_name = "PREFIX")]
    nats_prefix: String,
    /// Findings kept while the NATS server is away (the oldest are dropped,
    /// and counted, beyond).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    nats_buffer: usize,
    /// Seconds between the workload summaries --nats publishes (each
    /// workload with open verdicts, on <prefix>.workloads.<host>).
    #[arg(long, default_value_t = 60, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    nats_summary_every: u64,
    /// Do not write findings to stdout (with --output-file).
    #[arg(long, requires = "output_file")]
    no_stdout: bool,
    /// Directory where open verdicts are saved when the agent stops and read
    /// back when it starts: a verdict still open keeps its id and is not
    /// reported again; one whose processes have gone is reported resolved.
    /// It also holds the compute-use ledger (ledger.sqlite): per workload
    /// and minute, CPU core-seconds, GPU seconds and memory, energy and the
    /// verdicts active, which `assay report` reads.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Keep no compute-use ledger in --state-dir.
    #[arg(long)]
    no_ledger: bool,
    /// Days the ledger keeps; older rows are deleted.
    #[arg(long, default_value_t = 400, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=36_500))]
    ledger_retention_days: u32,
    /// Days after which the ledger's minutes are folded into hours.
    #[arg(long, default_value_t = 30, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=36_500))]
    ledger_rollup_after_days: u32,
    /// The ledger's energy estimate where the host has no RAPL counter:
    /// watts per busy CPU core (the joules are marked `estimated`).
    #[arg(long, default_value_t = 10.0, value_name = "WATTS")]
    watts_per_core: f64,
    /// The ledger's energy estimate where NVML gives no power: watts per
    /// busy GPU (marked `estimated`).
    #[arg(long, default_value_t = 250.0, value_name = "WATTS")]
    watts_per_gpu: f64,
    /// Replay this GPU telemetry trace (JSON lines, docs/gpu-trace-format.md)
    /// instead of polling NVML, one poll per second: to test and to run the
    /// GPU classifier offline.
    #[arg(long, value_name = "FILE")]
    gpu_replay: Option<PathBuf>,
    /// How often the CUDA launch probes are attached for a window.
    #[arg(long, default_value = "60000", value_name = "MS", value_parser = clap::value_parser!(u64).range(500..=3_600_000))]
    launch_period_ms: u64,
}

impl RunArgs {
    fn load_options(&self, attach: bool) -> loader::LoadOptions {
        loader::LoadOptions {
            cgroup: self.cgroup.clone(),
            sample_segments: self.sample_segments,
            process_ring_kib: self.process_ring_kib,
            flow_ring_kib: self.flow_ring_kib,
            bench_floor: self.bench_floor,
            bench_unload: self.bench_unload.clone(),
            attach,
            hygiene: !self.no_hygiene,
        }
    }
}

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match with_config_file(argv) {
        Ok(argv) => Cli::parse_from(argv),
        Err(err) => {
            // Logging is not set up yet: the error goes to stderr as is.
            let _ =
                std::io::Write::write_fmt(&mut std::io::stderr(), format_args!("error: {err}\n"));
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cli.log).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            tracing::error!("{err:#}");
            ExitCode::from(2)
        }
    }
}

/// The command line with the `--config` file's options spliced in before
/// the user's own (which therefore win), after the subcommand when there
/// is one. Checks the file's values with the parser itself, to name the
/// line of a wrong one.
fn with_config_file(argv: Vec<std::ffi::OsString>) -> Result<Vec<std::ffi::OsString>> {
    use clap::CommandFactory as _;
    let path = argv.iter().enumerate().find_map(|(i, a)| {
        let a = a.to_str()?;
        match a.strip_prefix("--config") {
            Some("") => argv.get(i + 1).map(PathBuf::from),
            Some(rest) => rest.strip_prefix('=').map(PathBuf::from),
            None => None,
        }
    });
    let Some(path) = path else {
        return Ok(argv);
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
    let command = Cli::command();
    let run = command
        .find_subcommand("run")
        .cloned()
        .unwrap_or_else(|| command.clone());
    let known: Vec<assay::cli::config_file::KnownOption> = run
        .get_arguments()
        .filter_map(|a| {
            let long = a.get_long()?.to_owned();
            (long != "config" && long != "help" && long != "version").then(|| {
                assay::cli::config_file::KnownOption {
                    long,
                    takes_value: a.get_action().takes_values(),
                    repeatable: matches!(a.get_action(), clap::ArgAction::Append),
                }
            })
        })
        .collect();
    let origin = path.display().to_string();
    let config = assay::cli::config_file::to_args(&text, &origin, &known)?;
    // Values are checked by the parser itself; its error names the option,
    // the file names the line.
    let mut trial = vec![std::ffi::OsString::from("assay")];
    trial.extend(config.args.iter().map(std::ffi::OsString::from));
    if let Err(err) = Cli::try_parse_from(&trial) {
        let text = err.to_string();
        let line = config
            .lines
            .iter()
            .find(|(long, _)| text.contains(&format!("--{long}")))
            .map(|(_, line)| *line)
            .unwrap_or(1);
        let reason = text
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ")
            .to_owned();
        anyhow::bail!("config {origin}, line {line}: {reason}");
    }
    // After the subcommand, whose own options they are; else after the
    // program name (the default command is run).
    let at = argv
        .iter()
        .position(|a| matches!(a.to_str(), Some("run" | "doctor")))
        .map_or(1, |i| i + 1);
    let mut out = argv[..at.min(argv.len())].to_vec();
    out.extend(config.args.into_iter().map(std::ffi::OsString::from));
    out.extend(argv[at.min(argv.len())..].iter().cloned());
    Ok(out)
}

/// The built-in catalogue, or it extended by the operator's file; kept for
/// the life of the process.
fn load_catalogue(path: Option<&std::path::Path>) -> Result<&'static Catalogue> {
    let Some(path) = path else {
        return Ok(Catalogue::builtin());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("catalogue {}: {e}", path.display()))?;
    let catalogue = Catalogue::with_file(&text, &path.display().to_string())
        .map_err(|e| anyhow::anyhow!("catalogue {}: {e}", path.display()))?;
    Ok(Box::leak(Box::new(catalogue)))
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    let catalogue = load_catalogue(cli.catalogue.as_deref())?;
    match cli.command {
        Some(Command::Doctor(args)) => {
            let loaded = loader::load(&args.load_options(false))?;
            let mut out = doctor::report(&loaded);
            doctor::report_catalogue(catalogue, &mut out);
            let metrics = match args.metrics_listen.as_str() {
                "off" | "none" => None,
                addr => addr.parse().ok(),
            };
            let fine = doctor::report_configured(
                &doctor::Configured {
                    output_file: args.output_file.as_deref(),
                    nats: args.nats.as_deref(),
                    metrics,
                    policy: args.policy.as_deref(),
                },
                &mut out,
            );
            print!("{out}");
            let attributable = assay::kernel::pid_namespace::check().is_available();
            Ok(match (loaded.anything_useful() && attributable, fine) {
                (false, _) => ExitCode::from(1),
                (true, false) => ExitCode::from(3),
                (true, true) => ExitCode::SUCCESS,
            })
        }
        Some(Command::Run(args)) => run(args, catalogue),
        Some(Command::Pcap(args)) => {
            let format = if args.json {
                pcap::Format::Json
            } else {
                pcap::Format::Table
            };
            let options = assay::classify::pcap::Options {
                samples_per_direction: args.sample_segments,
                catalogue,
            };
            pcap::run(&args.file, format, &options)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::GpuRecord(args)) => gpu_record(&args),
        Some(Command::Report(args)) => assay::cli::report::run(&args),
        None => run(cli.run, catalogue),
    }
}

fn gpu_record(args: &GpuRecordArgs) -> Result<ExitCode> {
    use assay::sensors::gpu::{nvml::NvmlSource, telemetry};
    let mut source = match NvmlSource::open() {
        Ok(source) => source,
        Err(why) => {
            tracing::error!("GPU telemetry unavailable: {why}");
            return Ok(ExitCode::from(1));
        }
    };
    let out: Box<dyn std::io::Write> = if args.out.as_os_str() == "-" {
        Box::new(std::io::stdout())
    } else {
        Box::new(std::io::BufWriter::new(
            std::fs::File::create(&args.out)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", args.out.display()))?,
        ))
    };
    let stats = telemetry::record(
        &mut source,
        out,
        std::time::Duration::from_secs(args.seconds),
    )?;
    tracing::info!(polls = stats.polls, lines = stats.lines, "recorded");
    Ok(ExitCode::SUCCESS)
}

fn run(args: RunArgs, catalogue: &'static Catalogue) -> Result<ExitCode> {
    let policy = match &args.policy {
        Some(path) => assay::correlate::policy::Policy::load(path)?,
        None => assay::correlate::policy::Policy::default(),
    };
    if let Some(path) = &args.policy {
        tracing::info!(path = %path.display(), rules = policy.rules().len(), "policy loaded");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(agent::run(agent::RunOptions {
        load: args.load_options(true),
        catalogue,
        host: args.host.clone(),
        cuda_libraries: args.cuda_library.clone(),
        gpu_replay: args.gpu_replay.clone(),
        policy,
        log_suppressed: args.log_suppressed,
        enforce: assay::enforce::Options {
            mode: if args.enforce {
                assay::enforce::Mode::Enforce
            } else {
                assay::enforce::Mode::DryRun
            },
            protect: args.protect.clone(),
            max_actions_per_minute: args.max_actions_per_minute,
            cgroup_root: None,
        },
        state_dir: args.state_dir.clone(),
        ledger: (!args.no_ledger).then(|| assay::ledger::Options {
            retention_days: args.ledger_retention_days,
            rollup_after_days: args.ledger_rollup_after_days,
            watts_per_core: args.watts_per_core.max(0.0),
            watts_per_gpu: args.watts_per_gpu.max(0.0),
            ..assay::ledger::Options::default()
        }),
        format: args.format,
        output_file: args.output_file.clone(),
        output_file_max_bytes: args.output_file_max_mb << 20,
        output_file_keep: args.output_file_keep,
        stdout: !args.no_stdout,
        nats: args
            .nats
            .clone()
            .map(|url| (url, args.nats_prefix.clone(), args.nats_buffer)),
        summary_every_s: args.nats_summary_every,
        metrics_listen: match args.metrics_listen.as_str() {
            "off" | "none" => None,
            addr => Some(addr.parse().map_err(|e| {
                anyhow::anyhow!("--metrics-listen {addr:?}: not an address:port ({e}); \"off\" turns metrics off")
            })?),
        },
        launch_duty: cuda::DutyCycle {
            window: std::time::Duration::from_millis(args.launch_window_ms),
            period: std::time::Duration::from_millis(
                args.launch_period_ms.max(args.launch_window_ms * 2),
            ),
        },
    }));
    // A worker stuck in a read (a process holding its mmap lock) must not
    // keep the agent from exiting: the runtime waits for it only briefly.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    outcome?;
    Ok(ExitCode::SUCCESS)
}
