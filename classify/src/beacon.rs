//! The Ethereum beacon node API's validator side (ethereum/beacon-APIs):
//! what a validator client asks its beacon node for, and what it hands it
//! signed (docs/grey-zone.md, "PoS validators").
//!
//! A validator client polls its duties each epoch, asks for attestation
//! data and blocks to sign each slot, and publishes what it signed. Paths
//! alone are weak (a dashboard can read duties); a request that carries a
//! BLS signature (96 bytes: a block request's `randao_reveal`, published
//! attestations, aggregates, sync-committee messages, a signed block or a
//! builder registration) is what only a signer sends. Paths are checked
//! with their numeric slot or epoch, queries with their hex and numbers,
//! bodies as JSON: a path that merely starts with `/eth/` is nothing.

use serde_json::Value;

use crate::http::Request;

/// What a validator client asked or published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Duty {
    /// Its attester, proposer or sync-committee duties for an epoch.
    Duties,
    /// Attestation data to sign for a slot.
    AttestationData,
    /// A block to sign for a slot (with its signed RANDAO reveal).
    ProduceBlock,
    /// An aggregate to sign.
    AggregateAttestation,
    /// Its fee recipient for blocks it proposes.
    PrepareProposer,
    /// Signed attestations, aggregates or sync-committee messages.
    Publish,
    /// A signed block.
    PublishBlock,
    /// A signed builder registration.
    RegisterValidator,
}

/// A beacon-API request of the validator side.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Call {
    pub duty: Duty,
    /// The request's path (for reports).
    pub path: String,
    /// It carries a 96-byte BLS signature: only a signer sends it.
    pub signed: bool,
    /// The slot or epoch the path or query names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot_or_epoch: Option<u64>,
}

fn number(s: &str) -> Option<u64> {
    (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// A BLS12-381 signature (G2, compressed): 0x and 192 hex digits.
fn is_signature(s: &str) -> bool {
    s.strip_prefix("0x")
        .is_some_and(|h| h.len() == 192 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_hex32(s: &str) -> bool {
    s.strip_prefix("0x")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Every member of a JSON array body is an object with a `signature`
/// field that is a BLS signature (or an SSZ body, which this cannot read).
fn signed_array(body: &[u8]) -> Option<bool> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let items = value.as_array()?;
    Some(
        !items.is_empty()
            && items.iter().all(|item| {
                item.get("signature")
                    .and_then(Value::as_str)
                    .is_some_and(is_signature)
            }),
    )
}

/// The validator-side beacon-API call `request` is, if any.
pub fn identify(request: &Request) -> Option<Call> {
    let path = request.path();
    let mut parts = path.trim_end_matches('/').split('/').skip(1);
    let (Some("eth"), Some(version)) = (parts.next(), parts.next()) else {
        return None;
    };
    if !matches!(version, "v1" | "v2" | "v3") {
        return None;
    }
    let rest: Vec<&str> = parts.collect();
    let post = request.method == "POST";
    let get = request.method == "GET";
    let call = |duty, signed, slot_or_epoch| {
        Some(Call {
            duty,
            path: path.to_owned(),
            signed,
            slot_or_epoch,
        })
    };
    match rest.as_slice() {
        ["validator", "duties", "attester" | "sync", epoch] if post => {
            // The body lists validator indices, as decimal strings.
            let indices: Vec<Value> = serde_json::from_slice(&request.body).ok()?;
            let indices_ok = !indices.is_empty()
                && indices
                    .iter()
                    .all(|i| i.as_str().and_then(number).is_some());
            indices_ok.then_some(())?;
            call(Duty::Duties, false, Some(number(epoch)?))
        }
        ["validator", "duties", "proposer", epoch] if get => {
            call(Duty::Duties, false, Some(number(epoch)?))
        }
        ["validator", "attestation_data"] if get => {
            let slot = number(request.query("slot")?)?;
            number(request.query("committee_index")?)?;
            call(Duty::AttestationData, false, Some(slot))
        }
        ["validator", "blocks", slot] if get => {
            let slot = number(slot)?;
            let reveal = request.query("randao_reveal")?;
            is_signature(reveal).then_some(())?;
            call(Duty::ProduceBlock, true, Some(slot))
        }
        ["validator", "aggregate_attestation"] if get => {
            is_hex32(request.query("attestation_data_root")?).then_some(())?;
            call(
                Duty::AggregateAttestation,
                false,
                Some(number(request.query("slot")?)?),
            )
        }
        ["validator", "prepare_beacon_proposer"] if post => {
            let entries: Vec<Value> = serde_json::from_slice(&request.body).ok()?;
            let ok = !entries.is_empty()
                && entries.iter().all(|e| {
                    e.get("fee_recipient")
                        .and_then(Value::as_str)
                        .is_some_and(|a| {
                            a.strip_prefix("0x").is_some_and(|h| {
                                h.len() == 40 && h.bytes().all(|b| b.is_ascii_hexdigit())
                            })
                        })
                });
            ok.then_some(())?;
            call(Duty::PrepareProposer, false, None)
        }
        ["beacon", "pool", "attestations" | "sync_committees"]
        | [
            "validator",
            "aggregate_and_proofs" | "contribution_and_proofs",
        ] if post => {
            signed_array(&request.body)?.then_some(())?;
            call(Duty::Publish, true, None)
        }
        ["validator", "register_validator"] if post => {
            signed_array(&request.body)?.then_some(())?;
            call(Duty::RegisterValidator, true, None)
        }
        ["beacon", "blocks" | "blinded_blocks"] if post => {
            let block: Value = serde_json::from_slice(&request.body).ok()?;
            let signature = block
                .get("signature")
                .or_else(|| block.get("signed_block").and_then(|b| b.get("signature")));
            signature
                .and_then(Value::as_str)
                .is_some_and(is_signature)
                .then_some(())?;
            call(Duty::PublishBlock, true, None)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, target: &str, body: &str) -> Request {
        Request {
            method: method.into(),
            target: target.into(),
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
            len: 0,
        }
    }

    fn signature() -> String {
        format!("0x{}", "a1".repeat(96))
    }

    #[test]
    fn a_validator_clients_calls_by_path_query_and_body() {
        let sig = signature();
        let cases = [
            (
                request(
                    "POST",
                    "/eth/v1/validator/duties/attester/12",
                    r#"["1","2","77"]"#,
                ),
                Duty::Duties,
                false,
            ),
            (
                request("GET", "/eth/v1/validator/duties/proposer/12", ""),
                Duty::Duties,
                false,
            ),
            (
                request(
                    "GET",
                    "/eth/v1/validator/attestation_data?slot=389&committee_index=3",
                    "",
                ),
                Duty::AttestationData,
                false,
            ),
            (
                request(
                    "GET",
                    &format!("/eth/v3/validator/blocks/390?randao_reveal={sig}&graffiti=0x00"),
                    "",
                ),
                Duty::ProduceBlock,
                true,
            ),
            (
                request(
                    "POST",
                    "/eth/v1/beacon/pool/attestations",
                    &format!(
                        r#"[{{"aggregation_bits":"0x01","data":{{"slot":"389"}},"signature":"{sig}"}}]"#
                    ),
                ),
                Duty::Publish,
                true,
            ),
            (
                request(
                    "POST",
                    "/eth/v1/validator/prepare_beacon_proposer",
                    r#"[{"validator_index":"1","fee_recipient":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}]"#,
                ),
                Duty::PrepareProposer,
                false,
            ),
            (
                request(
                    "POST",
                    "/eth/v2/beacon/blocks",
                    &format!(r#"{{"message":{{"slot":"390"}},"signature":"{sig}"}}"#),
                ),
                Duty::PublishBlock,
                true,
            ),
        ];
        for (req, duty, signed) in cases {
            let call = identify(&req).unwrap_or_else(|| panic!("{}", req.target));
            assert_eq!((call.duty, call.signed), (duty, signed), "{}", req.target);
        }
    }

    #[test]
    fn look_alikes_are_nothing() {
        for req in [
            // Other beacon-API reads anyone makes (explorers, monitors).
            request("GET", "/eth/v1/beacon/headers/head", ""),
            request("GET", "/eth/v1/node/syncing", ""),
            // Validator paths with the wrong shapes.
            request("GET", "/eth/v1/validator/duties/proposer/latest", ""),
            request(
                "POST",
                "/eth/v1/validator/duties/attester/3",
                r#"{"all":true}"#,
            ),
            request(
                "GET",
                "/eth/v1/validator/attestation_data?slot=now&committee_index=1",
                "",
            ),
            request("GET", "/eth/v3/validator/blocks/5?randao_reveal=0x00", ""),
            request(
                "POST",
                "/eth/v1/beacon/pool/attestations",
                r#"[{"signature":"0xdeadbeef"}]"#,
            ),
            request("POST", "/eth/v1/beacon/pool/attestations", "[]"),
            // Another REST API whose paths happen to say `eth`.
            request("GET", "/eth/prices/latest", ""),
            request("POST", "/api/v1/validator/duties/attester/3", r#"["1"]"#),
        ] {
            assert_eq!(identify(&req), None, "{} {}", req.method, req.target);
        }
    }
}
