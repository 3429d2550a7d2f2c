//! Criterion micro-benchmarks of the classifiers over flow samples. Run
//! with `cargo bench -p assay-classify --bench classifiers`; the correlator
//! has its own (`cargo bench -p assay --bench correlator`), and `cargo
//! xtask bench` reports end-to-end costs.

use std::hint::black_box;

use assay_classify::{
    Direction, dns,
    flow::{FlowTable, Segment, Transport},
    p2p, stratum, stratum_v2, tls,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const XMRIG_LOGIN: &[u8] = br#"{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A","pass":"x","agent":"XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0","rigid":"","algo":["cn/1","cn/2","cn/r","cn/fast","rx/0","rx/wow","argon2/chukwa","ghostrider"]}}
"#;
const JSON_RPC: &[u8] = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"getinfo\",\"params\":[]}\n";
const HTTP: &[u8] =
    b"GET /index.html HTTP/1.1\r\nHost: example.org\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n";
const TLS_HELLO: &[u8] = &[
    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
];

/// A first outbound TCP segment of flow `key`, as a kernel sample carries it.
fn sample(key: u64, payload: &[u8]) -> Segment<'_> {
    Segment {
        key,
        direction: Direction::Outbound,
        index: 0,
        timestamp_ns: key,
        transport: Transport::Tcp,
        payload,
        wire_len: payload.len() as u32,
        offset: 0,
        endpoints: None,
    }
}

fn classify(c: &mut Criterion) {
    let mut group = c.benchmark_group("stratum::scan");
    group.throughput(Throughput::Elements(1));
    for (name, bytes) in [
        ("xmrig-login", XMRIG_LOGIN),
        ("json-rpc-getinfo", JSON_RPC),
        ("http-request", HTTP),
        ("tls-client-hello", TLS_HELLO),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| stratum::scan(black_box(bytes), Direction::Outbound))
        });
    }
    group.finish();

    // The whole user-space path of one sample: flow lookup, reassembly,
    // classification. A new flow each time (a first sample) is the worst case.
    let mut group = c.benchmark_group("flow-sample");
    group.throughput(Throughput::Elements(1));
    for (name, bytes) in [("xmrig-login", XMRIG_LOGIN), ("http-request", HTTP)] {
        group.bench_function(name, |b| {
            let mut table = FlowTable::new(1 << 16, 4);
            let mut key = 0u64;
            b.iter(|| {
                key += 1;
                black_box(table.on_segment(&sample(key, bytes)))
            })
        });
    }
    group.finish();
}

// The new classifiers' inputs are the fuzz seeds: real-shaped openings built
// byte by byte from the specs (see fuzz/seeds/<target>/).
const CHROME_HELLO: &[u8] = include_bytes!("../../fuzz/seeds/tls_hello/chrome_like_client_hello");
const OPENSSL_HELLO: &[u8] =
    include_bytes!("../../fuzz/seeds/tls_hello/openssl_client_hello_no_alpn");
const SERVER_HELLO: &[u8] = include_bytes!("../../fuzz/seeds/tls_hello/server_hello_tls13");
const DNS_QUERY: &[u8] = include_bytes!("../../fuzz/seeds/dns_message/query_pool_a");
const DNS_RESPONSE: &[u8] = include_bytes!("../../fuzz/seeds/dns_message/response_cname_a_aaaa");
const BITCOIN_VERSION: &[u8] = include_bytes!("../../fuzz/seeds/p2p_opening/bitcoin_version");
const LEVIN_HANDSHAKE: &[u8] =
    include_bytes!("../../fuzz/seeds/p2p_opening/monero_levin_handshake");
const KASPA_GRPC: &[u8] = include_bytes!("../../fuzz/seeds/p2p_opening/kaspa_grpc_huffman_path");
const RLPX_AUTH: &[u8] = include_bytes!("../../fuzz/seeds/p2p_opening/rlpx_auth_shape");
const DISCV4_PING: &[u8] = include_bytes!("../../fuzz/seeds/p2p_opening/discv4_ping");
const SV2_SETUP: &[u8] = include_bytes!("../../fuzz/seeds/sv2_frame/setup_connection_mining");

fn classify_tls(c: &mut Criterion) {
    let mut group = c.benchmark_group("tls::parse_client_hello");
    group.throughput(Throughput::Elements(1));
    for (name, bytes) in [
        ("chrome-like-ja4", CHROME_HELLO),
        ("openssl-no-alpn-ja4", OPENSSL_HELLO),
        ("http-request", HTTP),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| tls::parse_client_hello(black_box(bytes)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("tls::parse_server_hello");
    group.throughput(Throughput::Elements(1));
    group.bench_function("tls13", |b| {
        b.iter(|| tls::parse_server_hello(black_box(SERVER_HELLO)))
    });
    group.finish();
}

fn classify_dns(c: &mut Criterion) {
    let mut group = c.benchmark_group("dns::parse");
    group.throughput(Throughput::Elements(1));
    for (name, bytes) in [
        ("query", DNS_QUERY),
        ("response-cname-a-aaaa", DNS_RESPONSE),
        ("http-request", HTTP),
    ] {
        group.bench_function(name, |b| b.iter(|| dns::parse(black_box(bytes))));
    }
    group.finish();

    let mut group = c.benchmark_group("dns::PoolDomains::matches");
    group.throughput(Throughput::Elements(1));
    let pools = dns::PoolDomains::builtin();
    for name in ["xmr-eu1.nanopool.org", "www.example.com"] {
        group.bench_function(name, |b| b.iter(|| pools.matches(black_box(name))));
    }
    group.finish();
}

fn classify_p2p(c: &mut Criterion) {
    let mut group = c.benchmark_group("p2p::identify");
    group.throughput(Throughput::Elements(1));
    for (name, bytes) in [
        ("bitcoin-version", BITCOIN_VERSION),
        ("monero-levin-handshake", LEVIN_HANDSHAKE),
        ("kaspa-grpc-huffman", KASPA_GRPC),
        ("rlpx-auth", RLPX_AUTH),
        ("http-request", HTTP),
        ("tls-client-hello", CHROME_HELLO),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| p2p::identify(black_box(bytes), bytes.len()))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("p2p::is_discv4_packet");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ping", |b| {
        b.iter(|| p2p::is_discv4_packet(black_box(DISCV4_PING)))
    });
    group.finish();
}

fn classify_stratum_v2(c: &mut Criterion) {
    let mut group = c.benchmark_group("stratum_v2::parse_setup_connection");
    group.throughput(Throughput::Elements(1));
    for (name, bytes) in [("mining", SV2_SETUP), ("http-request", HTTP)] {
        group.bench_function(name, |b| {
            b.iter(|| stratum_v2::parse_setup_connection(black_box(bytes)))
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    classify,
    classify_tls,
    classify_dns,
    classify_p2p,
    classify_stratum_v2,
    classify_tls_certificate,
    classify_cmdline,
    classify_work_loop
);
criterion_main!(benches);

/// The CA-signed RSA leaf (20 DNS names) and its CA, from the TLS tests.
const NODE_CERTIFICATE: &[u8] = include_bytes!("../src/testdata/node-signed.der");
const TEST_CA: &[u8] = include_bytes!("../src/testdata/test-ca.der");

/// A TLS 1.2 server's first flight in one record: ServerHello (no
/// extensions), Certificate (leaf and CA), ServerHelloDone.
fn tls12_flight() -> Vec<u8> {
    fn u24(len: usize) -> [u8; 3] {
        let b = (len as u32).to_be_bytes();
        [b[1], b[2], b[3]]
    }
    let mut server_hello = vec![0x03, 0x03];
    server_hello.extend_from_slice(&[0x33; 32]);
    server_hello.push(0); // empty session id
    server_hello.extend_from_slice(&[0xc0, 0x2f, 0x00]); // cipher, compression
    let mut list = Vec::new();
    for der in [NODE_CERTIFICATE, TEST_CA] {
        list.extend_from_slice(&u24(der.len()));
        list.extend_from_slice(der);
    }
    let mut flight = vec![0x02];
    flight.extend_from_slice(&u24(server_hello.len()));
    flight.extend_from_slice(&server_hello);
    flight.push(0x0b);
    flight.extend_from_slice(&u24(list.len() + 3));
    flight.extend_from_slice(&u24(list.len()));
    flight.extend_from_slice(&list);
    flight.extend_from_slice(&[0x0e, 0, 0, 0]);
    let mut record = vec![0x16, 0x03, 0x03];
    record.extend_from_slice(&(flight.len() as u16).to_be_bytes());
    record.extend_from_slice(&flight);
    record
}

fn classify_tls_certificate(c: &mut Criterion) {
    let flight = tls12_flight();
    let mut group = c.benchmark_group("tls::parse_server_hello");
    group.throughput(Throughput::Elements(1));
    group.bench_function("tls12-with-certificate", |b| {
        b.iter(|| tls::parse_server_hello(black_box(&flight)))
    });
    group.finish();
}

/// One judgement of the work-loop model on a full watched timeline (1024
/// segments: a share every ~5 s for ~20 minutes) and a 20-minute CPU ring:
/// the most one watched flow costs per judging tick.
fn classify_work_loop(c: &mut Criterion) {
    use assay_classify::{
        cadence::Beat,
        work_loop::{self, CpuSample},
    };
    const S: u64 = 1_000_000_000;
    let beat = |at_ns, direction, len| Beat {
        at_ns,
        direction,
        len,
    };
    let mut beats = Vec::new();
    let mut t = 0u64;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    while beats.len() < 1024 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        t += S + x % (8 * S);
        beats.push(beat(t, Direction::Outbound, 150));
        beats.push(beat(t + 40_000_000, Direction::Inbound, 60));
        beats.push(beat(t + 40_100_000, Direction::Outbound, 12));
        beats.push(beat(t + 80_000_000, Direction::Inbound, 420));
    }
    let cpu: Vec<CpuSample> = (0..1200u64)
        .map(|s| CpuSample {
            at_ns: t.saturating_sub(1200 * S) + s * S,
            seconds: 1.0,
            cores: 0.98,
        })
        .collect();
    let mut group = c.benchmark_group("work_loop::judge");
    group.throughput(Throughput::Elements(1));
    group.bench_function("1024-segments-1200-cpu-polls", |b| {
        b.iter(|| work_loop::judge(black_box(&beats), black_box(&cpu), 0))
    });
    group.finish();
}

fn classify_cmdline(c: &mut Criterion) {
    use assay_classify::cmdline;
    let argv = |line: &str| -> Vec<String> { line.split(' ').map(str::to_owned).collect() };
    let xmrig = argv(
        "./xmrig -o pool.supportxmr.com:443 -u 44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A -k --tls --donate-level 1",
    );
    let benign =
        argv("python3 train.py --config configs/resnet50.yaml --lr 0.1 -a adam --epochs 90");
    let mut group = c.benchmark_group("cmdline::argv_hints");
    group.throughput(Throughput::Elements(1));
    for (name, argv) in [("xmrig", &xmrig), ("python-train", &benign)] {
        group.bench_function(name, |b| b.iter(|| cmdline::argv_hints(black_box(argv))));
    }
    group.finish();
}
