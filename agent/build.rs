//! Builds the eBPF programs (agent-ebpf) for the BPF target with the nightly
//! toolchain and bpf-linker, so that `include_bytes_aligned!` can embed them.
//! `AYA_BUILD_SKIP=1` skips this for quick checks (clippy, docs); the agent
//! then refuses to load with a clear message.
use std::path::Path;

fn main() -> anyhow::Result<()> {
    let ebpf_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent-ebpf");
    let ebpf_dir = ebpf_dir.to_str().expect("UTF-8 path");
    println!("cargo:rerun-if-changed={ebpf_dir}/../agent-common/src");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "assay-ebpf",
            root_dir: ebpf_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
