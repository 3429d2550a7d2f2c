#![allow(clippy::print_stderr, reason = "test output")]
//! End to end without a GPU: real uprobes on the stand-in CUDA driver and
//! NVRTC libraries (tests/fake-cuda), programs that use them like a miner,
//! a trainer and an inference server, and the agent's duty-cycled launch
//! probes: the GPU classifier tells them apart, and only the miner is
//! pow-mining.

use std::{
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::{Child, Command},
    time::Duration,
};

use assay_tests::{Agent, TempDir, TestCgroup, finding_pid, gpu_emulator, require_root};
use serde_json::Value;

fn start(cgroup: &TestCgroup, pattern: &str, seconds: f64) -> (Child, u32) {
    start_command(cgroup, pattern, gpu_emulator(pattern, seconds))
}

fn start_command(cgroup: &TestCgroup, pattern: &str, command: Command) -> (Child, u32) {
    let mut child = cgroup.spawn(command);
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .expect("emulator output");
    assert_eq!(line.trim(), format!("ready {pid}"), "{pattern}");
    (child, pid)
}

fn gpu_evidence<'a>(finding: &'a Value, kind: &str) -> Option<&'a Value> {
    finding["evidence"]
        .as_array()?
        .iter()
        .find(|e| e["kind"] == kind)
}

/// An agent probing the stand-in CUDA driver and NVRTC, with launch windows
/// of 1 s every 2 s.
fn agent_probing_the_stand_in_driver(cgroup: &TestCgroup) -> Agent {
    Agent::start_on_stand_in_driver(cgroup, &[])
}

#[test]
fn the_gpu_classifier_tells_a_miner_from_training_and_inference() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("gpu");
    let mut agent = agent_probing_the_stand_in_driver(&cgroup);
    // Probed before "agent ready", which Agent::start waited for.
    assert!(
        agent.logs_text().contains("CUDA probes attached"),
        "the agent did not probe the stand-in driver"
    );
    let (mut miner, miner_pid) = start(&cgroup, "miner", 20.0);
    let (mut training, training_pid) = start(&cgroup, "training", 20.0);
    let (mut inference, inference_pid) = start(&cgroup, "inference", 20.0);

    let for_pid = |pid: u32, class: &'static str| {
        move |f: &Value| finding_pid(f) == Some(u64::from(pid)) && f["class"] == class
    };
    let mined = agent
        .wait_for_finding(Duration::from_secs(20), for_pid(miner_pid, "pow-mining"))
        .unwrap_or_else(|| panic!("the miner was not judged pow-mining: {:?}", agent.seen));
    let evidence = gpu_evidence(&mined, "gpu.hashing").expect("gpu.hashing evidence");
    assert!(
        evidence["attributes"]["kernels"][0]["name"] == "search",
        "{evidence}"
    );
    assert!(
        evidence["attributes"]["runtime_compiles"].as_u64() >= Some(1),
        "{evidence}"
    );
    assert!(
        matches!(mined["level"].as_str(), Some("suspected" | "confirmed")),
        "{mined}"
    );
    let trained = agent
        .wait_for_finding(
            Duration::from_secs(20),
            for_pid(training_pid, "ai-training"),
        )
        .unwrap_or_else(|| panic!("the trainer was not judged ai-training: {:?}", agent.seen));
    assert!(
        gpu_evidence(&trained, "gpu.training").is_some(),
        "{trained}"
    );
    let inferred = agent
        .wait_for_finding(
            Duration::from_secs(20),
            for_pid(inference_pid, "ai-inference"),
        )
        .unwrap_or_else(|| {
            panic!(
                "the inference server was not judged ai-inference: {:?}",
                agent.seen
            )
        });
    assert!(
        gpu_evidence(&inferred, "gpu.inference").is_some(),
        "{inferred}"
    );

    for finding in [&mined, &trained, &inferred] {
        eprintln!("{}: {}", finding["level"], finding["explanation"]);
        for e in finding["evidence"].as_array().into_iter().flatten() {
            eprintln!("  {}", e["attributes"]["reasons"]);
        }
    }
    for child in [&mut miner, &mut training, &mut inference] {
        let _ = child.kill();
        let _ = child.wait();
    }
    // Stopping them resolves each verdict; each opened exactly once.
    for (pid, class) in [
        (miner_pid, "pow-mining"),
        (training_pid, "ai-training"),
        (inference_pid, "ai-inference"),
    ] {
        let of = |f: &Value| finding_pid(f) == Some(u64::from(pid)) && f["class"] == class;
        assert!(
            agent
                .wait_for_finding(Duration::from_secs(5), |f| of(f)
                    && f["event"] == "verdict.resolved")
                .is_some(),
            "{class} verdict of {pid} not resolved: {:?}",
            agent.seen
        );
        let opened = agent
            .seen
            .iter()
            .filter(|f| of(f) && f["event"] == "verdict.opened")
            .count();
        assert_eq!(opened, 1, "{class} of {pid}: {:?}", agent.seen);
    }
    for pid in [training_pid, inference_pid] {
        assert!(
            !agent
                .seen
                .iter()
                .any(|f| finding_pid(f) == Some(u64::from(pid)) && f["class"] == "pow-mining"),
            "AI work made a pow-mining finding: {:?}",
            agent.seen
        );
    }
}

/// A shared library of this machine that is no GPU library: the C library
/// this test runs on.
fn some_shared_library() -> PathBuf {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.contains("/libc.so") || p.contains("/libc-"))
        .map(PathBuf::from)
        .expect("this test maps libc")
}

#[test]
fn a_miner_mapping_files_named_like_deep_learning_libraries_is_still_a_miner() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("gpu-decoy");
    let mut agent = agent_probing_the_stand_in_driver(&cgroup);
    // Files named as cuBLAS, cuDNN and NCCL are, that are not: copies of
    // the C library, mapped (never loaded) by the miner.
    let decoys = TempDir::new("decoys");
    let mut command = gpu_emulator("miner", 20.0);
    for name in ["libcublas.so.12", "libcudnn.so.9", "libnccl.so.2"] {
        let path = decoys.0.join(name);
        std::fs::copy(some_shared_library(), &path).unwrap();
        command.arg("--decoy").arg(&path);
    }
    let (mut miner, pid) = start_command(&cgroup, "miner", command);
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    assert!(maps.contains("/libcublas.so.12"), "{maps}");

    let mined = agent
        .wait_for_finding(Duration::from_secs(20), |f| {
            finding_pid(f) == Some(u64::from(pid)) && f["class"] == "pow-mining"
        })
        .unwrap_or_else(|| panic!("the disguised miner was not pow-mining: {:?}", agent.seen));
    assert!(
        matches!(mined["level"].as_str(), Some("suspected" | "confirmed")),
        "{mined}"
    );
    let evidence = gpu_evidence(&mined, "gpu.hashing").expect("gpu.hashing evidence");
    let attributes = &evidence["attributes"];
    for library in ["cublas", "cudnn", "nccl"] {
        assert_eq!(attributes["libraries"][library], false, "{evidence}");
    }
    assert_eq!(attributes["libraries"]["unidentified"], 3, "{evidence}");
    assert_eq!(
        attributes["unidentified_libraries"],
        serde_json::json!(["libcublas.so.12", "libcudnn.so.9", "libnccl.so.2"]),
        "{evidence}"
    );
    assert!(
        !agent
            .seen
            .iter()
            .any(|f| finding_pid(f) == Some(u64::from(pid))
                && f["class"].as_str().is_some_and(|c| c.starts_with("ai-"))),
        "the disguise made an AI finding: {:?}",
        agent.seen
    );
    let _ = miner.kill();
    let _ = miner.wait();
    // Three distinct files parsed and found to be none of what they are
    // named (parsed once each, however often the windows read them).
    agent.stop_with(libc::SIGTERM);
    assert_eq!(agent.summary_field("gpu_libraries_unidentified"), 3);
}

/// A recorded trace with its pid rewritten to a live stand-in process.
fn trace_for(
    fixture: &str,
    recorded_pid: u32,
    pid: u32,
    dir: &std::path::Path,
) -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/gpu")
        .join(fixture);
    let text = std::fs::read_to_string(&path).unwrap();
    let out = dir.join(fixture);
    std::fs::write(
        &out,
        text.replace(
            &format!("\"pid\":{recorded_pid},"),
            &format!("\"pid\":{pid},"),
        ),
    )
    .unwrap();
    out
}

#[test]
fn replayed_telemetry_alone_leans_weakly_and_never_confirms() {
    if !require_root() {
        return;
    }
    let dir = assay_tests::TempDir::new("gpu-replay");
    let cgroup = TestCgroup::new("gpu-replay");
    // A process stands in for the one the trace recorded on the GPU.
    let mut miner = cgroup.spawn({
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("60");
        cmd
    });
    let pid = miner.id();
    let trace = trace_for("mining.jsonl", 31337, pid, &dir.0);
    let mut agent = Agent::start_with(&cgroup, &["--gpu-replay", trace.to_str().unwrap()]);
    let finding = agent
        .wait_for_finding(Duration::from_secs(30), |f| {
            finding_pid(f) == Some(u64::from(pid))
        })
        .unwrap_or_else(|| {
            panic!(
                "no finding from the replayed mining trace: {:?}",
                agent.seen
            )
        });
    assert_eq!(finding["class"], "pow-mining", "{finding}");
    assert_eq!(
        finding["level"], "observed",
        "telemetry alone is a lean: {finding}"
    );
    let evidence = gpu_evidence(&finding, "gpu.hashing").expect("gpu.hashing evidence");
    assert_eq!(evidence["decisive"], false, "{evidence}");
    let _ = miner.kill();
    let _ = miner.wait();
}
