//! Building the running agent from its options: the loaded programs and
//! their maps, the sinks, the GPU telemetry source and the metrics
//! listener.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use assay_common::config::ring;
use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray, PerCpuHashMap, RingBuf};
use tokio::{io::unix::AsyncFd, sync::mpsc};
use tracing::{info, warn};

use super::{state::Agent, work::Done};
use crate::{
    correlate::policy::Policy,
    kernel::{
        features::Probe,
        loader::{self, LoadOptions, Loaded},
        pid_namespace,
    },
    procfs::workers::{self, Workers},
    sensors::{
        cpu_time::CpuTime,
        cuda::{self, CudaSensor},
        fpu::FpuSensor,
        gpu::telemetry::{self, Polled, TelemetrySource},
    },
    sinks::{
        Format, LineWriter, Outputs, RotatingFile,
        fleet::{Fleet, FleetOptions},
        report::Reporter,
    },
};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub load: LoadOptions,
    /// Names and pool domains (`--catalogue`, or the built-in one).
    pub catalogue: &'static assay_classify::catalogue::Catalogue,
    pub host: Option<String>,
    /// Driver and NVRTC libraries to probe besides those found.
    pub cuda_libraries: Vec<PathBuf>,
    pub launch_duty: cuda::DutyCycle,
    /// Replay this GPU telemetry trace instead of polling NVML.
    pub gpu_replay: Option<PathBuf>,
    pub policy: Policy,
    /// Where open verdicts are kept across restarts, and the ledger.
    pub state_dir: Option<PathBuf>,
    /// The compute-use ledger's settings; `None`: no ledger (it needs
    /// `state_dir` too).
    pub ledger: Option<crate::ledger::Options>,
    pub format: Format,
    /// Also write findings to this file, rotated at `output_file_max_bytes`
    /// keeping `output_file_keep` old ones.
    pub output_file: Option<PathBuf>,
    pub output_file_max_bytes: u64,
    pub output_file_keep: u32,
    /// Write findings to stdout.
    pub stdout: bool,
    /// Serve Prometheus metrics here.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Publish findings to NATS JetStream (URL, subject prefix, buffer).
    pub nats: Option<(String, String, usize)>,
    /// Seconds between workload summaries on the fleet stream.
    pub summary_every_s: u64,
    /// Write verdicts a policy `allow` rule suppressed as
    /// `verdict.suppressed` lines.
    pub log_suppressed: bool,
    /// What `[[enforce]]` rules may do (the cgroup root is found here).
    pub enforce: crate::enforce::Options,
}

/// The three ring buffers, each polled on its own branch of the loop.
pub(super) struct Rings {
    pub process: AsyncFd<RingBuf<MapData>>,
    pub flow: AsyncFd<RingBuf<MapData>>,
    pub sensor: AsyncFd<RingBuf<MapData>>,
}

pub(super) struct Built {
    pub loaded: Loaded,
    pub rings: Rings,
    pub agent: Agent,
    pub work_done: mpsc::UnboundedReceiver<Done>,
    pub telemetry: Option<mpsc::Receiver<Polled>>,
    pub metrics: Option<tokio::net::TcpListener>,
}

pub(super) async fn build(options: &RunOptions) -> Result<Built> {
    if let Probe::Unavailable(why) = pid_namespace::check() {
        bail!("assay cannot attribute events here: {why}");
    }
    let mut loaded = loader::load(&options.load)?;
    loader::log_plan(&loaded);
    // Loading parsed the kernel's BTF and dropped it: give that back before
    // the tables reserve theirs, or they would sit on pages it touched.
    super::memory::release_free_memory();
    if !loaded.anything_useful() {
        bail!("no sensor can run on this kernel; `assay doctor` says why");
    }
    let mut take_ring = |r: &ring::Ring| -> Result<AsyncFd<RingBuf<MapData>>> {
        let map = loaded
            .ebpf
            .take_map(r.map)
            .with_context(|| format!("map {} missing", r.map))?;
        // SAFETY: the ring buffer owns its fd, and the AsyncFd owns the
        // ring buffer until it is dropped, before the object that created
        // the map.
        unsafe { AsyncFd::register(RingBuf::try_from(map)?) }
            .map_err(|err| anyhow::anyhow!("cannot poll the {} ring buffer: {err}", r.name))
    };
    let rings = Rings {
        process: take_ring(&ring::PROCESS)?,
        flow: take_ring(&ring::FLOW)?,
        sensor: take_ring(&ring::SENSOR)?,
    };
    let counters: PerCpuArray<MapData, u64> = PerCpuArray::try_from(
        loaded
            .ebpf
            .take_map("COUNTERS")
            .context("map COUNTERS missing")?,
    )?;
    let fpu = FpuSensor::new(BpfHashMap::try_from(
        loaded
            .ebpf
            .take_map("FPU_STATS")
            .context("map FPU_STATS missing")?,
    )?);
    let host = options.host.clone().unwrap_or_else(hostname);
    let reporter = Reporter::new(
        host.clone(),
        options.policy.clone(),
        options.log_suppressed,
        Outputs::new(options.format, line_writer(options)?),
    );
    let mut reporter = reporter;
    reporter.set_enforcer(enforcer(options)?);
    let (workers, work_done) = Workers::new(workers::MAX_IN_FLIGHT, workers::DEADLINE);
    let mut agent = Agent::new(
        reporter,
        workers,
        counters,
        fpu,
        options.load.sample_segments,
        options.catalogue,
    );
    agent.summary_every_s = options.summary_every_s.max(1);
    if let Some((url, prefix, buffer)) = &options.nats {
        agent.reporter.set_fleet(Fleet::start(FleetOptions {
            url: url.clone(),
            prefix: prefix.clone(),
            host: host.clone(),
            buffer: *buffer,
        }));
    }
    if let (Some(dir), Some(ledger)) = (&options.state_dir, &options.ledger) {
        // With --nats the ledger's rows go to the fleet stream too.
        let publish = agent
            .reporter
            .fleet()
            .map(|fleet| crate::ledger::writer::Publish {
                fleet: fleet.clone(),
                host,
            });
        agent.ledger = Some(super::ledger::LedgerFeed::new(
            crate::ledger::writer::Writer::start(dir.clone(), ledger.clone(), publish),
        ));
    }
    agent.rearm = Some(crate::sensors::flow::Rearm::new(&mut loaded.ebpf)?);
    // deny-egress works through the connect/sendmsg programs: without
    // them its rung fails and the next applies.
    let flows_on = loaded
        .sensors
        .iter()
        .any(|s| s.sensor == "flows" && s.state.is_available());
    if flows_on && let Err(err) = crate::enforce::deny::install(&mut loaded.ebpf) {
        tracing::warn!("deny-egress is not available: {err}");
    }
    agent.cpu_time = loaded
        .ebpf
        .take_map("CPU_SAMPLES")
        .map(PerCpuHashMap::try_from)
        .transpose()?
        .map(CpuTime::new);
    if loaded.features.perf_hardware.is_available() {
        agent.pmu = Some(crate::sensors::pmu::HardwareCounters::default());
    }
    let telemetry = match telemetry_source(options)? {
        Some(source) => Some(telemetry::spawn_poller(source, telemetry::POLL_INTERVAL)?),
        None => None,
    };
    agent.gpu_telemetry = telemetry.is_some();
    let cuda_on = loaded
        .sensors
        .iter()
        .any(|s| s.sensor == "cuda" && s.state.is_available());
    if cuda_on {
        match CudaSensor::new(
            &mut loaded.ebpf,
            options.launch_duty,
            &options.cuda_libraries,
        ) {
            Ok(sensor) => {
                info!(
                    libraries = sensor.libraries_probed(),
                    "CUDA sensor ready (libraries found later are probed when seen)"
                );
                agent.cuda = Some(sensor);
            }
            Err(err) => warn!(sensor = "cuda", "off: {err:#}"),
        }
    }
    agent.sensors = loaded
        .sensors
        .iter()
        .map(|s| (s.sensor, s.state.is_available()))
        .collect();
    Ok(Built {
        loaded,
        rings,
        agent,
        work_done,
        telemetry,
        metrics: metrics_listener(options.metrics_listen).await,
    })
}

/// The findings writer: stdout and/or the rotating file.
fn line_writer(options: &RunOptions) -> Result<LineWriter> {
    let file = match &options.output_file {
        Some(path) => Some(
            RotatingFile::open(
                path,
                options.output_file_max_bytes,
                options.output_file_keep,
            )
            .with_context(|| format!("cannot open the findings file {}", path.display()))?,
        ),
        None => None,
    };
    LineWriter::start(options.stdout, file).context("cannot start the findings writer")
}

/// NVML, or a replayed trace; none without either.
fn telemetry_source(options: &RunOptions) -> Result<Option<Box<dyn TelemetrySource>>> {
    use crate::sensors::gpu::{nvml::NvmlSource, replay};
    Ok(match &options.gpu_replay {
        Some(path) => match replay::Replay::open(path, replay::Pace::Fast) {
            Ok(replay) => {
                info!(sensor = "gpu-telemetry", trace = %path.display(), "on: replaying a trace");
                Some(Box::new(replay))
            }
            Err(err) => bail!("--gpu-replay {}: {err}", path.display()),
        },
        None => match NvmlSource::open() {
            Ok(nvml) => {
                info!(
                    sensor = "gpu-telemetry",
                    devices = nvml.devices(),
                    "on: NVML"
                );
                Some(Box::new(nvml))
            }
            Err(why) => {
                warn!(sensor = "gpu-telemetry", "off: {why}");
                None
            }
        },
    })
}

/// A port taken (another agent, another exporter) costs the metrics, not
/// the agent.
async fn metrics_listener(addr: Option<std::net::SocketAddr>) -> Option<tokio::net::TcpListener> {
    let addr = addr?;
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            if let Ok(bound) = listener.local_addr() {
                info!(addr = %bound, "metrics at http://{bound}/metrics");
            }
            Some(listener)
        }
        Err(err) => {
            warn!("cannot listen for metrics on {addr}: {err}; metrics off");
            None
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// The enforcer, told where cgroup v2 is and where the agent itself lives
/// (never acted on).
fn enforcer(options: &RunOptions) -> Result<crate::enforce::Enforcer> {
    let mut enforce = options.enforce.clone();
    enforce.cgroup_root = crate::kernel::cgroup::cgroup2_mount().ok();
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
        });
    if enforce.mode == crate::enforce::Mode::Enforce && enforce.cgroup_root.is_none() {
        tracing::warn!("--enforce: cgroup v2 is not mounted; only kills by signal can be taken");
    }
    let rules = options.policy.enforce_rules().len();
    if rules > 0 {
        tracing::info!(
            rules,
            mode = enforce.mode.name(),
            own_cgroup = own.as_deref().unwrap_or("?"),
            "enforcement rules loaded"
        );
    }
    crate::enforce::Enforcer::new(enforce, own).map_err(anyhow::Error::msg)
}
