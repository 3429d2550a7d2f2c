//! What a work loop ([`assay_classify::work_loop`]) means about the process
//! that owns the flow: weak evidence of pow-mining, growing as the loop
//! persists. Pure: the numbers in, words and attributes out.

use serde_json::{Map, Value, json};

use crate::{
    classify::work_loop::WorkLoop, evidence::EvidenceKind, evidence::network::Draft,
    evidence::network::FlowFacts, procfs::sockets::Role,
};

/// Evidence about the flow's owner; none when it is the server end (a
/// busy server answering a client's requests says nothing about itself).
pub fn evidence(work: &WorkLoop, facts: &FlowFacts) -> Option<Draft> {
    if facts.role == Role::Server {
        return None;
    }
    let round = |x: f64| (x * 100.0).round() / 100.0;
    let mut attributes = Map::new();
    attributes.insert("protocol".into(), json!("work-loop"));
    attributes.insert("role".into(), json!(facts.role));
    if let Some(remote) = facts.remote {
        attributes.insert("remote".into(), json!(remote.to_string()));
    }
    if let Some(local) = facts.local {
        attributes.insert("local".into(), json!(local.to_string()));
    }
    let numbers: [(&str, Value); 12] = [
        ("rounds", json!(work.rounds)),
        ("span_s", json!(work.span_s.round())),
        ("round_interval_s", json!(round(work.round_interval_s))),
        ("round_variation", json!(round(work.round_variation))),
        ("mean_result_bytes", json!(work.mean_result_bytes.round())),
        ("result_variation", json!(round(work.result_variation))),
        ("mean_work_bytes", json!(work.mean_work_bytes.round())),
        ("work_variation", json!(round(work.work_variation))),
        ("cores", json!(round(work.cores))),
        ("busy_share", json!(round(work.busy_share))),
        ("bytes_per_cpu_s", json!(round(work.bytes_per_cpu_s))),
        ("other_flows", json!(work.other_flows)),
    ];
    for (key, value) in numbers {
        attributes.insert(key.into(), value);
    }
    Some(Draft {
        kind: EvidenceKind::WorkLoop,
        strength: work.strength(),
        decisive: false,
        summary: format!(
            "pid {} ({}) kept {:.1} cores busy for {:.0} s in lockstep with one thin flow to {}: \
             {} rounds of work in, compute, a result of about {:.0} bytes (±{:.0} %) out and \
             answered, every {:.1} s on average, {:.0} bytes per CPU-second: the work loop of a miner",
            facts.tgid,
            facts.comm,
            work.cores,
            work.span_s,
            facts
                .remote
                .map(|r| r.to_string())
                .unwrap_or_else(|| "an unknown peer".into()),
            work.rounds,
            work.mean_result_bytes,
            work.result_variation * 100.0,
            work.round_interval_s,
            work.bytes_per_cpu_s,
        ),
        attributes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::{OPENS_AT, SUSPECTED_AT};
    use assay_classify::work_loop::{OPENING_STRENGTH, PERSISTED_STRENGTH};

    fn facts(role: Role) -> FlowFacts {
        FlowFacts {
            tgid: 7,
            comm: "kworker".into(),
            role,
            remote: Some("203.0.113.9:40123".parse().unwrap()),
            local: None,
            sent_miner_call: false,
            owner_cores: None,
            forwarding: false,
        }
    }

    fn work(rounds: usize, span_s: f64) -> WorkLoop {
        WorkLoop {
            rounds,
            span_s,
            round_interval_s: span_s / rounds as f64,
            round_variation: 0.9,
            mean_result_bytes: 140.0,
            result_variation: 0.01,
            mean_work_bytes: 300.0,
            work_variation: 0.5,
            cores: 1.0,
            busy_share: 1.0,
            bytes_per_cpu_s: 20.0,
            other_flows: 1,
        }
    }

    #[test]
    fn a_new_loop_opens_observed_and_only_a_persistent_one_is_suspected_alone() {
        const _: () = assert!(OPENING_STRENGTH >= OPENS_AT && OPENING_STRENGTH < SUSPECTED_AT);
        const _: () = assert!(PERSISTED_STRENGTH >= SUSPECTED_AT);
        let early = evidence(&work(8, 70.0), &facts(Role::Client)).unwrap();
        assert!(early.strength >= OPENS_AT && early.strength < SUSPECTED_AT);
        let five_minutes = evidence(&work(50, 300.0), &facts(Role::Client)).unwrap();
        assert!(five_minutes.strength < SUSPECTED_AT);
        let ten = evidence(&work(100, 600.0), &facts(Role::Client)).unwrap();
        assert!(ten.strength >= SUSPECTED_AT);
        assert_eq!(early.attributes["remote"], "203.0.113.9:40123");
        assert!(!early.decisive);
    }

    #[test]
    fn next_to_another_sign_it_is_suspected_sooner() {
        // Noisy-OR with a job cadence (0.35) or a command-line hint (up to
        // 0.5): suspected within minutes, not ten.
        let noisy_or = |a: f32, b: f32| 1.0 - (1.0 - a) * (1.0 - b);
        let at_four = evidence(&work(40, 240.0), &facts(Role::Client)).unwrap();
        assert!(noisy_or(at_four.strength, 0.35) >= SUSPECTED_AT);
        let early = evidence(&work(8, 70.0), &facts(Role::Client)).unwrap();
        assert!(noisy_or(early.strength, 0.5) >= SUSPECTED_AT);
    }

    #[test]
    fn the_server_end_is_not_the_miner() {
        assert!(evidence(&work(8, 70.0), &facts(Role::Server)).is_none());
    }
}
