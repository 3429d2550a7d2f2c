//! TLS handshakes: the plaintext ClientHello and ServerHello at the start of
//! a TCP connection (SIGNATURES.md, "Stratum over TLS").
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

use std::borrow::Cow;

use sha2::{Digest, Sha256};
use x509_parser::{certificate::X509Certificate, extensions::GeneralName, prelude::FromDer};

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
/// Certificate DNS names kept; a CDN certificate can list hundreds.
pub const MAX_CERTIFICATE_NAMES: usize = 16;
/// Longest DNS name (RFC 1035); longer SAN entries are not host names.
const MAX_DNS_NAME_LEN: usize = 253;
/// Longest common name kept, in characters (RFC 5280's upper bound is 64).
const MAX_COMMON_NAME_CHARS: usize = 128;

const EXT_SERVER_NAME: u16 = 0x0000;
const EXT_SIGNATURE_ALGORITHMS: u16 = 0x000d;
const EXT_ALPN: u16 = 0x0010;
const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;

/// What a ClientHello offers, GREASE values removed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClientHello {
    /// The version field of the message (0x0303 for TLS 1.2 and 1.3).
    pub legacy_version: u16,
    /// The `supported_versions` extension (empty when absent).
    pub supported_versions: Vec<u16>,
    /// The first host name of the `server_name` extension, lowercased.
    pub sni: Option<String>,
    /// Offered ALPN protocols, in order (non-UTF-8 bytes replaced).
    pub alpn: Vec<String>,
    /// Cipher suites in wire order.
    pub cipher_suites: Vec<u16>,
    /// Extension types in wire order.
    pub extensions: Vec<u16>,
    /// The `signature_algorithms` extension, in wire order.
    pub signature_algorithms: Vec<u16>,
    /// JA4 fingerprint, e.g. `t13d1516h2_8daaf6152771_e5627efa2ab1`.
    pub ja4: String,
}

/// What the server chose, and what its certificate says when it was sent
/// in clear.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServerHello {
    /// The negotiated version: `supported_versions` when present (TLS 1.3),
    /// else the message's version field.
    pub version: u16,
    pub cipher_suite: u16,
    pub alpn: Option<String>,
    /// The leaf certificate of the Certificate message that follows a
    /// TLS 1.2 (or older) ServerHello; always `None` for TLS 1.3, where it
    /// is encrypted.
    pub certificate: Option<CertificateFacts>,
    /// The sample ended inside the message after the ServerHello, so a
    /// certificate (or the rest of the chain) may have been cut off.
    pub certificate_cut: bool,
}

/// What the server's leaf certificate claims. Nothing here is verified:
/// anyone can write any name into a certificate, which is why a pool name
/// found here is evidence, not proof.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertificateFacts {
    /// The subject's first common name (at most 128 characters).
    pub subject_cn: Option<String>,
    /// `dNSName` entries of the subject alternative names, lowercased, in
    /// order, at most [`MAX_CERTIFICATE_NAMES`].
    pub dns_names: Vec<String>,
    /// The issuer's first common name (at most 128 characters).
    pub issuer_cn: Option<String>,
    /// Issuer and subject are the same name: no CA vouched for it.
    pub self_signed: bool,
    /// Validity, in seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// SHA-256 of the certificate's DER, in hex: what miners pin.
    pub sha256: String,
    /// Certificates in the message; `None` when it was cut before its end.
    pub chain_len: Option<usize>,
}

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

/// Parses the ClientHello at the start of a client stream.
pub fn parse_client_hello(stream: &[u8]) -> Result<ClientHello, TlsError> {
    let (body, _) = handshake_message(stream, CLIENT_HELLO)?;
    client_hello(&body)
}

/// Parses the ServerHello at the start of a server stream and, below
/// TLS 1.3, the leaf of the Certificate message that follows it. Once the
/// ServerHello is whole it is returned: a cut or broken certificate only
/// leaves [`ServerHello::certificate`] empty.
pub fn parse_server_hello(stream: &[u8]) -> Result<ServerHello, TlsError> {
    let (body, next) = handshake_message(stream, SERVER_HELLO)?;
    let mut hello = server_hello(&body)?;
    if hello.version < TLS_1_3 {
        (hello.certificate, hello.certificate_cut) = server_certificate(stream, next);
    }
    Ok(hello)
}

/// RFC 8701 GREASE values: 0x0a0a, 0x1a1a, … 0xfafa.
pub fn is_grease(value: u16) -> bool {
    value & 0x0f0f == 0x0a0a && value >> 8 == value & 0xff
}

/// The body of the first handshake message, which must be of type
/// `msg_type`, reassembled from as many records as it spans, and where the
/// message after it starts.
fn handshake_message(stream: &[u8], msg_type: u8) -> Result<(Cow<'_, [u8]>, Cursor), TlsError> {
    let message = reassemble(stream, Cursor::START)?;
    if let Some(&kind) = message.bytes.first()
        && message.bytes.len() >= 4
        && kind != msg_type
    {
        return Err(TlsError::Malformed(if msg_type == CLIENT_HELLO {
            "first handshake message is not a ClientHello"
        } else {
            "first handshake message is not a ServerHello"
        }));
    }
    match message.next {
        Some(next) => Ok((body(message.bytes), next)),
        None => Err(TlsError::Incomplete),
    }
}

/// Where a handshake message starts: `offset` bytes into the payload of
/// the record whose header is at `record` in the stream.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    record: usize,
    offset: usize,
}

impl Cursor {
    const START: Cursor = Cursor {
        record: 0,
        offset: 0,
    };
}

/// One handshake message, header included, as far as the stream holds it.
struct Message<'a> {
    bytes: Cow<'a, [u8]>,
    /// Where the next message starts; `None` when the stream ended first.
    next: Option<Cursor>,
}

/// Gathers the handshake message at `at` from its records. Running out of
/// stream is not an error here: the message comes back cut (`next` empty),
/// for the caller to decide.
fn reassemble(stream: &[u8], at: Cursor) -> Result<Message<'_>, TlsError> {
    let mut bytes: Cow<'_, [u8]> = Cow::Borrowed(&[]);
    let mut pos = at.record;
    let mut offset = at.offset;
    loop {
        let fragment = match record_fragment(stream, pos) {
            Ok(fragment) => fragment,
            Err(TlsError::Incomplete) => return Ok(Message { bytes, next: None }),
            Err(e) => return Err(e),
        };
        if offset >= fragment.declared {
            // The message starts with the next record.
            pos += 5 + fragment.declared;
            offset = 0;
            continue;
        }
        let start = offset.min(fragment.bytes.len());
        let before = bytes.len();
        if bytes.is_empty() {
            bytes = Cow::Borrowed(&fragment.bytes[start..]);
        } else {
            bytes.to_mut().extend_from_slice(&fragment.bytes[start..]);
        }
        if let Some(total) = message_len(&bytes)? {
            bytes = match bytes {
                Cow::Borrowed(all) => Cow::Borrowed(&all[..total]),
                Cow::Owned(mut all) => {
                    all.truncate(total);
                    Cow::Owned(all)
                }
            };
            let next = Cursor {
                record: pos,
                offset: start + (total - before),
            };
            return Ok(Message {
                bytes,
                next: Some(next),
            });
        }
        if fragment.cut {
            return Ok(Message { bytes, next: None });
        }
        pos += 5 + fragment.declared;
        offset = 0;
    }
}

/// A whole message (header included) without its 4-byte header.
fn body(message: Cow<'_, [u8]>) -> Cow<'_, [u8]> {
    match message {
        Cow::Borrowed(all) => Cow::Borrowed(&all[4.min(all.len())..]),
        Cow::Owned(mut all) => {
            all.drain(..4.min(all.len()));
            Cow::Owned(all)
        }
    }
}

/// One record's payload, possibly cut short by the end of the sample.
struct Fragment<'a> {
    bytes: &'a [u8],
    /// Length the record header declares.
    declared: usize,
    /// The sample ends inside this record.
    cut: bool,
}

fn record_fragment(stream: &[u8], pos: usize) -> Result<Fragment<'_>, TlsError> {
    // Inside a message, a record that is not a handshake is a broken
    // stream, not "some other protocol".
    let reject = if pos == 0 {
        TlsError::NotTls
    } else {
        TlsError::Malformed("handshake message interrupted by another record")
    };
    let rest = &stream[pos.min(stream.len())..];
    if rest.is_empty() {
        return Err(TlsError::Incomplete);
    }
    if !is_handshake_record(rest) {
        return Err(reject);
    }
    let [_, _, _, hi, lo, payload @ ..] = rest else {
        return Err(TlsError::Incomplete);
    };
    let declared = usize::from(u16::from_be_bytes([*hi, *lo]));
    let cut = payload.len() < declared;
    Ok(Fragment {
        bytes: &payload[..declared.min(payload.len())],
        declared,
        cut,
    })
}

/// The whole length (header included) once `message` holds all of it.
fn message_len(message: &[u8]) -> Result<Option<usize>, TlsError> {
    let [_, a, b, c, ..] = *message else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([0, a, b, c]) as usize;
    if len > MAX_HANDSHAKE_LEN {
        return Err(TlsError::Malformed("handshake message too long"));
    }
    Ok((message.len() >= 4 + len).then_some(4 + len))
}

/// The leaf certificate of the Certificate message at `at`, if that is the
/// next message, and whether the sample ended before it (or its chain) did.
/// Anything else there (ServerKeyExchange of an anonymous suite, the
/// ChangeCipherSpec of a resumed session, a broken record) means no
/// certificate.
fn server_certificate(stream: &[u8], at: Cursor) -> (Option<CertificateFacts>, bool) {
    let Ok(message) = reassemble(stream, at) else {
        return (None, false);
    };
    let cut = message.next.is_none();
    match message.bytes.first() {
        None => return (None, cut),
        Some(&CERTIFICATE) => {}
        Some(_) => return (None, false),
    }
    // TLS 1.2 §7.4.2: `ASN.1Cert certificate_list<0..2^24-1>`, each entry
    // a 24-bit length and DER bytes.
    let mut r = Reader(message.bytes.get(4..).unwrap_or_default());
    let Ok(list_len) = r.u24() else {
        return (None, cut);
    };
    if !cut && list_len != r.0.len() {
        return (None, false);
    }
    let mut list = Reader(&r.0[..list_len.min(r.0.len())]);
    let Ok(leaf) = list.vector24() else {
        return (None, cut);
    };
    let mut chain_len = 1;
    while !list.is_empty() {
        match list.vector24() {
            Ok(_) => chain_len += 1,
            Err(_) if cut => break,
            Err(_) => return (None, false),
        }
    }
    let facts = certificate_facts(leaf, (!cut).then_some(chain_len));
    (facts, cut)
}

/// The facts of one DER certificate; `None` when it does not parse.
fn certificate_facts(der: &[u8], chain_len: Option<usize>) -> Option<CertificateFacts> {
    let (rest, certificate) = X509Certificate::from_der(der).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let common_name = |name: &x509_parser::x509::X509Name<'_>| {
        name.iter_common_name()
            .find_map(|cn| cn.as_str().ok())
            .map(|cn| cn.chars().take(MAX_COMMON_NAME_CHARS).collect::<String>())
    };
    let mut dns_names = Vec::new();
    if let Ok(Some(san)) = certificate.subject_alternative_name() {
        dns_names = san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => dns_name(dns),
                _ => None,
            })
            .take(MAX_CERTIFICATE_NAMES)
            .collect();
    }
    let validity = certificate.validity();
    Some(CertificateFacts {
        subject_cn: common_name(certificate.subject()),
        dns_names,
        issuer_cn: common_name(certificate.issuer()),
        self_signed: certificate.issuer().as_raw() == certificate.subject().as_raw(),
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
        sha256: hex(&Sha256::digest(der)),
        chain_len,
    })
}

/// A SAN `dNSName` as a lowercase host name (wildcards kept); `None` for
/// what cannot be one.
fn dns_name(name: &str) -> Option<String> {
    let plausible = !name.is_empty()
        && name.len() <= MAX_DNS_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_graphic());
    plausible.then(|| name.to_ascii_lowercase())
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out
}

fn client_hello(body: &[u8]) -> Result<ClientHello, TlsError> {
    let mut r = Reader(body);
    let legacy_version = r.version()?;
    r.take(32)?; // random
    r.session_id()?;
    let suites = r.vector16()?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err(TlsError::Malformed("cipher suite list"));
    }
    let compression = r.vector8()?;
    if compression.is_empty() {
        return Err(TlsError::Malformed("no compression method"));
    }
    let mut hello = ClientHello {
        legacy_version,
        supported_versions: Vec::new(),
        sni: None,
        alpn: Vec::new(),
        cipher_suites: u16s(suites).filter(|&v| !is_grease(v)).collect(),
        extensions: Vec::new(),
        signature_algorithms: Vec::new(),
        ja4: String::new(),
    };
    let mut seen = Seen::default();
    if !r.is_empty() {
        let mut extensions = Reader(r.vector16()?);
        r.finish()?;
        while !extensions.is_empty() {
            let kind = extensions.u16()?;
            let data = extensions.vector16()?;
            if !is_grease(kind) {
                hello.extensions.push(kind);
                client_extension(&mut hello, &mut seen, kind, data)?;
            }
        }
    }
    hello.ja4 = ja4(&hello, &seen);
    Ok(hello)
}

/// What JA4 needs beyond the parsed fields.
#[derive(Default)]
struct Seen<'a> {
    sni_extension: bool,
    first_alpn: Option<&'a [u8]>,
}

fn client_extension<'a>(
    hello: &mut ClientHello,
    seen: &mut Seen<'a>,
    kind: u16,
    data: &'a [u8],
) -> Result<(), TlsError> {
    let mut r = Reader(data);
    match kind {
        EXT_SERVER_NAME => {
            seen.sni_extension = true;
            // An empty server_name extension is what servers echo back;
            // a client sends a list.
            if data.is_empty() {
                return Ok(());
            }
            let mut names = Reader(r.vector16()?);
            while !names.is_empty() {
                let name_type = names.u8()?;
                let name = names.vector16()?;
                if name_type == 0 && hello.sni.is_none() {
                    hello.sni = Some(host_name(name)?);
                }
            }
        }
        EXT_ALPN => {
            let mut list = Reader(r.vector16()?);
            while !list.is_empty() {
                let protocol = list.vector8()?;
                seen.first_alpn.get_or_insert(protocol);
                hello
                    .alpn
                    .push(String::from_utf8_lossy(protocol).into_owned());
            }
        }
        EXT_SUPPORTED_VERSIONS => {
            let versions = r.vector8()?;
            if versions.len() % 2 != 0 {
                return Err(TlsError::Malformed("supported_versions length"));
            }
            hello.supported_versions = u16s(versions).filter(|&v| !is_grease(v)).collect();
        }
        EXT_SIGNATURE_ALGORITHMS => {
            let algorithms = r.vector16()?;
            if algorithms.len() % 2 != 0 {
                return Err(TlsError::Malformed("signature_algorithms length"));
            }
            hello.signature_algorithms = u16s(algorithms).filter(|&v| !is_grease(v)).collect();
        }
        _ => return Ok(()),
    }
    r.finish()
}

/// SNI host names are ASCII (RFC 6066 §3); anything else is not a real hello.
fn host_name(name: &[u8]) -> Result<String, TlsError> {
    if name.is_empty() || !name.iter().all(|b| b.is_ascii_graphic()) {
        return Err(TlsError::Malformed("server name is not printable ASCII"));
    }
    Ok(name
        .iter()
        .map(|b| char::from(b.to_ascii_lowercase()))
        .collect())
}

fn server_hello(body: &[u8]) -> Result<ServerHello, TlsError> {
    let mut r = Reader(body);
    let legacy_version = r.version()?;
    r.take(32)?; // random (or the HelloRetryRequest marker)
    r.session_id()?;
    let cipher_suite = r.u16()?;
    r.u8()?; // compression method
    let mut hello = ServerHello {
        version: legacy_version,
        cipher_suite,
        alpn: None,
        certificate: None,
        certificate_cut: false,
    };
    if r.is_empty() {
        return Ok(hello);
    }
    let mut extensions = Reader(r.vector16()?);
    r.finish()?;
    while !extensions.is_empty() {
        let kind = extensions.u16()?;
        let mut data = Reader(extensions.vector16()?);
        match kind {
            EXT_SUPPORTED_VERSIONS => hello.version = data.u16()?,
            EXT_ALPN => {
                let mut list = Reader(data.vector16()?);
                let protocol = list.vector8()?;
                list.finish()?;
                hello.alpn = Some(String::from_utf8_lossy(protocol).into_owned());
            }
            _ => continue,
        }
        data.finish()?;
    }
    Ok(hello)
}

/// JA4 (FoxIO): `t` + version + `d`/`i` + cipher count + extension count +
/// ALPN first/last character, `_` + cipher hash, `_` + extension hash.
fn ja4(hello: &ClientHello, seen: &Seen<'_>) -> String {
    let version = hello
        .supported_versions
        .iter()
        .copied()
        .max()
        .unwrap_or(hello.legacy_version);
    let mut out = String::with_capacity(36);
    out.push('t');
    out.push_str(ja4_version(version));
    out.push(if seen.sni_extension { 'd' } else { 'i' });
    push_count(&mut out, hello.cipher_suites.len());
    push_count(&mut out, hello.extensions.len());
    push_alpn(&mut out, seen.first_alpn);
    out.push('_');

    let mut ciphers = hello.cipher_suites.clone();
    ciphers.sort_unstable();
    push_truncated_hash(&mut out, &ciphers, &[]);
    out.push('_');

    let mut extensions: Vec<u16> = hello
        .extensions
        .iter()
        .copied()
        .filter(|&e| e != EXT_SERVER_NAME && e != EXT_ALPN)
        .collect();
    extensions.sort_unstable();
    push_truncated_hash(&mut out, &extensions, &hello.signature_algorithms);
    out
}

fn ja4_version(version: u16) -> &'static str {
    match version {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// Two decimal digits, capped at 99.
fn push_count(out: &mut String, count: usize) {
    let count = count.min(99) as u8;
    out.push(char::from(b'0' + count / 10));
    out.push(char::from(b'0' + count % 10));
}

/// First and last character of the first ALPN value; their hex digits when
/// either is not alphanumeric; `00` when there is none.
fn push_alpn(out: &mut String, alpn: Option<&[u8]>) {
    match alpn.and_then(|a| Some((*a.first()?, *a.last()?))) {
        Some((first, last)) if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() => {
            out.push(char::from(first));
            out.push(char::from(last));
        }
        Some((first, last)) => {
            out.push(char::from(HEX[usize::from(first >> 4)]));
            out.push(char::from(HEX[usize::from(last & 0xf)]));
        }
        None => out.push_str("00"),
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// First 12 hex digits of SHA-256 over `a,b,c` (then `_x,y` when `tail` is
/// not empty); twelve zeros when `list` is empty.
fn push_truncated_hash(out: &mut String, list: &[u16], tail: &[u16]) {
    if list.is_empty() {
        out.push_str("000000000000");
        return;
    }
    let mut hasher = Sha256::new();
    hash_hex_list(&mut hasher, list);
    if !tail.is_empty() {
        hasher.update(b"_");
        hash_hex_list(&mut hasher, tail);
    }
    for byte in &hasher.finalize()[..6] {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
}

fn hash_hex_list(hasher: &mut Sha256, list: &[u16]) {
    for (i, value) in list.iter().enumerate() {
        let digits = [12, 8, 4, 0].map(|shift| HEX[usize::from((value >> shift) & 0xf)]);
        if i > 0 {
            hasher.update(b",");
        }
        hasher.update(digits);
    }
}

fn u16s(bytes: &[u8]) -> impl Iterator<Item = u16> + '_ {
    bytes
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
}

/// Big-endian reader over one complete message: running out of bytes is a
/// malformed message, not an incomplete one.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], TlsError> {
        if self.0.len() < n {
            return Err(TlsError::Malformed("field runs past its container"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, TlsError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, TlsError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn vector8(&mut self) -> Result<&'a [u8], TlsError> {
        let len = self.u8()?;
        self.take(usize::from(len))
    }

    fn vector16(&mut self) -> Result<&'a [u8], TlsError> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }

    fn u24(&mut self) -> Result<usize, TlsError> {
        let b = self.take(3)?;
        Ok(u32::from_be_bytes([0, b[0], b[1], b[2]]) as usize)
    }

    fn vector24(&mut self) -> Result<&'a [u8], TlsError> {
        let len = self.u24()?;
        self.take(len)
    }

    /// SSL 3.0 to TLS 1.3 (0x0300..=0x0304).
    fn version(&mut self) -> Result<u16, TlsError> {
        let version = self.u16()?;
        if !(0x0300..=0x0304).contains(&version) {
            return Err(TlsError::Malformed("unknown protocol version"));
        }
        Ok(version)
    }

    fn session_id(&mut self) -> Result<(), TlsError> {
        if self.vector8()?.len() > 32 {
            return Err(TlsError::Malformed("session id longer than 32 bytes"));
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), TlsError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(TlsError::Malformed("bytes left after the last field"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds TLS vectors the way RFC 8446 §4 lays them out.
    fn vec8(body: &[u8]) -> Vec<u8> {
        let mut out = vec![body.len() as u8];
        out.extend_from_slice(body);
        out
    }

    fn vec16(body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    fn be16s(values: &[u16]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_be_bytes()).collect()
    }

    /// `Handshake { msg_type u8, length u24, body }`.
    fn handshake(msg_type: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![msg_type];
        out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        out.extend_from_slice(body);
        out
    }

    /// `TLSPlaintext { type 0x16, legacy_record_version 0x0301, length u16,
    /// fragment }`, split into records of at most `max` bytes.
    fn records(message: &[u8], max: usize) -> Vec<u8> {
        message
            .chunks(max)
            .flat_map(|chunk| {
                let mut r = vec![0x16, 0x03, 0x01];
                r.extend_from_slice(&vec16(chunk));
                r
            })
            .collect()
    }

    /// Extension bodies for a hello whose wire order is given by `order`.
    fn extension(kind: u16, sni: &str, alpn: &[&str], sigalgs: &[u16]) -> Vec<u8> {
        let data = match kind {
            EXT_SERVER_NAME => {
                let mut entry = vec![0u8]; // host_name
                entry.extend_from_slice(&vec16(sni.as_bytes()));
                vec16(&entry)
            }
            EXT_ALPN => {
                let list: Vec<u8> = alpn.iter().flat_map(|p| vec8(p.as_bytes())).collect();
                vec16(&list)
            }
            EXT_SIGNATURE_ALGORITHMS => vec16(&be16s(sigalgs)),
            // GREASE first, then TLS 1.3 and 1.2, as Chrome sends them.
            EXT_SUPPORTED_VERSIONS => vec8(&be16s(&[0x3a3a, 0x0304, 0x0303])),
            // supported_groups
            0x000a => vec16(&be16s(&[0x4a4a, 0x001d, 0x0017, 0x0018])),
            // ec_point_formats
            0x000b => vec8(&[0]),
            _ => Vec::new(),
        };
        let mut out = kind.to_be_bytes().to_vec();
        out.extend_from_slice(&vec16(&data));
        out
    }

    fn client_hello_body(
        ciphers: &[u16],
        extensions: &[u16],
        sni: &str,
        sigalgs: &[u16],
    ) -> Vec<u8> {
        let mut body = vec![0x03, 0x03]; // legacy_version TLS 1.2
        body.extend_from_slice(&[0x11; 32]); // random
        body.extend_from_slice(&vec8(&[0x22; 32])); // legacy_session_id
        body.extend_from_slice(&vec16(&be16s(ciphers)));
        body.extend_from_slice(&vec8(&[0])); // compression: null
        let exts: Vec<u8> = extensions
            .iter()
            .flat_map(|&e| extension(e, sni, &["h2", "http/1.1"], sigalgs))
            .collect();
        body.extend_from_slice(&vec16(&exts));
        body
    }

    const SPEC_SIGALGS: &[u16] = &[
        0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
    ];

    /// The example of FoxIO's JA4 spec (FoxIO-LLC/ja4,
    /// technical_details/JA4.md, "Raw Output"): JA4_ro lists the ciphers,
    /// extensions and signature algorithms in wire order, GREASE removed;
    /// the published fingerprint is `t13d1516h2_8daaf6152771_e5627efa2ab1`.
    /// GREASE values are added back here where Chrome puts them.
    fn foxio_spec_example() -> Vec<u8> {
        let ciphers = [
            0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
            0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
        ];
        let extensions = [
            0x1a1a, 0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023,
            0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015, 0x2a2a,
        ];
        let body = client_hello_body(&ciphers, &extensions, "Pool.Example.COM", SPEC_SIGALGS);
        records(&handshake(CLIENT_HELLO, &body), MAX_RECORD_LEN)
    }

    #[test]
    fn ja4_matches_the_foxio_spec_example() {
        let hello = parse_client_hello(&foxio_spec_example()).unwrap();
        assert_eq!(hello.ja4, "t13d1516h2_8daaf6152771_e5627efa2ab1");
        assert_eq!(hello.sni.as_deref(), Some("pool.example.com"));
        assert_eq!(hello.alpn, ["h2", "http/1.1"]);
        assert_eq!(hello.legacy_version, 0x0303);
        assert_eq!(hello.supported_versions, [0x0304, 0x0303]);
        assert_eq!(hello.cipher_suites.len(), 15);
        assert_eq!(hello.cipher_suites[0], 0x1301);
        assert_eq!(hello.extensions.len(), 16);
        assert_eq!(hello.extensions[..3], [0x001b, 0x0000, 0x0033]);
        assert_eq!(hello.signature_algorithms, SPEC_SIGALGS);
    }

    /// A Chrome 143 hello as published by browserleaks.com's TLS page (its
    /// JSON output quoted in a public repository): JA4_ro
    /// `t13d1516h2_1301,…,0035_002d,0033,0010,fe0d,0017,44cd,0000,000b,000a,
    /// 002b,ff01,0023,0012,0005,000d,001b_0403,…,0601` and JA4
    /// `t13d1516h2_8daaf6152771_d8a2da3f94cd`.
    #[test]
    fn ja4_matches_a_published_chrome_fingerprint() {
        let ciphers = [
            0x5a5a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
            0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
        ];
        let extensions = [
            0xdada, 0x002d, 0x0033, 0x0010, 0xfe0d, 0x0017, 0x44cd, 0x0000, 0x000b, 0x000a, 0x002b,
            0xff01, 0x0023, 0x0012, 0x0005, 0x000d, 0x001b, 0x8a8a,
        ];
        let body = client_hello_body(&ciphers, &extensions, "tls.browserleaks.com", SPEC_SIGALGS);
        let stream = records(&handshake(CLIENT_HELLO, &body), MAX_RECORD_LEN);
        let hello = parse_client_hello(&stream).unwrap();
        assert_eq!(hello.ja4, "t13d1516h2_8daaf6152771_d8a2da3f94cd");
    }

    #[test]
    fn ja4_of_an_empty_signature_algorithm_list_has_no_underscore_part() {
        // JA4.md: "0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,
        // 0033,4469,ff01 = 6d807ffa2a79".
        let ciphers = [0x1301];
        let extensions = [
            0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012,
            0x002b, 0xff01, 0x000b, 0x000a, 0x0015,
        ];
        let body = client_hello_body(&ciphers, &extensions, "a.example", &[]);
        let hello = parse_client_hello(&records(&handshake(CLIENT_HELLO, &body), 1000)).unwrap();
        assert!(hello.ja4.ends_with("_6d807ffa2a79"), "{}", hello.ja4);
    }

    #[test]
    fn ja4_without_sni_alpn_or_extensions() {
        // A minimal TLS 1.2 hello: no extension block at all.
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[0; 32]);
        body.extend_from_slice(&vec8(&[]));
        body.extend_from_slice(&vec16(&be16s(&[0xc02f, 0x009c])));
        body.extend_from_slice(&vec8(&[0]));
        let hello = parse_client_hello(&records(&handshake(CLIENT_HELLO, &body), 100)).unwrap();
        assert!(hello.ja4.starts_with("t12i020000_"), "{}", hello.ja4);
        assert!(hello.ja4.ends_with("_000000000000"), "{}", hello.ja4);
        assert_eq!(hello.sni, None);
        assert!(hello.alpn.is_empty());
    }

    #[test]
    fn ja4_alpn_falls_back_to_hex_for_non_alphanumeric_bytes() {
        for (alpn, expected) in [
            (&b"h2"[..], "h2"),
            (b"http/1.1", "h1"),
            (b"x", "xx"),
            (b"\xab", "ab"),
            (b"\xab\xcd", "ad"),
            (b"0\xab", "3b"),
            (b"0\xab\xcd1", "01"),
        ] {
            let mut out = String::new();
            push_alpn(&mut out, Some(alpn));
            assert_eq!(out, expected, "{alpn:?}");
        }
        let mut out = String::new();
        push_alpn(&mut out, Some(b""));
        assert_eq!(out, "00");
    }

    #[test]
    fn a_hello_split_across_records_is_reassembled() {
        let whole = foxio_spec_example();
        let message = &whole[5..];
        for max in [1, 7, 100, 300] {
            let hello = parse_client_hello(&records(message, max)).unwrap();
            assert_eq!(
                hello.ja4, "t13d1516h2_8daaf6152771_e5627efa2ab1",
                "records of {max}"
            );
        }
    }

    #[test]
    fn a_cut_sample_is_incomplete() {
        let whole = foxio_spec_example();
        for cut in [1, 3, 5, 8, 40, whole.len() - 1] {
            assert_eq!(
                parse_client_hello(&whole[..cut]),
                Err(TlsError::Incomplete),
                "cut at {cut}"
            );
        }
        let split = records(&whole[5..], 50);
        assert_eq!(
            parse_client_hello(&split[..split.len() - 20]),
            Err(TlsError::Incomplete)
        );
    }

    #[test]
    fn other_protocols_are_not_tls() {
        for stream in [
            &b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"SSH-2.0-OpenSSH_9.6\r\n",
            b"{\"id\":1,\"method\":\"login\"}\n",
            b"\x17\x03\x03\x00\x10", // application data
            b"\x16\x02\x00\x00\x10", // bad major version
            b"\x16\x03\x09\x00\x10", // bad minor version
            b"\x16\x03\x01\x00\x00", // empty record
            b"\x16\x03\x01\xff\xff", // record too long
        ] {
            assert_eq!(
                parse_client_hello(stream),
                Err(TlsError::NotTls),
                "{stream:?}"
            );
        }
        // Nothing yet is not a verdict.
        assert_eq!(parse_client_hello(b""), Err(TlsError::Incomplete));
    }

    #[test]
    fn bogus_lengths_are_malformed() {
        let whole = foxio_spec_example();
        // Cipher suite vector length one more than the bytes there.
        let mut bad = whole.clone();
        let suites_at = 5 + 4 + 2 + 32 + 33;
        bad[suites_at + 1] += 1;
        assert!(matches!(
            parse_client_hello(&bad),
            Err(TlsError::Malformed(_))
        ));
        // Trailing garbage inside the handshake message.
        let mut body = whole[9..].to_vec();
        body.push(0);
        let stream = records(&handshake(CLIENT_HELLO, &body), MAX_RECORD_LEN);
        assert!(matches!(
            parse_client_hello(&stream),
            Err(TlsError::Malformed(_))
        ));
        // A declared 16 MiB handshake message.
        let stream = [0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0xff, 0xff, 0xff];
        assert!(matches!(
            parse_client_hello(&stream),
            Err(TlsError::Malformed(_))
        ));
        // A ServerHello where a ClientHello was expected.
        assert!(matches!(
            parse_server_hello(&whole),
            Err(TlsError::Malformed(_))
        ));
        // An alert record in the middle of the reassembled message.
        let mut split = records(&whole[5..], 100);
        split[105] = 0x15;
        assert!(matches!(
            parse_client_hello(&split),
            Err(TlsError::Malformed(_))
        ));
    }

    fn server_hello_bytes(version_ext: Option<u16>, alpn: Option<&str>) -> Vec<u8> {
        let mut stream = records(&server_hello_message(version_ext, alpn), MAX_RECORD_LEN);
        // TLS 1.3 servers follow with ChangeCipherSpec and encrypted records.
        stream.extend_from_slice(&[0x14, 0x03, 0x03, 0x00, 0x01, 0x01, 0x17, 0x03, 0x03]);
        stream
    }

    /// The ServerHello handshake message: TLS 1.2 unless `version_ext`
    /// says otherwise.
    fn server_hello_message(version_ext: Option<u16>, alpn: Option<&str>) -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[0x33; 32]);
        body.extend_from_slice(&vec8(&[0x44; 32]));
        body.extend_from_slice(&0x1301u16.to_be_bytes());
        body.push(0);
        let mut exts = Vec::new();
        if let Some(v) = version_ext {
            exts.extend_from_slice(&EXT_SUPPORTED_VERSIONS.to_be_bytes());
            exts.extend_from_slice(&vec16(&v.to_be_bytes()));
        }
        if let Some(p) = alpn {
            exts.extend_from_slice(&EXT_ALPN.to_be_bytes());
            exts.extend_from_slice(&vec16(&vec16(&vec8(p.as_bytes()))));
        }
        body.extend_from_slice(&vec16(&exts));
        handshake(SERVER_HELLO, &body)
    }

    #[test]
    fn server_hello_reports_the_negotiated_version_and_alpn() {
        let hello = parse_server_hello(&server_hello_bytes(Some(0x0304), Some("h2"))).unwrap();
        assert_eq!(
            hello,
            ServerHello {
                version: 0x0304,
                cipher_suite: 0x1301,
                alpn: Some("h2".into()),
                certificate: None,
                certificate_cut: false,
            }
        );
        // A TLS 1.2 ServerHello followed by ChangeCipherSpec: a resumed
        // session, no certificate.
        let hello = parse_server_hello(&server_hello_bytes(None, None)).unwrap();
        assert_eq!(hello.version, 0x0303);
        assert_eq!(hello.alpn, None);
        assert_eq!(hello.certificate, None);
        assert!(!hello.certificate_cut);
        let whole = server_hello_bytes(None, None);
        assert_eq!(parse_server_hello(&whole[..50]), Err(TlsError::Incomplete));
    }

    // Certificates made by testdata/make-certificates.sh: a self-signed
    // ECDSA one for a pool domain, and an RSA leaf with 20 DNS names signed
    // by a test CA (also ECDSA).
    const POOL_SELF_SIGNED: &[u8] = include_bytes!("testdata/pool-self-signed.der");
    const NODE_SIGNED: &[u8] = include_bytes!("testdata/node-signed.der");
    const TEST_CA: &[u8] = include_bytes!("testdata/test-ca.der");
    /// 2025-01-01T00:00:00Z and 2035-01-01T00:00:00Z.
    const NOT_BEFORE: i64 = 1_735_689_600;
    const NOT_AFTER: i64 = 2_051_222_400;

    fn vec24(body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as u32).to_be_bytes()[1..].to_vec();
        out.extend_from_slice(body);
        out
    }

    /// `Certificate { ASN.1Cert certificate_list<0..2^24-1> }` (TLS 1.2).
    fn certificate_message(chain: &[&[u8]]) -> Vec<u8> {
        let list: Vec<u8> = chain.iter().flat_map(|der| vec24(der)).collect();
        handshake(CERTIFICATE, &vec24(&list))
    }

    const SERVER_HELLO_DONE: [u8; 4] = [0x0e, 0, 0, 0];

    /// A TLS 1.2 server's first flight: ServerHello, Certificate,
    /// ServerHelloDone.
    fn tls12_flight(chain: &[&[u8]]) -> Vec<u8> {
        let mut flight = server_hello_message(None, Some("h2"));
        flight.extend_from_slice(&certificate_message(chain));
        flight.extend_from_slice(&SERVER_HELLO_DONE);
        flight
    }

    fn pool_facts() -> CertificateFacts {
        CertificateFacts {
            subject_cn: Some("pool.supportxmr.com".into()),
            // The IP address entry is not a DNS name; case is folded.
            dns_names: vec!["pool.supportxmr.com".into(), "*.supportxmr.com".into()],
            issuer_cn: Some("pool.supportxmr.com".into()),
            self_signed: true,
            not_before: NOT_BEFORE,
            not_after: NOT_AFTER,
            // `openssl x509 -fingerprint -sha256` of the fixture.
            sha256: "8bc316cab9edf87f3eb34d9873fe0ac0369de56d31e16b253fc74a5766fce8fc".into(),
            chain_len: Some(1),
        }
    }

    #[test]
    fn a_tls12_server_certificate_is_read() {
        let stream = records(&tls12_flight(&[POOL_SELF_SIGNED]), MAX_RECORD_LEN);
        let hello = parse_server_hello(&stream).unwrap();
        assert_eq!(hello.version, 0x0303);
        assert_eq!(hello.alpn.as_deref(), Some("h2"));
        assert_eq!(hello.certificate, Some(pool_facts()));
        assert!(!hello.certificate_cut);
    }

    #[test]
    fn a_ca_signed_chain_gives_the_leaf_and_its_length() {
        let stream = records(&tls12_flight(&[NODE_SIGNED, TEST_CA]), MAX_RECORD_LEN);
        let facts = parse_server_hello(&stream).unwrap().certificate.unwrap();
        assert_eq!(facts.subject_cn.as_deref(), Some("node.example.net"));
        assert_eq!(facts.issuer_cn.as_deref(), Some("Assay Test CA"));
        assert!(!facts.self_signed);
        assert_eq!(facts.chain_len, Some(2));
        assert_eq!((facts.not_before, facts.not_after), (NOT_BEFORE, NOT_AFTER));
        // 20 names in the certificate, the first 16 kept.
        let expected: Vec<String> = (0..MAX_CERTIFICATE_NAMES)
            .map(|i| format!("n{i}.example.net"))
            .collect();
        assert_eq!(facts.dns_names, expected);
    }

    #[test]
    fn a_certificate_split_across_records_is_reassembled() {
        let flight = tls12_flight(&[POOL_SELF_SIGNED]);
        for max in [1, 7, 100, 300] {
            let hello = parse_server_hello(&records(&flight, max)).unwrap();
            assert_eq!(hello.certificate, Some(pool_facts()), "records of {max}");
            assert!(!hello.certificate_cut, "records of {max}");
        }
        // The ServerHello alone in its record, the rest in two more.
        let (server_hello, rest) = flight.split_at(server_hello_message(None, Some("h2")).len());
        let mut stream = records(server_hello, MAX_RECORD_LEN);
        stream.extend_from_slice(&records(rest, 250));
        let hello = parse_server_hello(&stream).unwrap();
        assert_eq!(hello.certificate, Some(pool_facts()));
    }

    #[test]
    fn a_cut_certificate_still_gives_the_server_hello() {
        let server_hello_len = server_hello_message(None, Some("h2")).len();
        let stream = records(&tls12_flight(&[NODE_SIGNED, TEST_CA]), MAX_RECORD_LEN);
        let leaf_end = 5 + server_hello_len + 4 + 3 + 3 + NODE_SIGNED.len();
        // Right after the ServerHello, inside the Certificate header, inside
        // the leaf.
        for cut in [5 + server_hello_len, 5 + server_hello_len + 2, leaf_end - 1] {
            let hello = parse_server_hello(&stream[..cut]).unwrap();
            assert_eq!(hello.alpn.as_deref(), Some("h2"), "cut at {cut}");
            assert_eq!(hello.certificate, None, "cut at {cut}");
            assert!(hello.certificate_cut, "cut at {cut}");
        }
        // The leaf whole, the chain not: the leaf is read, its chain length
        // unknown.
        for cut in [leaf_end, leaf_end + 2, leaf_end + 100] {
            let hello = parse_server_hello(&stream[..cut]).unwrap();
            let facts = hello.certificate.unwrap();
            assert_eq!(facts.subject_cn.as_deref(), Some("node.example.net"));
            assert_eq!(facts.chain_len, None);
            assert!(hello.certificate_cut);
        }
        // The same cut when the records are small.
        let stream = records(&tls12_flight(&[POOL_SELF_SIGNED]), 64);
        let hello = parse_server_hello(&stream[..stream.len() - 100]).unwrap();
        assert_eq!(hello.certificate, None);
        assert!(hello.certificate_cut);
        // Cut inside the ServerHello: nothing to return yet.
        assert_eq!(parse_server_hello(&stream[..40]), Err(TlsError::Incomplete));
    }

    #[test]
    fn a_broken_certificate_is_no_certificate() {
        let mut corrupt = POOL_SELF_SIGNED.to_vec();
        corrupt[0] = 0x31; // SET instead of SEQUENCE
        let mut trailing = POOL_SELF_SIGNED.to_vec();
        trailing.push(0);
        for chain in [
            &[&b"not a certificate"[..]][..],
            &[&[0x30, 0x03, 0x02, 0x01, 0x00][..]],
            &[&corrupt[..]],
            &[&trailing[..]],
            &[&POOL_SELF_SIGNED[..POOL_SELF_SIGNED.len() - 10]],
            &[],
        ] {
            let stream = records(&tls12_flight(chain), MAX_RECORD_LEN);
            let hello = parse_server_hello(&stream).unwrap();
            assert_eq!(hello.certificate, None, "{chain:?}");
            assert!(!hello.certificate_cut, "{chain:?}");
        }
        // A list length that disagrees with the message's.
        let mut flight = server_hello_message(None, None);
        let mut message = certificate_message(&[POOL_SELF_SIGNED]);
        message[6] += 1;
        flight.extend_from_slice(&message);
        let hello = parse_server_hello(&records(&flight, MAX_RECORD_LEN)).unwrap();
        assert_eq!(hello.certificate, None);
        // An alert record where the certificate should continue.
        let mut stream = records(&tls12_flight(&[POOL_SELF_SIGNED]), 200);
        stream[205] = 0x15;
        let hello = parse_server_hello(&stream).unwrap();
        assert_eq!(hello.certificate, None);
        assert!(!hello.certificate_cut);
    }

    #[test]
    fn only_a_certificate_message_right_after_the_server_hello_is_read() {
        // An anonymous suite: ServerKeyExchange, no Certificate.
        let mut flight = server_hello_message(None, None);
        flight.extend_from_slice(&handshake(0x0c, &[0x03, 0x00, 0x17]));
        flight.extend_from_slice(&certificate_message(&[POOL_SELF_SIGNED]));
        let hello = parse_server_hello(&records(&flight, MAX_RECORD_LEN)).unwrap();
        assert_eq!(hello.certificate, None);
        assert!(!hello.certificate_cut);
    }

    #[test]
    fn tls13_certificates_are_not_looked_for() {
        // Encrypted in real TLS 1.3; even a clear one is not read, since
        // what follows a TLS 1.3 ServerHello is not the server's to show.
        let mut flight = server_hello_message(Some(0x0304), None);
        flight.extend_from_slice(&certificate_message(&[POOL_SELF_SIGNED]));
        let stream = records(&flight, MAX_RECORD_LEN);
        let hello = parse_server_hello(&stream).unwrap();
        assert_eq!(hello.version, 0x0304);
        assert_eq!(hello.certificate, None);
        assert!(!hello.certificate_cut);
        let cut = parse_server_hello(&stream[..stream.len() - 50]).unwrap();
        assert!(!cut.certificate_cut);
    }

    #[test]
    fn handshake_record_prefilter() {
        assert!(is_handshake_record(&[0x16]));
        assert!(is_handshake_record(&[0x16, 0x03, 0x01]));
        assert!(is_handshake_record(&[0x16, 0x03, 0x03, 0x02, 0x00]));
        assert!(!is_handshake_record(&[]));
        assert!(!is_handshake_record(&[0x16, 0x03, 0x05]));
        assert!(!is_handshake_record(&[0x16, 0x03, 0x01, 0x00, 0x00]));
        assert!(!is_handshake_record(&[0x16, 0x03, 0x01, 0x48, 0x01]));
        assert!(!is_handshake_record(b"GET"));
    }

    #[test]
    fn grease_values() {
        assert!(is_grease(0x0a0a));
        assert!(is_grease(0xfafa));
        assert!(!is_grease(0x0a1a));
        assert!(!is_grease(0x1301));
    }
}
