//! Harness for assay's privileged end-to-end suites.
//!
//! The suites load the real eBPF programs (by running the real `assay`
//! binary as root), scope it to a test cgroup, start real processes in that
//! cgroup, and read the findings the agent writes on stdout. Waiting is
//! always for an event with a deadline, never a sleep that hopes.

#![allow(
    clippy::print_stderr,
    reason = "test harness output is for the person reading the test log"
)]

use std::{
    collections::VecDeque,
    env, fs,
    io::{BufRead, BufReader, Write as _},
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, ExitStatus, Stdio},
    sync::{
        atomic::{AtomicU32, Ordering},
        mpsc::{self, Receiver, RecvTimeoutError},
    },
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

/// True when the privileged suites can run. Without root they are skipped
/// locally, and fail in CI (where `CI` is set): a privileged test that does
/// not run protects nothing.
pub fn require_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(
        env::var_os("CI").is_none(),
        "privileged test needs root and CI is set: it may not be skipped"
    );
    eprintln!("skipped: needs root (run `sudo -E cargo xtask test`)");
    false
}

/// The agent binary under test: `ASSAY_BIN` (set by `cargo xtask test`).
pub fn agent_binary() -> PathBuf {
    let path = env::var_os("ASSAY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/assay"));
    assert!(
        path.exists(),
        "agent binary {} not found: run the suites through `cargo xtask test`",
        path.display()
    );
    path
}

/// One of this package's binaries, which cargo builds next to the test
/// executables' directory (target/<profile>/).
fn package_binary(name: &str) -> Command {
    let test_exe = env::current_exe().expect("test executable path");
    let profile_dir = test_exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let path = profile_dir.join(name);
    assert!(path.exists(), "{} not built", path.display());
    Command::new(path)
}

/// The workload emulators (`assay-emu`).
pub fn emulator() -> Command {
    package_binary("assay-emu")
}

/// Where `assay-emu` is (to copy it under another name).
pub fn emulator_path() -> PathBuf {
    PathBuf::from(emulator().get_program())
}

/// The benchmark and benign-load workloads (`assay-load`).
pub fn load_workload(workload: &str, seconds: u32) -> Command {
    let mut cmd = package_binary("assay-load");
    cmd.args([workload, &seconds.to_string()])
        .stdout(Stdio::null());
    cmd
}

/// A cgroup v2 directory of its own for one test; processes started with
/// [`TestCgroup::spawn`] live in it. Removed (its processes killed) on drop.
pub struct TestCgroup {
    pub path: PathBuf,
}

impl TestCgroup {
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let root = assay::kernel::cgroup::cgroup2_mount().expect("cgroup v2");
        let path = root.join(format!(
            "assay-test-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        Self { path }
    }

    /// A cgroup below this one, named exactly `name` (a container runtime's
    /// scope, say). Declare it after its parent, so that it is dropped (and
    /// removed) first.
    pub fn nested(&self, name: &str) -> Self {
        let path = self.path.join(name);
        fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        Self { path }
    }

    /// Moves a running process into this cgroup.
    pub fn adopt(&self, pid: u32) {
        fs::write(self.path.join("cgroup.procs"), pid.to_string())
            .unwrap_or_else(|e| panic!("move {pid} to {}: {e}", self.path.display()));
    }

    /// Starts `cmd` inside this cgroup as the leader of a new session (so
    /// that it is a workload of its own, like a miner started from its own
    /// shell or service).
    pub fn spawn(&self, mut cmd: Command) -> Child {
        let procs = std::ffi::CString::new(
            self.path
                .join("cgroup.procs")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .unwrap();
        // SAFETY: the closure runs between fork and exec and only calls
        // async-signal-safe functions (setsid, open, write, close).
        unsafe {
            cmd.pre_exec(move || {
                libc::setsid();
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
                if written != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.spawn().expect("spawn test workload")
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // A test that failed may leave it frozen (by an agent killed
        // before it could thaw): thawed first, so that nothing killed
        // lingers on a kernel that delivers the kill only once thawed.
        let _ = fs::write(self.path.join("cgroup.freeze"), "0");
        let _ = fs::write(self.path.join("cgroup.kill"), "1");
        let deadline = Instant::now() + Duration::from_secs(5);
        while fs::remove_dir(&self.path).is_err() && Instant::now() < deadline {
            if let Ok(procs) = fs::read_to_string(self.path.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|l| l.parse::<i32>().ok()) {
                    // SAFETY: kill has no memory-safety preconditions.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A server emulator on an ephemeral loopback port.
pub struct Server {
    child: Child,
    pub addr: String,
}

impl Server {
    /// `assay-emu pool` or `assay-emu server`, outside any test cgroup (it
    /// plays the remote end).
    pub fn start(kind: &str) -> Self {
        let mut child = emulator()
            .arg(kind)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start server emulator");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .expect("server port");
        let port = line
            .strip_prefix("listening ")
            .and_then(|p| p.trim().parse::<u16>().ok())
            .unwrap_or_else(|| panic!("unexpected server output {line:?}"));
        Self {
            child,
            addr: format!("127.0.0.1:{port}"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The agent under test, scoped to one cgroup, its findings and logs
/// collected by reader threads.
pub struct Agent {
    child: Child,
    findings: Receiver<Value>,
    logs: Receiver<String>,
    /// Findings received so far, oldest first.
    pub seen: Vec<Value>,
    pub log_lines: VecDeque<String>,
}

impl Agent {
    /// Starts the agent and waits until it says it is ready (programs
    /// attached, /proc scanned).
    pub fn start(cgroup: &TestCgroup) -> Self {
        Self::start_with(cgroup, &[])
    }

    pub fn start_with(cgroup: &TestCgroup, extra: &[&str]) -> Self {
        Self::start_command(Command::new(agent_binary()), cgroup, extra)
    }

    /// Started with `extra` and probing the stand-in CUDA libraries
    /// ([`fake_cuda_dir`]), launches counted in 1 s windows every 2 s.
    pub fn start_on_stand_in_driver(cgroup: &TestCgroup, extra: &[&str]) -> Self {
        let libs = fake_cuda_dir();
        let cuda = libs.join("libcuda.so.1");
        let nvrtc = libs.join("libnvrtc.so.12");
        let mut args = extra.to_vec();
        args.extend([
            "--cuda-library",
            cuda.to_str().unwrap(),
            "--cuda-library",
            nvrtc.to_str().unwrap(),
            "--launch-window-ms",
            "1000",
            "--launch-period-ms",
            "2000",
        ]);
        Self::start_with(cgroup, &args)
    }

    /// The agent run through `wrapper` (e.g. `setpriv` with its arguments).
    pub fn start_wrapped(
        cgroup: &TestCgroup,
        wrapper: &str,
        wrapper_args: &[String],
        extra: &[&str],
    ) -> Self {
        let mut cmd = Command::new(wrapper);
        cmd.args(wrapper_args).arg(agent_binary());
        Self::start_command(cmd, cgroup, extra)
    }

    fn start_command(mut cmd: Command, cgroup: &TestCgroup, extra: &[&str]) -> Self {
        // The suites read assay's own finding shape unless they ask for
        // another.
        if !extra.contains(&"--format") {
            cmd.args(["--format", "native"]);
        }
        let mut child = cmd
            .arg("--cgroup")
            .arg(&cgroup.path)
            .args(extra)
            .env("ASSAY_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start agent");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (finding_tx, findings) = mpsc::channel();
        let (log_tx, logs) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
                    panic!("agent wrote a non-JSON finding line {line:?}: {e}")
                });
                if finding_tx.send(value).is_err() {
                    break;
                }
            }
        });
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if log_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut agent = Self {
            child,
            findings,
            logs,
            seen: Vec::new(),
            log_lines: VecDeque::new(),
        };
        agent
            .wait_for_log("agent ready", Duration::from_secs(30))
            .unwrap_or_else(|| panic!("agent did not become ready; logs:\n{}", agent.logs_text()));
        agent
    }

    /// Waits for a log line containing `needle`.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.logs.recv_timeout(left) {
                Ok(line) => {
                    eprintln!("agent: {line}");
                    self.log_lines.push_back(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    pub fn logs_text(&mut self) -> String {
        while let Ok(line) = self.logs.try_recv() {
            self.log_lines.push_back(line);
        }
        Vec::from(self.log_lines.clone()).join("\n")
    }

    /// Waits for a finding that satisfies `matches`; earlier findings are
    /// kept in [`Agent::seen`].
    pub fn wait_for_finding(
        &mut self,
        timeout: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        if let Some(found) = self.seen.iter().find(|f| matches(f)) {
            return Some(found.clone());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.findings.recv_timeout(left) {
                Ok(finding) => {
                    eprintln!("finding: {finding}");
                    self.seen.push(finding.clone());
                    if matches(&finding) {
                        return Some(finding);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// Stops the agent with `signal` and waits for it; returns its status
    /// and collects everything it still wrote.
    pub fn stop_with(&mut self, signal: i32) -> ExitStatus {
        self.stop_timed(signal).0
    }

    /// Stops the agent with `signal`; also says how long it took to exit.
    pub fn stop_timed(&mut self, signal: i32) -> (ExitStatus, Duration) {
        let sent = Instant::now();
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        let status = self.child.wait().expect("wait for agent");
        let took = sent.elapsed();
        while let Ok(finding) = self.findings.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(finding);
        }
        let _ = self.logs_text();
        (status, took)
    }

    /// A number from the agent's exit summary ("detached; bye … name=N"),
    /// once it has stopped.
    pub fn summary_field(&mut self, name: &str) -> u64 {
        let logs = self.logs_text();
        let bye = logs
            .lines()
            .find(|l| l.contains("detached; bye"))
            .unwrap_or_else(|| panic!("no exit summary in the agent's logs:\n{logs}"));
        bye.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from {bye}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Agent {
    /// A test that ends without stopping the agent (it failed) stops it
    /// as an operator would, so that its exit path undoes what it
    /// enforced: a SIGKILL would leave a frozen cgroup frozen under the
    /// test cgroups' own cleanup. SIGKILL only if it does not exit.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The process id a finding names.
pub fn finding_pid(finding: &Value) -> Option<u64> {
    finding["process"]["pid"].as_u64()
}

/// Writes a line to a child's stdin (to release a `--wait-stdin` emulator).
pub fn release(stdin: &mut ChildStdin) {
    stdin.write_all(b"go\n").expect("release the emulator");
    stdin.flush().unwrap();
}

/// Names of the eBPF programs the kernel has loaded now.
pub fn loaded_program_names() -> Vec<String> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter_map(|p| p.name_as_str().map(str::to_owned))
        .collect()
}

/// Names of the BPF maps the kernel holds now.
pub fn loaded_map_names() -> Vec<String> {
    aya::maps::loaded_maps()
        .filter_map(Result::ok)
        .filter_map(|m| m.name_as_str().map(str::to_owned))
        .collect()
}

/// Ids of the BPF links the kernel holds now.
pub fn loaded_link_ids() -> Vec<u32> {
    aya::programs::loaded_links()
        .filter_map(Result::ok)
        .map(|link| link.id())
        .collect()
}

/// A loopback TCP port free at the time of the call (for programs that
/// cannot listen on port 0 and say which port they got).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills and reaps a child when the test ends, passed or not: for what a
/// test starts outside its cgroup (a server, a peer), which the cgroup's
/// own clean-up does not reach.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory of its own under the temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "assay-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The stand-in CUDA libraries and the names they are copied to.
const FAKE_CUDA_LIBRARIES: [(&str, &str, &str); 5] = [
    ("assay-fake-cuda", "libassay_fake_cuda.so", "libcuda.so.1"),
    (
        "assay-fake-nvrtc",
        "libassay_fake_nvrtc.so",
        "libnvrtc.so.12",
    ),
    (
        "assay-fake-cublas",
        "libassay_fake_cublas.so",
        "libcublas.so.12",
    ),
    (
        "assay-fake-cudnn",
        "libassay_fake_cudnn.so",
        "libcudnn.so.9",
    ),
    ("assay-fake-nccl", "libassay_fake_nccl.so", "libnccl.so.2"),
];

/// A directory holding the stand-in CUDA libraries (tests/fake-cuda/) under
/// the real libraries' file names: `libcuda.so.1`, `libnvrtc.so.12`,
/// `libcublas.so.12`, `libcudnn.so.9`, `libnccl.so.2`, in
/// `<target>/fake-cuda/`.
///
/// Builds them first (`cargo build --release -p assay-fake-…`, quick when
/// they are up to date; release whatever the tests' profile, so that every
/// caller gets the same files). They are copies, not links, so that
/// `/proc/<pid>/maps` shows the real names; a copy is replaced (by rename,
/// never rewritten in place) only when the built library changed, so the
/// files keep their inodes, which uprobes are keyed by, from run to run.
pub fn fake_cuda_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(install_fake_cuda).clone()
}

/// The cargo target directory this test executable was built in (the
/// one holding `CACHEDIR.TAG`, above `<profile>/` and any `<triple>/`).
fn target_dir() -> PathBuf {
    let exe = env::current_exe().expect("test executable path");
    exe.ancestors()
        .skip(1)
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| panic!("no cargo target directory above {}", exe.display()))
}

fn install_fake_cuda() -> PathBuf {
    let target = target_dir();
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut build = Command::new(&cargo);
    build
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target);
    for (package, _, _) in FAKE_CUDA_LIBRARIES {
        build.args(["--package", package]);
    }
    let built = target.join("release");
    match build.status() {
        Ok(status) if status.success() => {}
        outcome => {
            let all_there = FAKE_CUDA_LIBRARIES
                .iter()
                .all(|(_, file, _)| built.join(file).is_file());
            assert!(
                all_there,
                "building the stand-in CUDA libraries failed ({outcome:?}) and they are not \
                 in {}: run `cargo build --release -p assay-fake-cuda -p assay-fake-nvrtc \
                 -p assay-fake-cublas -p assay-fake-cudnn -p assay-fake-nccl`",
                built.display()
            );
            eprintln!(
                "building the stand-in CUDA libraries failed ({outcome:?}); using those in {}",
                built.display()
            );
        }
    }
    let dir = target.join("fake-cuda");
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    for (_, file, name) in FAKE_CUDA_LIBRARIES {
        let source = built.join(file);
        let bytes = fs::read(&source).unwrap_or_else(|e| panic!("read {}: {e}", source.display()));
        let dest = dir.join(name);
        if fs::read(&dest).is_ok_and(|old| old == bytes) {
            continue;
        }
        let staged = dir.join(format!(".{name}.{}", std::process::id()));
        fs::copy(&source, &staged).unwrap_or_else(|e| panic!("copy to {}: {e}", staged.display()));
        fs::rename(&staged, &dest).unwrap_or_else(|e| panic!("rename to {}: {e}", dest.display()));
    }
    dir
}

/// The GPU workload emulator (`assay-gpu-emu`) in one pattern (`miner`,
/// `training`, `inference`, `launch-loop`) for `seconds`, on the stand-in
/// CUDA libraries, its stdout piped.
pub fn gpu_emulator(pattern: &str, seconds: f64) -> Command {
    let mut cmd = package_binary("assay-gpu-emu");
    cmd.arg("--lib-dir")
        .arg(fake_cuda_dir())
        .args(["--pattern", pattern, "--seconds", &seconds.to_string()])
        .stdout(Stdio::piped());
    cmd
}

/// A real NATS server with JetStream on disk (Debian's nats-server).
pub struct NatsServer(Child);

impl NatsServer {
    pub fn start(port: u16, store: &std::path::Path) -> Self {
        let child = Command::new("/usr/sbin/nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string()])
            .arg("-sd")
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        Self(child)
    }

    /// A graceful stop (SIGTERM): what a restart does.
    pub fn stop(mut self) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every message in the ASSAY stream: finding uid → how many times.
pub fn stream_contents(port: u16) -> Option<std::collections::HashMap<String, usize>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    runtime.block_on(async {
        let client = async_nats::connect(format!("nats://127.0.0.1:{port}"))
            .await
            .ok()?;
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream("ASSAY").await.ok()?;
        let last = stream.info().await.ok()?.state.last_sequence;
        let mut counts = std::collections::HashMap::new();
        for seq in 1..=last {
            let Ok(message) = stream.get_raw_message(seq).await else {
                continue;
            };
            let finding: serde_json::Value = serde_json::from_slice(&message.payload).ok()?;
            // An OCSF line names itself in metadata.uid; a native one by
            // its id and event, which is the same string.
            let uid = match finding["metadata"]["uid"].as_str() {
                Some(uid) => uid.to_owned(),
                None => format!(
                    "{}:{}",
                    finding["id"].as_str().unwrap_or_default(),
                    finding["event"].as_str().unwrap_or_default()
                ),
            };
            *counts.entry(uid).or_insert(0) += 1;
        }
        Some(counts)
    })
}

/// The subjects of every message in the ASSAY stream, in order.
pub fn stream_subjects(port: u16) -> Vec<String> {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    runtime.block_on(async {
        let Ok(client) = async_nats::connect(format!("nats://127.0.0.1:{port}")).await else {
            return Vec::new();
        };
        let js = async_nats::jetstream::new(client);
        let Ok(mut stream) = js.get_stream("ASSAY").await else {
            return Vec::new();
        };
        let last = match stream.info().await {
            Ok(info) => info.state.last_sequence,
            Err(_) => return Vec::new(),
        };
        let mut subjects = Vec::new();
        for seq in 1..=last {
            if let Ok(message) = stream.get_raw_message(seq).await {
                subjects.push(message.subject.to_string());
            }
        }
        subjects
    })
}

/// A predicate on findings: about the process `pid`.
pub fn is_for(pid: u32) -> impl Fn(&serde_json::Value) -> bool {
    move |f| finding_pid(f) == Some(u64::from(pid))
}

/// `python` if it imports `modules` (`HOME` set to `home` where given: a
/// package may write there on import); None without, a skip that says
/// `missing`, or a failure under CI.
pub fn python_importing(
    python: PathBuf,
    modules: &str,
    home: Option<&Path>,
    missing: &str,
) -> Option<PathBuf> {
    let mut check = Command::new(&python);
    check.args(["-c", &format!("import {modules}")]);
    if let Some(home) = home {
        check.env("HOME", home);
    }
    let ready = check
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ready {
        return Some(python);
    }
    assert!(env::var_os("CI").is_none(), "{missing}");
    eprintln!("skipping: {missing}");
    None
}

/// What a fixture that serves prints first, `listening <what>`: `<what>`
/// (a port, an address), read from its piped stdout. The test fails,
/// saying what `who` printed instead, without it.
pub fn listening(child: &mut Child, who: &str) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("{who} said {line:?}"))
        .to_owned()
}

/// Whether a finding's explanation says each of `words`.
pub fn explains(finding: &serde_json::Value, words: &[&str]) -> bool {
    finding["explanation"]
        .as_str()
        .is_some_and(|e| words.iter().all(|w| e.contains(w)))
}

/// The kinds of a finding's evidence, in order.
pub fn evidence_kinds(finding: &serde_json::Value) -> Vec<String> {
    finding["evidence"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|e| e["kind"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A self-signed P-256 certificate for `cn` and its key, written into
/// `dir` by openssl: (certificate, key).
pub fn self_signed_cert(dir: &Path, cn: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", &format!("/CN={cn}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl req failed");
    (cert, key)
}

/// The python `cargo xtask test` prepares (py-libp2p, jsonschema, PyYAML).
pub fn test_python() -> PathBuf {
    std::env::var_os("ASSAY_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-venv/bin/python")
        })
}

/// Validates every line against the schema; panics naming the first error.
pub fn validate_findings(lines: &[serde_json::Value]) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/finding.schema.json");
    let script = "import json, sys, jsonschema\n\
        schema = json.load(open(sys.argv[1]))\n\
        v = jsonschema.Draft202012Validator(schema)\n\
        n = 0\n\
        for line in sys.stdin:\n\
        \x20   for e in v.iter_errors(json.loads(line)):\n\
        \x20       print(f'{list(e.absolute_path)}: {e.message}'); sys.exit(1)\n\
        \x20   n += 1\n\
        print(n)\n";
    let mut child = Command::new(test_python())
        .args(["-c", script])
        .arg(&schema)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python with jsonschema (cargo xtask test installs it)");
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "a finding does not validate: {text}");
    assert_eq!(text.trim(), lines.len().to_string());
}

/// A page as headless Chromium rendered it: the DOM after load, and what
/// the page wrote to its console (scripts' errors and messages).
pub struct Rendered {
    pub dom: String,
    pub console: Vec<String>,
}

/// Renders the local file `page` in Debian's chromium, headless, with a
/// profile of its own (removed after), within a minute.
pub fn render_in_chromium(page: &Path) -> Rendered {
    let chromium = Path::new("/usr/bin/chromium");
    assert!(
        chromium.exists(),
        "chromium not installed: `cargo xtask test` installs Debian's package"
    );
    let profile = TempDir::new("chromium-profile");
    let url = format!(
        "file://{}",
        page.canonicalize().expect("the page").display()
    );
    let out = Command::new("timeout")
        .arg("60")
        .arg(chromium)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.0.display()))
        .args(["--dump-dom", &url])
        .stdin(Stdio::null())
        .output()
        .expect("run chromium");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {stderr}");
    Rendered {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        // Chromium logs each console message as `…:CONSOLE:<line>] "…"`.
        console: stderr
            .lines()
            .filter(|l| l.contains(":CONSOLE"))
            .map(str::to_owned)
            .collect(),
    }
}

/// What a rendered compute-use report must show: no console messages (the
/// page has no scripts: any is an error), a chart with bars of
/// `chart_class`, each of `mismatched` marked as a mismatch in the
/// declared-versus-observed table and each of `matched` as declared, and
/// nothing fetched from elsewhere.
pub fn check_rendered_report(
    rendered: &Rendered,
    chart_class: &str,
    mismatched: &[&str],
    matched: &[&str],
) -> Result<(), String> {
    if !rendered.console.is_empty() {
        return Err(format!("console messages: {:?}", rendered.console));
    }
    let dom = &rendered.dom;
    let chart = dom
        .find("<svg class=\"chart\"")
        .and_then(|at| dom[at..].find("</svg>").map(|end| &dom[at..at + end]))
        .ok_or("no chart (svg.chart) in the rendered page")?;
    if !chart
        .split("<rect")
        .skip(1)
        .any(|bar| bar.contains(&format!(" {chart_class}:")))
    {
        return Err(format!("the chart has no {chart_class} bar: {chart}"));
    }
    let table = dom
        .find("<table id=\"declared-vs-observed\"")
        .and_then(|at| dom[at..].find("</table>").map(|end| &dom[at..at + end]))
        .ok_or("no declared-versus-observed table")?;
    let row_of = |workload: &str| {
        table
            .split("<tr ")
            .find(|row| row.contains(&format!("<td>{workload}</td>")))
    };
    for (workloads, class, status) in [
        (mismatched, "mismatch", "MISMATCH"),
        (matched, "match", "as declared"),
    ] {
        for workload in workloads {
            let row = row_of(workload).ok_or(format!("no row for {workload}"))?;
            if !row.starts_with(&format!("class=\"{class}\"")) || !row.contains(status) {
                return Err(format!("{workload} is not marked {class}: <tr {row}"));
            }
        }
    }
    for external in [
        "src=\"http",
        "href=\"http",
        "url(http",
        "src=\"//",
        "href=\"//",
    ] {
        if dom.contains(external) {
            return Err(format!("the page fetches from elsewhere ({external})"));
        }
    }
    Ok(())
}
