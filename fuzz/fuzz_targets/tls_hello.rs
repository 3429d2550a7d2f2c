//! Arbitrary bytes as the first bytes of a TCP direction, to the TLS
//! ClientHello and ServerHello parsers (record reassembly, extensions, JA4,
//! and the X.509 leaf of a TLS 1.2 Certificate message after the
//! ServerHello).
//!
//! Invariants: no panic; a parsed ClientHello carries no GREASE value, a
//! lowercase SNI and a JA4 of the fixed `a_b_c` shape (10 + 12 + 12
//! characters); a stream the prefilter rejects is never parsed as a hello;
//! a certificate is only reported below TLS 1.3, with at most 16 lowercase
//! DNS names and a chain length only when its message was whole.

#![no_main]

use assay_classify::tls::{self, ClientHello, ServerHello, TlsError};
use libfuzzer_sys::fuzz_target;

fn check(hello: &ClientHello) {
    let no_grease = |values: &[u16]| values.iter().all(|&v| !tls::is_grease(v));
    assert!(no_grease(&hello.cipher_suites), "{hello:?}");
    assert!(no_grease(&hello.extensions), "{hello:?}");
    assert!(no_grease(&hello.supported_versions), "{hello:?}");
    assert!(no_grease(&hello.signature_algorithms), "{hello:?}");
    if let Some(sni) = &hello.sni {
        assert!(!sni.bytes().any(|b| b.is_ascii_uppercase()), "{sni:?}");
    }
    let parts: Vec<&str> = hello.ja4.split('_').collect();
    assert_eq!(
        parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
        [10, 12, 12],
        "{}",
        hello.ja4
    );
    assert!(hello.ja4.starts_with('t'), "{}", hello.ja4);
}

fn check_server(hello: &ServerHello) {
    let Some(certificate) = &hello.certificate else {
        return;
    };
    assert!(hello.version < 0x0304, "{hello:?}");
    assert!(
        certificate.dns_names.len() <= tls::MAX_CERTIFICATE_NAMES,
        "{hello:?}"
    );
    for name in &certificate.dns_names {
        assert!(!name.bytes().any(|b| b.is_ascii_uppercase()), "{name:?}");
    }
    assert_eq!(certificate.sha256.len(), 64, "{hello:?}");
    assert_eq!(
        certificate.chain_len.is_none(),
        hello.certificate_cut,
        "{hello:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let client = tls::parse_client_hello(data);
    if let Ok(hello) = &client {
        check(hello);
    }
    let server = tls::parse_server_hello(data);
    if let Ok(hello) = &server {
        check_server(hello);
    }
    if !tls::is_handshake_record(data) {
        assert!(client.is_err() && server.is_err());
    }
    if data.is_empty() {
        assert_eq!(client, Err(TlsError::Incomplete));
    }
});
