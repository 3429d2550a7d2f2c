//! Incentivised compute: an AI verdict in a workload that also takes part
//! in a chain (docs/grey-zone.md, "Incentivised AI").
//!
//! The seed's "AI front that earns tokens" is neither mining nor plain
//! inference: a model server next to a chain client (a Bittensor miner
//! serving its subnet and submitting extrinsics), or training next to a
//! validator. The AI verdict stays what the GPU shows; it carries the
//! marker, naming the network and the chain evidence, so that a reader
//! (and a policy) sees both at once. Chain participation counts once its
//! own verdict is open (`chain-client`, `chain-node` or `pos-validator`):
//! the same thresholds decide whether it is there at all.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Class, Verdict};

/// Classes that are chain participation.
pub const CHAIN_CLASSES: [Class; 3] = [Class::ChainClient, Class::ChainNode, Class::PosValidator];

/// The marker an AI verdict carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incentive {
    /// The network the workload takes part in (`bittensor`, `ethereum`,
    /// `substrate`, …): Bittensor wherever its signed requests were seen,
    /// else the network the strongest chain evidence names.
    pub network: String,
    /// The chain evidence, by kind and words.
    pub evidence: Vec<Sign>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sign {
    pub class: Class,
    pub kind: String,
    pub summary: String,
}

impl Incentive {
    /// In words, to follow a verdict's explanation.
    pub fn explain(&self) -> String {
        let signs: Vec<&str> = self
            .evidence
            .iter()
            .take(3)
            .map(|s| s.summary.as_str())
            .collect();
        format!(
            ". This is incentivised compute: the same workload takes part in the {} network ({})",
            self.network,
            signs.join("; ")
        )
    }
}

/// Whether verdicts of `class` can carry the marker.
pub fn is_ai(class: Class) -> bool {
    matches!(class, Class::AiTraining | Class::AiInference)
}

/// The marker for a workload's AI verdicts, from its open chain verdicts.
pub fn of(verdicts: &HashMap<Class, Verdict>) -> Option<Incentive> {
    let mut chain: Vec<&Verdict> = CHAIN_CLASSES
        .iter()
        .filter_map(|c| verdicts.get(c))
        .collect();
    if chain.is_empty() {
        return None;
    }
    chain.sort_by(|a, b| b.level.cmp(&a.level).then(b.score.total_cmp(&a.score)));
    let mut evidence: Vec<(&Verdict, &crate::evidence::Evidence)> = chain
        .iter()
        .flat_map(|v| v.evidence.iter().map(move |e| (*v, e)))
        .collect();
    evidence.sort_by(|(_, a), (_, b)| {
        b.decisive
            .cmp(&a.decisive)
            .then(b.strength.total_cmp(&a.strength))
    });
    let network_of = |e: &crate::evidence::Evidence| {
        e.attributes
            .get("network")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let network = evidence
        .iter()
        .filter_map(|(_, e)| network_of(e))
        .find(|n| n == "bittensor")
        .or_else(|| evidence.iter().find_map(|(_, e)| network_of(e)))
        .unwrap_or_else(|| "unidentified chain".to_owned());
    Some(Incentive {
        network,
        evidence: evidence
            .into_iter()
            .take(8)
            .map(|(v, e)| Sign {
                class: v.class,
                kind: e.kind.name().to_owned(),
                summary: e.summary.clone(),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use serde_json::json;

    use super::super::{Change, Correlator};
    use super::*;
    use crate::{
        evidence::{Evidence, EvidenceKind},
        tables::workload::Workload,
    };

    const SESSION: Workload = Workload::Session { sid: 42 };

    fn sign(
        pid: u32,
        kind: EvidenceKind,
        strength: f32,
        attributes: serde_json::Value,
    ) -> Evidence {
        Evidence::new(
            SESSION,
            pid,
            kind,
            strength,
            false,
            format!("{} by pid {pid}", kind.name()),
            attributes.as_object().cloned().unwrap_or_default(),
            SystemTime::now(),
        )
    }

    fn inference(pid: u32) -> Evidence {
        sign(pid, EvidenceKind::GpuInference, 0.7, json!({}))
    }

    #[test]
    fn inference_next_to_a_bittensor_axon_and_a_substrate_client_is_incentivised_by_bittensor() {
        let mut c = Correlator::new("h");
        let (_, ai) = c.observe(inference(10)).unwrap();
        assert!(ai.incentive.is_none());
        assert!(c.take_incentive_updates().is_empty());
        // A Substrate client in the same workload: the AI verdict is updated.
        let substrate = sign(
            11,
            EvidenceKind::ChainRpc,
            0.6,
            json!({"network": "substrate", "remote": "127.0.0.1:9944"}),
        );
        let (change, chain) = c.observe(substrate).unwrap();
        assert_eq!((change, chain.class), (Change::Opened, Class::ChainClient));
        let [marked] = c.take_incentive_updates().try_into().unwrap();
        assert_eq!(marked.id, ai.id);
        assert_eq!(marked.incentive.as_ref().unwrap().network, "substrate");
        // The axon's signed requests name the network.
        let axon = sign(
            10,
            EvidenceKind::Bittensor,
            0.8,
            json!({"network": "bittensor", "remote": "127.0.0.1:51000"}),
        );
        let _ = c.observe(axon);
        let [marked] = c.take_incentive_updates().try_into().unwrap();
        let incentive = marked.incentive.unwrap();
        assert_eq!(incentive.network, "bittensor");
        assert!(incentive.evidence.iter().any(|s| s.kind == "net.bittensor"));
        // Said in words, next to what the GPU shows.
        let ai = c.open_verdicts().find(|v| v.id == ai.id).unwrap();
        let text = ai.explanation();
        assert!(text.contains("ai-inference"), "{text}");
        assert!(
            text.contains("incentivised compute") && text.contains("bittensor"),
            "{text}"
        );
        // More of the same is no news.
        let _ = c.observe(sign(
            10,
            EvidenceKind::Bittensor,
            0.8,
            json!({"network": "bittensor", "remote": "127.0.0.1:51000"}),
        ));
        assert!(c.take_incentive_updates().is_empty());
    }

    #[test]
    fn an_ai_verdict_opened_after_the_chain_verdict_carries_the_marker_at_once() {
        let mut c = Correlator::new("h");
        let _ = c.observe(sign(
            3,
            EvidenceKind::Validator,
            1.0,
            json!({"network": "ethereum", "remote": "127.0.0.1:5052"}),
        ));
        let (change, ai) = c
            .observe(sign(4, EvidenceKind::GpuTraining, 0.7, json!({})))
            .unwrap();
        assert_eq!(change, Change::Opened);
        assert_eq!(ai.incentive.unwrap().network, "ethereum");
    }

    #[test]
    fn no_chain_verdict_no_marker() {
        let mut c = Correlator::new("h");
        let _ = c.observe(inference(10));
        // A hint too weak to open a chain verdict by itself.
        let _ = c.observe(sign(
            10,
            EvidenceKind::ChainRpc,
            0.1,
            json!({"network": "ethereum", "remote": "10.0.0.1:8545"}),
        ));
        // Mining next to inference is not incentive.
        let _ = c.observe(sign(10, EvidenceKind::GpuHashing, 0.6, json!({})));
        assert!(c.take_incentive_updates().is_empty());
        assert!(c.open_verdicts().all(|v| v.incentive.is_none()));
    }
}
