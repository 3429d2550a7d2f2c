//! `cargo xtask`: set-up, build, run and test assay with one command each.
//!
//! `setup` installs what a fresh machine lacks (rust-src for the nightly
//! that builds the eBPF programs, LLVM 22, bpf-linker built against it) and
//! is fast when everything is there. Every other command runs it first.

#![allow(clippy::print_stderr, reason = "a command-line tool reports on stderr")]

mod bench;
mod check;
mod setup;

use std::{
    env,
    ffi::OsString,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Set up, build, run and test assay")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Install what building assay needs (idempotent; seconds when done).
    Setup,
    /// Set up, then build the agent (eBPF programs included).
    Build {
        /// Build with the release profile.
        #[arg(long)]
        release: bool,
    },
    /// Set up, build, then run the agent as root; arguments after `--` go to
    /// the agent (e.g. `cargo xtask run -- doctor`).
    Run {
        /// Build with the release profile.
        #[arg(long)]
        release: bool,
        #[arg(last = true)]
        args: Vec<OsString>,
    },
    /// Overhead, footprint and detection latency: each workload without and
    /// with the agent, alternating, in one run (as root). Report in
    /// target/bench/report.md; BENCHMARKS.md records it.
    Bench {
        /// A/B pairs per workload.
        #[arg(long, default_value_t = 9)]
        rounds: usize,
        /// Seconds per workload run.
        #[arg(long, default_value_t = 3.0)]
        secs: f64,
        /// Emulated miners timed for detection latency (0: skip).
        #[arg(long, default_value_t = 40)]
        latency_samples: usize,
        /// Only these workloads (rr, rr-connect, exec, syscalls, opens, cpu,
        /// redis-c1, redis-c8, pingpong, cuda-launch).
        #[arg(long = "workload")]
        workloads: Vec<String>,
        /// Pin the agent to the last CPU and the workloads to the others
        /// (with and without the agent alike): the agent's own threads
        /// then take nothing from the workload's CPUs, and what is left is
        /// the in-kernel cost on the workload's path.
        #[arg(long)]
        pin: bool,
        /// Also run each workload with parts of the agent taken away (its
        /// FPU program, its packet programs, its connect programs, every
        /// program), to say where the slowdown comes from.
        #[arg(long)]
        itemise: bool,
    },
    /// Clippy with warnings as errors: the host crates, then the eBPF crate.
    Clippy,
    /// The fuzz smoke: every cargo-fuzz target in fuzz/ for a short time on
    /// its seeds (installs cargo-fuzz when missing). A crash fails, and its
    /// input is left in fuzz/artifacts/.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// Only these targets (default: all).
        #[arg(long = "target")]
        targets: Vec<String>,
    },
    /// Set up, run the unit tests, then the privileged end-to-end suites in
    /// tests/ (as root; with CI set, a skipped privileged test is a failure).
    Test {
        /// Only the unit tests.
        #[arg(long)]
        unit_only: bool,
        /// Extra arguments for the privileged suites' test binaries (e.g. a name filter).
        #[arg(last = true)]
        args: Vec<OsString>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

pub(crate) fn status(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn build(release: bool) -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args(["build", "--package", "assay", "--bin", "assay"]);
    if release {
        cmd.arg("--release");
    }
    status(&mut cmd)?;
    let profile = if release { "release" } else { "debug" };
    Ok(workspace_root().join("target").join(profile).join("assay"))
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Cmd::Setup => setup::run(),
        Cmd::Build { release } => {
            setup::run()?;
            let bin = build(release)?;
            println!("built {}", bin.display());
            Ok(())
        }
        Cmd::Run { release, args } => {
            setup::run()?;
            let bin = build(release)?;
            let err = if is_root() {
                Command::new(&bin).args(&args).exec()
            } else {
                eprintln!("xtask: the agent needs root (eBPF); re-running it with sudo");
                Command::new("sudo")
                    .arg("--preserve-env=ASSAY_LOG")
                    .arg(&bin)
                    .args(&args)
                    .exec()
            };
            Err(err).with_context(|| {
                format!(
                    "cannot run {} (as root: run `sudo {}` yourself)",
                    bin.display(),
                    bin.display()
                )
            })
        }
        Cmd::Bench {
            rounds,
            secs,
            latency_samples,
            workloads,
            pin,
            itemise,
        } => {
            setup::run()?;
            setup::bench_packages()?;
            bench::run(bench::Options {
                rounds,
                secs,
                latency_samples,
                workloads,
                pin,
                itemise,
            })
        }
        Cmd::Clippy => {
            setup::run()?;
            check::clippy()
        }
        Cmd::Fuzz { seconds, targets } => {
            setup::run()?;
            check::fuzz(seconds, &targets)
        }
        Cmd::Test { unit_only, args } => {
            setup::run()?;
            status(cargo().args([
                "test",
                "--package",
                "assay-common",
                "--package",
                "assay-classify",
                "--package",
                "assay",
                "--package",
                "xtask",
            ]))?;
            if unit_only {
                return Ok(());
            }
            let bin = build(false)?;
            if !is_root() {
                let msg = "the privileged suites load eBPF programs and need root";
                if env::var_os("CI").is_some() {
                    bail!("{msg}; CI is set, so they may not be skipped");
                }
                eprintln!("xtask: {msg}: skipping them (run `sudo -E cargo xtask test`)");
                return Ok(());
            }
            setup::test_packages()?;
            let python = setup::test_python()?;
            let mut suites = cargo();
            suites
                .args(["test", "--package", "assay-tests", "--"])
                .arg("--test-threads=1")
                .args(&args)
                .env("ASSAY_BIN", &bin)
                .env("ASSAY_TEST_PYTHON", &python);
            suites.env("ASSAY_TEST_CHIA_VENV", setup::chia_venv()?);
            status(&mut suites)
        }
    }
}
