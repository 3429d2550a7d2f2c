//! Kaspa (docs/signatures.md P9): gRPC over h2c. The HTTP/2 client
//! preface, then a gRPC `:path` in the `protowire` package
//! (`/protowire.P2P/MessageStream` between nodes, `/protowire.RPC/…` for
//! wallets and miners talking to a node), read from the first HEADERS frame
//! through HPACK's Huffman code (RFC 7541 Appendix B), with a raw byte match
//! as fallback; plain h2c or gRPC without it is not Kaspa.

use super::{Confidence, Network, Opening};

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const PROTOWIRE: &[u8] = b"protowire";
const H2_FRAME_HEADER_LEN: usize = 9;
const H2_HEADERS: u8 = 0x1;
const H2_FLAG_PADDED: u8 = 0x8;
const H2_FLAG_PRIORITY: u8 = 0x20;
/// Frames walked before the first HEADERS (SETTINGS, WINDOW_UPDATE, …).
const MAX_FRAMES: usize = 8;

pub(super) fn kaspa(stream: &[u8]) -> Option<Opening> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::p2p::{Confidence, identify};

    fn opening(stream: &[u8]) -> Option<Opening> {
        identify(stream, stream.len())
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
}
