//! Levin, the p2p framing of CryptoNote chains (docs/signatures.md P4):
//! Monero and the forks of Monero or of the original CryptoNote reference
//! code (Bytecoin), which all keep the header of epee's `levin_base.h`.
//!
//! The header is checked field by field: the 8-byte signature, body size
//! ≤ 100 MB, `have_to_return` 0/1, flags request or response, protocol
//! version 1, a command of the p2p (1001–1007) or chain-sync (2001–2010)
//! sets. Bytecoin's `P2pProtocolDefinitions.h` and
//! `CryptoNoteProtocolDefinitions.h` number them as Monero does, so the
//! check holds for the whole family. When the body's start is in the
//! sample it must carry the portable-storage signature.
//!
//! What tells Monero from a fork is the 16-byte `network_id` every
//! handshake (request and response) carries in its `node_data` section:
//! it is read when it appears early in the body, where `node_data` puts it.

use super::{Confidence, Network, Opening};

pub(super) const SIGNATURE: [u8; 8] = [0x01, 0x21, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01];
pub(super) const HEADER_LEN: usize = 33;
/// Monero's LEVIN_DEFAULT_MAX_PACKET_SIZE.
const MAX_BODY: u64 = 100_000_000;
/// epee portable storage: signature A, signature B, format version 1.
pub(super) const PORTABLE_STORAGE: [u8; 9] = [0x01, 0x11, 0x01, 0x01, 0x01, 0x01, 0x02, 0x01, 0x01];
/// The handshake command, whose body names the network.
const HANDSHAKE: u32 = 1001;
/// Body bytes searched for the network id: `node_data` is the first
/// section of a handshake, `network_id` among its first fields.
const NETWORK_ID_WINDOW: usize = 256;
/// A portable-storage entry: key length 10, `network_id`, type string
/// (10), varint length 16 (`16 << 2`), then the 16 bytes.
const NETWORK_ID_ENTRY: &[u8] = b"\x0anetwork_id\x0a\x40";

/// A CryptoNote network id, when the handshake showed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetworkId(pub [u8; 16]);

impl NetworkId {
    /// The network with this id, in `catalogue`.
    pub fn name_in(self, catalogue: &crate::catalogue::Catalogue) -> Option<&str> {
        catalogue.network_name(self.0)
    }

    pub fn hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl serde::Serialize for NetworkId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.hex())
    }
}

struct Header {
    body_len: u64,
    command: u32,
}

fn header(stream: &[u8]) -> Option<Header> {
    let h = stream.get(..HEADER_LEN)?;
    if h[..8] != SIGNATURE {
        return None;
    }
    let body_len = u64::from_le_bytes(h[8..16].try_into().ok()?);
    let have_to_return = h[16];
    let command = u32::from_le_bytes(h[17..21].try_into().ok()?);
    // h[21..25] is the return code: any value is possible in a response.
    let flags = u32::from_le_bytes(h[25..29].try_into().ok()?);
    let version = u32::from_le_bytes(h[29..33].try_into().ok()?);
    let ok = body_len <= MAX_BODY
        && have_to_return <= 1
        && matches!(flags, 1 | 2)
        && version == 1
        && command_name(command).is_some();
    ok.then_some(Header { body_len, command })
}

pub(super) fn levin(stream: &[u8]) -> Option<Opening> {
    let h = header(stream)?;
    let body = &stream[HEADER_LEN..];
    if h.body_len >= PORTABLE_STORAGE.len() as u64
        && let Some(signature) = body.get(..PORTABLE_STORAGE.len())
        && signature != PORTABLE_STORAGE
    {
        return None;
    }
    let network_id = (h.command == HANDSHAKE)
        .then(|| network_id(&body[..body.len().min(NETWORK_ID_WINDOW)]))
        .flatten();
    Some(Opening {
        network: Network::Levin { network_id },
        message: Some(format!("{} ({})", command_name(h.command)?, h.command)),
        confidence: Confidence::Decisive,
    })
}

/// A handshake whose body has not reached the network id yet.
pub(super) fn incomplete(stream: &[u8]) -> bool {
    header(stream).is_some_and(|h| {
        let wanted = (h.body_len as usize).min(NETWORK_ID_WINDOW);
        h.command == HANDSHAKE && stream.len() < HEADER_LEN + wanted
    })
}

fn network_id(body: &[u8]) -> Option<NetworkId> {
    let at = body
        .windows(NETWORK_ID_ENTRY.len())
        .position(|w| w == NETWORK_ID_ENTRY)?;
    let start = at + NETWORK_ID_ENTRY.len();
    Some(NetworkId(body.get(start..start + 16)?.try_into().ok()?))
}

/// Commands of p2p_protocol_defs.h (1000 + n) and
/// cryptonote_protocol_defs.h (2000 + n; 2005 is unassigned), Monero's
/// names.
fn command_name(command: u32) -> Option<&'static str> {
    Some(match command {
        1001 => "handshake",
        1002 => "timed_sync",
        1003 => "ping",
        1004 => "stat_info",
        1005 => "network_state",
        1006 => "peer_id",
        1007 => "support_flags",
        2001 => "new_block",
        2002 => "new_transactions",
        2003 => "request_get_objects",
        2004 => "response_get_objects",
        2006 => "request_chain",
        2007 => "response_chain_entry",
        2008 => "new_fluffy_block",
        2009 => "request_fluffy_missing_tx",
        2010 => "get_txpool_complement",
        _ => return None,
    })
}
