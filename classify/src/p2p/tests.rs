//! The p2p openings, family by family, against benign look-alikes and
//! malformed variants.

use sha2::{Digest as _, Sha256};

use crate::catalogue::Catalogue;

/// Bitcoin mainnet's magic (the first built-in one).
const BITCOIN: [u8; 4] = [0xf9, 0xbe, 0xb4, 0xd9];

use super::{
    bitcoin::checksum,
    levin::{HEADER_LEN as LEVIN_HEADER_LEN, PORTABLE_STORAGE, SIGNATURE as LEVIN_SIGNATURE},
    *,
};

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
    let stream = bitcoin_message(BITCOIN, "version", &noise(102, 1));
    let o = opening(&stream).unwrap();
    assert_eq!(o.network, Network::Bitcoin(Magic([0xf9, 0xbe, 0xb4, 0xd9])));
    assert_eq!(
        o.network.describe(),
        "Bitcoin-family p2p (Bitcoin mainnet, magic f9beb4d9)"
    );
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
    let listed: Vec<([u8; 4], String)> = Catalogue::builtin()
        .magics()
        .map(|(m, n)| (m, n.to_owned()))
        .collect();
    assert!(listed.len() >= 18);
    for (magic, name) in listed {
        let stream = bitcoin_message(magic, "version", &noise(90, 2));
        let network = opening(&stream).unwrap().network;
        assert_eq!(network, Network::Bitcoin(Magic(magic)));
        assert!(network.describe().contains(&name), "{}", network.describe());
        assert!(network.identifiers().contains(&("chain", name.clone())));
    }
}

#[test]
fn a_cut_payload_is_accepted_without_its_checksum() {
    let zcash = [0x24, 0xe9, 0x27, 0x64];
    let stream = bitcoin_message(zcash, "version", &noise(120, 3));
    let network = opening(&stream[..60]).unwrap().network;
    assert_eq!(network, Network::Bitcoin(Magic(zcash)));
    assert!(network.describe().contains("Zcash mainnet"));
    assert_eq!(opening(&stream[..23]), None);
}

#[test]
fn bad_bitcoin_headers_are_rejected() {
    let good = bitcoin_message(BITCOIN, "version", &noise(102, 4));
    let mut bad_checksum = good.clone();
    bad_checksum[30] ^= 0xff;
    let mut upper = good.clone();
    upper[4] = b'V';
    let mut after_nul = good.clone();
    after_nul[15] = b'x';
    let mut huge = good.clone();
    huge[16..20].copy_from_slice(&(33u32 << 20).to_le_bytes());
    let empty_command = bitcoin_message(BITCOIN, "", &[]);
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
    assert_eq!(o.network, Network::Levin { network_id: None });
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

// --- Bitcoin-family forks by structure ---

/// A `version` payload (developer reference, "version"): protocol version,
/// services, timestamp, addr_recv and addr_from (services, IPv6-mapped
/// address, big-endian port), nonce, user agent (CompactSize + bytes),
/// start height, relay.
fn version_payload(protocol: i32, user_agent: &str, height: i32, relay: Option<u8>) -> Vec<u8> {
    let mut out = protocol.to_le_bytes().to_vec();
    out.extend_from_slice(&1033u64.to_le_bytes());
    out.extend_from_slice(&1_765_000_000i64.to_le_bytes());
    for port in [8333u16, 0] {
        out.extend_from_slice(&1u64.to_le_bytes());
        out.extend_from_slice(&[0; 10]);
        out.extend_from_slice(&[0xff, 0xff, 127, 0, 0, 1]);
        out.extend_from_slice(&port.to_be_bytes());
    }
    out.extend_from_slice(&0x1234_5678_9abc_def0u64.to_le_bytes());
    out.push(user_agent.len() as u8);
    out.extend_from_slice(user_agent.as_bytes());
    out.extend_from_slice(&height.to_le_bytes());
    out.extend(relay);
    out
}

/// Magics from the forks' chainparams (docs/signatures.md): the listed
/// ones, then forks the name table leaves out, then one made up.
const LITECOIN: [u8; 4] = [0xfb, 0xc0, 0xb6, 0xdb];
const LISTED_FORKS: [([u8; 4], &str); 6] = [
    (LITECOIN, "Litecoin mainnet"),
    ([0xc0, 0xc0, 0xc0, 0xc0], "Dogecoin mainnet"),
    ([0xe3, 0xe1, 0xf3, 0xe8], "Bitcoin Cash mainnet"),
    ([0xbf, 0x0c, 0x6b, 0xbd], "Dash mainnet"),
    ([0xfa, 0xc3, 0xb6, 0xda], "DigiByte mainnet"),
    ([0xf9, 0xbe, 0xb4, 0xfe], "Namecoin mainnet"),
];
const UNLISTED_FORKS: [[u8; 4]; 5] = [
    [0xe6, 0xe8, 0xe9, 0xe5], // Peercoin
    [0xf1, 0xcf, 0xa6, 0xd3], // Qtum
    [0xe1, 0x47, 0x6d, 0x44], // Bitcoin Gold
    [0x0f, 0x68, 0xc6, 0xcb], // Viacoin
    [0x5a, 0xa5, 0xc3, 0x3c], // made up
];

fn fork_version(magic: [u8; 4], seed: u64) -> Vec<u8> {
    let user_agent = format!("/Fork:{}.{}.0/", seed % 30, seed % 7);
    let payload = version_payload(
        70_015 + seed as i32,
        &user_agent,
        1000 * seed as i32,
        Some(1),
    );
    bitcoin_message(magic, "version", &payload)
}

#[test]
fn fork_versions_are_recognised_and_their_magic_named_when_listed() {
    for (i, (magic, name)) in LISTED_FORKS.into_iter().enumerate() {
        let o = opening(&fork_version(magic, i as u64)).unwrap();
        assert_eq!(o.network, Network::Bitcoin(Magic(magic)));
        assert_eq!(o.message.as_deref(), Some("version"));
        assert_eq!(o.confidence, Confidence::Decisive);
        assert!(o.network.is_blockchain());
        assert!(
            o.network.describe().contains(name),
            "{}",
            o.network.describe()
        );
    }
    let doge = opening(&fork_version(LISTED_FORKS[1].0, 3))
        .unwrap()
        .network;
    assert_eq!(
        doge.identifiers(),
        [
            ("magic", "c0c0c0c0".to_owned()),
            ("chain", "Dogecoin mainnet".to_owned())
        ]
    );
}

#[test]
fn a_version_on_a_magic_nobody_listed_is_proof_by_its_checksum_and_payload() {
    for (i, magic) in UNLISTED_FORKS.into_iter().enumerate() {
        assert_eq!(Magic(magic).name_in(Catalogue::builtin()), None);
        for relay in [Some(0), Some(1), None] {
            let payload = version_payload(70_016, "/Satoshi:0.21.0/", i as i32 * 77, relay);
            let o = opening(&bitcoin_message(magic, "version", &payload)).unwrap();
            assert_eq!(o.network, Network::Bitcoin(Magic(magic)));
            assert_eq!(o.network.identifiers(), [("magic", Magic(magic).hex())]);
        }
    }
    let made_up = opening(&fork_version([0x5a, 0xa5, 0xc3, 0x3c], 9)).unwrap();
    assert_eq!(
        made_up.network.describe(),
        "Bitcoin-family p2p (unlisted network, magic 5aa5c33c)"
    );
    // Fields a fork appends after the relay flag (Dash's challenge).
    let mut dash_like = version_payload(70_230, "/Dash Core:20.0.0/", 5, Some(1));
    dash_like.extend_from_slice(&noise(33, 11));
    assert!(opening(&bitcoin_message(UNLISTED_FORKS[4], "version", &dash_like)).is_some());
}

#[test]
fn on_an_unlisted_magic_anything_short_of_a_proven_version_is_nothing() {
    let magic = UNLISTED_FORKS[0];
    let good = version_payload(70_016, "/Satoshi:27.0.0/", 850_000, Some(1));
    // Well-formed messages other than version: verack's checksum is fixed,
    // a ping's is right, but neither proves the protocol on its own.
    assert_eq!(opening(&bitcoin_message(magic, "verack", &[])), None);
    assert_eq!(
        opening(&bitcoin_message(magic, "ping", &noise(8, 12))),
        None
    );
    // The right payload under another command, or a near miss.
    assert_eq!(opening(&bitcoin_message(magic, "versions", &good)), None);
    assert_eq!(opening(&bitcoin_message(magic, "verzion", &good)), None);
    // A bad checksum.
    let mut bad = bitcoin_message(magic, "version", &good);
    bad[20] ^= 0x01;
    assert_eq!(opening(&bad), None);
    // A payload that does not parse as a version, checksum right.
    let mut old = good.clone();
    old[..4].copy_from_slice(&106i32.to_le_bytes());
    let mut long_agent = version_payload(70_016, "/x/", 1, Some(1));
    long_agent[80] = 200; // user agent length past the payload
    let unprintable = version_payload(70_016, "/Sat\x01shi/", 1, Some(1));
    let negative_height = version_payload(70_016, "/Satoshi/", -5, Some(1));
    let bad_relay = version_payload(70_016, "/Satoshi/", 5, Some(2));
    let short = good[..60].to_vec();
    for payload in [
        old,
        long_agent,
        unprintable,
        negative_height,
        bad_relay,
        short,
    ] {
        assert_eq!(opening(&bitcoin_message(magic, "version", &payload)), None);
    }
    // Longer than any version payload.
    let mut huge = good.clone();
    huge.extend_from_slice(&noise(600, 13));
    assert_eq!(opening(&bitcoin_message(magic, "version", &huge)), None);
}

#[test]
fn a_right_looking_header_on_random_bytes_is_nothing() {
    for seed in 1..300 {
        let body = noise(130, seed);
        // Header right in every field but the checksum, which is random.
        let mut stream = bitcoin_message(UNLISTED_FORKS[4], "version", &body);
        stream[20..24].copy_from_slice(&noise(4, seed + 1000));
        assert_eq!(opening(&stream), None, "seed {seed}");
        // Checksum right, payload random: it does not parse as a version.
        let stream = bitcoin_message(UNLISTED_FORKS[4], "version", &body);
        assert_eq!(opening(&stream), None, "seed {seed}");
        // A real version payload whose checksum was taken elsewhere.
        let mut stream = fork_version(UNLISTED_FORKS[2], seed);
        stream[20..24].copy_from_slice(&checksum(&body));
        assert_eq!(opening(&stream), None, "seed {seed}");
    }
}

#[test]
fn a_version_split_over_segments_waits_for_its_checksum() {
    let whole = fork_version(UNLISTED_FORKS[1], 4);
    for cut in 0..whole.len() {
        let part = &whole[..cut];
        assert_eq!(opening(part), None, "cut at {cut}");
        assert_eq!(wants_more(part), cut >= 24, "cut at {cut}");
    }
    assert!(opening(&whole).is_some());
    assert!(!wants_more(&whole));
    // A listed magic is named from the header alone, but the caller is
    // told the checksum is yet to come.
    let litecoin = fork_version(LITECOIN, 4);
    assert!(opening(&litecoin[..40]).is_some() && wants_more(&litecoin[..40]));
    // Nothing to wait for on other commands or an oversized payload.
    assert!(!wants_more(
        &bitcoin_message(UNLISTED_FORKS[1], "ping", &[0; 8])[..26]
    ));
    let mut oversized = whole.clone();
    oversized[16..20].copy_from_slice(&5000u32.to_le_bytes());
    assert!(!wants_more(&oversized));
}

#[test]
fn partial_and_mangled_input_never_panics() {
    let mut samples = vec![
        fork_version(UNLISTED_FORKS[0], 1),
        fork_version(LITECOIN, 2),
        levin_message(1001, 1, 1, &monero_handshake_body(MONERO_MAINNET)),
        b"\x13/multistream/1.0.0\n\x07/noise\n".to_vec(),
    ];
    for seed in 0..50 {
        let mut mangled = fork_version(UNLISTED_FORKS[3], seed);
        let at = (seed as usize * 7) % mangled.len();
        mangled[at] ^= 0xa5;
        samples.push(mangled);
        // A user-agent length of 0xfd/0xfe/0xff (CompactSize markers).
        let mut marker = fork_version(UNLISTED_FORKS[3], seed);
        marker[24 + 80] = 0xfd + (seed % 3) as u8;
        samples.push(marker);
    }
    for sample in &samples {
        for cut in 0..=sample.len() {
            let _ = identify(&sample[..cut], cut);
            let _ = wants_more(&sample[..cut]);
        }
    }
}

#[test]
fn tls_and_http_with_version_like_bytes_are_not_bitcoin() {
    let mut http = b"POST /version HTTP/1.1\r\nContent-Length: 20\r\n\r\n".to_vec();
    http.extend_from_slice(&fork_version(UNLISTED_FORKS[0], 1)[4..]);
    let mut tls = vec![
        0x16, 0x03, 0x01, 0x00, 0xa0, 0x01, 0x00, 0x00, 0x9c, 0x03, 0x03,
    ];
    tls.extend_from_slice(&noise(161, 14));
    for sample in [http, tls] {
        assert_eq!(opening(&sample), None);
        assert!(!wants_more(&sample));
    }
}

// --- Levin network ids ---

const MONERO_MAINNET: [u8; 16] = [
    0x12, 0x30, 0xf1, 0x71, 0x61, 0x04, 0x41, 0x61, 0x17, 0x31, 0x00, 0x82, 0x16, 0xa1, 0xa1, 0x10,
];

/// A handshake body as epee's portable storage writes it: signature, root
/// section of 2 entries, `node_data` (a section: `network_id` as a 16-byte
/// string, `my_port` as u32), then padding standing in for payload_data.
fn monero_handshake_body(network_id: [u8; 16]) -> Vec<u8> {
    let mut body = PORTABLE_STORAGE.to_vec();
    body.push(2 << 2);
    body.extend_from_slice(b"\x09node_data\x0c");
    body.push(2 << 2);
    body.extend_from_slice(b"\x0anetwork_id\x0a\x40");
    body.extend_from_slice(&network_id);
    body.extend_from_slice(b"\x07my_port\x06");
    body.extend_from_slice(&18080u32.to_le_bytes());
    body.extend_from_slice(&noise(120, 15));
    body
}

#[test]
fn a_levin_handshake_names_monero_or_a_fork_by_its_network_id() {
    let monero = opening(&levin_message(
        1001,
        1,
        1,
        &monero_handshake_body(MONERO_MAINNET),
    ));
    let network = monero.unwrap().network;
    assert_eq!(network.describe(), "Monero p2p (Levin)");
    assert!(
        network
            .identifiers()
            .contains(&("chain", "Monero".to_owned()))
    );
    // A fork keeps the framing under its own id (Salvium's, for one).
    let mut fork_id = MONERO_MAINNET;
    fork_id[10..15].copy_from_slice(&[0x82, 0x53, 0x41, 0x4c, 0xff]);
    let fork = opening(&levin_message(1001, 2, 1, &monero_handshake_body(fork_id))).unwrap();
    assert_eq!(fork.message.as_deref(), Some("handshake (1001)"));
    assert_eq!(
        fork.network.describe(),
        "CryptoNote p2p (Levin, a network other than Monero's)"
    );
    assert_eq!(
        fork.network.identifiers(),
        [("network_id", NetworkId(fork_id).hex())]
    );
    // The header alone: recognised, but worth waiting for the id.
    let stream = levin_message(1001, 1, 1, &monero_handshake_body(MONERO_MAINNET));
    assert!(wants_more(&stream[..LEVIN_HEADER_LEN]));
    assert!(!wants_more(&stream));
    assert!(!wants_more(
        &levin_message(1002, 1, 1, &storage_body())[..LEVIN_HEADER_LEN]
    ));
}

#[test]
fn an_operators_catalogue_names_a_fork_without_changing_what_is_recognised() {
    let peercoin = [0xe6, 0xe8, 0xe9, 0xe5];
    let catalogue = Catalogue::with_file(
        "version = 1\n[[bitcoin_magic]]\nmagic = \"e6e8e9e5\"\nname = \"Peercoin mainnet\"\n",
        "test",
    )
    .unwrap();
    let version = fork_version(peercoin, 7);
    let network = opening(&version).unwrap().network;
    assert!(network.describe().contains("unlisted network"));
    assert!(network.describe_in(&catalogue).contains("Peercoin mainnet"));
    assert!(
        network
            .identifiers_in(&catalogue)
            .contains(&("chain", "Peercoin mainnet".to_owned()))
    );
    // Naming it does not make a bare ping on its magic count: only built-in
    // magics relax the structural check.
    let ping = bitcoin_message(peercoin, "ping", &noise(8, 3));
    assert_eq!(opening(&ping), None);
}
