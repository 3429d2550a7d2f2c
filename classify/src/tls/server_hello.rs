//! The ServerHello: the version, cipher suite and ALPN the server chose,
//! and, below TLS 1.3, the certificate that follows it in clear.

use super::{
    EXT_ALPN, EXT_SUPPORTED_VERSIONS, SERVER_HELLO, TLS_1_3, TlsError,
    certificate::{CertificateFacts, server_certificate},
    reader::Reader,
    record::handshake_message,
};
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
