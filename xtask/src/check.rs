//! `cargo xtask clippy` and `cargo xtask fuzz`: the static and fuzz checks
//! CI runs besides the tests.
//!
//! Clippy runs twice: over the host crates (with the eBPF build skipped:
//! clippy needs no object), and over the eBPF crate on the host with
//! `panic=abort` (it is `no_std`; clippy reads the same source the BPF
//! target compiles) in a target directory of its own, so that the flag does
//! not rebuild the host crates.
//!
//! The fuzz smoke runs every cargo-fuzz target for a short, bounded time on
//! its seed corpus (a working corpus under `target/fuzz-corpus`, so that
//! `fuzz/seeds` keeps only the hand-picked seeds).

use std::{path::Path, process::Command};

use anyhow::{Context as _, Result, bail};

use crate::{cargo, status, workspace_root};

pub(crate) fn clippy() -> Result<()> {
    status(
        cargo()
            .args([
                "clippy",
                "--workspace",
                "--exclude",
                "assay-ebpf",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ])
            .env("AYA_BUILD_SKIP", "1"),
    )?;
    let ebpf_target = workspace_root().join("target/clippy-ebpf");
    status(
        cargo()
            .args(["clippy", "--package", "assay-ebpf", "--", "-D", "warnings"])
            .env("CARGO_TARGET_DIR", ebpf_target)
            .env("RUSTFLAGS", "-C panic=abort"),
    )
}

/// The fuzz targets, from fuzz/Cargo.toml's `[[bin]]` names.
fn fuzz_targets(root: &Path) -> Result<Vec<String>> {
    let manifest =
        std::fs::read_to_string(root.join("fuzz/Cargo.toml")).context("reading fuzz/Cargo.toml")?;
    let targets: Vec<String> = manifest
        .lines()
        .filter_map(|line| line.trim().strip_prefix("name = \""))
        .filter_map(|rest| rest.strip_suffix('"'))
        .filter(|name| *name != "assay-fuzz")
        .map(str::to_owned)
        .collect();
    if targets.is_empty() {
        bail!("no fuzz targets in fuzz/Cargo.toml");
    }
    Ok(targets)
}

pub(crate) fn fuzz(seconds: u32, only: &[String]) -> Result<()> {
    crate::setup::ensure_cargo_fuzz()?;
    let root = workspace_root();
    let targets = fuzz_targets(&root)?;
    for target in targets
        .iter()
        .filter(|t| only.is_empty() || only.contains(t))
    {
        let corpus = root.join("target/fuzz-corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        let seeds = root.join("fuzz/seeds").join(target);
        std::fs::create_dir_all(&seeds)?;
        eprintln!("xtask fuzz: {target} for {seconds} s");
        status(
            Command::new("cargo")
                .current_dir(&root)
                .args(["+nightly", "fuzz", "run", target])
                .arg(&corpus)
                .arg(&seeds)
                .args([
                    "--",
                    &format!("-max_total_time={seconds}"),
                    "-max_len=8192",
                    "-print_final_stats=1",
                ])
                // Nothing here builds eBPF, but say so in case it ever does.
                .env("AYA_BUILD_SKIP", "1"),
        )
        .with_context(|| {
            format!("fuzz target {target} failed (a crash is in fuzz/artifacts/{target})")
        })?;
    }
    Ok(())
}
