//! Idempotent set-up of the eBPF toolchain (docs/platform.md recipe):
//! the nightly's rust-src, LLVM 22 from the distribution, and bpf-linker
//! built against that LLVM (its default features want another LLVM major).

use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

use crate::status;

const NIGHTLY: &str = "nightly";
const LLVM_MAJOR: &str = "22";
const LLVM_PACKAGES: [&str; 2] = ["llvm-22-dev", "libpolly-22-dev"];
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

/// Debian packages the privileged suites use as real workloads and tools:
/// monerod (a real RandomX miner in regtest, and Levin peers), librandomx
/// (which monerod links; the rotating-thread miner loads it), tshark (to
/// record captures for `assay pcap`), openssl and curl (real TLS clients),
/// iproute2 (test network namespaces with their own resolver), redis and
/// nghttp2 (benign binary and gRPC-over-h2c look-alikes, and a real HTTP/2
/// stack for the Kaspa opening), python3 (the TLS pool and Bitcoin-fork
/// peer fixtures), litecoind (real nodes of a Bitcoin fork on their own
/// magic), dnsmasq (a real forwarding resolver), chromium (renders the
/// HTML compute-use report headless, and the test asserts on the rendered
/// page; 81 MB, 129 packages with its libraries, installed in 36 s here
/// with `apt-get install --no-install-recommends`).
const TEST_PACKAGES: [&str; 16] = [
    "monero",
    "litecoind",
    "librandomx0",
    "tshark",
    "openssl",
    "curl",
    "iproute2",
    "redis-server",
    "redis-tools",
    "nghttp2-client",
    "nghttp2-server",
    "python3",
    "prometheus",
    "nats-server",
    "dnsmasq-base",
    "chromium",
];

/// The peer the benchmarks compare against (bpftrace), what reads the
/// kernel's per-program statistics (bpftool), and the real request/response
/// server and load generator (redis).
const BENCH_PACKAGES: [&str; 4] = ["bpftrace", "bpftool", "redis-server", "redis-tools"];

/// Installs what `cargo xtask bench` runs besides the agent.
pub(crate) fn bench_packages() -> Result<()> {
    if install_missing(&BENCH_PACKAGES)? {
        eprintln!("xtask setup: installed benchmark peers {BENCH_PACKAGES:?}");
    }
    Ok(())
}

/// Installs what the privileged suites run, besides the toolchain.
pub(crate) fn test_packages() -> Result<()> {
    if install_missing(&TEST_PACKAGES)? {
        eprintln!("xtask setup: installed test workloads {TEST_PACKAGES:?}");
    }
    Ok(())
}

/// py-libp2p, pinned, for the gossipsub hosts of the network suite (no
/// Debian package has a libp2p implementation). Installed from PyPI into a
/// virtual environment of the build tree, once; its python is returned.
const LIBP2P: &str = "libp2p==0.8.1";
/// Validates emitted findings against docs/finding.schema.json.
const JSONSCHEMA: &str = "jsonschema==4.23.0";
/// Parses the Kubernetes manifest in deploy/.
const PYYAML: &str = "PyYAML==6.0.2";
/// A real Ethereum JSON-RPC client (web3.py) and a local chain to serve it
/// (eth-tester on py-evm), for the chain-client suite. No Debian package
/// has either; pure Python, no compiler, about 110 MB and 1–3 minutes.
/// The Bittensor SDK at its last release with Axon and Dendrite, for the
/// bittensor suite's axon/dendrite exchange. Binary wheels, no torch:
/// about 210 MB and under a minute alone; resolves with the pins above.
const BITTENSOR: &str = "bittensor==10.5.0";
const WEB3: [&str; 3] = [
    "web3[tester]==7.16.0",
    "eth-tester[py-evm]==0.13.0b1",
    "py-evm==0.12.1b1",
];

pub(crate) fn test_python() -> Result<std::path::PathBuf> {
    let venv = crate::workspace_root().join("target/test-venv");
    let python = venv.join("bin/python");
    let ready = || {
        Command::new(&python)
            .args([
                "-c",
                "import libp2p.pubsub.gossipsub, jsonschema, yaml, web3, eth_tester, bittensor",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if ready() {
        return Ok(python);
    }
    create_venv(&venv)?;
    crate::status(
        Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                LIBP2P,
                JSONSCHEMA,
                PYYAML,
                BITTENSOR,
            ])
            .args(WEB3),
    )?;
    if !ready() {
        bail!(
            "{LIBP2P}, {JSONSCHEMA}, {PYYAML}, {BITTENSOR} and {WEB3:?} installed in {} but do not import",
            venv.display()
        );
    }
    eprintln!(
        "xtask setup: installed {LIBP2P}, {JSONSCHEMA}, {PYYAML}, {BITTENSOR} and {} in {}",
        WEB3.join(", "),
        venv.display()
    );
    Ok(python)
}

/// chia-blockchain, pinned, for the storage-proving suite's two real full
/// nodes: its own virtual environment (about 250 MB of binary wheels,
/// with pins of its own that would fight the test venv's). Installing it
/// took 3.5 minutes on the reference machine (most of it resolving and
/// downloading), once; a check of 0.1 s after that. That fits well within
/// CI's time, so every `cargo xtask test` installs it and runs the suite.
/// Returns the venv.
const CHIA: &str = "chia-blockchain==2.7.5";

pub(crate) fn chia_venv() -> Result<std::path::PathBuf> {
    let venv = crate::workspace_root().join("target/chia-venv");
    let python = venv.join("bin/python");
    let ready = || {
        Command::new(&python)
            .args([
                "-c",
                "import importlib.metadata as m, chiapos, chia_rs, chiavdf; \
                 assert m.version('chia-blockchain') == '2.7.5'",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if ready() {
        return Ok(venv);
    }
    create_venv(&venv)?;
    eprintln!(
        "xtask setup: installing {CHIA} in {} (a few minutes)",
        venv.display()
    );
    crate::status(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        CHIA,
    ]))?;
    if !ready() {
        bail!("{CHIA} installed in {} but does not import", venv.display());
    }
    Ok(venv)
}

/// A Python virtual environment at `venv`, unless one is there.
fn create_venv(venv: &std::path::Path) -> Result<()> {
    if venv.join("bin/python").exists() {
        return Ok(());
    }
    let created = Command::new("python3")
        .args(["-m", "venv"])
        .arg(venv)
        .status()
        .is_ok_and(|s| s.success());
    if !created {
        // Debian's python3 has venv in a package of its own.
        install_missing(&["python3-venv"])?;
        crate::status(Command::new("python3").args(["-m", "venv"]).arg(venv))?;
    }
    Ok(())
}

pub(crate) fn run() -> Result<()> {
    let mut did = Vec::new();
    if ensure_rust_src()? {
        did.push("installed rust-src for the nightly toolchain");
    }
    if ensure_llvm()? {
        did.push("installed LLVM 22 (llvm-22-dev, libpolly-22-dev)");
    }
    if ensure_bpf_linker()? {
        did.push("built bpf-linker against LLVM 22");
    }
    if did.is_empty() {
        eprintln!("xtask setup: toolchain complete (nightly rust-src, LLVM 22, bpf-linker)");
    } else {
        for line in did {
            eprintln!("xtask setup: {line}");
        }
    }
    Ok(())
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ensure_rust_src() -> Result<bool> {
    let installed = output(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        NIGHTLY,
    ]));
    match installed {
        Some(list) if list.lines().any(|l| l.starts_with("rust-src")) => Ok(false),
        Some(_) => {
            status(Command::new("rustup").args([
                "component",
                "add",
                "rust-src",
                "--toolchain",
                NIGHTLY,
            ]))?;
            Ok(true)
        }
        None => {
            status(Command::new("rustup").args([
                "toolchain",
                "install",
                NIGHTLY,
                "--profile",
                "minimal",
                "--component",
                "rust-src",
            ]))
            .context("the eBPF programs need a nightly toolchain")?;
            Ok(true)
        }
    }
}

fn ensure_llvm() -> Result<bool> {
    install_missing(&LLVM_PACKAGES)
}

/// apt-get installs whichever of `packages` is missing; true when it did.
fn install_missing(packages: &[&str]) -> Result<bool> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|pkg| {
            output(Command::new("dpkg-query").args(["-W", "-f=${Status}", pkg]))
                .is_none_or(|s| !s.contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(false);
    }
    if Command::new("apt-get")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        bail!("{missing:?} missing and this is not a Debian/Ubuntu host: install them and re-run");
    }
    let sudo = !crate::is_root();
    let apt = |args: &[&str]| {
        let mut cmd = if sudo {
            Command::new("sudo")
        } else {
            Command::new("apt-get")
        };
        if sudo {
            cmd.arg("apt-get");
        }
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    status(&mut apt(&["update", "-qq"]))?;
    let mut install = apt(&["install", "-y", "-qq", "--no-install-recommends"]);
    install.args(&missing);
    status(&mut install)?;
    Ok(true)
}

fn ensure_bpf_linker() -> Result<bool> {
    if let Some(path) = output(Command::new("sh").args(["-c", "command -v bpf-linker"])) {
        let path = path.trim();
        // A dynamically linked bpf-linker names its LLVM; a static one is
        // taken at its word.
        let linked = output(Command::new("ldd").arg(path)).unwrap_or_default();
        let llvm = linked.lines().find(|l| l.contains("libLLVM"));
        match llvm {
            None => return Ok(false),
            Some(line)
                if line.contains(&format!("libLLVM.so.{LLVM_MAJOR}"))
                    || line.contains(&format!("libLLVM-{LLVM_MAJOR}")) =>
            {
                return Ok(false);
            }
            Some(line) => eprintln!(
                "xtask setup: {path} uses another LLVM ({}); rebuilding",
                line.trim()
            ),
        }
    }
    eprintln!("xtask setup: building bpf-linker against LLVM {LLVM_MAJOR} (about a minute)");
    let path = format!(
        "{LLVM_PREFIX}/bin:{}",
        std::env::var("PATH").unwrap_or_default()
    );
    status(
        Command::new("cargo")
            .args([
                "install",
                "bpf-linker",
                "--locked",
                "--no-default-features",
                "--features",
                &format!("llvm-{LLVM_MAJOR}"),
            ])
            // bpf-linker finds LLVM through llvm-config on PATH or LLVM_PREFIX;
            // the distribution's default llvm-config is an older major.
            .env("LLVM_PREFIX", LLVM_PREFIX)
            .env("PATH", path),
    )?;
    Ok(true)
}

/// cargo-fuzz, for `cargo xtask fuzz` (built from crates.io once, about two
/// minutes).
pub(crate) fn ensure_cargo_fuzz() -> Result<bool> {
    ensure_rust_src()?;
    if output(Command::new("cargo").args(["+nightly", "fuzz", "--version"])).is_some() {
        return Ok(false);
    }
    eprintln!("xtask setup: installing cargo-fuzz (about two minutes)");
    status(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    Ok(true)
}
