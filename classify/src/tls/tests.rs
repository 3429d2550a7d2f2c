//! Tests of the TLS parsers: hellos built byte by byte as RFC 8446 lays
//! them out, FoxIO's and a browser's published JA4 fingerprints, and the
//! certificate fixtures of `../testdata/`.

use super::ja4::push_alpn;
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

fn client_hello_body(ciphers: &[u16], extensions: &[u16], sni: &str, sigalgs: &[u16]) -> Vec<u8> {
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
const POOL_SELF_SIGNED: &[u8] = include_bytes!("../testdata/pool-self-signed.der");
const NODE_SIGNED: &[u8] = include_bytes!("../testdata/node-signed.der");
const TEST_CA: &[u8] = include_bytes!("../testdata/test-ca.der");
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
