//! TLS handshakes: the plaintext ClientHello and ServerHello at the start of
//! a TCP connection (docs/signatures.md, "Stratum over TLS").
//!
//! Pools offer `stratum+ssl`/`stratum+tls` on their own ports, and miners
//! pin certificate fingerprints, so the content is hidden but the opening is
//! not: the SNI names the pool, ALPN is usually absent (a browser or an HTTP
//! library offers `h2`/`http/1.1`), and the ClientHello's shape, summed up
//! as a JA4 fingerprint, tells which TLS stack dialled (XMRig's OpenSSL,
//! Go's crypto/tls, a browser). None of it proves mining alone: it is what
//! pool-domain matching and the process's CPU/GPU behaviour build on.
//!
//! `stream` is one direction's bytes from its first byte. The handshake
//! message may span records (large post-quantum key shares do), so
//! fragments are reassembled, up to [`MAX_HANDSHAKE_LEN`]. Parsing is
//! strict: every vector length must fit its parent exactly, so arbitrary
//! bytes that happen to start with `16 03` are rejected as malformed rather
//! than fingerprinted.
//!
//! A TLS 1.2 (or older) server sends its Certificate message right after
//! the ServerHello, in clear: the leaf certificate names the server, and a
//! self-signed certificate for a pool domain is what a self-hosted pool or
//! proxy presents. TLS 1.3 encrypts everything after the ServerHello, so
//! there the certificate is not visible and is not looked for. The sample is
//! bounded (a few KiB), so the chain is often cut: the leaf comes first and
//! is read whenever its bytes are whole, and a cut never costs the
//! ServerHello. Certificate names are bounded in number and length, so a
//! hostile certificate cannot make us keep more than a few KiB.
//!
//! JA4 follows FoxIO's spec (FoxIO-LLC/ja4 technical_details/JA4.md): GREASE
//! values (RFC 8701, `0x?a?a`) are ignored everywhere, the version comes from
//! `supported_versions` when present, and the two hashes are the first 12
//! hex digits of SHA-256 over the sorted cipher list and over the sorted
//! extension list (SNI and ALPN removed) plus the signature algorithms in
//! wire order.
//!
//! The parts: `record` gathers a handshake message from the records it
//! spans, `reader` reads its fields, `client_hello` and `server_hello`
//! parse the two hellos, `certificate` reads the leaf certificate a TLS 1.2
//! server sends in clear, and `ja4` sums a ClientHello up.

mod certificate;
mod client_hello;
mod ja4;
mod reader;
mod record;
mod server_hello;
#[cfg(test)]
mod tests;

pub use certificate::{CertificateFacts, MAX_CERTIFICATE_NAMES};
pub use client_hello::{ClientHello, parse_client_hello};
pub use server_hello::{ServerHello, parse_server_hello};

/// Content type of a handshake record.
const CONTENT_HANDSHAKE: u8 = 0x16;
/// Largest record payload: 2^14 plaintext plus the 2048 bytes TLS 1.2
/// allows for compression and MAC expansion.
pub const MAX_RECORD_LEN: usize = 16384 + 2048;
/// Largest handshake message reassembled. Real ClientHellos stay under
/// 2 KiB even with post-quantum key shares; the bound keeps a hostile peer
/// from making us buffer a 16 MiB "message".
pub const MAX_HANDSHAKE_LEN: usize = 64 * 1024;

const CLIENT_HELLO: u8 = 0x01;
const SERVER_HELLO: u8 = 0x02;
const CERTIFICATE: u8 = 0x0b;

/// The first version whose Certificate message is encrypted.
const TLS_1_3: u16 = 0x0304;

const EXT_SERVER_NAME: u16 = 0x0000;
const EXT_SIGNATURE_ALGORITHMS: u16 = 0x000d;
const EXT_ALPN: u16 = 0x0010;
const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;

/// Why a stream is not (yet) a parsable hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// The first bytes are not a TLS handshake record.
    #[error("not a TLS handshake")]
    NotTls,
    /// The message is not complete yet: retry with more bytes.
    #[error("incomplete TLS handshake message")]
    Incomplete,
    /// It starts like TLS, but a field is wrong.
    #[error("malformed TLS handshake: {0}")]
    Malformed(&'static str),
}

/// Cheap test of the first bytes: content type 0x16, version 3.0–3.4, a
/// record length within bounds. Checks only the bytes that are present, so
/// a 3-byte sample can already say yes (and an empty one says no).
pub fn is_handshake_record(bytes: &[u8]) -> bool {
    let plausible_length = match bytes {
        [_, _, _, hi, lo, ..] => {
            (1..=MAX_RECORD_LEN).contains(&usize::from(u16::from_be_bytes([*hi, *lo])))
        }
        _ => true,
    };
    !bytes.is_empty()
        && bytes[0] == CONTENT_HANDSHAKE
        && bytes.get(1).is_none_or(|&major| major == 3)
        && bytes.get(2).is_none_or(|&minor| minor <= 4)
        && plausible_length
}

/// RFC 8701 GREASE values: 0x0a0a, 0x1a1a, … 0xfafa.
pub fn is_grease(value: u16) -> bool {
    value & 0x0f0f == 0x0a0a && value >> 8 == value & 0xff
}
