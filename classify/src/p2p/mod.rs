//! Blockchain peer-to-peer openings (docs/signatures.md, "Blockchain p2p",
//! P1–P10): which chain's node protocol a TCP connection speaks, from the
//! first bytes of one direction.
//!
//! A full node is not a miner, but it is compute and bandwidth spent on a
//! chain, and some "AI" fronts are chain nodes; a node next to a busy GPU is
//! worth a second look. Each family is recognised by the structure of its
//! framing, never by a constant alone: a fork that changed its network's
//! magic or id is still caught, and the constant only names the network.
//!
//! - **Bitcoin v1 transport and its forks** (P1–P3, [`bitcoin`]): a listed
//!   magic with a well-formed header and checksum, or any magic on a
//!   `version` message whose SHA256d checksum and payload check out.
//! - **Levin** (P4, [`levin`]): the header of every CryptoNote chain
//!   (Monero, its forks, Bytecoin's), field by field; the handshake's
//!   network id tells Monero from a fork.
//! - **libp2p** (P6): the length-prefixed `/multistream/1.0.0\n` line, and
//!   the protocol proposed next (`/noise`, `/tls/1.0.0`): decisive for
//!   libp2p, whatever the implementation or chain, but libp2p alone is not a
//!   blockchain (IPFS uses it), and the chain protocols (P7, P8) are
//!   negotiated inside the encryption.
//! - **Kaspa** (P9, [`kaspa`]): gRPC `protowire` paths over h2c.
//! - **Ethereum devp2p RLPx** (P5): encrypted from the first byte, so only a
//!   shape: the EIP-8 auth message is a two-byte big-endian size, then an
//!   ECIES body that opens with `04` and a 64-byte public key; the first
//!   segment is exactly `2 + size` bytes, with size in 200..=1000. Nothing
//!   else in it is in clear (the rest is the IV, ciphertext and a MAC keyed
//!   by the ECDH secret), so no stronger check exists without the keys. Any
//!   length-prefixed binary protocol whose first message starts with `04`
//!   followed by random-looking bytes can match (DNS over TCP with such a
//!   message id is excluded explicitly), so this is [`Confidence::Shape`]:
//!   evidence to combine, never a verdict. Ethereum's UDP discovery (discv4)
//!   is firmer: its packets start with the Keccak-256 of the rest.
//!
//! Qubic (P10) is left out: its 8-byte header (`size:3 LE`, `type:1`,
//! `dejavu:4`) has only a size and a one-byte type to check, and the type
//! values are unverified; a rule on that little would match many binary
//! protocols.

use crate::catalogue::Catalogue;
use sha3::{Digest as _, Keccak256};

use super::dns;

mod bitcoin;
mod kaspa;
mod levin;

pub use bitcoin::Magic;
pub use levin::NetworkId;

/// Which chain (or p2p stack) a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// Bitcoin's v1 message framing (Bitcoin and its forks), with the
    /// network's magic.
    Bitcoin(Magic),
    /// CryptoNote's Levin framing (Monero and its forks), with the network
    /// id when a handshake showed it.
    Levin {
        network_id: Option<NetworkId>,
    },
    Libp2p,
    Devp2pRlpx,
    Kaspa,
}

impl Network {
    /// In words, with the network's name (from the built-in catalogue) and
    /// constant where known: "Bitcoin-family p2p (Litecoin mainnet, magic
    /// fbc0b6db)".
    pub fn describe(&self) -> String {
        self.describe_in(Catalogue::builtin())
    }

    /// [`Self::describe`], naming from `catalogue`.
    pub fn describe_in(&self, catalogue: &Catalogue) -> String {
        match self {
            Self::Bitcoin(magic) => format!(
                "Bitcoin-family p2p ({}, magic {})",
                magic.name_in(catalogue).unwrap_or("unlisted network"),
                magic.hex()
            ),
            Self::Levin { network_id: None } => self.family().into(),
            Self::Levin {
                network_id: Some(id),
            } => match id.name_in(catalogue) {
                Some(monero) => format!("{monero} p2p (Levin)"),
                None => "CryptoNote p2p (Levin, a network other than Monero's)".into(),
            },
            Self::Libp2p | Self::Devp2pRlpx | Self::Kaspa => self.family().into(),
        }
    }

    /// The protocol family, a fixed label for reports: the network is in
    /// [`Network::describe`].
    pub fn family(&self) -> &'static str {
        match self {
            Self::Bitcoin(_) => "Bitcoin-family p2p",
            Self::Levin { .. } => "CryptoNote p2p (Levin)",
            Self::Libp2p => "libp2p multistream-select",
            Self::Devp2pRlpx => "Ethereum devp2p RLPx handshake (shape)",
            Self::Kaspa => "Kaspa p2p/RPC (gRPC protowire)",
        }
    }

    /// What identifies the network on the wire, as attributes: `magic`
    /// (hex) or `network_id` (hex), and `chain`, the network's name, when
    /// it is listed.
    pub fn identifiers(&self) -> Vec<(&'static str, String)> {
        self.identifiers_in(Catalogue::builtin())
    }

    /// [`Self::identifiers`], naming from `catalogue`.
    pub fn identifiers_in(&self, catalogue: &Catalogue) -> Vec<(&'static str, String)> {
        match self {
            Self::Bitcoin(magic) => std::iter::once(("magic", magic.hex()))
                .chain(magic.name_in(catalogue).map(|n| ("chain", n.to_owned())))
                .collect(),
            Self::Levin {
                network_id: Some(id),
            } => std::iter::once(("network_id", id.hex()))
                .chain(id.name_in(catalogue).map(|n| ("chain", n.to_owned())))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// libp2p alone is not a blockchain: IPFS and others use it too.
    pub fn is_blockchain(&self) -> bool {
        !matches!(self, Self::Libp2p)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// The protocol's framing was verified field by field.
    Decisive,
    /// Sizes and a leading byte only: combine with other evidence.
    Shape,
}

/// A recognised opening.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Opening {
    pub network: Network,
    /// The first message: a Bitcoin command (`version`), a Levin command
    /// (`handshake (1001)`), the protocol libp2p proposes next (`/noise`),
    /// Kaspa's gRPC path.
    pub message: Option<String>,
    pub confidence: Confidence,
}

/// Identifies the p2p protocol from the first bytes of one direction.
/// `first_segment_len` is the full payload length of the first TCP segment,
/// which may exceed `stream.len()` when the sample was cut.
pub fn identify(stream: &[u8], first_segment_len: usize) -> Option<Opening> {
    bitcoin::bitcoin_family(stream)
        .or_else(|| levin::levin(stream))
        .or_else(|| multistream(stream))
        .or_else(|| kaspa::kaspa(stream))
        .or_else(|| rlpx_auth(stream, first_segment_len))
}

/// True when `stream` opens a message that more bytes could prove or name
/// better: a Bitcoin-family `version` whose payload (and so checksum) is
/// not all in, a Levin handshake whose body has not reached its network
/// id. A caller that can wait for the next segment should, before taking
/// [`identify`]'s answer.
pub fn wants_more(stream: &[u8]) -> bool {
    bitcoin::incomplete(stream) || levin::incomplete(stream)
}

/// Ethereum discv4 (devp2p discv4.md): `hash(32) || signature(65) ||
/// packet-type(1) || packet-data`, where `hash = keccak256(signature ||
/// packet-type || packet-data)`, type 1–6, at most 1280 bytes.
pub fn is_discv4_packet(datagram: &[u8]) -> bool {
    const TYPE_AT: usize = 32 + 65;
    const MAX_PACKET: usize = 1280;
    (TYPE_AT + 2..=MAX_PACKET).contains(&datagram.len())
        && (1..=6).contains(&datagram[TYPE_AT])
        && Keccak256::digest(&datagram[32..]).as_slice() == &datagram[..32]
}

// --- libp2p multistream-select (P6) ---

const MULTISTREAM: &[u8] = b"\x13/multistream/1.0.0\n";
/// Longest protocol id read after the multistream line.
const MAX_PROTOCOL_ID: usize = 256;

fn multistream(stream: &[u8]) -> Option<Opening> {
    let rest = stream.strip_prefix(MULTISTREAM)?;
    Some(Opening {
        network: Network::Libp2p,
        message: next_protocol(rest),
        confidence: Confidence::Decisive,
    })
}

/// The next length-prefixed (unsigned varint) `…\n` line, without the `\n`.
fn next_protocol(rest: &[u8]) -> Option<String> {
    let (len, used) = uvarint(rest)?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= MAX_PROTOCOL_ID)?;
    let line = rest.get(used..used + len)?.strip_suffix(b"\n")?;
    let printable = !line.is_empty() && line.iter().all(|b| b.is_ascii_graphic());
    printable.then(|| String::from_utf8_lossy(line).into_owned())
}

/// Unsigned LEB128, at most 9 bytes (multiformats unsigned-varint).
fn uvarint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().take(9).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

// --- Ethereum devp2p RLPx (P5) ---

/// EIP-8 auth/ack sizes seen in practice (geth sends ~300–450).
const RLPX_SIZES: std::ops::RangeInclusive<usize> = 200..=1000;
/// ECIES: uncompressed secp256k1 public key prefix.
const ECIES_KEY_PREFIX: u8 = 0x04;
/// Distinct byte values required in the 64-byte key: random bytes give ~57;
/// text and structured data far fewer.
const MIN_DISTINCT_KEY_BYTES: usize = 40;

fn rlpx_auth(stream: &[u8], first_segment_len: usize) -> Option<Opening> {
    let [hi, lo, prefix, ..] = *stream else {
        return None;
    };
    let size = usize::from(u16::from_be_bytes([hi, lo]));
    if !RLPX_SIZES.contains(&size) || first_segment_len != 2 + size || prefix != ECIES_KEY_PREFIX {
        return None;
    }
    let key = stream.get(3..3 + 64)?;
    if distinct_bytes(key) < MIN_DISTINCT_KEY_BYTES || dns::parse_tcp(stream).is_ok() {
        return None;
    }
    Some(Opening {
        network: Network::Devp2pRlpx,
        message: None,
        confidence: Confidence::Shape,
    })
}

fn distinct_bytes(bytes: &[u8]) -> usize {
    let mut seen = [false; 256];
    for &b in bytes {
        seen[usize::from(b)] = true;
    }
    seen.iter().filter(|&&s| s).count()
}

#[cfg(test)]
mod tests;
