//! The SYNTHETIC replay fixtures in `tests/fixtures/gpu/`: how they are
//! made, and what the classifier makes of them.
//!
//! Each trace is two minutes of 1 Hz device samples with processes
//! enumerated every 10 s, shaped after docs/signatures.md's table (a
//! memory-hard miner, a training job, a bursty model server). They are
//! generated, not recorded: replace them with real recordings from a GPU
//! host when one is at hand. Regenerate with
//! `ASSAY_REGENERATE_GPU_FIXTURES=1 cargo test -p assay --lib gpu::fixtures`.

use std::{fs, path::PathBuf, time::Duration};

use assay_classify::gpu::{
    classify::{CudaActivity, GpuClass, KernelLaunches, MappedLibraries, classify},
    window::TelemetryWindow,
};

use super::{
    replay::{Pace, Replay},
    telemetry::{DeviceSample, Poll, ProcessSample, Recorder, TelemetrySource},
};

/// 2026-01-01T00:00:00Z.
const T0_MS: u64 = 1_767_225_600_000;
const SECONDS: u64 = 120;
const GB: u64 = 1_000_000_000;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/gpu")
}

/// A small deterministic generator (xorshift64), so that the fixtures are
/// the same on every run.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn int(&mut self, lo: u32, hi: u32) -> u32 {
        lo + u32::try_from(self.next() % u64::from(hi - lo + 1)).unwrap_or(0)
    }
}

/// One second of a device.
struct Second {
    gpu: u32,
    mem: u32,
    used: u64,
    power_mw: u32,
    sm_clock: u32,
    tx: u32,
    rx: u32,
}

struct Shape {
    name: &'static str,
    uuid: &'static str,
    board: &'static str,
    mem_total: u64,
    power_limit_mw: u32,
    pid: u32,
    seed: u64,
    second: fn(u64, &mut Noise) -> Second,
}

/// An ethash-class miner: GPU and memory utilisation pinned, the DAG's
/// memory static, PCIe idle, power held under a lowered limit.
fn mining(_s: u64, n: &mut Noise) -> Second {
    Second {
        gpu: n.int(99, 100),
        mem: n.int(96, 98),
        used: 5_600_000_000 + n.range(0, 4) * 1_048_576,
        power_mw: n.int(218_000, 226_000),
        sm_clock: n.int(1_395, 1_410),
        tx: n.int(2, 12),
        rx: n.int(1, 8),
    }
}

/// A training job: busy throughout with a dip every 30 s (evaluation,
/// checkpoint), memory utilisation varying by phase, memory growing then
/// freed, PCIe carrying batches.
fn training(s: u64, n: &mut Noise) -> Second {
    let dip = s % 30 >= 27;
    Second {
        gpu: if dip { n.int(40, 60) } else { n.int(88, 100) },
        mem: if dip { n.int(10, 25) } else { n.int(30, 60) },
        used: 50 * GB + (s % 40) * 600_000_000 + n.range(0, 100) * 1_000_000,
        power_mw: if dip {
            n.int(180_000, 250_000)
        } else {
            n.int(300_000, 395_000)
        },
        sm_clock: n.int(1_275, 1_410),
        tx: n.int(20_000, 100_000),
        rx: if dip {
            n.int(5_000, 20_000)
        } else {
            n.int(300_000, 1_500_000)
        },
    }
}

/// A model server: requests in bursts, idle between; the model's memory
/// static.
fn inference(s: u64, n: &mut Noise) -> Second {
    let busy = s % 10 < 3 || (s % 17 == 5);
    Second {
        gpu: if busy { n.int(40, 90) } else { n.int(0, 2) },
        mem: if busy { n.int(20, 50) } else { 0 },
        used: 14_500_000_000 + n.range(0, 8) * 1_048_576,
        power_mw: if busy {
            n.int(45_000, 70_000)
        } else {
            n.int(16_000, 19_000)
        },
        sm_clock: if busy {
            n.int(1_800, 2_040)
        } else {
            n.int(210, 300)
        },
        tx: if busy {
            n.int(2_000, 10_000)
        } else {
            n.int(0, 40)
        },
        rx: if busy {
            n.int(5_000, 40_000)
        } else {
            n.int(0, 40)
        },
    }
}

const SHAPES: [Shape; 3] = [
    Shape {
        name: "mining",
        uuid: "GPU-SYNTHETIC-0001",
        board: "NVIDIA GeForce RTX 3090",
        mem_total: 25_769_803_776,
        power_limit_mw: 250_000,
        pid: 31_337,
        seed: 0x6d69_6e65,
        second: mining,
    },
    Shape {
        name: "training",
        uuid: "GPU-SYNTHETIC-0002",
        board: "NVIDIA A100-SXM4-80GB",
        mem_total: 85_899_345_920,
        power_limit_mw: 400_000,
        pid: 4_242,
        seed: 0x7472_6169,
        second: training,
    },
    Shape {
        name: "inference",
        uuid: "GPU-SYNTHETIC-0003",
        board: "NVIDIA L4",
        mem_total: 24_152_899_584,
        power_limit_mw: 72_000,
        pid: 777,
        seed: 0x696e_6665,
        second: inference,
    },
];

/// The trace of one shape, as the recorder writes it.
fn generate(shape: &Shape) -> String {
    let mut noise = Noise(shape.seed);
    let mut recorder = Recorder::new(Vec::new());
    for s in 0..SECONDS {
        let t_ms = T0_MS + s * 1000;
        let Second {
            gpu,
            mem,
            used,
            power_mw,
            sm_clock,
            tx,
            rx,
        } = (shape.second)(s, &mut noise);
        let device = DeviceSample {
            t_ms,
            index: 0,
            uuid: shape.uuid.to_owned(),
            name: shape.board.to_owned(),
            gpu_util_pct: Some(gpu),
            mem_util_pct: Some(mem),
            mem_used_bytes: Some(used),
            mem_total_bytes: Some(shape.mem_total),
            power_mw: Some(power_mw),
            power_limit_mw: Some(shape.power_limit_mw),
            sm_clock_mhz: Some(sm_clock),
            mem_clock_mhz: Some(if shape.name == "mining" { 9_501 } else { 1_593 }),
            pcie_tx_kbps: Some(tx),
            pcie_rx_kbps: Some(rx),
        };
        let processes = (s % 10 == 0).then(|| {
            vec![ProcessSample {
                t_ms,
                device_index: 0,
                pid: shape.pid,
                // The context and the driver's own reservations are not
                // the process's.
                used_mem_bytes: Some(used.saturating_sub(300_000_000)),
                sm_util_pct: Some(gpu),
                mem_util_pct: Some(mem),
            }]
        });
        recorder
            .write(&Poll {
                devices: vec![device],
                processes,
            })
            .unwrap();
    }
    String::from_utf8(recorder.into_inner()).unwrap()
}

fn replay_window(name: &str) -> (TelemetryWindow, u64) {
    let path = dir().join(format!("{name}.jsonl"));
    let mut replay =
        Replay::open(&path, Pace::Fast).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut window = TelemetryWindow::new(Duration::from_secs(SECONDS));
    let mut polls = 0;
    while let Some(poll) = replay.poll().unwrap() {
        window.push(&poll);
        polls += 1;
    }
    assert_eq!(replay.stats().malformed, 0);
    (window, polls)
}

/// The fixtures are the generator's output. After changing the generator,
/// run this test with `ASSAY_REGENERATE_GPU_FIXTURES=1` to rewrite them.
#[test]
fn the_fixtures_are_what_the_generator_writes() {
    let regenerate = std::env::var_os("ASSAY_REGENERATE_GPU_FIXTURES").is_some();
    for shape in &SHAPES {
        let path = dir().join(format!("{}.jsonl", shape.name));
        if regenerate {
            fs::write(&path, generate(shape)).unwrap();
        }
        let on_disk = fs::read_to_string(&path).unwrap();
        assert!(
            on_disk == generate(shape),
            "{} differs from the generator: rerun this test with ASSAY_REGENERATE_GPU_FIXTURES=1",
            path.display()
        );
    }
}

#[test]
fn telemetry_alone_from_each_trace_gives_at_most_a_weak_lean() {
    let pid = |name: &str| SHAPES.iter().find(|s| s.name == name).unwrap().pid;
    for (name, lean) in [
        ("mining", GpuClass::PowMining),
        ("training", GpuClass::AiTraining),
        ("inference", GpuClass::AiInference),
    ] {
        let (window, polls) = replay_window(name);
        assert_eq!(polls, SECONDS, "{name}");
        let summary = window.summary(pid(name)).unwrap();
        assert_eq!(summary.device.samples, SECONDS as usize);
        let v = classify(&CudaActivity::default(), Some(&summary));
        assert_eq!(v.class, lean, "{name}: {v:#?}");
        assert!(!v.decisive, "{name}");
        assert!(
            v.strength > 0.0
                && v.strength <= assay_classify::gpu::classify::TELEMETRY_ONLY_MAX_STRENGTH,
            "{name}: {v:#?}"
        );
        // The device view without the process says no more.
        let device_only = classify(&CudaActivity::default(), window.device_summary(0).as_ref());
        assert!(!device_only.decisive);
        assert!(device_only.strength <= assay_classify::gpu::classify::TELEMETRY_ONLY_MAX_STRENGTH);
    }
}

#[test]
fn the_mining_trace_with_a_kawpow_launch_pattern_is_decisive() {
    let (window, _) = replay_window("mining");
    let activity = CudaActivity {
        window_s: 5.0,
        launches: 4_000,
        distinct_kernels: 1,
        kernels: vec![KernelLaunches {
            name: "progpow_search".into(),
            launches: 4_000,
        }],
        distinct_launch_shapes: 1,
        runtime_compiles: 1,
        modules_loaded: 1,
        libraries: MappedLibraries {
            libcuda: true,
            nvrtc: true,
            ..MappedLibraries::default()
        },
        ..CudaActivity::default()
    };
    let v = classify(&activity, window.summary(31_337).as_ref());
    assert_eq!(v.class, GpuClass::PowMining);
    assert!(v.decisive, "{v:#?}");
}

#[test]
fn the_benign_traces_never_make_a_miner_of_a_training_loop() {
    for (name, pid) in [("training", 4_242), ("inference", 777)] {
        let (window, _) = replay_window(name);
        let activity = CudaActivity {
            window_s: 5.0,
            launches: 50_000,
            distinct_kernels: 180,
            kernels: vec![KernelLaunches {
                name: "void at::native::vectorized_elementwise_kernel<4>".into(),
                launches: 49_000,
            }],
            distinct_launch_shapes: 90,
            shape_changes: 20_000,
            busy_slices: 10,
            slices: 10,
            libraries: MappedLibraries {
                libcuda: true,
                cublas: true,
                torch: true,
                ..MappedLibraries::default()
            },
            ..CudaActivity::default()
        };
        let v = classify(&activity, window.summary(pid).as_ref());
        assert_ne!(v.class, GpuClass::PowMining, "{name}: {v:#?}");
    }
}
