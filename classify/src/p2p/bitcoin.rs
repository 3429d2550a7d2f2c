//! Bitcoin's v1 message framing and its forks (docs/signatures.md P1–P3).
//!
//! Every message is `magic(4) command(12) length(LE32) checksum(4)
//! payload`, the checksum being the first four bytes of SHA256d(payload)
//! (Bitcoin developer reference, "Message Headers"). The magic only names
//! the network: dozens of forks copied the framing with a magic of their
//! own, and some share one (Monacoin uses Litecoin's). So the magic is not
//! what proves the protocol:
//!
//! - a magic the built-in catalogue lists (data/catalogue.toml): a command of `[a-z0-9]` padded with NULs, a
//!   length ≤ 32 MiB, and the checksum whenever the whole payload is in the
//!   sample. Any command is accepted (forks add their own, Dash's `dsq`).
//! - any other magic: the message must be a `version` (the first message
//!   of both ends of every connection), its whole payload in the sample,
//!   the checksum verified and the payload parsing as a version message.
//!   Four checksum bytes alone are 1 in 2³² for random input; with a
//!   command from the protocol's set and a payload whose fields line up,
//!   a chance match is out of reach, and a protocol that computes SHA256d
//!   checksums over a `version` payload is the Bitcoin protocol.
//!
//! BIP324 v2 transport (Bitcoin Core ≥ 27 by default between v2 peers) is
//! encrypted and shows no magic: those connections are not recognised here.

use sha2::{Digest, Sha256};

use super::{Confidence, Network, Opening};
use crate::catalogue::Catalogue;

/// Message header: magic(4) command(12) length LE32(4) checksum(4).
pub(super) const HEADER_LEN: usize = 24;
/// Bitcoin Core's MAX_SIZE for any serialized object.
const MAX_PAYLOAD: u32 = 32 * 1024 * 1024;
/// Most payload bytes hashed to check a checksum: a longer payload is
/// treated as cut. Nothing the opening sampler keeps is longer.
const MAX_HASHED: usize = 4096;
/// Longest `version` payload accepted from an unlisted network: the fixed
/// fields (85 bytes), a user agent of at most 256 bytes (Bitcoin Core's
/// MAX_SUBVERSION_LENGTH), the relay flag and room for fields forks append
/// (Dash adds a 32-byte masternode challenge).
const MAX_VERSION_PAYLOAD: usize = 512;
/// The protocol version that introduced the checksum.
const MIN_PROTOCOL_VERSION: i32 = 209;
/// User agents longer than this are refused by Bitcoin Core.
const MAX_USER_AGENT: u64 = 256;

/// A network's 4-byte magic (`pchMessageStart`), in wire order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Magic(pub [u8; 4]);

impl Magic {
    /// The best-known network that uses this magic, in `catalogue`.
    pub fn name_in(self, catalogue: &Catalogue) -> Option<&str> {
        catalogue.magic_name(self.0)
    }

    /// Whether the built-in catalogue lists it: only those relax the
    /// structural check (an operator's catalogue adds names only).
    pub fn is_builtin(self) -> bool {
        Catalogue::builtin().magic_name(self.0).is_some()
    }

    /// Lower-case hex in wire order: `f9beb4d9` for Bitcoin's mainnet.
    pub fn hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl serde::Serialize for Magic {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.hex())
    }
}

/// A header that parses: command charset, padding, length bound.
struct Header<'a> {
    magic: Magic,
    command: &'a str,
    length: usize,
    checksum: &'a [u8],
}

fn header(stream: &[u8]) -> Option<Header<'_>> {
    let h = stream.get(..HEADER_LEN)?;
    let length = u32::from_le_bytes(h[16..20].try_into().ok()?);
    if length > MAX_PAYLOAD {
        return None;
    }
    Some(Header {
        magic: Magic(h[..4].try_into().ok()?),
        command: command(&h[4..16])?,
        length: length as usize,
        checksum: &h[20..24],
    })
}

/// `[a-z0-9]+` then NULs to 12 bytes.
fn command(field: &[u8]) -> Option<&str> {
    let len = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let (name, padding) = field.split_at(len);
    let valid = !name.is_empty()
        && name
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && padding.iter().all(|&b| b == 0);
    valid.then(|| std::str::from_utf8(name).ok()).flatten()
}

/// The first four bytes of SHA256d(payload).
pub(super) fn checksum(payload: &[u8]) -> [u8; 4] {
    let digest = Sha256::digest(Sha256::digest(payload));
    [digest[0], digest[1], digest[2], digest[3]]
}

pub(super) fn bitcoin_family(stream: &[u8]) -> Option<Opening> {
    let h = header(stream)?;
    let payload = stream
        .get(HEADER_LEN..HEADER_LEN + h.length)
        .filter(|p| p.len() <= MAX_HASHED);
    if let Some(payload) = payload
        && checksum(payload) != h.checksum
    {
        return None;
    }
    let proven = h.magic.is_builtin()
        || (h.command == "version"
            && h.length <= MAX_VERSION_PAYLOAD
            && payload.is_some_and(is_version_payload));
    proven.then(|| Opening {
        network: Network::Bitcoin(h.magic),
        message: Some(h.command.to_owned()),
        confidence: Confidence::Decisive,
    })
}

/// A `version` header whose payload is not all in yet, and would fit what
/// the opening sampler keeps: one more segment can prove it.
pub(super) fn incomplete(stream: &[u8]) -> bool {
    header(stream).is_some_and(|h| {
        h.command == "version"
            && h.length <= MAX_VERSION_PAYLOAD
            && stream.len() < HEADER_LEN + h.length
    })
}

/// The `version` payload (developer reference, "version"): protocol
/// version ≥ 209, services, timestamp, addr_recv and addr_from (services,
/// IPv6 address, port), nonce, user agent (a CompactSize length ≤ 256,
/// printable ASCII), start height ≥ 0, then the relay flag (0 or 1) if
/// present; forks may append more.
fn is_version_payload(payload: &[u8]) -> bool {
    const NET_ADDR: usize = 8 + 16 + 2;
    const BEFORE_USER_AGENT: usize = 4 + 8 + 8 + NET_ADDR + NET_ADDR + 8;
    let Some(version) = payload.get(..4) else {
        return false;
    };
    let version = i32::from_le_bytes([version[0], version[1], version[2], version[3]]);
    if version < MIN_PROTOCOL_VERSION {
        return false;
    }
    let Some((ua_len, used)) = payload.get(BEFORE_USER_AGENT..).and_then(compact_size) else {
        return false;
    };
    if ua_len > MAX_USER_AGENT {
        return false;
    }
    let ua_start = BEFORE_USER_AGENT + used;
    let ua_end = ua_start + ua_len as usize;
    let Some(user_agent) = payload.get(ua_start..ua_end) else {
        return false;
    };
    let Some(height) = payload.get(ua_end..ua_end + 4) else {
        return false;
    };
    let height = i32::from_le_bytes([height[0], height[1], height[2], height[3]]);
    let relay_ok = payload.get(ua_end + 4).is_none_or(|&relay| relay <= 1);
    user_agent.iter().all(|&b| (0x20..0x7f).contains(&b)) && height >= 0 && relay_ok
}

/// Bitcoin's CompactSize, canonical encodings only; lengths up to u32.
fn compact_size(bytes: &[u8]) -> Option<(u64, usize)> {
    let (&first, rest) = bytes.split_first()?;
    match first {
        0..=0xfc => Some((u64::from(first), 1)),
        0xfd => {
            let v = u16::from_le_bytes(rest.get(..2)?.try_into().ok()?);
            (v >= 0xfd).then_some((u64::from(v), 3))
        }
        0xfe => {
            let v = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?);
            (v > 0xffff).then_some((u64::from(v), 5))
        }
        0xff => None,
    }
}
