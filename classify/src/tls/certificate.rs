//! The server's leaf certificate, from the Certificate message a TLS 1.2
//! (or older) server sends right after its ServerHello. Names and lengths
//! are bounded here, so a hostile certificate costs a few KiB at most.

use sha2::{Digest, Sha256};
use x509_parser::{certificate::X509Certificate, extensions::GeneralName, prelude::FromDer};

use super::{
    CERTIFICATE,
    ja4::HEX,
    reader::Reader,
    record::{Cursor, reassemble},
};
/// Certificate DNS names kept; a CDN certificate can list hundreds.
pub const MAX_CERTIFICATE_NAMES: usize = 16;
/// Longest DNS name (RFC 1035); longer SAN entries are not host names.
const MAX_DNS_NAME_LEN: usize = 253;
/// Longest common name kept, in characters (RFC 5280's upper bound is 64).
const MAX_COMMON_NAME_CHARS: usize = 128;

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

/// The leaf certificate of the Certificate message at `at`, if that is the
/// next message, and whether the sample ended before it (or its chain) did.
/// Anything else there (ServerKeyExchange of an anonymous suite, the
/// ChangeCipherSpec of a resumed session, a broken record) means no
/// certificate.
pub(super) fn server_certificate(stream: &[u8], at: Cursor) -> (Option<CertificateFacts>, bool) {
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
