//! Blockchain peer-to-peer openings (docs/signatures.md, "Blockchain p2p",
//! P1–P10): which chain's node protocol a TCP connection speaks, from the
//! first bytes of one direction.
//!
//! A full node is not a miner, but it is compute and bandwidth spent on a
//! chain, and some "AI" fronts are chain nodes; a node next to a busy GPU is
//! worth a second look. What is recognised, and how firmly:
//!
//! - **Bitcoin v1 transport and forks** (P1–P3): network magic, a 12-byte
//!   command of `[a-z0-9]` padded with NULs (nothing after the first NUL),
//!   a payload length ≤ 32 MiB, and the checksum (first 4 bytes of double
//!   SHA-256) whenever the whole payload is in the sample: decisive. Bitcoin
//!   Core ≥ 27 prefers BIP324 v2 transport, which is encrypted and shows no
//!   magic: those connections are not recognised here.
//! - **Monero Levin** (P4): the 8-byte signature, body size ≤ 100 MB,
//!   `have_to_return` 0/1, flags request or response, protocol version 1, a
//!   command Monero defines, and the portable-storage signature at the start
//!   of the body when it is there: decisive.
//! - **libp2p** (P6): the length-prefixed `/multistream/1.0.0\n` line, and
//!   the protocol proposed next (`/noise`, `/tls/1.0.0`): decisive for
//!   libp2p, but libp2p alone is not a blockchain (IPFS uses it), and the
//!   chain protocols (P7, P8) are negotiated inside the encryption.
//! - **Kaspa** (P9): the HTTP/2 client preface, then a gRPC `:path` in the
//!   `protowire` package (`/protowire.P2P/MessageStream` between nodes,
//!   `/protowire.RPC/MessageStream` for wallets and miners talking to a
//!   node). The path is read from the first HEADERS frame, decoding HPACK's
//!   Huffman code (RFC 7541 Appendix B), with a raw byte match as fallback;
//!   plain h2c or gRPC without it is not Kaspa.
//! - **Ethereum devp2p RLPx** (P5): encrypted from the first byte, so only a
//!   shape: the EIP-8 auth message is a two-byte big-endian size, then an
//!   ECIES body that opens with `04` and a 64-byte public key; the first
//!   segment is exactly `2 + size` bytes, with size in 200..=1000. Any
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

use sha2::{Digest, Sha256};
use sha3::Keccak256;

use super::dns;

/// Which chain (or p2p stack) a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BitcoinNet {
    Main,
    Testnet3,
    Testnet4,
    Regtest,
    Signet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    Bitcoin(BitcoinNet),
    Zcash,
    Ravencoin { testnet: bool },
    MoneroLevin,
    Libp2p,
    Devp2pRlpx,
    Kaspa,
}

impl Network {
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Bitcoin(BitcoinNet::Main) => "Bitcoin p2p (mainnet)",
            Self::Bitcoin(BitcoinNet::Testnet3) => "Bitcoin p2p (testnet3)",
            Self::Bitcoin(BitcoinNet::Testnet4) => "Bitcoin p2p (testnet4)",
            Self::Bitcoin(BitcoinNet::Regtest) => "Bitcoin p2p (regtest)",
            Self::Bitcoin(BitcoinNet::Signet) => "Bitcoin p2p (signet)",
            Self::Zcash => "Zcash p2p",
            Self::Ravencoin { testnet: false } => "Ravencoin p2p (mainnet)",
            Self::Ravencoin { testnet: true } => "Ravencoin p2p (testnet)",
            Self::MoneroLevin => "Monero p2p (Levin)",
            Self::Libp2p => "libp2p multistream-select",
            Self::Devp2pRlpx => "Ethereum devp2p RLPx handshake (shape)",
            Self::Kaspa => "Kaspa p2p/RPC (gRPC protowire)",
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
    bitcoin_family(stream)
        .or_else(|| levin(stream))
        .or_else(|| multistream(stream))
        .or_else(|| kaspa(stream))
        .or_else(|| rlpx_auth(stream, first_segment_len))
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

// --- Bitcoin and forks (P1–P3) ---

/// Message header: magic(4) command(12) length LE32(4) checksum(4).
const BITCOIN_HEADER_LEN: usize = 24;
/// Bitcoin Core's MAX_SIZE for any serialized object.
const BITCOIN_MAX_PAYLOAD: u32 = 32 * 1024 * 1024;

const MAGICS: [([u8; 4], Network); 8] = [
    ([0xf9, 0xbe, 0xb4, 0xd9], Network::Bitcoin(BitcoinNet::Main)),
    (
        [0x0b, 0x11, 0x09, 0x07],
        Network::Bitcoin(BitcoinNet::Testnet3),
    ),
    (
        [0x1c, 0x16, 0x3f, 0x28],
        Network::Bitcoin(BitcoinNet::Testnet4),
    ),
    (
        [0xfa, 0xbf, 0xb5, 0xda],
        Network::Bitcoin(BitcoinNet::Regtest),
    ),
    (
        [0x0a, 0x03, 0xcf, 0x40],
        Network::Bitcoin(BitcoinNet::Signet),
    ),
    ([0x24, 0xe9, 0x27, 0x64], Network::Zcash),
    (*b"RAVN", Network::Ravencoin { testnet: false }),
    (*b"RVNT", Network::Ravencoin { testnet: true }),
];

fn bitcoin_family(stream: &[u8]) -> Option<Opening> {
    let header = stream.get(..BITCOIN_HEADER_LEN)?;
    let network = MAGICS.iter().find(|(magic, _)| header[..4] == *magic)?.1;
    let command = bitcoin_command(&header[4..16])?;
    let length = u32::from_le_bytes(header[16..20].try_into().ok()?);
    if length > BITCOIN_MAX_PAYLOAD {
        return None;
    }
    let payload_end = BITCOIN_HEADER_LEN + length as usize;
    if let Some(payload) = stream.get(BITCOIN_HEADER_LEN..payload_end) {
        let digest = Sha256::digest(Sha256::digest(payload));
        if digest[..4] != header[20..24] {
            return None;
        }
    }
    Some(Opening {
        network,
        message: Some(command),
        confidence: Confidence::Decisive,
    })
}

/// `[a-z0-9]+` then NULs to 12 bytes.
fn bitcoin_command(field: &[u8]) -> Option<String> {
    let len = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let (name, padding) = field.split_at(len);
    let valid = !name.is_empty()
        && name
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && padding.iter().all(|&b| b == 0);
    valid.then(|| String::from_utf8_lossy(name).into_owned())
}

// --- Monero Levin (P4) ---

const LEVIN_SIGNATURE: [u8; 8] = [0x01, 0x21, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01];
const LEVIN_HEADER_LEN: usize = 33;
/// Monero's LEVIN_DEFAULT_MAX_PACKET_SIZE.
const LEVIN_MAX_BODY: u64 = 100_000_000;
/// epee portable storage: signature A, signature B, format version 1.
const PORTABLE_STORAGE: [u8; 9] = [0x01, 0x11, 0x01, 0x01, 0x01, 0x01, 0x02, 0x01, 0x01];

fn levin(stream: &[u8]) -> Option<Opening> {
    let h = stream.get(..LEVIN_HEADER_LEN)?;
    if h[..8] != LEVIN_SIGNATURE {
        return None;
    }
    let body_len = u64::from_le_bytes(h[8..16].try_into().ok()?);
    let have_to_return = h[16];
    let command = u32::from_le_bytes(h[17..21].try_into().ok()?);
    // h[21..25] is the return code: any value is possible in a response.
    let flags = u32::from_le_bytes(h[25..29].try_into().ok()?);
    let version = u32::from_le_bytes(h[29..33].try_into().ok()?);
    let header_ok =
        body_len <= LEVIN_MAX_BODY && have_to_return <= 1 && matches!(flags, 1 | 2) && version == 1;
    if !header_ok {
        return None;
    }
    let name = levin_command(command)?;
    if body_len >= PORTABLE_STORAGE.len() as u64 {
        let body = &stream[LEVIN_HEADER_LEN..];
        if let Some(signature) = body.get(..PORTABLE_STORAGE.len())
            && signature != PORTABLE_STORAGE
        {
            return None;
        }
    }
    Some(Opening {
        network: Network::MoneroLevin,
        message: Some(format!("{name} ({command})")),
        confidence: Confidence::Decisive,
    })
}

/// Commands Monero defines: p2p_protocol_defs.h (1000 + n) and
/// cryptonote_protocol_defs.h (2000 + n; 2005 is unassigned).
fn levin_command(command: u32) -> Option<&'static str> {
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

// --- Kaspa: gRPC over h2c (P9) ---

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const PROTOWIRE: &[u8] = b"protowire";
const H2_FRAME_HEADER_LEN: usize = 9;
const H2_HEADERS: u8 = 0x1;
const H2_FLAG_PADDED: u8 = 0x8;
const H2_FLAG_PRIORITY: u8 = 0x20;
/// Frames walked before the first HEADERS (SETTINGS, WINDOW_UPDATE, …).
const MAX_FRAMES: usize = 8;

fn kaspa(stream: &[u8]) -> Option<Opening> {
    let frames = stream.strip_prefix(H2_PREFACE)?;
    let message = match first_request_path(frames) {
        Some(path) if path.starts_with("/protowire.") => Some(path),
        // The path may be in a frame past the sample, or in a form not
        // decoded here (a CONTINUATION frame): the package name in clear is
        // still enough.
        _ if contains(frames, PROTOWIRE) => None,
        _ => return None,
    };
    Some(Opening {
        network: Network::Kaspa,
        message,
        confidence: Confidence::Decisive,
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The `:path` of the first HEADERS frame.
fn first_request_path(mut frames: &[u8]) -> Option<String> {
    for _ in 0..MAX_FRAMES {
        let header = frames.get(..H2_FRAME_HEADER_LEN)?;
        let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let (kind, flags) = (header[3], header[4]);
        let payload = &frames[H2_FRAME_HEADER_LEN..];
        if kind == H2_HEADERS {
            let whole = payload.get(..len);
            return hpack::path(header_block(
                whole.unwrap_or(payload),
                flags,
                whole.is_some(),
            )?);
        }
        frames = payload.get(len..)?;
    }
    None
}

/// The header block fragment of a HEADERS payload (RFC 9113 §6.2): after
/// the optional pad length and priority fields, before the padding (which
/// is only trimmed when the whole frame is there).
fn header_block(payload: &[u8], flags: u8, whole: bool) -> Option<&[u8]> {
    let (pad, mut block) = if flags & H2_FLAG_PADDED != 0 {
        let (&pad, rest) = payload.split_first()?;
        (usize::from(pad), rest)
    } else {
        (0, payload)
    };
    if flags & H2_FLAG_PRIORITY != 0 {
        block = block.get(5..)?;
    }
    if whole {
        block = block.get(..block.len().checked_sub(pad)?)?;
    }
    Some(block)
}

/// Just enough HPACK (RFC 7541) to read one header's value.
mod hpack {
    /// Header fields examined in one block.
    const MAX_FIELDS: usize = 32;
    /// Longest string literal decoded.
    const MAX_STRING: usize = 1024;
    /// Static table entries whose name is `:path` (Appendix A).
    const STATIC_PATH: [u64; 2] = [4, 5];

    /// The value of `:path` in a header block, if it is a literal.
    pub(super) fn path(mut block: &[u8]) -> Option<String> {
        for _ in 0..MAX_FIELDS {
            let first = *block.first()?;
            if first & 0x80 != 0 {
                // Indexed field (§6.1): the static `:path /` at best.
                block = &block[integer(block, 7)?.1..];
                continue;
            }
            if first & 0xe0 == 0x20 {
                // Dynamic table size update (§6.3).
                block = &block[integer(block, 5)?.1..];
                continue;
            }
            // Literal field (§6.2): 6-bit name index with incremental
            // indexing, 4-bit without or never indexed.
            let prefix = if first & 0x40 != 0 { 6 } else { 4 };
            let (index, used) = integer(block, prefix)?;
            block = &block[used..];
            let is_path = if index == 0 {
                let (name, rest) = string(block)?;
                block = rest;
                name == b":path"
            } else {
                STATIC_PATH.contains(&index)
            };
            if is_path {
                return String::from_utf8(string(block)?.0).ok();
            }
            block = skip_string(block)?;
        }
        None
    }

    /// A prefixed integer (§5.1): value and bytes used. At most 5
    /// continuation bytes, which is more than any sane header needs.
    pub(super) fn integer(bytes: &[u8], prefix_bits: u32) -> Option<(u64, usize)> {
        let mask = (1u8 << prefix_bits) - 1;
        let first = bytes.first()? & mask;
        if first < mask {
            return Some((u64::from(first), 1));
        }
        let mut value = u64::from(mask);
        for i in 1..=5 {
            let b = *bytes.get(i)?;
            value += u64::from(b & 0x7f) << (7 * (i - 1));
            if b & 0x80 == 0 {
                return Some((value, i + 1));
            }
        }
        None
    }

    /// The raw bytes of a string literal (§5.2) and what follows it.
    fn literal(bytes: &[u8]) -> Option<(bool, &[u8], &[u8])> {
        let huffman = bytes.first()? & 0x80 != 0;
        let (len, used) = integer(bytes, 7)?;
        let len = usize::try_from(len).ok().filter(|&l| l <= MAX_STRING)?;
        let raw = bytes.get(used..used + len)?;
        Some((huffman, raw, &bytes[used + len..]))
    }

    fn string(bytes: &[u8]) -> Option<(Vec<u8>, &[u8])> {
        let (huffman, raw, rest) = literal(bytes)?;
        let value = if huffman {
            huffman_decode(raw)?
        } else {
            raw.to_vec()
        };
        Some((value, rest))
    }

    fn skip_string(bytes: &[u8]) -> Option<&[u8]> {
        literal(bytes).map(|(_, _, rest)| rest)
    }

    /// Code length of each symbol (0–255, then EOS) of the canonical
    /// Huffman code of Appendix B. The codes follow from the lengths.
    #[rustfmt::skip]
    const CODE_LENGTHS: [u8; 257] = [
        13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
        28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
        6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
        5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
        13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
        7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
        15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
        6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
        20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
        24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
        22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
        21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
        26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
        19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
        20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
        26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
        30,
    ];
    const EOS: u16 = 256;
    const MAX_CODE_LEN: usize = 30;

    /// Canonical decoding tables: per code length, the first code, how
    /// many codes, and where its symbols start in `symbols`.
    pub(super) struct Canonical {
        pub(super) first_code: [u32; MAX_CODE_LEN + 1],
        count: [u16; MAX_CODE_LEN + 1],
        first_symbol: [u16; MAX_CODE_LEN + 1],
        /// Symbols ordered by (code length, symbol).
        symbols: [u16; 257],
    }

    pub(super) const CANONICAL: Canonical = canonical();

    const fn canonical() -> Canonical {
        let mut count = [0u16; MAX_CODE_LEN + 1];
        let mut s = 0;
        while s < CODE_LENGTHS.len() {
            count[CODE_LENGTHS[s] as usize] += 1;
            s += 1;
        }
        let mut first_code = [0u32; MAX_CODE_LEN + 1];
        let mut first_symbol = [0u16; MAX_CODE_LEN + 1];
        let mut symbols = [0u16; 257];
        let mut next = 0;
        let mut len = 1;
        while len <= MAX_CODE_LEN {
            first_code[len] = (first_code[len - 1] + count[len - 1] as u32) << 1;
            first_symbol[len] = next as u16;
            let mut s = 0;
            while s < CODE_LENGTHS.len() {
                if CODE_LENGTHS[s] as usize == len {
                    symbols[next] = s as u16;
                    next += 1;
                }
                s += 1;
            }
            len += 1;
        }
        Canonical {
            first_code,
            count,
            first_symbol,
            symbols,
        }
    }

    /// Decodes a Huffman-coded string literal (§5.2): EOS inside the string
    /// or padding that is longer than 7 bits or not all ones is an error.
    pub(super) fn huffman_decode(bytes: &[u8]) -> Option<Vec<u8>> {
        let t = &CANONICAL;
        let mut out = Vec::with_capacity(bytes.len() * 8 / 5);
        let (mut code, mut len) = (0u32, 0usize);
        for byte in bytes {
            for bit in (0..8).rev() {
                code = (code << 1) | u32::from((byte >> bit) & 1);
                len += 1;
                if len > MAX_CODE_LEN {
                    return None;
                }
                let offset = code.wrapping_sub(t.first_code[len]);
                if code >= t.first_code[len] && offset < u32::from(t.count[len]) {
                    let symbol = t.symbols[usize::from(t.first_symbol[len]) + offset as usize];
                    if symbol == EOS {
                        return None;
                    }
                    out.push(symbol as u8);
                    (code, len) = (0, 0);
                }
            }
        }
        (len <= 7 && code == (1 << len) - 1).then_some(out)
    }
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
mod tests {
    use super::*;

    /// Deterministic pseudo-random bytes (xorshift64*).
    fn noise(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed >> 12;
                seed ^= seed << 25;
                seed ^= seed >> 27;
                (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
            })
            .collect()
    }

    /// A Bitcoin message (developer reference, "Message Headers"): magic,
    /// command NUL-padded to 12, payload length LE32, checksum = first four
    /// bytes of SHA256(SHA256(payload)), payload.
    fn bitcoin_message(magic: [u8; 4], command: &str, payload: &[u8]) -> Vec<u8> {
        let mut out = magic.to_vec();
        let mut name = [0u8; 12];
        name[..command.len()].copy_from_slice(command.as_bytes());
        out.extend_from_slice(&name);
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&Sha256::digest(Sha256::digest(payload))[..4]);
        out.extend_from_slice(payload);
        out
    }

    fn opening(stream: &[u8]) -> Option<Opening> {
        identify(stream, stream.len())
    }

    #[test]
    fn bitcoin_version_message_is_decisive() {
        let stream = bitcoin_message(MAGICS[0].0, "version", &noise(102, 1));
        let o = opening(&stream).unwrap();
        assert_eq!(o.network, Network::Bitcoin(BitcoinNet::Main));
        assert_eq!(o.message.as_deref(), Some("version"));
        assert_eq!(o.confidence, Confidence::Decisive);
        assert!(o.network.is_blockchain());
    }

    #[test]
    fn verack_has_the_well_known_empty_checksum() {
        // verack: empty payload, checksum 5d f6 e0 e2 (SHA256d of nothing).
        let mut stream = vec![0xf9, 0xbe, 0xb4, 0xd9];
        stream.extend_from_slice(b"verack\0\0\0\0\0\0");
        stream.extend_from_slice(&[0, 0, 0, 0, 0x5d, 0xf6, 0xe0, 0xe2]);
        assert_eq!(opening(&stream).unwrap().message.as_deref(), Some("verack"));
        stream[23] ^= 1;
        assert_eq!(opening(&stream), None);
    }

    #[test]
    fn every_magic_names_its_network() {
        for (magic, network) in MAGICS {
            let stream = bitcoin_message(magic, "version", &noise(90, 2));
            assert_eq!(opening(&stream).unwrap().network, network);
        }
    }

    #[test]
    fn a_cut_payload_is_accepted_without_its_checksum() {
        let stream = bitcoin_message(MAGICS[5].0, "version", &noise(120, 3));
        assert_eq!(opening(&stream[..60]).unwrap().network, Network::Zcash);
        assert_eq!(opening(&stream[..23]), None);
    }

    #[test]
    fn bad_bitcoin_headers_are_rejected() {
        let good = bitcoin_message(MAGICS[0].0, "version", &noise(102, 4));
        let mut bad_checksum = good.clone();
        bad_checksum[30] ^= 0xff;
        let mut upper = good.clone();
        upper[4] = b'V';
        let mut after_nul = good.clone();
        after_nul[15] = b'x';
        let mut huge = good.clone();
        huge[16..20].copy_from_slice(&(33u32 << 20).to_le_bytes());
        let empty_command = bitcoin_message(MAGICS[0].0, "", &[]);
        for stream in [bad_checksum, upper, after_nul, huge, empty_command] {
            assert_eq!(opening(&stream), None);
        }
    }

    /// Levin header (epee levin_base.h `bucket_head2`, packed): signature
    /// u64, cb u64, have_to_return u8, command u32, return_code i32, flags
    /// u32, protocol_version u32, all little-endian.
    fn levin_message(command: u32, flags: u32, version: u32, body: &[u8]) -> Vec<u8> {
        let mut out = LEVIN_SIGNATURE.to_vec();
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.push(1);
        out.extend_from_slice(&command.to_le_bytes());
        out.extend_from_slice(&0i32.to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(body);
        out
    }

    fn storage_body() -> Vec<u8> {
        let mut body = PORTABLE_STORAGE.to_vec();
        body.extend_from_slice(&noise(200, 5));
        body
    }

    #[test]
    fn monero_handshake_is_decisive() {
        let stream = levin_message(1001, 1, 1, &storage_body());
        let o = opening(&stream).unwrap();
        assert_eq!(o.network, Network::MoneroLevin);
        assert_eq!(o.message.as_deref(), Some("handshake (1001)"));
        assert_eq!(o.confidence, Confidence::Decisive);
        // A response to a timed sync, cut before its body.
        let stream = levin_message(1002, 2, 1, &storage_body());
        assert_eq!(
            opening(&stream[..LEVIN_HEADER_LEN])
                .unwrap()
                .message
                .as_deref(),
            Some("timed_sync (1002)")
        );
    }

    #[test]
    fn bad_levin_headers_are_rejected() {
        let body = storage_body();
        for stream in [
            levin_message(9999, 1, 1, &body),
            levin_message(2005, 1, 1, &body),
            levin_message(1001, 3, 1, &body),
            levin_message(1001, 1, 2, &body),
            levin_message(1001, 1, 1, &noise(100, 6)),
        ] {
            assert_eq!(opening(&stream), None);
        }
        let mut huge = levin_message(1001, 1, 1, &body);
        huge[8..16].copy_from_slice(&(200_000_000u64).to_le_bytes());
        assert_eq!(opening(&huge), None);
    }

    #[test]
    fn libp2p_multistream_names_the_next_protocol() {
        let o = opening(b"\x13/multistream/1.0.0\n\x07/noise\n").unwrap();
        assert_eq!(o.network, Network::Libp2p);
        assert_eq!(o.message.as_deref(), Some("/noise"));
        assert!(!o.network.is_blockchain());
        let o = opening(b"\x13/multistream/1.0.0\n\x0b/tls/1.0.0\n").unwrap();
        assert_eq!(o.message.as_deref(), Some("/tls/1.0.0"));
        // The proposal may not have arrived yet.
        let o = opening(b"\x13/multistream/1.0.0\n\x07/noi").unwrap();
        assert_eq!(o.message, None);
        assert_eq!(opening(b"\x12/multistream/1.0.0\n"), None);
    }

    /// An HTTP/2 frame (RFC 9113 §4.1): length u24, type, flags, stream id.
    fn h2_frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        out.push(kind);
        out.push(flags);
        out.extend_from_slice(&stream_id.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// A gRPC client's opening: preface, SETTINGS, then HEADERS with
    /// `:method POST` (static 3), `:scheme http` (static 6), `:path` as a
    /// literal without indexing on static name 4 (§6.2.2).
    fn grpc_opening(path_literal: &[u8], flags: u8, extra: &[u8]) -> Vec<u8> {
        let mut out = H2_PREFACE.to_vec();
        out.extend_from_slice(&h2_frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100]));
        let mut block = extra.to_vec();
        block.extend_from_slice(&[0x83, 0x86, 0x04]);
        block.extend_from_slice(path_literal);
        // content-type: application/grpc, literal with indexing, name 31.
        block.push(0x5f);
        block.push(0x10);
        block.extend_from_slice(b"application/grpc");
        out.extend_from_slice(&h2_frame(H2_HEADERS, 0x4 | flags, 1, &block));
        out
    }

    /// "/protowire.P2P/MessageStream", Huffman-coded with the table of RFC
    /// 7541 Appendix B (encoded independently of this module).
    const P2P_PATH_HUFFMAN: [u8; 20] = [
        0x62, 0xbb, 0x0e, 0x93, 0xf8, 0x35, 0x85, 0x5f, 0x58, 0xb5, 0xb1, 0xa0, 0xa8, 0x40, 0xe6,
        0x2e, 0xe4, 0xd8, 0x51, 0xd3,
    ];

    #[test]
    fn kaspa_grpc_path_is_read_through_hpack_huffman() {
        let mut literal = vec![0x80 | P2P_PATH_HUFFMAN.len() as u8];
        literal.extend_from_slice(&P2P_PATH_HUFFMAN);
        let o = opening(&grpc_opening(&literal, 0, &[])).unwrap();
        assert_eq!(o.network, Network::Kaspa);
        assert_eq!(o.message.as_deref(), Some("/protowire.P2P/MessageStream"));
        assert_eq!(o.confidence, Confidence::Decisive);
        // With a table size update first and a priority block.
        let mut prioritised = grpc_opening(&literal, H2_FLAG_PRIORITY, &[0x3f, 0xe1, 0x1f]);
        let headers_at = H2_PREFACE.len() + 15;
        prioritised.splice(headers_at + 9..headers_at + 9, [0, 0, 0, 0, 15]);
        prioritised[headers_at + 2] += 5;
        let o = opening(&prioritised).unwrap();
        assert_eq!(o.message.as_deref(), Some("/protowire.P2P/MessageStream"));
    }

    #[test]
    fn kaspa_raw_path_and_raw_fallback() {
        let path = b"/protowire.RPC/MessageStream";
        let mut literal = vec![path.len() as u8];
        literal.extend_from_slice(path);
        let o = opening(&grpc_opening(&literal, 0, &[])).unwrap();
        assert_eq!(o.message.as_deref(), Some("/protowire.RPC/MessageStream"));
        // The HEADERS frame cut short: the raw bytes still say protowire.
        let stream = grpc_opening(&literal, 0, &[]);
        let o = opening(&stream[..stream.len() - 30]).unwrap();
        assert_eq!(o.network, Network::Kaspa);
    }

    #[test]
    fn plain_grpc_and_h2c_are_not_kaspa() {
        let path = b"/grpc.health.v1.Health/Check";
        let mut literal = vec![path.len() as u8];
        literal.extend_from_slice(path);
        assert_eq!(opening(&grpc_opening(&literal, 0, &[])), None);
        assert_eq!(opening(H2_PREFACE), None);
    }

    #[test]
    fn hpack_huffman_matches_the_rfc_examples() {
        // RFC 7541 C.4.1: "www.example.com".
        let coded = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        assert_eq!(hpack::huffman_decode(&coded).unwrap(), b"www.example.com");
        // C.4.2: "no-cache".
        let coded = [0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf];
        assert_eq!(hpack::huffman_decode(&coded).unwrap(), b"no-cache");
        // Spot checks of codes derived from the lengths (Appendix B).
        let t = &hpack::CANONICAL;
        assert_eq!(t.first_code[5], 0x0); // '0'
        assert_eq!(t.first_code[6], 0x14); // ' '
        assert_eq!(t.first_code[30], 0x3fff_fffc); // '\n' (10)
        // Padding of 8 ones, or padding of zeros, is an error.
        assert_eq!(hpack::huffman_decode(&[0xff]), None);
        assert_eq!(hpack::huffman_decode(&[0xf1, 0x00]), None);
        assert_eq!(hpack::huffman_decode(&[]).unwrap(), b"");
    }

    /// An EIP-8 auth message: size BE16, then ECIES `04 || key(64) ||
    /// iv(16) || ciphertext || mac(32)`.
    fn rlpx_auth_message(size: usize) -> Vec<u8> {
        let mut out = (size as u16).to_be_bytes().to_vec();
        out.push(ECIES_KEY_PREFIX);
        out.extend_from_slice(&noise(size - 1, 7));
        out
    }

    #[test]
    fn rlpx_auth_is_only_a_shape() {
        let stream = rlpx_auth_message(400);
        let o = identify(&stream, 402).unwrap();
        assert_eq!(o.network, Network::Devp2pRlpx);
        assert_eq!(o.confidence, Confidence::Shape);
        // The sample may be cut, as long as the key is there.
        assert!(identify(&stream[..80], 402).is_some());
        // The first segment must be exactly the message.
        assert_eq!(identify(&stream, 1448), None);
        assert_eq!(identify(&stream, 401), None);
        // Too small, too big, wrong prefix, a key of zeros.
        assert_eq!(identify(&rlpx_auth_message(150), 152), None);
        assert_eq!(identify(&rlpx_auth_message(1200), 1202), None);
        let mut wrong_prefix = stream.clone();
        wrong_prefix[2] = 0x02;
        assert_eq!(identify(&wrong_prefix, 402), None);
        let mut zeros = stream.clone();
        zeros[3..67].fill(0);
        assert_eq!(identify(&zeros, 402), None);
    }

    #[test]
    fn benign_protocols_and_noise_are_not_p2p() {
        let tls = [
            &[
                0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
            ][..],
            &noise(500, 8),
        ]
        .concat();
        let samples: [&[u8]; 8] = [
            b"GET / HTTP/1.1\r\nHost: example.org\r\nUser-Agent: curl/8.0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            &tls,
            br#"{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"x"}}"#,
            b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n",
            b"*1\r\n$4\r\nPING\r\n",
            b"+OK\r\n",
            &[0u8; 300],
        ];
        for sample in samples {
            assert_eq!(opening(sample), None, "{sample:?}");
        }
        for seed in 1..200 {
            let random = noise(512, seed);
            assert_eq!(identify(&random, 1448), None, "seed {seed}");
            assert_eq!(opening(&random), None, "seed {seed}");
        }
    }

    /// discv4 packet: hash || signature || type || RLP data.
    fn discv4(packet_type: u8) -> Vec<u8> {
        let mut body = noise(65, 9); // signature
        body.push(packet_type);
        body.extend_from_slice(&[0xc9, 0x04, 0xcb, 0x84, 127, 0, 0, 1, 0x82, 0x76, 0x5f]);
        let mut out = Keccak256::digest(&body).to_vec();
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn discv4_packets_hash_to_their_prefix() {
        // Keccak-256, not SHA3-256: the empty input's digest is c5d2…a470.
        assert_eq!(Keccak256::digest(b"")[..4], [0xc5, 0xd2, 0x46, 0x01]);
        assert!(is_discv4_packet(&discv4(1)));
        assert!(is_discv4_packet(&discv4(6)));
        assert!(!is_discv4_packet(&discv4(7)));
        let mut corrupt = discv4(2);
        corrupt[100] ^= 1;
        assert!(!is_discv4_packet(&corrupt));
        assert!(!is_discv4_packet(&discv4(1)[..98]));
        assert!(!is_discv4_packet(&noise(300, 10)));
        assert!(!is_discv4_packet(&[]));
    }
}
