//! A capture built packet by packet, classified as the live agent would.

use super::*;

const CLIENT: [u8; 4] = [10, 0, 0, 2];
const POOL: [u8; 4] = [192, 0, 2, 7];
const RESOLVER: [u8; 4] = [10, 0, 0, 1];

const SYN: u8 = 0x02;
const SYN_ACK: u8 = 0x12;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;

const LOGIN: &[u8] = b"{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"login\",\"params\":{\"login\":\"44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A\",\"pass\":\"x\",\"agent\":\"XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0\",\"rigid\":\"\",\"algo\":[\"rx/0\",\"cn/r\"]}}\n";
const LOGIN_REPLY: &[u8] = b"{\"id\":1,\"jsonrpc\":\"2.0\",\"error\":null,\"result\":{\"id\":\"79b4b4d4\",\"status\":\"OK\"}}\n";

fn ipv4(src: [u8; 4], dst: [u8; 4], protocol: u8, transport: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + transport.len()).unwrap().to_be_bytes();
    let mut ip = vec![
        0x45, 0, total[0], total[1], 0, 1, 0x40, 0, 64, protocol, 0, 0,
    ];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    ip.extend_from_slice(transport);
    ip
}

fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, transport: &[u8]) -> Vec<u8> {
    let length = u16::try_from(transport.len()).unwrap().to_be_bytes();
    let mut ip = vec![0x60, 0, 0, 0, length[0], length[1], next, 64];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    ip.extend_from_slice(transport);
    ip
}

fn ethernet(ethertype: u16, network: &[u8]) -> Vec<u8> {
    let mut frame = vec![0u8; 12];
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(network);
    frame
}

fn tcp(sport: u16, dport: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut segment = Vec::new();
    segment.extend_from_slice(&sport.to_be_bytes());
    segment.extend_from_slice(&dport.to_be_bytes());
    segment.extend_from_slice(&seq.to_be_bytes());
    segment.extend_from_slice(&[0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    segment.extend_from_slice(payload);
    segment
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut datagram = Vec::new();
    datagram.extend_from_slice(&sport.to_be_bytes());
    datagram.extend_from_slice(&dport.to_be_bytes());
    datagram.extend_from_slice(&u16::try_from(8 + payload.len()).unwrap().to_be_bytes());
    datagram.extend_from_slice(&[0, 0]);
    datagram.extend_from_slice(payload);
    datagram
}

/// An Ethernet/IPv4/TCP frame from the client to the pool (`up`) or
/// back.
fn pool_frame(up: bool, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let (src, dst, sport, dport) = if up {
        (CLIENT, POOL, 40000, 3333)
    } else {
        (POOL, CLIENT, 3333, 40000)
    };
    ethernet(
        0x0800,
        &ipv4(src, dst, 6, &tcp(sport, dport, seq, flags, payload)),
    )
}

/// A DNS message (RFC 1035 4.1): one A question for `name`, and an A
/// answer when `answer` is given.
fn dns(name: &str, answer: Option<[u8; 4]>) -> Vec<u8> {
    let mut m = vec![0x12, 0x34];
    m.extend_from_slice(if answer.is_some() {
        &[0x81, 0x80]
    } else {
        &[0x01, 0x00]
    });
    m.extend_from_slice(&[0, 1, 0, u8::from(answer.is_some()), 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(u8::try_from(label.len()).unwrap());
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    if let Some(address) = answer {
        m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4]);
        m.extend_from_slice(&address);
    }
    m
}

fn dns_query_frame() -> Vec<u8> {
    ethernet(
        0x0800,
        &ipv4(
            CLIENT,
            RESOLVER,
            17,
            &udp(53000, 53, &dns("pool.supportxmr.com", None)),
        ),
    )
}

fn dns_answer_frame() -> Vec<u8> {
    let answer = dns("pool.supportxmr.com", Some(POOL));
    ethernet(
        0x0800,
        &ipv4(RESOLVER, CLIENT, 17, &udp(53, 53000, &answer)),
    )
}

/// A legacy pcap file, little-endian, microseconds, a millisecond
/// between packets.
fn pcap(linktype: u32, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut file = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    file.extend_from_slice(&[0; 8]);
    file.extend_from_slice(&65535u32.to_le_bytes());
    file.extend_from_slice(&linktype.to_le_bytes());
    for (i, frame) in frames.iter().enumerate() {
        let length = u32::try_from(frame.len()).unwrap().to_le_bytes();
        file.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        file.extend_from_slice(&(u32::try_from(i).unwrap() * 1000).to_le_bytes());
        file.extend_from_slice(&length);
        file.extend_from_slice(&length);
        file.extend_from_slice(frame);
    }
    file
}

fn pcapng_block(block_type: u32, body: &[u8]) -> Vec<u8> {
    let mut padded = body.to_vec();
    padded.resize(body.len().div_ceil(4) * 4, 0);
    let length = u32::try_from(12 + padded.len()).unwrap().to_le_bytes();
    let mut block = block_type.to_le_bytes().to_vec();
    block.extend_from_slice(&length);
    block.extend_from_slice(&padded);
    block.extend_from_slice(&length);
    block
}

/// A pcapng file, little-endian: one section, one interface
/// (microseconds), a millisecond between packets.
fn pcapng(linktype: u16, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut shb = vec![0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0];
    shb.extend_from_slice(&[0xff; 8]);
    let mut file = pcapng_block(0x0a0d_0d0a, &shb);
    let mut idb = linktype.to_le_bytes().to_vec();
    idb.extend_from_slice(&[0, 0]);
    idb.extend_from_slice(&65535u32.to_le_bytes());
    file.extend(pcapng_block(1, &idb));
    for (i, frame) in frames.iter().enumerate() {
        let ts = 1_700_000_000_000_000u64 + u64::try_from(i).unwrap() * 1000;
        let length = u32::try_from(frame.len()).unwrap().to_le_bytes();
        let mut epb = 0u32.to_le_bytes().to_vec();
        epb.extend_from_slice(&u32::try_from(ts >> 32).unwrap().to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&length);
        epb.extend_from_slice(&length);
        epb.extend_from_slice(frame);
        file.extend(pcapng_block(6, &epb));
    }
    file
}

/// A miner's login, split over two segments, the first one sent twice
/// (a retransmission), and the pool's answer.
fn login_exchange() -> Vec<Vec<u8>> {
    let (first, second) = LOGIN.split_at(60);
    vec![
        pool_frame(true, 1000, SYN, b""),
        pool_frame(false, 5000, SYN_ACK, b""),
        pool_frame(true, 1001, ACK, b""),
        pool_frame(true, 1001, PSH_ACK, first),
        pool_frame(true, 1001, PSH_ACK, first),
        pool_frame(true, 1061, PSH_ACK, second),
        pool_frame(false, 5001, PSH_ACK, LOGIN_REPLY),
    ]
}

fn classify(file: &[u8]) -> Report {
    classify_capture(file, &Options::default())
}

fn assert_is_the_login(report: &Report) {
    assert!(report.error.is_none(), "{:?}", report.error);
    assert_eq!(report.packets, 7);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    let [flow] = report.flows.as_slice() else {
        panic!("one flow expected: {:?}", report.flows);
    };
    assert_eq!(flow.number, 1);
    assert_eq!(flow.transport, Transport::Tcp);
    assert_eq!(flow.initiator, "10.0.0.2:40000".parse().unwrap());
    assert_eq!(flow.responder, "192.0.2.7:3333".parse().unwrap());
    assert!(flow.handshake_seen);
    assert_eq!(flow.protocol, Some("stratum-v1"));
    let stratum = flow.details.stratum.as_ref().expect("stratum details");
    assert_eq!(stratum.variant, Some("ST5"));
    assert_eq!(stratum.methods.first().map(String::as_str), Some("login"));
    assert!(stratum.decisive);
    assert!(stratum.login.as_deref().unwrap().starts_with("44AFFq5k"));
    assert!(
        stratum
            .agent
            .as_deref()
            .unwrap()
            .starts_with("XMRig/6.21.0")
    );
    let sent = &flow.initiator_sent;
    assert_eq!(sent.packets, 5);
    assert_eq!(sent.bytes, 60 * 2 + (LOGIN.len() as u64 - 60));
    assert_eq!(sent.retransmissions, 1);
    assert_eq!(sent.sampled, 2);
    assert_eq!(sent.gaps, 0);
    assert_eq!(flow.responder_sent.packets, 2);
    assert_eq!(flow.responder_sent.bytes, LOGIN_REPLY.len() as u64);
    assert_eq!(flow.first_seen_ns, 1_700_000_000_000_000_000);
    assert_eq!(flow.last_seen_ns, 1_700_000_000_006_000_000);
}

#[test]
fn a_login_split_over_two_segments_with_a_retransmission_is_stratum() {
    assert_is_the_login(&classify(&pcap(1, &login_exchange())));
}

#[test]
fn pcapng_reads_the_same_as_pcap() {
    assert_is_the_login(&classify(&pcapng(1, &login_exchange())));
}

#[test]
fn a_dns_lookup_names_the_domain_and_its_answer() {
    let report = classify(&pcap(1, &[dns_query_frame(), dns_answer_frame()]));
    let [flow] = report.flows.as_slice() else {
        panic!("one flow expected: {:?}", report.flows);
    };
    assert_eq!(flow.transport, Transport::Udp);
    assert_eq!(flow.initiator, "10.0.0.2:53000".parse().unwrap());
    assert_eq!(flow.responder, "10.0.0.1:53".parse().unwrap());
    assert!(!flow.handshake_seen);
    assert_eq!(flow.protocol, Some("dns"));
    let dns = flow.details.dns.as_ref().unwrap();
    assert_eq!(dns.names, ["pool.supportxmr.com"]);
    assert_eq!(dns.addresses, ["192.0.2.7"]);
    assert_eq!((dns.queries, dns.responses), (1, 1));
}

#[test]
fn a_gap_stops_the_direction_as_a_lost_sample_does() {
    // The login in three parts, the middle one late: the third is past
    // a hole when it comes, the middle one then is old.
    let (a, rest) = LOGIN.split_at(50);
    let (b, c) = rest.split_at(50);
    let frames = vec![
        pool_frame(true, 1000, SYN, b""),
        pool_frame(false, 5000, SYN_ACK, b""),
        pool_frame(true, 1001, PSH_ACK, a),
        pool_frame(true, 1101, PSH_ACK, c),
        pool_frame(true, 1051, PSH_ACK, b),
    ];
    let report = classify(&pcap(1, &frames));
    let flow = &report.flows[0];
    assert_eq!(flow.protocol, None);
    assert_eq!(flow.initiator_sent.gaps, 1);
    assert_eq!(flow.initiator_sent.retransmissions, 1);
    assert_eq!(flow.initiator_sent.sampled, 1);
}

#[test]
fn a_login_over_more_segments_than_the_limit_raises_it() {
    let mut frames = vec![pool_frame(true, 1000, SYN, b"")];
    let mut seq = 1001;
    for piece in LOGIN.chunks(LOGIN.len().div_ceil(5)) {
        frames.push(pool_frame(true, seq, PSH_ACK, piece));
        seq += u32::try_from(piece.len()).unwrap();
    }
    let options = Options {
        samples_per_direction: 2,
        ..Options::default()
    };
    let report = classify_capture(pcap(1, &frames).as_slice(), &options);
    let flow = &report.flows[0];
    assert_eq!(flow.initiator_sent.sampled, 5);
    assert_eq!(flow.protocol, Some("stratum-v1"));
}

#[test]
fn the_initiator_is_the_syn_sender_else_the_first_to_speak() {
    // The SYN missed, the SYN-ACK captured: its receiver initiated.
    let syn_ack_first = vec![
        pool_frame(false, 5000, SYN_ACK, b""),
        pool_frame(true, 1001, PSH_ACK, LOGIN),
    ];
    let flow = &classify(&pcap(1, &syn_ack_first)).flows[0];
    assert_eq!(flow.initiator, "10.0.0.2:40000".parse().unwrap());
    assert!(flow.handshake_seen);
    assert_eq!(flow.protocol, Some("stratum-v1"));
    // Caught mid-connection with the pool speaking first: the pool is
    // taken for the initiator, and says so.
    let mid_connection = vec![
        pool_frame(false, 7000, PSH_ACK, LOGIN_REPLY),
        pool_frame(true, 2000, PSH_ACK, LOGIN),
    ];
    let flow = &classify(&pcap(1, &mid_connection)).flows[0];
    assert_eq!(flow.initiator, "192.0.2.7:3333".parse().unwrap());
    assert!(!flow.handshake_seen);
    assert_eq!(flow.responder_sent.bytes, LOGIN.len() as u64);
}

#[test]
fn a_new_syn_on_the_same_ports_is_a_new_flow() {
    let frames = vec![
        pool_frame(true, 1000, SYN, b""),
        pool_frame(true, 1001, PSH_ACK, LOGIN),
        pool_frame(true, 1000, SYN, b""),
        pool_frame(true, 90_000, SYN, b""),
        pool_frame(true, 90_001, PSH_ACK, b"GET / HTTP/1.1\r\n\r\n"),
    ];
    let report = classify(&pcap(1, &frames));
    assert_eq!(report.flows.len(), 2, "{:?}", report.flows);
    assert_eq!(report.flows[0].protocol, Some("stratum-v1"));
    assert_eq!(report.flows[0].initiator_sent.packets, 3);
    assert_eq!(report.flows[1].protocol, None);
}

#[test]
fn every_link_type_of_a_linux_or_bsd_capture_is_decoded() {
    let query = dns("pool.supportxmr.com", None);
    let ip4 = ipv4(CLIENT, RESOLVER, 17, &udp(53000, 53, &query));
    let mut v6 = [0u8; 16];
    v6[15] = 1;
    let ip6 = ipv6(v6, v6, 17, &udp(53000, 53, &query));
    let mut sll = vec![0, 4, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ip4);
    let mut sll2 = vec![0x86, 0xdd, 0, 0, 0, 0, 0, 1, 0, 1, 4, 6];
    sll2.extend_from_slice(&[0; 8]);
    sll2.extend_from_slice(&ip6);
    let mut null = 2u32.to_le_bytes().to_vec();
    null.extend_from_slice(&ip4);
    let mut looped = 30u32.to_be_bytes().to_vec();
    looped.extend_from_slice(&ip6);
    let mut vlan = vec![0u8; 12];
    vlan.extend_from_slice(&[0x81, 0x00, 0, 7, 0x08, 0x00]);
    vlan.extend_from_slice(&ip4);
    for (linktype, frame) in [
        (113, sll),
        (276, sll2),
        (0, null),
        (108, looped),
        (101, ip6.clone()),
        (228, ip4),
        (229, ip6),
        (1, vlan),
    ] {
        let report = classify(&pcap(linktype, &[frame]));
        assert!(
            report.skipped.is_empty(),
            "{linktype}: {:?}",
            report.skipped
        );
        assert_eq!(
            report.flows[0].protocol,
            Some("dns"),
            "link type {linktype}"
        );
    }
    let report = classify(&pcap(147, &[dns_query_frame()]));
    assert_eq!(report.skipped.get(&Skip::LinkType(147)), Some(&1));
}

#[test]
fn malformed_packets_are_counted_by_reason_and_skipped() {
    let lookup = udp(53000, 53, &dns("example.org", None));
    let mut bad_ihl = ipv4(CLIENT, RESOLVER, 17, &lookup);
    bad_ihl[0] = 0x44;
    let mut too_long = ipv4(CLIENT, RESOLVER, 17, &lookup);
    too_long[2] = 0x40;
    let mut fragment = ipv4(CLIENT, RESOLVER, 17, &lookup);
    fragment[7] = 0x10;
    let mut tcp_offset = tcp(40000, 3333, 1, PSH_ACK, b"{}");
    tcp_offset[12] = 0xf0;
    let mut udp_length = lookup.clone();
    udp_length[5] = 3;
    let frames = vec![
        ethernet(0x0806, &[0; 28]),
        vec![0; 10],
        ethernet(0x0800, &bad_ihl),
        ethernet(0x0800, &too_long),
        ethernet(0x0800, &fragment),
        ethernet(0x0800, &ipv4(CLIENT, RESOLVER, 6, &tcp_offset)),
        ethernet(0x0800, &ipv4(CLIENT, RESOLVER, 6, &[0; 12])),
        ethernet(0x0800, &ipv4(CLIENT, RESOLVER, 17, &udp_length)),
        ethernet(0x0800, &ipv4(CLIENT, RESOLVER, 1, &[8, 0, 0, 0])),
        ethernet(0x86dd, &ipv6([1; 16], [2; 16], 0, &lookup)),
        ethernet(0x86dd, &[0x60; 20]),
        ethernet(0x0800, &[0x65; 30]),
        dns_query_frame(),
    ];
    let report = classify(&pcap(1, &frames));
    assert!(report.error.is_none());
    assert_eq!(report.packets, 13);
    let expected = BTreeMap::from([
        (Skip::MalformedLink, 1),
        (Skip::NotIp, 1),
        (Skip::MalformedIp, 4),
        (Skip::IpFragment, 1),
        (Skip::Ipv6Extension, 1),
        (Skip::OtherTransport, 1),
        (Skip::MalformedTcp, 2),
        (Skip::MalformedUdp, 1),
    ]);
    assert_eq!(report.skipped, expected);
    assert_eq!(report.flows.len(), 1);
    assert_eq!(report.flows[0].protocol, Some("dns"));
    let summary = report.summary();
    assert!(
        summary.starts_with(
            "13 packets read, 12 skipped (1 malformed link header, 1 not IP, 4 malformed IP header"
        ),
        "{summary}"
    );
}

#[test]
fn random_bytes_never_panic() {
    // xorshift: reproducible noise, in frames and in whole files.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..100 {
        let length = (next() % 200) as usize;
        let mut noise: Vec<u8> = (0..length).map(|_| next() as u8).collect();
        if round % 2 == 0 && noise.len() > 20 {
            noise[0] = 0x45;
        }
        let frames = [
            ethernet(0x0800, &noise),
            ethernet(0x86dd, &noise),
            noise.clone(),
        ];
        for linktype in [0, 1, 101, 108, 113, 276] {
            let _ = classify(&pcap(linktype, &frames));
            let _ = classify(&pcapng(linktype as u16, &frames));
        }
        let mut file = pcap(1, &[dns_query_frame()]);
        file.extend_from_slice(&noise);
        let _ = classify(&file);
        let mut file = pcapng(1, &[dns_query_frame()]);
        file.extend_from_slice(&noise);
        let _ = classify(&file);
    }
}

#[test]
fn a_truncated_file_says_where_and_keeps_the_flows_before() {
    let frames = [
        dns_query_frame(),
        dns_answer_frame(),
        pool_frame(true, 1, SYN, b""),
    ];
    for (format, file) in [("pcap", pcap(1, &frames)), ("pcapng", pcapng(1, &frames))] {
        let cut = &file[..file.len() - 10];
        let report = classify(cut);
        let Some(PcapError::Truncated { offset, packets }) = report.error else {
            panic!("{format}: {:?}", report.error);
        };
        assert_eq!(packets, 2, "{format}");
        let last_record = file.len() - if format == "pcap" { 16 + 54 } else { 32 + 56 };
        assert_eq!(offset, last_record as u64, "{format}");
        assert_eq!(report.flows.len(), 1, "{format}");
        assert_eq!(report.flows[0].protocol, Some("dns"), "{format}");
        let message = report.error.unwrap().to_string();
        assert!(message.contains(&format!("offset {offset}")), "{message}");
    }
}

#[test]
fn a_corrupt_block_is_an_error_naming_where_it_is() {
    let mut file = pcapng(1, &[dns_query_frame()]);
    let mut bad = pcapng_block(6, &[0; 20]);
    bad[4] = 0x0d;
    file.extend(bad);
    file.extend(pcapng_block(6, &[0; 20]));
    let report = classify(&file);
    let good = pcapng(1, &[dns_query_frame()]).len() as u64;
    assert!(
        matches!(report.error, Some(PcapError::Corrupt { packets: 1, offset, .. }) if offset == good),
        "{:?}",
        report.error
    );
    assert_eq!(report.flows[0].protocol, Some("dns"));
}

#[test]
fn a_file_that_is_not_a_capture_says_so() {
    let report = classify(b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n");
    assert!(matches!(report.error, Some(PcapError::NotACapture)));
    assert!(matches!(classify(b"").error, Some(PcapError::Empty)));
    assert!(matches!(
        classify(&[0xd4, 0xc3]).error,
        Some(PcapError::NotACapture)
    ));
}

#[test]
fn json_lines_carry_the_documented_fields_for_flows_with_payload() {
    let mut frames = login_exchange();
    frames.push(dns_query_frame());
    // A connection attempt that never carried payload: not printed.
    frames.push(ethernet(
        0x0800,
        &ipv4(CLIENT, POOL, 6, &tcp(40001, 22, 9, SYN, b"")),
    ));
    let report = classify(&pcap(1, &frames));
    let mut out = Vec::new();
    write_json(&report, &mut out).unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let stratum = &lines[0];
    assert_eq!(stratum["flow"], 1);
    assert_eq!(stratum["transport"], "tcp");
    assert_eq!(stratum["initiator"]["addr"], "10.0.0.2:40000");
    assert_eq!(stratum["initiator"]["packets"], 5);
    assert_eq!(stratum["initiator"]["retransmissions"], 1);
    assert_eq!(stratum["responder"]["addr"], "192.0.2.7:3333");
    assert_eq!(stratum["handshake_seen"], true);
    assert_eq!(stratum["first_seen"], "2023-11-14T22:13:20.000000Z");
    assert_eq!(stratum["protocol"], "stratum-v1");
    assert_eq!(stratum["stratum"]["variant"], "ST5");
    assert_eq!(stratum["stratum"]["methods"][0], "login");
    assert!(stratum.get("dns").is_none());
    assert_eq!(lines[1]["flow"], 2);
    assert_eq!(lines[1]["protocol"], "dns");
    assert_eq!(lines[1]["dns"]["names"][0], "pool.supportxmr.com");
}

#[test]
fn the_table_has_a_line_per_flow_with_payload() {
    let mut frames = login_exchange();
    frames.push(ethernet(
        0x0800,
        &ipv4(
            CLIENT,
            POOL,
            6,
            &tcp(40002, 80, 1, PSH_ACK, b"GET / HTTP/1.1\r\n\r\n"),
        ),
    ));
    let report = classify(&pcap(1, &frames));
    let mut out = Vec::new();
    write_table(&report, &mut out).unwrap();
    let table = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("FLOW  L4"), "{table}");
    assert!(
        lines[1].starts_with("1     tcp  10.0.0.2:40000  ->  192.0.2.7:3333"),
        "{table}"
    );
    assert!(lines[1].contains("stratum-v1  ST5 login"), "{table}");
    assert!(lines[1].contains("agent=XMRig/6.21.0"), "{table}");
    assert!(lines[2].contains("unknown"), "{table}");
}

/// A legacy pcap file as [`pcap`] writes it, each frame cut to its first
/// `kept` bytes as a snapshot length cuts it (the record keeps the length
/// on the wire).
fn pcap_cut(linktype: u32, frames: &[(Vec<u8>, usize)]) -> Vec<u8> {
    let mut file = pcap(linktype, &[]);
    for (i, (frame, kept)) in frames.iter().enumerate() {
        let kept = (*kept).min(frame.len());
        file.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        file.extend_from_slice(&(u32::try_from(i).unwrap() * 1000).to_le_bytes());
        file.extend_from_slice(&u32::try_from(kept).unwrap().to_le_bytes());
        file.extend_from_slice(&u32::try_from(frame.len()).unwrap().to_le_bytes());
        file.extend_from_slice(&frame[..kept]);
    }
    file
}

#[test]
fn vlan_tags_are_stripped_one_or_two_deep() {
    let lookup = udp(53000, 53, &dns("pool.supportxmr.com", None));
    let ip4 = ipv4(CLIENT, RESOLVER, 17, &lookup);
    let ip6 = ipv6([1; 16], [2; 16], 17, &lookup);
    // 802.1Q over IPv6; QinQ (802.1ad outer, 802.1Q inner) over IPv4.
    let mut tagged = vec![0, 7];
    tagged.extend_from_slice(&0x86ddu16.to_be_bytes());
    tagged.extend_from_slice(&ip6);
    let mut double = vec![0, 100, 0x81, 0x00, 0, 7, 0x08, 0x00];
    double.extend_from_slice(&ip4);
    let frames = vec![
        ethernet(0x8100, &tagged),
        ethernet(0x88a8, &double),
        // A tag cut before its ethertype.
        ethernet(0x8100, &[0, 7]),
    ];
    let report = classify(&pcap(1, &frames));
    assert_eq!(
        report.skipped,
        BTreeMap::from([(Skip::MalformedLink, 1)]),
        "{:?}",
        report.flows
    );
    assert_eq!(report.flows.len(), 2);
    for flow in &report.flows {
        assert_eq!(flow.protocol, Some("dns"), "{flow:?}");
        assert_eq!(flow.responder.port(), 53);
    }
    assert_eq!(
        report.flows[0].initiator,
        "[101:101:101:101:101:101:101:101]:53000".parse().unwrap()
    );
    assert_eq!(report.flows[1].initiator, "10.0.0.2:53000".parse().unwrap());
}

#[test]
fn an_ipv6_hop_by_hop_header_is_counted_not_followed_as_the_kernel_does() {
    let lookup = udp(53000, 53, &dns("pool.supportxmr.com", None));
    // Hop-by-hop options (RFC 8200 4.3): next header UDP, 8 bytes, PadN.
    let mut hop_by_hop = vec![17, 0, 1, 4, 0, 0, 0, 0];
    hop_by_hop.extend_from_slice(&lookup);
    let frames = vec![
        ethernet(0x86dd, &ipv6([1; 16], [2; 16], 0, &hop_by_hop)),
        ethernet(0x86dd, &ipv6([1; 16], [2; 16], 17, &lookup)),
    ];
    let report = classify(&pcap(1, &frames));
    assert_eq!(report.skipped, BTreeMap::from([(Skip::Ipv6Extension, 1)]));
    let [flow] = report.flows.as_slice() else {
        panic!("one flow expected: {:?}", report.flows);
    };
    assert_eq!(flow.initiator_sent.packets, 1);
    assert_eq!(flow.protocol, Some("dns"));
}

#[test]
fn a_cooked_capture_of_loopback_and_tunnel_devices_is_decoded() {
    let ip4 = ipv4(
        CLIENT,
        RESOLVER,
        17,
        &udp(53000, 53, &dns("pool.supportxmr.com", None)),
    );
    // ARPHRD_LOOPBACK and ARPHRD_NONE (a tun device), what `-i any` mixes
    // with Ethernet.
    for hatype in [772u16, 0xfffe] {
        let mut sll = vec![0, 0];
        sll.extend_from_slice(&hatype.to_be_bytes());
        sll.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00]);
        sll.extend_from_slice(&ip4);
        let mut sll2 = vec![0x08, 0x00, 0, 0, 0, 0, 0, 1];
        sll2.extend_from_slice(&hatype.to_be_bytes());
        sll2.extend_from_slice(&[0, 0]);
        sll2.extend_from_slice(&[0; 8]);
        sll2.extend_from_slice(&ip4);
        for (linktype, frame) in [(113, sll), (276, sll2)] {
            let report = classify(&pcap(linktype, &[frame]));
            assert!(report.skipped.is_empty(), "{hatype}: {:?}", report.skipped);
            assert_eq!(report.flows[0].protocol, Some("dns"), "{linktype} {hatype}");
        }
    }
}

#[test]
fn a_frame_cut_by_the_snapshot_length_counts_its_bytes_on_the_wire() {
    let (first, second) = LOGIN.split_at(LOGIN.len() / 2);
    let opening = pool_frame(true, 1001, PSH_ACK, first);
    let rest = pool_frame(
        true,
        1001 + u32::try_from(first.len()).unwrap(),
        PSH_ACK,
        second,
    );
    let reply = pool_frame(false, 5001, PSH_ACK, LOGIN_REPLY);
    let v6 = ethernet(
        0x86dd,
        &ipv6([1; 16], [2; 16], 6, &tcp(40001, 3333, 1, PSH_ACK, LOGIN)),
    );
    let frames = vec![
        (pool_frame(true, 1000, SYN, b""), usize::MAX),
        // Whole, then cut 10 bytes into its payload.
        (opening, usize::MAX),
        (rest, 54 + 10),
        // Cut inside the TCP header: nothing to follow.
        (reply, 14 + 20 + 12),
        (v6, 14 + 40 + 20 + 5),
    ];
    let report = classify(&pcap_cut(1, &frames));
    assert!(report.error.is_none(), "{:?}", report.error);
    assert_eq!(report.skipped, BTreeMap::from([(Skip::MalformedTcp, 1)]));
    let [flow, v6] = report.flows.as_slice() else {
        panic!("two flows expected: {:?}", report.flows);
    };
    assert_eq!(flow.initiator_sent.packets, 3);
    assert_eq!(flow.initiator_sent.bytes, LOGIN.len() as u64);
    assert_eq!(flow.initiator_sent.sampled, 2);
    assert_eq!(flow.initiator_sent.gaps, 0);
    assert_eq!(flow.responder_sent.packets, 0);
    // The line was cut before its end: never complete.
    assert_eq!(flow.protocol, None);
    assert_eq!(v6.transport, Transport::Tcp);
    assert_eq!(v6.initiator_sent.bytes, LOGIN.len() as u64);
    assert_eq!(v6.initiator_sent.sampled, 1);
}

#[test]
fn an_offloaded_packet_with_no_total_length_is_read_whole() {
    // Captured before the NIC split it: IPv4 total length 0, IPv6 payload
    // length 0.
    let mut v4 = ipv4(CLIENT, POOL, 6, &tcp(40000, 3333, 1001, PSH_ACK, LOGIN));
    v4[2] = 0;
    v4[3] = 0;
    let mut v6 = ipv6([1; 16], [2; 16], 6, &tcp(40001, 3333, 1, PSH_ACK, LOGIN));
    v6[4] = 0;
    v6[5] = 0;
    let report = classify(&pcap(1, &[ethernet(0x0800, &v4), ethernet(0x86dd, &v6)]));
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(report.flows.len(), 2);
    for flow in &report.flows {
        assert_eq!(flow.initiator_sent.bytes, LOGIN.len() as u64);
        assert_eq!(flow.protocol, Some("stratum-v1"));
    }
}

#[test]
fn a_first_fragment_is_followed_and_later_ones_are_skipped() {
    let answer = dns("pool.supportxmr.com", Some(POOL));
    let datagram = udp(53, 53000, &answer);
    // The first fragment: the UDP header announces the whole datagram,
    // the packet carries its first 24 bytes (a multiple of 8).
    let mut first = ipv4(RESOLVER, CLIENT, 17, &datagram[..24]);
    first[6] = 0x20;
    let mut later = ipv4(RESOLVER, CLIENT, 17, &datagram[24..]);
    later[6] = 0x00;
    later[7] = 3;
    let report = classify(&pcap(
        1,
        &[ethernet(0x0800, &first), ethernet(0x0800, &later)],
    ));
    assert_eq!(report.skipped, BTreeMap::from([(Skip::IpFragment, 1)]));
    let [flow] = report.flows.as_slice() else {
        panic!("one flow expected: {:?}", report.flows);
    };
    assert_eq!(flow.transport, Transport::Udp);
    assert_eq!(flow.initiator, "10.0.0.1:53".parse().unwrap());
    assert_eq!(flow.initiator_sent.bytes, answer.len() as u64);
    assert_eq!(flow.initiator_sent.sampled, 1);
}

#[test]
fn an_opaque_flow_that_lives_on_is_sampled_for_its_push_beat() {
    // Random-looking bytes both ways (no protocol recognised), then the
    // server pushes every second, unanswered: the table asks for more
    // samples once the flow is five seconds old, and the capture takes
    // them as the kernel would.
    let key: Vec<u8> = (0..200u8).map(|i| i.wrapping_mul(151) | 0x80).collect();
    let mut frames = vec![
        (0, pool_frame(true, 1000, SYN, b"")),
        (0, pool_frame(false, 5000, SYN_ACK, b"")),
        (1, pool_frame(true, 1001, PSH_ACK, &key)),
        (2, pool_frame(false, 5001, PSH_ACK, &key)),
    ];
    let mut seq = 5001 + 200;
    for second in 1..=12u64 {
        frames.push((second * 1000, pool_frame(false, seq, PSH_ACK, &key[..150])));
        seq += 150;
    }
    // A legacy pcap file, timestamps as given (milliseconds).
    let mut file = pcap(1, &[]);
    for (ms, frame) in &frames {
        let length = u32::try_from(frame.len()).unwrap().to_le_bytes();
        file.extend_from_slice(
            &u32::try_from(1_700_000_000 + ms / 1000)
                .unwrap()
                .to_le_bytes(),
        );
        file.extend_from_slice(&u32::try_from(ms % 1000 * 1000).unwrap().to_le_bytes());
        file.extend_from_slice(&length);
        file.extend_from_slice(&length);
        file.extend_from_slice(frame);
    }
    let report = classify(&file);
    let [flow] = report.flows.as_slice() else {
        panic!("one flow expected: {:?}", report.flows);
    };
    assert_eq!(flow.responder_sent.packets, 14);
    // Past the default budget: the pushes from the sixth second on.
    assert!(
        flow.responder_sent.sampled > DEFAULT_SAMPLES_PER_DIRECTION,
        "{:?}",
        flow.responder_sent
    );
    let cadence = flow.details.job_cadence.as_ref().expect("a job-like beat");
    assert!(cadence.is_job_like(), "{cadence:?}");
    assert_eq!(flow.initiator_sent.sampled, 1);
}

/// A Bitcoin-family `version` message (developer reference, "Message
/// Headers" and "version") on `magic`, with the SHA256d checksum.
fn version_message(magic: [u8; 4], user_agent: &str, height: i32) -> Vec<u8> {
    use sha2::{Digest as _, Sha256};
    let mut payload = 70_016i32.to_le_bytes().to_vec();
    payload.extend_from_slice(&1u64.to_le_bytes());
    payload.extend_from_slice(&1_700_000_000i64.to_le_bytes());
    for _ in 0..2 {
        payload.extend_from_slice(&1u64.to_le_bytes());
        payload.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 2]);
        payload.extend_from_slice(&9333u16.to_be_bytes());
    }
    payload.extend_from_slice(&0x0bad_cafe_u64.to_le_bytes());
    payload.push(user_agent.len() as u8);
    payload.extend_from_slice(user_agent.as_bytes());
    payload.extend_from_slice(&height.to_le_bytes());
    payload.push(1);
    let mut message = magic.to_vec();
    message.extend_from_slice(b"version\0\0\0\0\0");
    message.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    message.extend_from_slice(&Sha256::digest(Sha256::digest(&payload))[..4]);
    message.extend_from_slice(&payload);
    message
}

/// A TCP exchange between two peers on `port`: handshake, then the dialer's
/// first message in two segments and the listener's in one.
fn peer_exchange(port: u16, dialer: &[u8], listener: &[u8]) -> Vec<Vec<u8>> {
    const PEER: [u8; 4] = [192, 0, 2, 9];
    let frame = |up: bool, seq: u32, flags: u8, payload: &[u8]| {
        let (src, dst, sport, dport) = if up {
            (CLIENT, PEER, 41000, port)
        } else {
            (PEER, CLIENT, port, 41000)
        };
        ethernet(
            0x0800,
            &ipv4(src, dst, 6, &tcp(sport, dport, seq, flags, payload)),
        )
    };
    let (first, second) = dialer.split_at(dialer.len().min(40));
    vec![
        frame(true, 100, SYN, b""),
        frame(false, 700, SYN_ACK, b""),
        frame(true, 101, ACK, b""),
        frame(true, 101, PSH_ACK, first),
        frame(true, 101 + first.len() as u32, PSH_ACK, second),
        frame(false, 701, PSH_ACK, listener),
    ]
}

#[test]
fn bitcoin_forks_on_any_magic_are_named_by_their_magic_and_look_alikes_are_not() {
    // Litecoin's magic (listed), Peercoin's (not listed), and one made up.
    let forks: [([u8; 4], Option<&str>); 3] = [
        ([0xfb, 0xc0, 0xb6, 0xdb], Some("Litecoin mainnet")),
        ([0xe6, 0xe8, 0xe9, 0xe5], None),
        ([0x3c, 0x5a, 0xa5, 0xc3], None),
    ];
    let mut frames = Vec::new();
    for (i, (magic, _)) in forks.iter().enumerate() {
        let dialer = version_message(*magic, "/Satoshi:0.21.2/", 0);
        let listener = version_message(*magic, "/Fork:1.0/", 1234 + i as i32);
        frames.extend(peer_exchange(9000 + i as u16, &dialer, &listener));
    }
    // The same header on an unlisted magic with a checksum that does not
    // match: random bytes shaped like a version.
    let mut forged = version_message([0x3c, 0x5a, 0xa5, 0xc3], "/x/", 1);
    forged[20..24].copy_from_slice(&[1, 2, 3, 4]);
    frames.extend(peer_exchange(9100, &forged, &forged));
    let report = classify(&pcap(1, &frames));
    assert!(report.error.is_none(), "{:?}", report.error);
    let flows: Vec<&FlowReport> = report.flows_with_payload().collect();
    assert_eq!(flows.len(), 4);
    for (flow, (magic, chain)) in flows.iter().zip(forks) {
        assert_eq!(flow.protocol, Some("Bitcoin-family p2p"), "{flow:?}");
        let p2p = flow.details.p2p.as_ref().unwrap();
        let hex: String = magic.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(p2p.identifiers["magic"], hex);
        assert_eq!(p2p.identifiers.get("chain").map(String::as_str), chain);
        assert!(p2p.network.contains(&hex), "{}", p2p.network);
        assert_eq!(p2p.message.as_deref(), Some("version"));
    }
    assert_eq!(flows[3].protocol, None, "{:?}", flows[3]);
    let mut out = Vec::new();
    write_json(&report, &mut out).unwrap();
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8(out).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(first["p2p"]["magic"], "fbc0b6db");
    assert_eq!(first["p2p"]["chain"], "Litecoin mainnet");
    assert_eq!(first["p2p"]["confidence"], "decisive");
}
