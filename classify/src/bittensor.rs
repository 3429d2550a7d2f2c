//! Bittensor's request signing on plain HTTP (docs/grey-zone.md,
//! "Incentivised AI"): the exchange between a subnet validator (dendrite)
//! and a miner's server (axon), which is how a model server earns TAO.
//!
//! Two SDK generations, recognised by the signed identity their headers
//! carry, never by a port or a synapse's name:
//! - SDK ≤ 10.x (opentensor/bittensor bittensor/core/synapse.py
//!   `to_headers`, dendrite.py): `bt_header_dendrite_hotkey` (an SS58
//!   address), `bt_header_dendrite_nonce` (decimal), and
//!   `bt_header_dendrite_signature` (sr25519: 0x and 128 hex digits);
//! - SDK 11.x signs plain HTTP with `X-Bittensor-Hotkey`,
//!   `X-Bittensor-Nonce` and `X-Bittensor-Signature` of the same shapes.
//!
//! A header merely named like these, or with values of other shapes, is
//! nothing: the triple is a hotkey's signature over a nonce.

use crate::http::Request;

/// Which SDK generation signed the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Generation {
    /// `bt_header_*` (axon/dendrite, SDK ≤ 10.x).
    #[serde(rename = "bt_header")]
    BtHeader,
    /// `X-Bittensor-*` (SDK 11.x).
    #[serde(rename = "x-bittensor")]
    XBittensor,
}

/// A signed Bittensor request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Signed {
    pub generation: Generation,
    /// The signer's hotkey (SS58).
    pub hotkey: String,
    /// The path the request went to (the synapse's name for an axon).
    pub path: String,
}

/// An SS58 address: base58, 47 or 48 characters for 32-byte keys.
fn is_ss58(s: &str) -> bool {
    (46..=48).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() && !matches!(b, b'0' | b'O' | b'I' | b'l'))
}

/// An sr25519 signature: 64 bytes, hex (0x optional).
fn is_signature(s: &str) -> bool {
    let hex = s.strip_prefix("0x").unwrap_or(s);
    hex.len() == 128 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_nonce(s: &str) -> bool {
    !s.is_empty() && s.len() <= 24 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The signed Bittensor request `request` is, if any.
pub fn identify(request: &Request) -> Option<Signed> {
    [
        (
            Generation::BtHeader,
            "bt_header_dendrite_hotkey",
            "bt_header_dendrite_nonce",
            "bt_header_dendrite_signature",
        ),
        (
            Generation::XBittensor,
            "x-bittensor-hotkey",
            "x-bittensor-nonce",
            "x-bittensor-signature",
        ),
    ]
    .into_iter()
    .find_map(|(generation, hotkey, nonce, signature)| {
        let hotkey = request.header(hotkey).filter(|h| is_ss58(h))?;
        request.header(nonce).filter(|n| is_nonce(n))?;
        request.header(signature).filter(|s| is_signature(s))?;
        Some(Signed {
            generation,
            hotkey: hotkey.to_owned(),
            path: request.path().to_owned(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOTKEY: &str = "5D5CP5jL1MseaWcY7GsJXRYhTjAYkaLwaHEtiqu7PzWCcEjz";

    fn request(headers: &[(&str, &str)]) -> Request {
        Request {
            method: "POST".into(),
            target: "/Inference".into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), (*v).to_owned()))
                .collect(),
            body: Vec::new(),
            len: 0,
        }
    }

    #[test]
    fn both_sdk_generations_are_recognised_by_their_signed_triple() {
        let signature = format!("0x{}", "ab".repeat(64));
        let old = request(&[
            ("name", "Inference"),
            ("bt_header_axon_hotkey", HOTKEY),
            ("bt_header_dendrite_hotkey", HOTKEY),
            ("bt_header_dendrite_nonce", "1764547200123456789"),
            ("bt_header_dendrite_signature", &signature),
        ]);
        assert_eq!(identify(&old).unwrap().generation, Generation::BtHeader);
        let new = request(&[
            ("X-Bittensor-Version", "11.0.0"),
            ("X-Bittensor-Hotkey", HOTKEY),
            ("X-Bittensor-Nonce", "1764547200123456789"),
            ("X-Bittensor-Signature", &signature),
        ]);
        let signed = identify(&new).unwrap();
        assert_eq!(
            (signed.generation, signed.hotkey.as_str()),
            (Generation::XBittensor, HOTKEY)
        );
    }

    #[test]
    fn headers_named_alike_with_other_shapes_are_nothing() {
        let signature = format!("0x{}", "ab".repeat(64));
        for headers in [
            // A signature missing, a nonce that is a word, a hotkey that is a name.
            vec![
                ("bt_header_dendrite_hotkey", HOTKEY),
                ("bt_header_dendrite_nonce", "1"),
            ],
            vec![
                ("bt_header_dendrite_hotkey", HOTKEY),
                ("bt_header_dendrite_nonce", "now"),
                ("bt_header_dendrite_signature", signature.as_str()),
            ],
            vec![
                ("x-bittensor-hotkey", "alice"),
                ("x-bittensor-nonce", "1"),
                ("x-bittensor-signature", signature.as_str()),
            ],
            vec![("authorization", "Bearer abc"), ("x-request-id", "1")],
        ] {
            assert_eq!(identify(&request(&headers)), None, "{headers:?}");
        }
    }
}
