//! Arbitrary bytes as the first bytes of a TCP direction, to the TLS
//! ClientHello and ServerHello parsers (record reassembly, extensions, JA4).
//!
//! Invariants: no panic; a parsed ClientHello carries no GREASE value, a
//! lowercase SNI and a JA4 of the fixed `a_b_c` shape (10 + 12 + 12
//! characters); a stream the prefilter rejects is never parsed as a hello.

#![no_main]

use assay::classify::tls::{self, ClientHello, TlsError};
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

fuzz_target!(|data: &[u8]| {
    let client = tls::parse_client_hello(data);
    if let Ok(hello) = &client {
        check(hello);
    }
    let server = tls::parse_server_hello(data);
    if !tls::is_handshake_record(data) {
        assert!(client.is_err() && server.is_err());
    }
    if data.is_empty() {
        assert_eq!(client, Err(TlsError::Incomplete));
    }
});
