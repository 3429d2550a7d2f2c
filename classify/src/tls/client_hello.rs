//! The ClientHello: what a client offers (SNI, ALPN, cipher suites,
//! extensions, signature algorithms), GREASE removed. It is the message
//! that names the pool and, through its JA4, the TLS stack that dialled.

use super::{
    CLIENT_HELLO, EXT_ALPN, EXT_SERVER_NAME, EXT_SIGNATURE_ALGORITHMS, EXT_SUPPORTED_VERSIONS,
    TlsError, is_grease,
    ja4::ja4,
    reader::{Reader, u16s},
    record::handshake_message,
};
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

/// Parses the ClientHello at the start of a client stream.
pub fn parse_client_hello(stream: &[u8]) -> Result<ClientHello, TlsError> {
    let (body, _) = handshake_message(stream, CLIENT_HELLO)?;
    client_hello(&body)
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
pub(super) struct Seen<'a> {
    pub(super) sni_extension: bool,
    pub(super) first_alpn: Option<&'a [u8]>,
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
