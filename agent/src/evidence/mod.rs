//! Evidence: what one detector saw, about one workload.
//!
//! `{workload, pid, kind, strength, attributes, first_seen, last_seen}`
//! (docs/design.md). Every sensor and classifier speaks in evidence; only the
//! correlator turns evidence into verdicts.

pub mod chain;
pub mod hygiene;
pub mod network;
pub mod storage;
pub mod work_loop;

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::tables::workload::Workload;

/// What kind of observation this is; names are stable (they appear in
/// findings and in policy files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EvidenceKind {
    /// A stratum v1 mining protocol message on a flow of this workload.
    #[serde(rename = "net.stratum")]
    Stratum,
    /// Context switches of this process save non-default MXCSR rounding:
    /// RandomX code (CFROUND) is running.
    #[serde(rename = "cpu.randomx_fpu")]
    RandomxFpu,
    /// Stratum V2: a plaintext SetupConnection, or the sizes of its Noise
    /// handshake.
    #[serde(rename = "net.stratum_v2")]
    StratumV2,
    /// The process asked DNS for, or opened TLS to, a mining pool's name.
    #[serde(rename = "net.pool_name")]
    PoolName,
    /// The process speaks a blockchain's peer-to-peer protocol.
    #[serde(rename = "net.p2p")]
    P2p,
    /// The process called a chain's JSON-RPC API (Ethereum, Substrate,
    /// Bitcoin Core, Solana, Electrum) as a client: it uses a chain.
    #[serde(rename = "net.chain_rpc")]
    ChainRpc,
    /// The process acts as a proof-of-stake validator: a validator client's
    /// beacon-API duties and attestations, or a consensus client driving an
    /// execution engine over the JWT-authenticated Engine API.
    #[serde(rename = "net.validator")]
    Validator,
    /// The process sent (a dendrite) or served (an axon) a request signed
    /// with a Bittensor hotkey: it takes part in that incentive network.
    #[serde(rename = "net.bittensor")]
    Bittensor,
    /// The process keeps a proof-of-space chain's peer link and runs that
    /// chain's native proof-of-space and consensus code, recognised by
    /// what its modules export ([`storage`]): Chia.
    #[serde(rename = "net.storage_proving")]
    StorageProving,
    /// On an encrypted or unknown flow, the server pushes small messages on
    /// a regular beat that the process never answers: job notifications.
    #[serde(rename = "net.job_cadence")]
    JobCadence,
    /// The process keeps its cores saturated in lockstep with one thin,
    /// long-lived flow: work in, compute, a fixed-size result out, again
    /// and again ([`assay_classify::work_loop`]), whatever the protocol.
    #[serde(rename = "cpu.work_loop")]
    WorkLoop,
    /// A system call of a tuned miner: an MSR opened for writing, the msr
    /// module loaded, huge pages reserved or mapped at RandomX's size.
    #[serde(rename = "cpu.miner_hygiene")]
    MinerHygiene,
    /// The command line or the config file it names carries a pool URL,
    /// miner-only flags or a wallet address.
    #[serde(rename = "process.command_line")]
    CommandLine,
    /// What the process does on the GPU (CUDA driver calls, launches,
    /// libraries, telemetry) looks like a proof-of-work search loop.
    #[serde(rename = "gpu.hashing")]
    GpuHashing,
    /// … like deep-learning training.
    #[serde(rename = "gpu.training")]
    GpuTraining,
    /// … like deep-learning inference.
    #[serde(rename = "gpu.inference")]
    GpuInference,
    /// … like a zero-knowledge prover.
    #[serde(rename = "gpu.zk_proving")]
    GpuZkProving,
}

impl EvidenceKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Stratum => "net.stratum",
            Self::RandomxFpu => "cpu.randomx_fpu",
            Self::StratumV2 => "net.stratum_v2",
            Self::PoolName => "net.pool_name",
            Self::P2p => "net.p2p",
            Self::ChainRpc => "net.chain_rpc",
            Self::Validator => "net.validator",
            Self::Bittensor => "net.bittensor",
            Self::StorageProving => "net.storage_proving",
            Self::JobCadence => "net.job_cadence",
            Self::WorkLoop => "cpu.work_loop",
            Self::MinerHygiene => "cpu.miner_hygiene",
            Self::CommandLine => "process.command_line",
            Self::GpuHashing => "gpu.hashing",
            Self::GpuTraining => "gpu.training",
            Self::GpuInference => "gpu.inference",
            Self::GpuZkProving => "gpu.zk_proving",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evidence {
    pub workload: Workload,
    pub pid: u32,
    pub kind: EvidenceKind,
    /// Which sign this is ([`sign_key`]): evidence with the same key about
    /// the same workload is one record, however often it repeats and
    /// whichever of the workload's processes shows it.
    #[serde(default)]
    pub key: String,
    /// 0..=1: how strongly this alone points at its class.
    pub strength: f32,
    /// Enough alone to confirm a verdict.
    pub decisive: bool,
    /// One sentence an analyst can check without the source code.
    pub summary: String,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    #[serde(with = "crate::time::rfc3339")]
    pub first_seen: SystemTime,
    #[serde(with = "crate::time::rfc3339")]
    pub last_seen: SystemTime,
    /// `last_seen` on CLOCK_MONOTONIC: what ages evidence, so that a wall
    /// clock set back or forward neither keeps nor drops it. Not saved:
    /// restored evidence gets it from `last_seen` (the wall clock is all
    /// that survives a reboot).
    #[serde(skip)]
    pub seen_ns: u64,
}

impl Evidence {
    /// Evidence seen now, first seen at `first_seen`, with its sign key.
    #[allow(clippy::too_many_arguments, reason = "the record's own fields")]
    pub fn new(
        workload: Workload,
        pid: u32,
        kind: EvidenceKind,
        strength: f32,
        decisive: bool,
        summary: String,
        attributes: serde_json::Map<String, serde_json::Value>,
        first_seen: SystemTime,
    ) -> Self {
        Self {
            workload,
            pid,
            kind,
            key: sign_key(kind, pid, &attributes),
            strength,
            decisive,
            summary,
            attributes,
            first_seen,
            last_seen: SystemTime::now(),
            seen_ns: crate::time::monotonic_ns(),
        }
    }
}

/// The identity of a sign: what makes two pieces of evidence about one
/// workload the same thing seen again, never the prose that describes it
/// (docs/design.md, "Evidence identity"). A repeated, re-forked or
/// re-exec'd sign refreshes one record instead of adding up:
/// - the command line and config file: one sign per workload, the
///   strongest counts (a miner's flags do not get stronger by forking);
/// - miner hygiene: per signal (`nr_hugepages` then
///   `nr_overcommit_hugepages` is one huge-page reservation);
/// - a pool name: per pool domain, whether asked in DNS, sent as SNI or
///   seen in a certificate;
/// - the RandomX marker: per executable;
/// - flow evidence (stratum, job cadence, work loop, p2p, chain RPC,
///   validator, Bittensor, storage proving): per peer; a p2p fan-out
///   per network;
/// - GPU evidence: per process.
pub fn sign_key(
    kind: EvidenceKind,
    pid: u32,
    attributes: &serde_json::Map<String, serde_json::Value>,
) -> String {
    let text = |key: &str| attributes.get(key).and_then(serde_json::Value::as_str);
    let name = kind.name();
    let per_peer = || match text("remote") {
        Some(remote) => format!("{name}|{remote}"),
        None => format!("{name}|pid {pid}"),
    };
    match kind {
        EvidenceKind::CommandLine => name.to_owned(),
        EvidenceKind::MinerHygiene => format!("{name}|{}", text("signal").unwrap_or("")),
        EvidenceKind::PoolName => match text("pool_domain") {
            Some(domain) => format!("{name}|{domain}"),
            None => per_peer(),
        },
        EvidenceKind::RandomxFpu => match text("exe") {
            Some(exe) if !exe.is_empty() => format!("{name}|{exe}"),
            _ => format!("{name}|pid {pid}"),
        },
        EvidenceKind::P2p if attributes.contains_key("distinct_peers") => {
            format!("{name}|{}|fan-out", text("network").unwrap_or(""))
        }
        EvidenceKind::Stratum
        | EvidenceKind::StratumV2
        | EvidenceKind::JobCadence
        | EvidenceKind::WorkLoop
        | EvidenceKind::P2p
        | EvidenceKind::ChainRpc
        | EvidenceKind::Validator
        | EvidenceKind::Bittensor
        | EvidenceKind::StorageProving => per_peer(),
        EvidenceKind::GpuHashing
        | EvidenceKind::GpuTraining
        | EvidenceKind::GpuInference
        | EvidenceKind::GpuZkProving => format!("{name}|pid {pid}"),
    }
}
