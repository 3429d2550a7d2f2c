//! What a flow observation means about the process that owns the flow.
//!
//! Pure: the flow table says what was recognised on the wire, this module
//! decides whether it is evidence about the local process, how strong, and
//! says it in words. Direction and role matter: a pool name the process
//! *asked* for speaks against it, one it *answered* (a local resolver) does
//! not; stratum a local server *received* makes it the pool, not the miner.

use std::{collections::HashSet, net::SocketAddr};

use serde_json::{Map, Value, json};

use crate::{
    classify::flow::Observation,
    classify::{
        Direction, cadence, catalogue::Catalogue, dns::PoolDomains, p2p, stratum, stratum_v2, tls,
    },
    evidence::EvidenceKind,
    procfs::sockets::Role,
};

/// What is known of the flow and its owner when an observation arrives.
#[derive(Debug, Clone)]
pub struct FlowFacts {
    pub tgid: u32,
    pub comm: String,
    pub role: Role,
    pub remote: Option<SocketAddr>,
    pub local: Option<SocketAddr>,
    /// The local process itself sent a miner's call on this flow (a
    /// stratum login, subscribe, authorize or share with a miner's
    /// parameters): what the pool side says is about it too.
    pub sent_miner_call: bool,
    /// The owner's CPU use lately, in cores, where the CPU sensor runs.
    pub owner_cores: Option<f64>,
    /// The process is a local resolver (it received DNS queries), or the
    /// name repeats one a local server just received: the lookup is
    /// someone else's, forwarded.
    pub forwarding: bool,
}

impl FlowFacts {
    /// The facts of `flow` about its `owner`; what its bytes said is
    /// filled in by the caller.
    pub fn of(owner: &assay_classify::flow::Owner, flow: &assay_classify::flow::Flow) -> Self {
        Self {
            tgid: owner.tgid,
            comm: owner.comm.clone(),
            role: owner.role,
            remote: flow.remote,
            local: flow.local,
            sent_miner_call: flow.sent_miner_call(),
            owner_cores: None,
            forwarding: false,
        }
    }
}

/// Strength of a pool-side stratum line on a flow whose local side spoke
/// no stratum: a hint, below [`crate::correlate::OPENS_AT`], so that it
/// never opens a verdict alone, however many such lines a server sends
/// (one record per process: its summary names neither line nor server).
pub const POOL_SIDE_HINT: f32 = 0.1;

/// Evidence before the workload and times are attached.
#[derive(Debug, Clone)]
pub struct Draft {
    pub kind: EvidenceKind,
    pub strength: f32,
    pub decisive: bool,
    pub summary: String,
    pub attributes: Map<String, Value>,
}

/// Distinct libp2p peers a process needs before its libp2p use counts as
/// gossip: one libp2p connection is any IPFS-style client.
pub const LIBP2P_GOSSIP_PEERS: usize = 3;

/// Turns one observation into evidence about the flow's owner, if it is
/// any. `libp2p_peers` is the set of distinct libp2p peers the owner has
/// been seen with, this one included.
pub fn evidence_for(
    observation: &Observation,
    direction: Direction,
    facts: &FlowFacts,
    catalogue: &Catalogue,
    libp2p_peers: &HashSet<SocketAddr>,
) -> Option<Draft> {
    let pools = catalogue.pools();
    match observation {
        Observation::Stratum(message) => stratum_evidence(message.clone(), direction, facts),
        Observation::StratumV2Setup(setup) => setup_evidence(setup, direction, facts),
        Observation::StratumV2SetupSuccess { version } => {
            (direction == Direction::Inbound && facts.role == Role::Client).then(|| Draft {
                kind: EvidenceKind::StratumV2,
                strength: 0.5,
                decisive: false,
                summary: format!(
                    "{} was answered with a stratum V2 SetupConnection.Success (version {version}) by {}",
                    who(facts),
                    peer(facts)
                ),
                attributes: base_attributes("stratum-v2", direction, facts),
            })
        }
        Observation::StratumV2Noise { client } => {
            let local_is_client = *client == Direction::Outbound;
            local_is_client.then(|| Draft {
                kind: EvidenceKind::StratumV2,
                strength: 0.4,
                decisive: false,
                summary: format!(
                    "{} opened a connection to {} with a 64-byte key answered by exactly 234 bytes: \
                     the shape of the stratum V2 Noise handshake",
                    who(facts),
                    peer(facts)
                ),
                attributes: base_attributes("stratum-v2-noise", direction, facts),
            })
        }
        Observation::TlsClientHello(hello) => tls_evidence(hello, direction, facts, pools),
        Observation::TlsServerHello(hello) => certificate_evidence(hello, direction, facts, pools),
        Observation::JobCadence(cadence) => cadence_evidence(cadence, facts),
        Observation::Dns(message) => dns_evidence(message, direction, facts, pools),
        Observation::P2p(opening) => {
            p2p_evidence(opening, direction, facts, catalogue, libp2p_peers)
        }
        Observation::ChainRpc { .. } | Observation::BeaconApi(_) | Observation::Bittensor(_) => {
            super::chain::evidence_for(observation, direction, facts)
        }
        Observation::Discv4 => {
            let mut attributes = base_attributes("devp2p-discv4", direction, facts);
            attributes.insert("network".into(), json!("ethereum devp2p"));
            // Anyone can be sent a discovery packet (scanners do it to
            // every port); sending one is what a node does.
            let decisive = direction == Direction::Outbound;
            Some(Draft {
                kind: EvidenceKind::P2p,
                strength: if decisive { 1.0 } else { 0.3 },
                decisive,
                summary: format!(
                    "{} {} an Ethereum devp2p discovery (discv4) packet, its keccak hash intact, {} {}",
                    who(facts),
                    verb(direction),
                    preposition(direction),
                    peer(facts)
                ),
                attributes,
            })
        }
    }
}

pub(super) fn who(facts: &FlowFacts) -> String {
    format!("pid {} ({})", facts.tgid, facts.comm)
}

pub(super) fn peer(facts: &FlowFacts) -> String {
    facts
        .remote
        .map(|r| r.to_string())
        .unwrap_or_else(|| "an unknown peer".into())
}

fn verb(direction: Direction) -> &'static str {
    match direction {
        Direction::Outbound => "sent",
        Direction::Inbound => "received",
    }
}

fn preposition(direction: Direction) -> &'static str {
    match direction {
        Direction::Outbound => "to",
        Direction::Inbound => "from",
    }
}

pub(super) fn base_attributes(
    protocol: &str,
    direction: Direction,
    facts: &FlowFacts,
) -> Map<String, Value> {
    let mut attributes = Map::new();
    attributes.insert("protocol".into(), json!(protocol));
    attributes.insert("direction".into(), json!(direction));
    attributes.insert("role".into(), json!(facts.role));
    if let Some(remote) = facts.remote {
        attributes.insert("remote".into(), json!(remote.to_string()));
    }
    if let Some(local) = facts.local {
        attributes.insert("local".into(), json!(local.to_string()));
    }
    attributes
}

/// Distinct peer endpoints (address and port) on long-lived, unrecognised
/// binary flows that make a process look like a gossip node (docs/signatures.md:
/// 8–125 peers).
pub const GOSSIP_PEERS: usize = 8;

/// A process holding long-lived binary flows (not TLS, not anything the
/// classifiers read) to many distinct peers: the shape of a p2p node
/// whose transport is encrypted (Bitcoin v2, devp2p RLPx, Noise). Browsers
/// hold many flows too, but over TLS, which does not count here.
pub fn fanout_evidence(facts: &FlowFacts, distinct_peers: usize) -> Option<Draft> {
    if distinct_peers < GOSSIP_PEERS {
        return None;
    }
    let mut attributes = base_attributes("opaque", Direction::Outbound, facts);
    attributes.insert("network".into(), json!("unidentified p2p (fan-out)"));
    attributes.insert("distinct_peers".into(), json!(distinct_peers));
    Some(Draft {
        kind: EvidenceKind::P2p,
        strength: 0.3,
        decisive: false,
        summary: format!(
            "{} keeps long-lived connections of an unrecognised binary protocol to {distinct_peers} \
             distinct peers, the latest {}: the fan-out of a peer-to-peer node",
            who(facts),
            peer(facts)
        ),
        attributes,
    })
}

/// A process must use at least this many cores for a beat of pushes on
/// its flow to count: a miner computes between jobs, while an idle
/// subscriber (an MQTT QoS-0 client, a market-data or chat feed) receives
/// small unanswered pushes on a beat just the same.
pub const CADENCE_BUSY_CORES: f64 = 0.5;

fn cadence_evidence(cadence: &cadence::PushCadence, facts: &FlowFacts) -> Option<Draft> {
    // Pushes to a local server's clients say nothing about the server.
    if facts.role == Role::Server {
        return None;
    }
    // Without the CPU sensor, or with the owner mostly idle, the beat
    // alone says nothing.
    let cores = facts.owner_cores?;
    if cores < CADENCE_BUSY_CORES {
        return None;
    }
    let mut attributes = base_attributes("opaque", Direction::Inbound, facts);
    attributes.insert("pushes".into(), json!(cadence.pushes));
    attributes.insert(
        "push_interval_s".into(),
        json!((cadence.interval_s * 100.0).round() / 100.0),
    );
    attributes.insert(
        "interval_variation".into(),
        json!((cadence.variation * 100.0).round() / 100.0),
    );
    attributes.insert(
        "mean_push_bytes".into(),
        json!(cadence.mean_push_bytes.round()),
    );
    Some(Draft {
        kind: EvidenceKind::JobCadence,
        strength: 0.35,
        decisive: false,
        summary: format!(
            "{} holds an encrypted or unreadable flow to {} on which the server pushed {} \
             unanswered messages of about {:.0} bytes every {:.1} s (±{:.0} %): the beat of a \
             mining pool's job notifications",
            who(facts),
            peer(facts),
            cadence.pushes,
            cadence.mean_push_bytes,
            cadence.interval_s,
            cadence.variation * 100.0
        ),
        attributes,
    })
}

fn stratum_evidence(
    message: stratum::Message,
    direction: Direction,
    facts: &FlowFacts,
) -> Option<Draft> {
    // A local server receiving stratum is the pool (or a proxy), not the
    // miner: the miner is the remote end.
    if facts.role == Role::Server {
        return None;
    }
    // Decisive means decisive about the process itself: what it sent as a
    // miner, or what the pool says on a flow where it sent a miner's call.
    // A server can send anything: pool-shaped lines (or a miner's call)
    // from it to a client that spoke no stratum itself, a JSON-RPC wallet
    // say, are a hint at most, whichever came first (a client that proves
    // itself later is confirmed by its own call).
    let own_call = direction == Direction::Outbound && !message.from_pool;
    let about_it = own_call || (message.from_pool && facts.sent_miner_call);
    if !about_it {
        return Some(pool_side_hint(&message, direction, facts));
    }
    let variant = message.variant;
    let mut attributes = base_attributes("stratum-v1", direction, facts);
    if let Some(variant) = variant {
        attributes.insert("variant".into(), json!(variant.id()));
        attributes.insert("variant_name".into(), json!(variant.describe()));
    }
    attributes.insert("method".into(), json!(message.method));
    for (key, value) in [
        ("agent", &message.agent),
        ("login", &message.login),
        ("worker", &message.worker),
    ] {
        if let Some(value) = value {
            attributes.insert(key.into(), Value::String(value.clone()));
        }
    }
    if !message.algorithms.is_empty() {
        attributes.insert("algorithms".into(), json!(message.algorithms));
    }
    let mut summary = format!(
        "{} {} a {} `{}` message {} {}",
        who(facts),
        verb(direction),
        variant.map(|v| v.describe()).unwrap_or("stratum"),
        message.method,
        preposition(direction),
        peer(facts),
    );
    if let Some(agent) = &message.agent {
        summary.push_str(&format!(", miner agent \"{agent}\""));
    }
    if let Some(login) = &message.login {
        summary.push_str(&format!(", login \"{login}\""));
    }
    Some(Draft {
        kind: EvidenceKind::Stratum,
        strength: if message.decisive { 1.0 } else { 0.5 },
        decisive: message.decisive,
        summary,
        attributes,
    })
}

/// Stratum-shaped lines the local process received (or, as a pool would,
/// sent) on a flow where it spoke no stratum itself.
fn pool_side_hint(message: &stratum::Message, direction: Direction, facts: &FlowFacts) -> Draft {
    let mut attributes = base_attributes("stratum-v1", direction, facts);
    attributes.insert("method".into(), json!(message.method));
    attributes.insert("client_spoke_stratum".into(), json!(false));
    Draft {
        kind: EvidenceKind::Stratum,
        strength: POOL_SIDE_HINT,
        decisive: false,
        summary: format!(
            "{} exchanged stratum pool-shaped lines on a connection where it sent no stratum \
             call of its own (a hint only: a server can send anything)",
            who(facts)
        ),
        attributes,
    }
}

fn setup_evidence(
    setup: &stratum_v2::SetupConnection,
    direction: Direction,
    facts: &FlowFacts,
) -> Option<Draft> {
    // Only the client sends SetupConnection: the local process is the
    // client when it sent it.
    if direction != Direction::Outbound {
        return None;
    }
    let mining = setup.protocol == 0;
    let mut attributes = base_attributes("stratum-v2", direction, facts);
    attributes.insert(
        "subprotocol".into(),
        json!(stratum_v2::protocol_name(setup.protocol)),
    );
    attributes.insert(
        "endpoint".into(),
        json!(format!("{}:{}", setup.endpoint_host, setup.endpoint_port)),
    );
    if !setup.vendor.is_empty() {
        attributes.insert("agent".into(), json!(setup.vendor));
    }
    if !setup.device_id.is_empty() {
        attributes.insert("worker".into(), json!(setup.device_id));
    }
    Some(Draft {
        kind: EvidenceKind::StratumV2,
        strength: if mining { 1.0 } else { 0.6 },
        decisive: mining,
        summary: format!(
            "{} sent a stratum V2 SetupConnection for the {} protocol to {} \
             (endpoint {}:{}, vendor \"{}\", device \"{}\")",
            who(facts),
            stratum_v2::protocol_name(setup.protocol),
            peer(facts),
            setup.endpoint_host,
            setup.endpoint_port,
            setup.vendor,
            setup.device_id
        ),
        attributes,
    })
}

fn tls_evidence(
    hello: &tls::ClientHello,
    direction: Direction,
    facts: &FlowFacts,
    pools: &PoolDomains,
) -> Option<Draft> {
    if direction != Direction::Outbound {
        return None;
    }
    let sni = hello.sni.as_deref()?;
    let entry = pools.matches(sni)?;
    let mut attributes = base_attributes("tls", direction, facts);
    attributes.insert("source".into(), json!("tls_sni"));
    attributes.insert("server_name".into(), json!(sni));
    attributes.insert("pool_domain".into(), json!(entry));
    attributes.insert("ja4".into(), json!(hello.ja4));
    if !hello.alpn.is_empty() {
        attributes.insert("alpn".into(), json!(hello.alpn));
    }
    Some(Draft {
        kind: EvidenceKind::PoolName,
        strength: 0.7,
        decisive: false,
        summary: format!(
            "{} opened TLS to {} naming the mining pool \"{sni}\" (listed under {entry})",
            who(facts),
            peer(facts)
        ),
        attributes,
    })
}

/// A server certificate naming a pool, received by the process that
/// dialled: what a self-hosted pool or a TLS proxy in front of one shows
/// where the client sent no SNI. A local server's own certificate says
/// nothing about a miner, so only the client side counts.
fn certificate_evidence(
    hello: &tls::ServerHello,
    direction: Direction,
    facts: &FlowFacts,
    pools: &PoolDomains,
) -> Option<Draft> {
    if direction != Direction::Inbound || facts.role != Role::Client {
        return None;
    }
    let certificate = hello.certificate.as_ref()?;
    let (name, entry) = certificate
        .dns_names
        .iter()
        .chain(&certificate.subject_cn)
        .find_map(|name| pools.matches(name).map(|entry| (name, entry)))?;
    let mut attributes = base_attributes("tls", direction, facts);
    attributes.insert("source".into(), json!("tls_certificate"));
    attributes.insert("certificate_name".into(), json!(name));
    attributes.insert("pool_domain".into(), json!(entry));
    attributes.insert("issuer".into(), json!(certificate.issuer_cn));
    attributes.insert("self_signed".into(), json!(certificate.self_signed));
    attributes.insert("certificate_sha256".into(), json!(certificate.sha256));
    let vouched = if certificate.self_signed {
        "self-signed".to_owned()
    } else {
        match &certificate.issuer_cn {
            Some(issuer) => format!("issued by \"{issuer}\""),
            None => "issued by an unnamed authority".to_owned(),
        }
    };
    Some(Draft {
        kind: EvidenceKind::PoolName,
        strength: 0.7,
        decisive: false,
        summary: format!(
            "{} connected over TLS to {}, which presented a certificate for the mining pool \
             \"{name}\" (listed under {entry}), {vouched}",
            who(facts),
            peer(facts)
        ),
        attributes,
    })
}

fn dns_evidence(
    message: &assay_classify::dns::Message,
    direction: Direction,
    facts: &FlowFacts,
    pools: &PoolDomains,
) -> Option<Draft> {
    // The process's own lookups: queries it sent, answers it received. A
    // resolver serving others sees the opposite and is not the asker.
    let asked = match direction {
        Direction::Outbound => !message.is_response,
        Direction::Inbound => message.is_response,
    };
    if !asked || facts.forwarding {
        return None;
    }
    // The name asked, or an alias the answer leads to: a pool hidden
    // behind a CNAME of an innocent-looking domain is still the pool.
    let (name, entry) = message
        .questions
        .iter()
        .find_map(|q| pools.matches(&q.name).map(|entry| (q.name.clone(), entry)))
        .or_else(|| {
            message.answers.iter().find_map(|r| match &r.data {
                assay_classify::dns::RecordData::Cname(target) => {
                    pools.matches(target).map(|entry| (target.clone(), entry))
                }
                _ => None,
            })
        })?;
    let mut attributes = base_attributes("dns", direction, facts);
    attributes.insert("source".into(), json!("dns"));
    attributes.insert("query".into(), json!(name));
    attributes.insert("pool_domain".into(), json!(entry));
    let addresses: Vec<String> = message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            assay_classify::dns::RecordData::A(a) => Some(a.to_string()),
            assay_classify::dns::RecordData::Aaaa(a) => Some(a.to_string()),
            _ => None,
        })
        .collect();
    if !addresses.is_empty() {
        attributes.insert("answers".into(), json!(addresses));
    }
    Some(Draft {
        kind: EvidenceKind::PoolName,
        strength: 0.7,
        decisive: false,
        summary: format!(
            "{} looked up the mining pool name \"{name}\" (listed under {entry}) {}",
            who(facts),
            if message.is_response {
                "and got an answer"
            } else {
                "in DNS"
            }
        ),
        attributes,
    })
}

fn p2p_evidence(
    opening: &p2p::Opening,
    direction: Direction,
    facts: &FlowFacts,
    catalogue: &Catalogue,
    libp2p_peers: &HashSet<SocketAddr>,
) -> Option<Draft> {
    let blockchain = opening.network.is_blockchain();
    if !blockchain && libp2p_peers.len() < LIBP2P_GOSSIP_PEERS {
        return None;
    }
    // Only what the process itself says is decisive: a listener that was
    // sent a Bitcoin `version` may be a scanner's target, a node answers.
    let decisive = blockchain
        && opening.confidence == p2p::Confidence::Decisive
        && direction == Direction::Outbound;
    let mut attributes = base_attributes("p2p", direction, facts);
    attributes.insert(
        "network".into(),
        json!(opening.network.describe_in(catalogue)),
    );
    for (key, value) in opening.network.identifiers_in(catalogue) {
        attributes.insert(key.into(), json!(value));
    }
    if let Some(message) = &opening.message {
        attributes.insert("message".into(), json!(message));
    }
    attributes.insert("confidence".into(), json!(opening.confidence));
    let summary = if blockchain {
        format!(
            "{} {} a {} peer-to-peer {} {} {}",
            who(facts),
            verb(direction),
            opening.network.describe_in(catalogue),
            opening
                .message
                .as_deref()
                .map(|m| format!("`{m}` message"))
                .unwrap_or_else(|| "opening".into()),
            preposition(direction),
            peer(facts)
        )
    } else {
        attributes.insert("distinct_peers".into(), json!(libp2p_peers.len()));
        format!(
            "{} speaks libp2p with {} distinct peers (gossip fan-out), the latest {}",
            who(facts),
            libp2p_peers.len(),
            peer(facts)
        )
    };
    Some(Draft {
        kind: EvidenceKind::P2p,
        strength: match (decisive, blockchain, direction) {
            (true, _, _) => 1.0,
            (false, true, Direction::Outbound) => 0.5,
            (false, true, Direction::Inbound) => 0.3,
            (false, false, _) => 0.4,
        },
        decisive,
        summary,
        attributes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_classify::dns;

    fn facts(role: Role) -> FlowFacts {
        FlowFacts {
            tgid: 7,
            comm: "worker".into(),
            role,
            remote: Some("192.0.2.1:53".parse().unwrap()),
            local: Some("192.0.2.2:40000".parse().unwrap()),
            sent_miner_call: false,
            owner_cores: None,
            forwarding: false,
        }
    }

    #[test]
    fn a_beat_of_pushes_counts_only_on_a_busy_owner() {
        let beat = Observation::JobCadence(cadence::PushCadence {
            pushes: 8,
            interval_s: 1.0,
            variation: 0.05,
            mean_push_bytes: 180.0,
            answered_share: 0.0,
        });
        let with = |cores: Option<f64>| FlowFacts {
            owner_cores: cores,
            ..facts(Role::Client)
        };
        let judge = |facts: &FlowFacts| {
            evidence_for(&beat, Direction::Inbound, facts, &pools(), &HashSet::new())
        };
        // An idle subscriber (MQTT QoS 0, a feed), or no CPU sensor: nothing.
        assert!(judge(&with(None)).is_none());
        assert!(judge(&with(Some(0.02))).is_none());
        // A miner computing between jobs.
        let draft = judge(&with(Some(0.95))).unwrap();
        assert_eq!(draft.kind, EvidenceKind::JobCadence);
        assert!(!draft.decisive);
        assert!(
            judge(&FlowFacts {
                owner_cores: Some(0.95),
                ..facts(Role::Server)
            })
            .is_none()
        );
    }

    /// The built-in catalogue (its pool list has supportxmr.com).
    fn pools() -> Catalogue {
        Catalogue::builtin().clone()
    }

    /// Evidence about a client-role owner with no libp2p peers.
    fn as_client(observation: &Observation, direction: Direction) -> Option<Draft> {
        evidence_for(
            observation,
            direction,
            &facts(Role::Client),
            &pools(),
            &HashSet::new(),
        )
    }

    fn dns_message(name: &str, is_response: bool) -> Observation {
        Observation::Dns(dns::Message {
            id: 1,
            is_response,
            rcode: 0,
            questions: vec![dns::Question {
                name: name.into(),
                qtype: 1,
            }],
            answers: Vec::new(),
        })
    }

    #[test]
    fn a_pool_lookup_by_the_process_is_evidence_and_an_ordinary_one_is_not() {
        let query = dns_message("pool.supportxmr.com", false);
        let draft = as_client(&query, Direction::Outbound).unwrap();
        assert_eq!(draft.kind, EvidenceKind::PoolName);
        assert!(!draft.decisive);
        assert_eq!(draft.attributes["pool_domain"], "supportxmr.com");
        let ordinary = dns_message("deb.debian.org", false);
        assert!(as_client(&ordinary, Direction::Outbound).is_none());
    }

    #[test]
    fn a_resolver_answering_others_is_not_the_asker() {
        let query = dns_message("pool.supportxmr.com", false);
        assert!(as_client(&query, Direction::Inbound).is_none());
        let answer = dns_message("pool.supportxmr.com", true);
        assert!(as_client(&answer, Direction::Outbound).is_none());
    }

    #[test]
    fn a_resolver_forwarding_a_lookup_it_received_is_not_the_asker() {
        let none = HashSet::new();
        let query = dns_message("pool.supportxmr.com", false);
        let forwarder = FlowFacts {
            forwarding: true,
            ..facts(Role::Client)
        };
        assert!(evidence_for(&query, Direction::Outbound, &forwarder, &pools(), &none).is_none());
    }

    #[test]
    fn stratum_received_by_a_local_server_is_not_mining_evidence_for_it() {
        let message = stratum::Message {
            method: "login".into(),
            decisive: true,
            ..Default::default()
        };
        let none = HashSet::new();
        let observation = Observation::Stratum(message);
        assert!(
            evidence_for(
                &observation,
                Direction::Inbound,
                &facts(Role::Server),
                &pools(),
                &none
            )
            .is_none()
        );
        let client = as_client(&observation, Direction::Outbound).unwrap();
        assert!(client.decisive);
    }

    /// A stratum line as the classifier reads it, in `direction`.
    fn line(text: &str, direction: Direction) -> Observation {
        Observation::Stratum(
            stratum::classify_line(text.as_bytes(), direction)
                .unwrap()
                .unwrap_or_else(|| panic!("not stratum: {text}")),
        )
    }

    const NOTIFY: &str = r#"{"id":null,"method":"mining.notify","params":["bf","4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000","01","02",[],"00000002","1c2ac4af","504e86b9",false]}"#;
    const DIFFICULTY: &str = r#"{"id":null,"method":"mining.set_difficulty","params":[2]}"#;
    const JOB: &str = r#"{"jsonrpc":"2.0","method":"job","params":{"blob":"0707","job_id":"1","target":"b88d0600"}}"#;
    const JOB_RESULT: &str = r#"{"id":1,"jsonrpc":"2.0","error":null,"result":{"id":"x","job":{"blob":"0707","job_id":"1","target":"ff","seed_hash":"00"},"status":"OK"}}"#;
    const SUBSCRIBE_RESULT: &str = r#"{"id":1,"result":[[["mining.set_difficulty","1"],["mining.notify","1"]],"08000002",4],"error":null}"#;
    const LOGIN: &str = r#"{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A","pass":"x","agent":"XMRig/6.21.0","algo":["rx/0"]}}"#;

    fn client_that(sent_miner_call: bool) -> FlowFacts {
        FlowFacts {
            sent_miner_call,
            ..facts(Role::Client)
        }
    }

    fn evidence(observation: &Observation, direction: Direction, facts: &FlowFacts) -> Draft {
        evidence_for(observation, direction, facts, &pools(), &HashSet::new()).unwrap()
    }

    #[test]
    fn pool_lines_to_a_client_that_spoke_no_stratum_are_a_hint_only() {
        // A JSON-RPC wallet whose server sends pool-shaped lines.
        let wallet = client_that(false);
        let mut summaries = HashSet::new();
        for text in [NOTIFY, DIFFICULTY, JOB, JOB_RESULT, SUBSCRIBE_RESULT] {
            let draft = evidence(&line(text, Direction::Inbound), Direction::Inbound, &wallet);
            assert!(!draft.decisive, "{text}");
            assert!(draft.strength < crate::correlate::OPENS_AT, "{text}");
            summaries.insert(draft.summary);
        }
        // One record per process, whatever the server sends.
        assert_eq!(summaries.len(), 1, "{summaries:?}");
        // The same lines once the client logged in itself: decisive.
        let miner = client_that(true);
        for text in [NOTIFY, DIFFICULTY, JOB, JOB_RESULT, SUBSCRIBE_RESULT] {
            let draft = evidence(&line(text, Direction::Inbound), Direction::Inbound, &miner);
            assert!(draft.decisive && draft.strength == 1.0, "{text}");
        }
    }

    #[test]
    fn a_miners_call_is_decisive_only_when_the_process_sent_it() {
        let login = line(LOGIN, Direction::Outbound);
        // Sent: decisive, whatever came before.
        assert!(evidence(&login, Direction::Outbound, &client_that(false)).decisive);
        // Received from a server: says nothing decisive about the client,
        // even one that is a miner.
        let received = line(LOGIN, Direction::Inbound);
        for sent in [false, true] {
            let draft = evidence(&received, Direction::Inbound, &client_that(sent));
            assert!(!draft.decisive && draft.strength < crate::correlate::OPENS_AT);
        }
        // A client sending pool pushes of its own is not a miner by them.
        let push = line(NOTIFY, Direction::Outbound);
        assert!(!evidence(&push, Direction::Outbound, &client_that(false)).decisive);
    }

    #[test]
    fn pool_hints_from_a_hostile_server_never_open_a_verdict() {
        use crate::{correlate::Correlator, evidence::Evidence, tables::workload::Workload};
        let mut correlator = Correlator::new("h");
        let wallet = client_that(false);
        let now = std::time::SystemTime::now();
        for _ in 0..3 {
            for text in [NOTIFY, DIFFICULTY, JOB, JOB_RESULT, SUBSCRIBE_RESULT] {
                let draft = evidence(&line(text, Direction::Inbound), Direction::Inbound, &wallet);
                let verdict = correlator.observe(Evidence::new(
                    Workload::Process { tgid: 7 },
                    7,
                    draft.kind,
                    draft.strength,
                    draft.decisive,
                    draft.summary,
                    draft.attributes,
                    now,
                ));
                assert!(verdict.is_none(), "{text}: {verdict:?}");
            }
        }
    }

    #[test]
    fn binary_fan_out_counts_from_the_gossip_threshold() {
        let facts = facts(Role::Client);
        assert!(fanout_evidence(&facts, GOSSIP_PEERS - 1).is_none());
        let draft = fanout_evidence(&facts, GOSSIP_PEERS).unwrap();
        assert_eq!(draft.kind, EvidenceKind::P2p);
        assert!(!draft.decisive && draft.strength < 0.5);
    }

    #[test]
    fn libp2p_counts_only_as_gossip_fan_out() {
        let opening = Observation::P2p(p2p::Opening {
            network: p2p::Network::Libp2p,
            message: Some("/noise".into()),
            confidence: p2p::Confidence::Decisive,
        });
        let mut peers: HashSet<SocketAddr> = HashSet::new();
        peers.insert("192.0.2.1:4001".parse().unwrap());
        assert!(
            evidence_for(
                &opening,
                Direction::Outbound,
                &facts(Role::Client),
                &pools(),
                &peers
            )
            .is_none()
        );
        peers.insert("192.0.2.3:4001".parse().unwrap());
        peers.insert("192.0.2.4:4001".parse().unwrap());
        let draft = evidence_for(
            &opening,
            Direction::Outbound,
            &facts(Role::Client),
            &pools(),
            &peers,
        )
        .unwrap();
        assert!(!draft.decisive);
        assert_eq!(draft.kind, EvidenceKind::P2p);
    }

    #[test]
    fn only_what_the_process_itself_sends_is_decisive_p2p() {
        let levin = Observation::P2p(p2p::Opening {
            network: p2p::Network::Levin { network_id: None },
            message: Some("handshake (1001)".into()),
            confidence: p2p::Confidence::Decisive,
        });
        let sent = as_client(&levin, Direction::Outbound).unwrap();
        assert!(sent.decisive);
        // A listener sent a handshake by a scanner has said nothing yet.
        let received = evidence_for(
            &levin,
            Direction::Inbound,
            &facts(Role::Server),
            &pools(),
            &HashSet::new(),
        )
        .unwrap();
        assert!(!received.decisive && received.strength < SCANNED_BELOW);
        let discv4_received = as_client(&Observation::Discv4, Direction::Inbound).unwrap();
        assert!(!discv4_received.decisive && discv4_received.strength < SCANNED_BELOW);
        assert!(
            as_client(&Observation::Discv4, Direction::Outbound)
                .unwrap()
                .decisive
        );
    }

    #[test]
    fn a_bitcoin_fork_names_its_magic_and_chain_and_is_chain_node_evidence() {
        for (magic, chain) in [
            ([0xfb, 0xc0, 0xb6, 0xdb], Some("Litecoin mainnet")),
            ([0x5a, 0xa5, 0xc3, 0x3c], None),
        ] {
            let version = Observation::P2p(p2p::Opening {
                network: p2p::Network::Bitcoin(p2p::Magic(magic)),
                message: Some("version".into()),
                confidence: p2p::Confidence::Decisive,
            });
            let draft = as_client(&version, Direction::Outbound).unwrap();
            assert_eq!(draft.kind, EvidenceKind::P2p);
            assert!(draft.decisive);
            let hex = p2p::Magic(magic).hex();
            assert_eq!(draft.attributes["magic"], hex.as_str());
            assert_eq!(
                draft.attributes.get("chain").and_then(|c| c.as_str()),
                chain
            );
            assert!(
                draft.summary.contains(&format!("magic {hex}")),
                "{}",
                draft.summary
            );
            assert!(
                draft.summary.contains(chain.unwrap_or("unlisted network")),
                "{}",
                draft.summary
            );
        }
    }

    /// Evidence a scanned listener gets stays below `suspected` even
    /// with one more such probe.
    const SCANNED_BELOW: f32 = 0.37;

    #[test]
    fn a_local_resolver_is_not_the_asker_of_what_it_resolves() {
        let resolver = FlowFacts {
            forwarding: true,
            ..facts(Role::Client)
        };
        for (message, direction) in [
            (dns_message("supportxmr.com", false), Direction::Outbound),
            (dns_message("pool.supportxmr.com", true), Direction::Inbound),
        ] {
            assert!(
                evidence_for(&message, direction, &resolver, &pools(), &HashSet::new()).is_none()
            );
        }
    }

    /// A TLS 1.2 ServerHello whose certificate has these names.
    fn server_hello(dns_names: &[&str], subject_cn: &str, issuer_cn: &str) -> Observation {
        let mut hello = without_certificate();
        hello.certificate = Some(tls::CertificateFacts {
            subject_cn: Some(subject_cn.into()),
            dns_names: dns_names.iter().map(|&n| n.into()).collect(),
            issuer_cn: Some(issuer_cn.into()),
            self_signed: subject_cn == issuer_cn,
            not_before: 1_735_689_600,
            not_after: 2_051_222_400,
            sha256: "8bc316ca".into(),
            chain_len: Some(1),
        });
        Observation::TlsServerHello(hello)
    }

    fn without_certificate() -> tls::ServerHello {
        tls::ServerHello {
            version: 0x0303,
            cipher_suite: 0xc02f,
            alpn: None,
            certificate: None,
            certificate_cut: true,
        }
    }

    #[test]
    fn a_pool_certificate_received_by_the_client_is_evidence() {
        let hello = server_hello(
            &["www.example.com", "*.supportxmr.com"],
            "pool.supportxmr.com",
            "pool.supportxmr.com",
        );
        let draft = as_client(&hello, Direction::Inbound).unwrap();
        assert_eq!(draft.kind, EvidenceKind::PoolName);
        assert_eq!(draft.strength, 0.7);
        assert!(!draft.decisive);
        assert_eq!(draft.attributes["source"], "tls_certificate");
        assert_eq!(draft.attributes["certificate_name"], "*.supportxmr.com");
        assert_eq!(draft.attributes["pool_domain"], "supportxmr.com");
        assert_eq!(draft.attributes["issuer"], "pool.supportxmr.com");
        assert_eq!(draft.attributes["self_signed"], true);
        assert!(
            draft.summary.contains("\"*.supportxmr.com\""),
            "{}",
            draft.summary
        );
        assert!(draft.summary.contains("self-signed"), "{}", draft.summary);

        // Only the subject names the pool; a CA vouched for it.
        let hello = server_hello(&[], "xmr.supportxmr.com", "Example CA");
        let draft = as_client(&hello, Direction::Inbound).unwrap();
        assert_eq!(draft.attributes["certificate_name"], "xmr.supportxmr.com");
        assert_eq!(draft.attributes["self_signed"], false);
        assert!(
            draft.summary.contains("issued by \"Example CA\""),
            "{}",
            draft.summary
        );
    }

    #[test]
    fn a_certificate_is_no_evidence_unless_a_client_received_a_pool_name() {
        let pool = server_hello(&["pool.supportxmr.com"], "pool", "pool");
        // A local server sending its own certificate, or one received by a
        // server-role flow owner, says nothing about a miner.
        assert!(as_client(&pool, Direction::Outbound).is_none());
        assert!(
            evidence_for(
                &pool,
                Direction::Inbound,
                &facts(Role::Server),
                &pools(),
                &HashSet::new()
            )
            .is_none()
        );
        let ordinary = server_hello(&["www.example.com"], "www.example.com", "Example CA");
        assert!(as_client(&ordinary, Direction::Inbound).is_none());
        let unseen = Observation::TlsServerHello(without_certificate());
        assert!(as_client(&unseen, Direction::Inbound).is_none());
    }

    #[test]
    fn a_pool_behind_a_cname_is_still_a_pool_lookup() {
        let answer = Observation::Dns(dns::Message {
            id: 1,
            is_response: true,
            rcode: 0,
            questions: vec![dns::Question {
                name: "metrics.example-cdn.net".into(),
                qtype: 1,
            }],
            answers: vec![dns::Record {
                name: "metrics.example-cdn.net".into(),
                rtype: 5,
                ttl: 60,
                data: dns::RecordData::Cname("pool.supportxmr.com".into()),
            }],
        });
        let draft = as_client(&answer, Direction::Inbound).unwrap();
        assert_eq!(draft.attributes["query"], "pool.supportxmr.com");
        // An ordinary alias is nothing.
        let Observation::Dns(mut plain) = answer else {
            unreachable!()
        };
        plain.answers[0].data = dns::RecordData::Cname("edge.example-cdn.net".into());
        assert!(as_client(&Observation::Dns(plain), Direction::Inbound).is_none());
    }
}
