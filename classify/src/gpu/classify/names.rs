//! Kernel names: which look like a proof-of-work algorithm's, a
//! zero-knowledge prover's, a backward pass or optimizer's, or a
//! deep-learning library's. Names are weak evidence (closed miners
//! obfuscate them), so the rules never require one.

/// Kernel names that are proof-of-work algorithms (open-source miners:
/// ethminer `ethash_search`, kawpowminer `progpow_search`, ccminer,
/// xmrig-cuda, …). Closed miners obfuscate: never required.
const POW_NAMES: &[&str] = &[
    "ethash",
    "etchash",
    "progpow",
    "kawpow",
    "firopow",
    "meowpow",
    "cryptonight",
    "randomx",
    "equihash",
    "zhash",
    "beamhash",
    "cuckoo",
    "cuckatoo",
    "cuckaroo",
    "autolykos",
    "heavyhash",
    "octopus",
    "verthash",
    "lyra2",
    "neoscrypt",
    "x16r",
    "sha256d",
    "nexapow",
    "fishhash",
];

/// Substrings of zero-knowledge provers' kernel names (bellman-cuda,
/// sppark, icicle, Aleo provers): curves, hashes, proof systems.
const ZK_NAMES: &[&str] = &[
    "poseidon",
    "groth16",
    "plonk",
    "bn254",
    "bn128",
    "bls12",
    "bls381",
    "pippenger",
    "halo2",
    "sppark",
    "icicle",
    "goldilocks",
    "babybear",
];

/// Short prover words (multi-scalar multiplication, number-theoretic
/// transforms), matched only at the start of a name part: parts split at
/// anything but a letter, so `_Z10msm_kernel` and `ntt::forward` match and
/// `attention` does not.
const ZK_PARTS: &[&str] = &["msm", "ntt", "intt"];

/// Substrings of backward-pass and optimizer kernels: training, not
/// inference.
const TRAINING_NAMES: &[&str] = &[
    "backward",
    "bwd",
    "wgrad",
    "dgrad",
    "grad_input",
    "grad_weight",
    "adam",
    "multi_tensor_apply",
    "sgd",
];

/// Substrings of deep-learning libraries' kernels (cuBLAS, cutlass, cuDNN,
/// PyTorch, Triton, attention).
const DL_NAMES: &[&str] = &[
    "gemm",
    "cutlass",
    "cudnn",
    "cublas",
    "at::native",
    "xmma",
    "fmha",
    "flash",
    "softmax",
    "layer_norm",
    "layernorm",
    "triton",
    "elementwise",
    "nchw",
    "nhwc",
    "attention",
];

pub(super) fn is_pow_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    POW_NAMES.iter().any(|p| lower.contains(p))
}

pub(super) fn is_zk_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ZK_NAMES.iter().any(|z| lower.contains(z))
        || lower
            .split(|c: char| !c.is_ascii_alphabetic())
            .any(|part| ZK_PARTS.iter().any(|z| part.starts_with(z)))
}

pub(super) fn is_training_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    TRAINING_NAMES.iter().any(|p| lower.contains(p))
}

pub(super) fn is_dl_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    DL_NAMES.iter().any(|p| lower.contains(p))
}
