//! What chain use on a flow means about the process that owns it
//! (docs/grey-zone.md): a chain JSON-RPC call it sent makes it a chain
//! client, a validator client's beacon-API calls or a consensus client's
//! Engine API calls make it a PoS validator, and a Bittensor-signed
//! request it sent (a dendrite) or served (an axon) make it a participant
//! in that incentive network.
//!
//! Who sent it decides: a server receiving chain calls is a node or a
//! proxy serving others, not their client, and nothing here is said about
//! it. A Bittensor axon is the exception by design: serving signed
//! requests is how its operator earns.

use assay_classify::{
    Direction, beacon, bittensor,
    chain_rpc::{self, Family},
    flow::{Carrier, Observation},
};
use serde_json::json;

use super::{
    EvidenceKind,
    network::{Draft, FlowFacts, base_attributes, peer, who},
};
use crate::procfs::sockets::Role;

/// Strength of a chain call that reads (a balance, a block): enough to be
/// suspected at once (above [`crate::correlate::SUSPECTED_AT`]); a
/// transaction submitted confirms.
pub const CHAIN_READ: f32 = 0.65;
/// A beacon-API duty poll or attestation-data request without a signature:
/// what a dashboard could also ask.
pub const BEACON_UNSIGNED: f32 = 0.4;
/// Engine API calls with a JWT: a consensus client drives an execution
/// engine (a PoS node; whether it signs, the validator API shows).
pub const ENGINE_API: f32 = 0.5;
/// A Bittensor-signed request, sent or served.
pub const BITTENSOR_SIGNED: f32 = 0.8;

/// Methods that submit a transaction: a chain client acting, not reading.
const SUBMISSIONS: [&str; 7] = [
    "eth_sendRawTransaction",
    "eth_sendTransaction",
    "author_submitExtrinsic",
    "author_submitAndWatchExtrinsic",
    "sendTransaction",
    "sendrawtransaction",
    "blockchain.transaction.broadcast",
];

/// The network name reports and the incentive marker use.
pub fn network_of(family: Family) -> &'static str {
    match family {
        Family::Ethereum | Family::EngineApi => "ethereum",
        Family::Substrate => "substrate",
        Family::Bitcoin => "bitcoin",
        Family::Solana => "solana",
        Family::Electrum => "bitcoin (electrum)",
    }
}

/// Evidence from a chain-use observation, if it says something about the
/// flow's owner.
pub fn evidence_for(
    observation: &Observation,
    direction: Direction,
    facts: &FlowFacts,
) -> Option<Draft> {
    let sent_as_client = direction == Direction::Outbound && facts.role == Role::Client;
    match observation {
        Observation::ChainRpc {
            call,
            carrier,
            bearer_jwt,
        } if sent_as_client => match call.family {
            Family::EngineApi => engine_api(call, bearer_jwt.as_deref()?, facts),
            _ => chain_call(call, *carrier, facts),
        },
        Observation::BeaconApi(call) if sent_as_client => Some(beacon_call(call, facts)),
        Observation::Bittensor(signed) => {
            let served = direction == Direction::Inbound && facts.role == Role::Server;
            (sent_as_client || served).then(|| bittensor_request(signed, served, facts))
        }
        _ => None,
    }
}

fn chain_call(call: &chain_rpc::Call, carrier: Carrier, facts: &FlowFacts) -> Option<Draft> {
    let network = network_of(call.family);
    let submits = SUBMISSIONS.contains(&call.method.as_str());
    let mut attributes = base_attributes("chain-rpc", Direction::Outbound, facts);
    attributes.insert("network".into(), json!(network));
    attributes.insert("api".into(), json!(call.family.describe()));
    attributes.insert("method".into(), json!(call.method));
    attributes.insert("carrier".into(), json!(carrier));
    if call.requests > 1 {
        attributes.insert("batch".into(), json!(call.requests));
    }
    let over = match carrier {
        Carrier::Http => "over HTTP",
        Carrier::Websocket => "over a websocket",
        Carrier::JsonLines => "as a JSON line",
    };
    Some(Draft {
        kind: EvidenceKind::ChainRpc,
        strength: if submits { 1.0 } else { CHAIN_READ },
        decisive: submits,
        summary: format!(
            "{} sent `{}`, a call of the {} API, {over} to {}{}: it uses the {network} chain as \
             a client",
            who(facts),
            call.method,
            call.family.describe(),
            peer(facts),
            if submits {
                ", submitting a transaction"
            } else {
                ""
            },
        ),
        attributes,
    })
}

fn engine_api(call: &chain_rpc::Call, jwt_alg: &str, facts: &FlowFacts) -> Option<Draft> {
    let mut attributes = base_attributes("engine-api", Direction::Outbound, facts);
    attributes.insert("network".into(), json!("ethereum"));
    attributes.insert("method".into(), json!(call.method));
    attributes.insert("jwt_alg".into(), json!(jwt_alg));
    Some(Draft {
        kind: EvidenceKind::Validator,
        strength: ENGINE_API,
        decisive: false,
        summary: format!(
            "{} called the Ethereum Engine API (`{}`) with a {jwt_alg} JWT bearer at {}: a \
             consensus client driving an execution engine, the node side of a PoS validator",
            who(facts),
            call.method,
            peer(facts)
        ),
        attributes,
    })
}

fn beacon_call(call: &beacon::Call, facts: &FlowFacts) -> Draft {
    let mut attributes = base_attributes("beacon-api", Direction::Outbound, facts);
    attributes.insert("network".into(), json!("ethereum"));
    attributes.insert("duty".into(), json!(call.duty));
    attributes.insert("path".into(), json!(call.path));
    attributes.insert("signed".into(), json!(call.signed));
    if let Some(n) = call.slot_or_epoch {
        attributes.insert("slot_or_epoch".into(), json!(n));
    }
    let what = if call.signed {
        "handed it a BLS-signed message (only a validator's key makes one)"
    } else {
        "asked it for a validator's duties or data to sign"
    };
    Draft {
        kind: EvidenceKind::Validator,
        strength: if call.signed { 1.0 } else { BEACON_UNSIGNED },
        decisive: call.signed,
        summary: format!(
            "{} called the beacon node API of {} at `{}` and {what}: a PoS validator client",
            who(facts),
            peer(facts),
            call.path
        ),
        attributes,
    }
}

fn bittensor_request(signed: &bittensor::Signed, served: bool, facts: &FlowFacts) -> Draft {
    let direction = if served {
        Direction::Inbound
    } else {
        Direction::Outbound
    };
    let mut attributes = base_attributes("bittensor", direction, facts);
    attributes.insert("network".into(), json!("bittensor"));
    attributes.insert("generation".into(), json!(signed.generation));
    attributes.insert("hotkey".into(), json!(signed.hotkey));
    attributes.insert("path".into(), json!(signed.path));
    let headers = match signed.generation {
        bittensor::Generation::BtHeader => "`bt_header_dendrite_*` (SDK ≤ 10)",
        bittensor::Generation::XBittensor => "`X-Bittensor-*` (SDK 11)",
    };
    let role = if served {
        format!(
            "served a Bittensor-signed request to `{}` from {} (hotkey {}, headers {headers}): a \
             subnet miner's axon, paid in TAO for its answers",
            signed.path,
            peer(facts),
            signed.hotkey
        )
    } else {
        format!(
            "sent a Bittensor-signed request to `{}` at {} (hotkey {}, headers {headers}): a \
             subnet validator's dendrite",
            signed.path,
            peer(facts),
            signed.hotkey
        )
    };
    Draft {
        kind: EvidenceKind::Bittensor,
        strength: BITTENSOR_SIGNED,
        decisive: false,
        summary: format!("{} {role}", who(facts)),
        attributes,
    }
}

#[cfg(test)]
mod tests {
    use assay_classify::flow::{FlowTable, Segment, Transport};

    use super::*;

    fn facts(role: Role) -> FlowFacts {
        FlowFacts {
            tgid: 9,
            comm: "python3".into(),
            role,
            remote: Some("127.0.0.1:8545".parse().unwrap()),
            local: Some("127.0.0.1:40000".parse().unwrap()),
            sent_miner_call: false,
            owner_cores: None,
            forwarding: false,
        }
    }

    /// What the flow model observes in `writes`, written one segment each
    /// on a fresh flow in `direction`.
    fn observe(writes: &[&[u8]], direction: Direction) -> Vec<Observation> {
        let mut table = FlowTable::new(8, 16);
        let mut out = Vec::new();
        for (index, payload) in writes.iter().enumerate() {
            let outcome = table.on_segment(&Segment {
                key: 1,
                direction,
                index: index as u16,
                timestamp_ns: 1 + index as u64,
                transport: Transport::Tcp,
                payload,
                wire_len: payload.len() as u32,
                offset: 0,
                endpoints: None,
            });
            out.extend(outcome.observations.into_iter().map(|o| o.observation));
        }
        out
    }

    fn post(target: &str, headers: &str, body: &str) -> Vec<u8> {
        format!(
            "POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn drafts(writes: &[&[u8]], direction: Direction, role: Role) -> Vec<Draft> {
        observe(writes, direction)
            .iter()
            .filter_map(|o| evidence_for(o, direction, &facts(role)))
            .collect()
    }

    #[test]
    fn a_json_rpc_client_with_its_body_written_apart_is_a_chain_client() {
        let body = r#"{"jsonrpc":"2.0","method":"eth_getBalance","params":["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed","latest"],"id":1}"#;
        let request = post("/", "", body);
        let (head, rest) = request.split_at(request.len() - body.len() + 7);
        let [draft] = drafts(&[head, rest], Direction::Outbound, Role::Client)
            .try_into()
            .unwrap();
        assert_eq!(draft.kind, EvidenceKind::ChainRpc);
        assert!(!draft.decisive);
        assert_eq!(draft.attributes["network"], "ethereum");
        assert!(
            draft.summary.contains("eth_getBalance"),
            "{}",
            draft.summary
        );
        // The node receiving it is not its client.
        assert!(drafts(&[&request], Direction::Inbound, Role::Server).is_empty());
    }

    #[test]
    fn a_submitted_transaction_confirms_and_a_keep_alive_second_request_is_read() {
        let first = post(
            "/",
            "",
            r#"{"jsonrpc":"2.0","method":"eth_chainId","params":[],"id":1}"#,
        );
        let second = post(
            "/",
            "",
            r#"{"jsonrpc":"2.0","method":"eth_sendRawTransaction","params":["0xf86c0a85"],"id":2}"#,
        );
        let both = [first, second].concat();
        let found = drafts(&[&both], Direction::Outbound, Role::Client);
        assert_eq!(found.len(), 2);
        assert!(found[1].decisive, "{}", found[1].summary);
    }

    #[test]
    fn substrate_over_a_websocket_is_read_from_its_masked_frames() {
        let upgrade = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:9944\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let text =
            br#"{"jsonrpc":"2.0","id":5,"method":"author_submitExtrinsic","params":["0x2d0284"]}"#;
        let key = [9, 200, 33, 4];
        let mut frame = vec![0x81, 0x80 | 126];
        frame.extend_from_slice(&(text.len() as u16).to_be_bytes());
        frame.extend_from_slice(&key);
        frame.extend(text.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        let [draft] = drafts(&[upgrade, &frame], Direction::Outbound, Role::Client)
            .try_into()
            .unwrap();
        assert_eq!(draft.attributes["network"], "substrate");
        assert_eq!(draft.attributes["carrier"], "websocket");
        assert!(draft.decisive);
    }

    #[test]
    fn engine_api_counts_only_with_its_jwt() {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"engine_exchangeCapabilities","params":[["engine_newPayloadV3"]]}"#;
        let jwt = "Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3MDAwMDAwMDB9.c2ln\r\n";
        let [draft] = drafts(&[&post("/", jwt, body)], Direction::Outbound, Role::Client)
            .try_into()
            .unwrap();
        assert_eq!(
            (draft.kind, draft.attributes["jwt_alg"].as_str()),
            (EvidenceKind::Validator, Some("HS256"))
        );
        assert!(drafts(&[&post("/", "", body)], Direction::Outbound, Role::Client).is_empty());
    }

    #[test]
    fn a_published_attestation_confirms_a_validator_and_duties_alone_do_not() {
        let signature = format!("0x{}", "b7".repeat(96));
        let publish = post(
            "/eth/v1/beacon/pool/attestations",
            "",
            &format!(
                r#"[{{"aggregation_bits":"0x03","data":{{"slot":"12"}},"signature":"{signature}"}}]"#
            ),
        );
        let duties = post("/eth/v1/validator/duties/attester/0", "", r#"["0","1"]"#);
        let [poll, signed] = drafts(&[&duties, &publish], Direction::Outbound, Role::Client)
            .try_into()
            .unwrap();
        assert_eq!((poll.kind, poll.decisive), (EvidenceKind::Validator, false));
        assert_eq!(
            (signed.kind, signed.decisive),
            (EvidenceKind::Validator, true)
        );
    }

    #[test]
    fn an_axon_serving_signed_requests_takes_part_in_bittensor() {
        let headers = format!(
            "name: Inference\r\nbt_header_axon_hotkey: 5D5CP5jL1MseaWcY7GsJXRYhTjAYkaLwaHEtiqu7PzWCcEjz\r\n\
             bt_header_dendrite_hotkey: 5D5CP5jL1MseaWcY7GsJXRYhTjAYkaLwaHEtiqu7PzWCcEjz\r\n\
             bt_header_dendrite_nonce: 1764547200123456789\r\nbt_header_dendrite_signature: 0x{}\r\n",
            "cd".repeat(64)
        );
        let request = post("/Inference", &headers, r#"{"prompt":"hi"}"#);
        let [served] = drafts(&[&request], Direction::Inbound, Role::Server)
            .try_into()
            .unwrap();
        assert_eq!(served.kind, EvidenceKind::Bittensor);
        assert!(served.summary.contains("axon"), "{}", served.summary);
        let [sent] = drafts(&[&request], Direction::Outbound, Role::Client)
            .try_into()
            .unwrap();
        assert!(sent.summary.contains("dendrite"), "{}", sent.summary);
    }

    #[test]
    fn look_alikes_on_http_are_nothing() {
        let lsp = post(
            "/rpc",
            "",
            r#"{"jsonrpc":"2.0","id":1,"method":"textDocument/definition","params":{"textDocument":{"uri":"file:///x"},"position":{"line":0,"character":1}}}"#,
        );
        let words = post(
            "/search",
            "",
            r#"{"q":"eth_getBalance 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}"#,
        );
        let scrape = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nAccept: text/plain;version=0.0.4\r\n\r\n";
        let rest = b"GET /eth/prices/latest HTTP/1.1\r\nHost: api\r\n\r\n";
        for writes in [[&lsp[..]], [&words[..]], [&scrape[..]], [&rest[..]]] {
            assert!(drafts(&writes, Direction::Outbound, Role::Client).is_empty());
        }
    }
}
