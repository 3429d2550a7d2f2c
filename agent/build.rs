//! Builds the eBPF programs (agent-ebpf) for the BPF target with the nightly
//! toolchain and bpf-linker, so that `include_bytes_aligned!` can embed them.
//! `AYA_BUILD_SKIP=1` skips this for quick checks (clippy, docs); the agent
//! then refuses to load with a clear message.
use std::path::Path;

fn main() -> anyhow::Result<()> {
    println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
    if std::env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true")) {
        // aya-build writes nothing when skipping; the agent embeds an empty
        // object and refuses to load it with a clear message.
        let out = std::env::var("OUT_DIR")?;
        std::fs::write(Path::new(&out).join("assay"), [])?;
        return Ok(());
    }
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
