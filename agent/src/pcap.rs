//! `assay pcap`: the agent's flow classifiers over a capture file (pcap or
//! pcapng), offline, for analysts and for testing against real captures.
//!
//! Packets are cut into flows and handed to the same [`FlowTable`] the live
//! agent feeds from the kernel, sampled the way the kernel samples:
//! - a flow is a TCP connection or a UDP 5-tuple, numbered from 1 in the
//!   order of its first packet. A SYN with a new initial sequence number on
//!   a known 5-tuple starts a new flow (port reuse);
//! - "outbound" is what the initiator sent: the side that sent the SYN (the
//!   receiver of a SYN-ACK when the SYN is not in the capture), else the
//!   side that sent the first packet. "Inbound" is what it received;
//! - the first `samples_per_direction` payload segments of each direction
//!   are classified (more while the table raises the limit for a stratum
//!   line still open, up to
//!   [`crate::flows::MAX_SAMPLES_PER_DIRECTION`]), each cut at
//!   [`SAMPLE_LEN`] bytes;
//! - TCP in sequence order, per direction: a retransmission of bytes
//!   already delivered is skipped (its new tail, if any, is kept); a
//!   segment beyond the next expected byte is dropped and its sample slot
//!   left empty, so the table sees a lost sample and stops following that
//!   direction, as it does when the kernel's ring buffer drops one.
//!
//! Link types: Ethernet (with VLAN tags), Linux cooked (SLL and SLL2, what
//! `-i any` gives), raw IPv4/IPv6 and BSD loopback (NULL, LOOP). IPv4
//! fragments after the first are skipped; IPv6 packets whose next header is
//! an extension header are skipped (no header walk). Every packet that is
//! skipped is counted by reason ([`Skip`]), never a panic.
//!
//! # JSON output
//!
//! One object per flow that carried payload, per line ([`write_json`]):
//! - `flow`: the flow number; `transport`: `tcp` or `udp`;
//! - `initiator`, `responder`: `{addr, packets, bytes, sampled,
//!   retransmissions, gaps}`: the side's `ip:port`, the packets and the
//!   payload bytes (as on the wire) it sent, its segments handed to the
//!   classifiers, its retransmissions skipped and its gaps;
//! - `handshake_seen`: the SYN (or SYN-ACK) was captured, so the initiator
//!   is known rather than guessed from the first packet;
//! - `first_seen`, `last_seen`: RFC 3339 capture timestamps;
//! - `protocol`: what the flow was recognised as (the last label wins, as
//!   in the agent's reports): `stratum-v1`, `stratum-v2`,
//!   `stratum-v2-noise`, `tls`, `dns`, a p2p network, `devp2p-discv4`; null
//!   when nothing was;
//! - present only when found:
//!   - `stratum`: `{variant, variant_name, methods, decisive, agent, login,
//!     worker, algorithms, messages}` (variant: the SIGNATURES.md id, e.g.
//!     `ST5`; methods: distinct, both directions, first seen first);
//!   - `tls`: `{sni, alpn, ja4, server_hello, selected_alpn, certificate,
//!     certificate_cut}` (certificate: the leaf a TLS 1.2 server sent in
//!     clear, `{subject_cn, dns_names, issuer_cn, self_signed, not_before,
//!     not_after, sha256, chain_len}`, null when none was seen whole;
//!     certificate_cut: the sample ended before it or its chain did);
//!   - `dns`: `{names, addresses, queries, responses}` (question names; A
//!     and AAAA answers);
//!   - `p2p`: `{network, message, confidence}`;
//!   - `stratum_v2`: `{protocol, endpoint, vendor, device, version,
//!     noise_client}` (noise_client: `initiator` or `responder`);
//!   - `devp2p_discv4`: true;
//!   - `stratum_rejections`: stratum-looking lines that did not parse.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    io::{self, Read, Write},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::Path,
    time::{Duration, SystemTime},
};

use anyhow::Context as _;
use assay_common::event::SAMPLE_LEN;
use pcap_parser::{
    Block, Linktype, PcapBlockOwned, PcapError as ParseError,
    traits::{PcapNGPacketBlock as _, PcapReaderIterator},
};
use serde::Serialize;

use crate::{
    classify::{Direction, dns, p2p, stratum, stratum_v2, tls},
    flows::{CADENCE_AFTER_NS, FlowTable, Observation, Segment, Transport},
};

/// Payload segments classified per direction of a new flow: the agent's
/// `--sample-segments` default.
pub const DEFAULT_SAMPLES_PER_DIRECTION: u32 = 4;
/// Flows the classifier table holds at once, as in the agent.
const TABLE_CAPACITY: usize = 65_536;
/// Flows idle this long (capture time) leave the classifier table, as in
/// the agent; their report is kept.
const FLOW_IDLE: Duration = Duration::from_secs(600);
/// Packets between two expiry passes over the classifier table.
const EXPIRE_EVERY: u64 = 4096;
/// Initial read buffer: holds any packet of a 64 KiB snapshot length; it
/// grows for bigger records (offloaded segments captured before the NIC
/// split them).
const READ_BUFFER: usize = 1 << 17;
/// Largest block (packet record) accepted: a longer one means a corrupt
/// length field, not a packet.
const MAX_BLOCK: usize = 64 << 20;
/// Distinct values kept per list in a flow's details (methods, DNS names).
const MAX_LISTED: usize = 64;

/// How a capture is sampled.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Payload segments classified per direction of a new flow.
    pub samples_per_direction: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            samples_per_direction: DEFAULT_SAMPLES_PER_DIRECTION,
        }
    }
}

/// Why reading a capture stopped before its end. Flows read before that
/// point are still in the [`Report`].
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    #[error("the file is empty")]
    Empty,
    #[error("not a pcap or pcapng file (no capture header recognised)")]
    NotACapture,
    #[error("read failed at byte offset {offset}: {source}")]
    Io { offset: u64, source: io::Error },
    #[error(
        "cut short in the record at byte offset {offset} (after packet {packets}): the capture was truncated"
    )]
    Truncated { offset: u64, packets: u64 },
    #[error("corrupt record at byte offset {offset} (after packet {packets}): {reason}")]
    Corrupt {
        offset: u64,
        packets: u64,
        reason: String,
    },
}

/// Why a packet was not followed. Counted in [`Report::skipped`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Skip {
    /// The capture's link type is not one this reader decodes.
    LinkType(i32),
    /// A pcapng packet on an interface its section did not describe.
    UnknownInterface,
    /// Shorter than its link-layer header.
    MalformedLink,
    /// ARP, LLDP and every other non-IP frame.
    NotIp,
    MalformedIp,
    /// An IPv4 fragment after the first: it has no transport header.
    IpFragment,
    /// An IPv6 packet whose next header is an extension header.
    Ipv6Extension,
    /// ICMP and every other transport but TCP and UDP.
    OtherTransport,
    MalformedTcp,
    MalformedUdp,
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LinkType(linktype) => write!(f, "link type {linktype} not supported"),
            Self::UnknownInterface => f.write_str("undeclared pcapng interface"),
            Self::MalformedLink => f.write_str("malformed link header"),
            Self::NotIp => f.write_str("not IP"),
            Self::MalformedIp => f.write_str("malformed IP header"),
            Self::IpFragment => f.write_str("IPv4 fragment"),
            Self::Ipv6Extension => f.write_str("IPv6 extension header"),
            Self::OtherTransport => f.write_str("not TCP or UDP"),
            Self::MalformedTcp => f.write_str("malformed TCP header"),
            Self::MalformedUdp => f.write_str("malformed UDP header"),
        }
    }
}

/// What a capture held.
#[derive(Debug, Default)]
pub struct Report {
    /// Packet records read.
    pub packets: u64,
    /// Packets not followed, by reason.
    pub skipped: BTreeMap<Skip, u64>,
    /// Every flow, in order of its first packet.
    pub flows: Vec<FlowReport>,
    /// Why the file could not be read to its end.
    pub error: Option<PcapError>,
}

impl Report {
    /// Flows that carried payload: the ones printed.
    pub fn flows_with_payload(&self) -> impl Iterator<Item = &FlowReport> {
        self.flows.iter().filter(|f| f.has_payload())
    }

    /// One line: packets read and skipped by reason, flows, recognised.
    pub fn summary(&self) -> String {
        let skipped: u64 = self.skipped.values().sum();
        let mut line = format!("{} packets read, {skipped} skipped", self.packets);
        if skipped > 0 {
            let reasons: Vec<String> = self
                .skipped
                .iter()
                .map(|(reason, n)| format!("{n} {reason}"))
                .collect();
            line.push_str(&format!(" ({})", reasons.join(", ")));
        }
        let side_sum = |f: fn(&Traffic) -> u64| -> u64 {
            self.flows
                .iter()
                .flat_map(|flow| [&flow.initiator_sent, &flow.responder_sent])
                .map(f)
                .sum()
        };
        line.push_str(&format!(
            "; {} flows, {} with payload, {} recognised; {} retransmissions skipped, {} gaps",
            self.flows.len(),
            self.flows_with_payload().count(),
            self.flows.iter().filter(|f| f.protocol.is_some()).count(),
            side_sum(|t| t.retransmissions),
            side_sum(|t| t.gaps),
        ));
        line
    }
}

/// What one side of a flow sent.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Traffic {
    pub packets: u64,
    /// Payload bytes as on the wire, retransmissions included.
    pub bytes: u64,
    /// Segments handed to the classifiers.
    pub sampled: u32,
    /// TCP segments skipped as retransmissions of bytes already delivered.
    pub retransmissions: u64,
    /// TCP segments beyond the next expected byte (out of order, or bytes
    /// missing from the capture): dropped.
    pub gaps: u64,
}

/// One flow of the capture.
#[derive(Debug, Clone)]
pub struct FlowReport {
    pub number: u64,
    pub transport: Transport,
    pub initiator: SocketAddr,
    pub responder: SocketAddr,
    /// The SYN or SYN-ACK was captured: the initiator is known, not
    /// guessed from the first packet.
    pub handshake_seen: bool,
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    pub initiator_sent: Traffic,
    pub responder_sent: Traffic,
    /// The flow table's label ([`Observation::protocol`]).
    pub protocol: Option<&'static str>,
    pub details: Details,
    /// Stratum-looking lines that did not parse.
    pub stratum_rejections: u64,
}

impl FlowReport {
    pub fn has_payload(&self) -> bool {
        self.initiator_sent.bytes + self.responder_sent.bytes > 0
    }

    fn sent_mut(&mut self, direction: Direction) -> &mut Traffic {
        match direction {
            Direction::Outbound => &mut self.initiator_sent,
            Direction::Inbound => &mut self.responder_sent,
        }
    }
}

/// What the classifiers said about a flow, by protocol.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Details {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stratum: Option<StratumDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p2p: Option<P2pDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stratum_v2: Option<Sv2Details>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub devp2p_discv4: bool,
    /// The server's push beat, where the live agent would have measured it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_cadence: Option<crate::classify::cadence::PushCadence>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct StratumDetails {
    /// SIGNATURES.md id (`ST5`) of the first message that had a variant.
    pub variant: Option<&'static str>,
    pub variant_name: Option<&'static str>,
    /// Distinct methods, both directions, in the order first seen.
    pub methods: Vec<String>,
    /// A message alone proved a mining protocol.
    pub decisive: bool,
    pub agent: Option<String>,
    pub login: Option<String>,
    pub worker: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub algorithms: Vec<String>,
    pub messages: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct TlsDetails {
    pub sni: Option<String>,
    pub alpn: Vec<String>,
    /// JA4 of the ClientHello.
    pub ja4: Option<String>,
    /// A ServerHello was seen.
    pub server_hello: bool,
    /// The protocol the server picked from `alpn`.
    pub selected_alpn: Option<String>,
    /// The server's leaf certificate, when sent in clear (TLS 1.2).
    pub certificate: Option<tls::CertificateFacts>,
    /// The sample ended inside the certificate message.
    pub certificate_cut: bool,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct DnsDetails {
    /// Distinct question names.
    pub names: Vec<String>,
    /// Distinct A and AAAA answers.
    pub addresses: Vec<String>,
    pub queries: u64,
    pub responses: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct P2pDetails {
    pub network: &'static str,
    pub message: Option<String>,
    pub confidence: p2p::Confidence,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Sv2Details {
    pub protocol: Option<&'static str>,
    /// `host:port` the device asked for in SetupConnection.
    pub endpoint: Option<String>,
    pub vendor: Option<String>,
    pub device: Option<String>,
    /// Version the pool accepted in SetupConnection.Success.
    pub version: Option<u16>,
    /// Which side opened the Noise handshake: `initiator` or `responder`.
    pub noise_client: Option<&'static str>,
}

/// Reads a capture and classifies its flows. Never fails: a file that
/// cannot be read to its end sets [`Report::error`] and keeps what was
/// read before.
pub fn classify_capture(input: impl Read + Send, options: &Options) -> Report {
    let mut input = KeepIoError {
        inner: input,
        error: None,
    };
    let mut capture = Capture::new(options);
    let result = read_blocks(&mut input, &mut capture);
    let mut report = capture.finish();
    report.error = match (result, input.error) {
        (Ok(()), _) => None,
        (Err(Failure::Read { offset }), Some(source)) => Some(PcapError::Io { offset, source }),
        (Err(Failure::Read { offset }), None) => Some(PcapError::Io {
            offset,
            source: io::Error::other("read error"),
        }),
        (Err(Failure::Pcap(error)), _) => Some(error),
    };
    report
}

/// How to print flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

/// `assay pcap FILE`: classifies the file and prints its flows on stdout,
/// then the summary (on stdout after a table, on stderr after JSON lines).
/// An error names the file, and comes after whatever was read before it.
pub fn run(path: &Path, format: Format, options: &Options) -> anyhow::Result<()> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open capture {}", path.display()))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        anyhow::bail!("{} is a directory, not a capture file", path.display());
    }
    let report = classify_capture(file, options);
    match print(&report, format) {
        // `assay pcap x | head`: the reader has all it wants.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        other => other.context("writing the report")?,
    }
    match report.error {
        Some(error) => {
            Err(anyhow::Error::new(error).context(format!("reading capture {}", path.display())))
        }
        None => Ok(()),
    }
}

fn print(report: &Report, format: Format) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match format {
        Format::Table => {
            write_table(report, &mut out)?;
            writeln!(out, "{}", report.summary())?;
        }
        Format::Json => {
            write_json(report, &mut out)?;
            writeln!(io::stderr(), "{}", report.summary())?;
        }
    }
    out.flush()
}

/// One JSON object per flow with payload, per line (fields: module doc).
pub fn write_json(report: &Report, out: &mut impl Write) -> io::Result<()> {
    for flow in report.flows_with_payload() {
        let line = JsonFlow {
            flow: flow.number,
            transport: flow.transport,
            initiator: JsonSide {
                addr: flow.initiator,
                traffic: &flow.initiator_sent,
            },
            responder: JsonSide {
                addr: flow.responder,
                traffic: &flow.responder_sent,
            },
            handshake_seen: flow.handshake_seen,
            first_seen: rfc3339(flow.first_seen_ns),
            last_seen: rfc3339(flow.last_seen_ns),
            protocol: flow.protocol,
            details: &flow.details,
            stratum_rejections: flow.stratum_rejections,
        };
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// A table, one line per flow with payload.
pub fn write_table(report: &Report, out: &mut impl Write) -> io::Result<()> {
    let header = [
        "FLOW",
        "L4",
        "INITIATOR",
        "",
        "RESPONDER",
        "PKTS>",
        "BYTES>",
        "PKTS<",
        "BYTES<",
        "PROTOCOL",
        "DETAIL",
    ];
    let rows: Vec<[String; 11]> = report
        .flows_with_payload()
        .map(|flow| {
            [
                flow.number.to_string(),
                match flow.transport {
                    Transport::Tcp => "tcp".into(),
                    Transport::Udp => "udp".into(),
                },
                flow.initiator.to_string(),
                "->".into(),
                flow.responder.to_string(),
                flow.initiator_sent.packets.to_string(),
                flow.initiator_sent.bytes.to_string(),
                flow.responder_sent.packets.to_string(),
                flow.responder_sent.bytes.to_string(),
                flow.protocol.unwrap_or("unknown").into(),
                detail_line(&flow.details),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut line = |cells: &[&str]| -> io::Result<()> {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(&header)?;
    for row in &rows {
        line(&row.each_ref().map(String::as_str))?;
    }
    Ok(())
}

/// The short detail column: what identified the flow.
fn detail_line(details: &Details) -> String {
    let mut parts = Vec::new();
    if let Some(s) = &details.stratum {
        let mut part = s.variant.unwrap_or("stratum").to_owned();
        if !s.methods.is_empty() {
            part.push_str(&format!(" {}", s.methods.join(",")));
        }
        for (name, value) in [
            ("agent", &s.agent),
            ("login", &s.login),
            ("worker", &s.worker),
        ] {
            if let Some(value) = value {
                part.push_str(&format!(" {name}={}", shorten(value, 40)));
            }
        }
        parts.push(part);
    }
    if let Some(t) = &details.tls {
        let mut part = Vec::new();
        if let Some(sni) = &t.sni {
            part.push(format!("sni={sni}"));
        }
        if !t.alpn.is_empty() {
            part.push(format!("alpn={}", t.alpn.join(",")));
        }
        if let Some(ja4) = &t.ja4 {
            part.push(format!("ja4={ja4}"));
        }
        if let Some(c) = &t.certificate {
            let name = c.dns_names.first().or(c.subject_cn.as_ref());
            let mut cert = format!("cert={}", shorten(name.map_or("-", String::as_str), 40));
            if c.self_signed {
                cert.push_str(" (self-signed)");
            }
            part.push(cert);
        }
        if part.is_empty() && t.server_hello {
            part.push("server hello".into());
        }
        parts.push(part.join(" "));
    }
    if let Some(d) = &details.dns {
        let mut part = d.names.join(",");
        if !d.addresses.is_empty() {
            part.push_str(&format!(" -> {}", d.addresses.join(",")));
        }
        parts.push(part);
    }
    if let Some(p) = &details.p2p {
        parts.push(match &p.message {
            Some(message) => format!("{} {message}", p.network),
            None => p.network.to_owned(),
        });
    }
    if let Some(s) = &details.stratum_v2 {
        let mut part = Vec::new();
        if let Some(protocol) = s.protocol {
            part.push(protocol.to_owned());
        }
        for (name, value) in [
            ("endpoint", &s.endpoint),
            ("vendor", &s.vendor),
            ("device", &s.device),
        ] {
            if let Some(value) = value {
                part.push(format!("{name}={}", shorten(value, 40)));
            }
        }
        if let Some(version) = s.version {
            part.push(format!("version={version}"));
        }
        if let Some(client) = s.noise_client {
            part.push(format!("noise client={client}"));
        }
        parts.push(part.join(" "));
    }
    if details.devp2p_discv4 {
        parts.push("discovery v4".into());
    }
    parts.join("; ")
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(max - 1).collect();
        short.push('…');
        short
    }
}

fn rfc3339(ns: u64) -> String {
    humantime::format_rfc3339_micros(SystemTime::UNIX_EPOCH + Duration::from_nanos(ns)).to_string()
}

#[derive(Serialize)]
struct JsonFlow<'a> {
    flow: u64,
    transport: Transport,
    initiator: JsonSide<'a>,
    responder: JsonSide<'a>,
    handshake_seen: bool,
    first_seen: String,
    last_seen: String,
    protocol: Option<&'static str>,
    #[serde(flatten)]
    details: &'a Details,
    #[serde(skip_serializing_if = "is_zero")]
    stratum_rejections: u64,
}

#[derive(Serialize)]
struct JsonSide<'a> {
    addr: SocketAddr,
    #[serde(flatten)]
    traffic: &'a Traffic,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

// ---- Reading the file -------------------------------------------------

/// Keeps the I/O error that pcap-parser reduces to `ReadError`.
struct KeepIoError<R> {
    inner: R,
    error: Option<io::Error>,
}

impl<R: Read> Read for KeepIoError<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let kind = e.kind();
                    self.error = Some(e);
                    return Err(kind.into());
                }
                ok => return ok,
            }
        }
    }
}

enum Failure {
    Read { offset: u64 },
    Pcap(PcapError),
}

fn read_blocks(input: &mut (impl Read + Send), capture: &mut Capture) -> Result<(), Failure> {
    let mut reader = match pcap_parser::create_reader(READ_BUFFER, input) {
        Ok(reader) => reader,
        Err(ParseError::Eof) => return Err(Failure::Pcap(PcapError::Empty)),
        Err(ParseError::ReadError) => return Err(Failure::Read { offset: 0 }),
        // Shorter than a file header, or not one.
        Err(_) => return Err(Failure::Pcap(PcapError::NotACapture)),
    };
    let mut capacity = READ_BUFFER;
    loop {
        let offset = reader.consumed() as u64;
        let packets = capture.packets;
        let corrupt = |reason: String| {
            Err(Failure::Pcap(PcapError::Corrupt {
                offset,
                packets,
                reason,
            }))
        };
        let step = match reader.next() {
            Ok((length, block)) => {
                capture.on_block(block);
                Step::Consume(length)
            }
            Err(ParseError::Eof) => return Ok(()),
            Err(ParseError::Incomplete(_)) => Step::Refill,
            Err(ParseError::BufferTooSmall) => Step::Grow,
            Err(ParseError::UnexpectedEof) => {
                return Err(Failure::Pcap(PcapError::Truncated { offset, packets }));
            }
            Err(ParseError::ReadError) => return Err(Failure::Read { offset }),
            Err(ParseError::HeaderNotRecognized) => return corrupt("not a block header".into()),
            Err(ParseError::NomError(_, kind) | ParseError::OwnedNomError(_, kind)) => {
                return corrupt(format!("unparseable block ({kind:?})"));
            }
        };
        match step {
            Step::Consume(length) => reader.consume(length),
            Step::Refill => {
                let before = reader.data().len();
                reader.refill().map_err(|_| Failure::Read { offset })?;
                // A full buffer refills nothing: the record is bigger.
                if reader.data().len() == before && !reader.reader_exhausted() {
                    capacity = grow(&mut *reader, capacity, offset, packets)?;
                }
            }
            Step::Grow => capacity = grow(&mut *reader, capacity, offset, packets)?,
        }
    }
}

enum Step {
    Consume(usize),
    Refill,
    Grow,
}

/// Doubles the read buffer for a record that does not fit, up to
/// [`MAX_BLOCK`]; returns the new capacity.
fn grow(
    reader: &mut dyn PcapReaderIterator,
    capacity: usize,
    offset: u64,
    packets: u64,
) -> Result<usize, Failure> {
    if capacity >= MAX_BLOCK {
        return Err(Failure::Pcap(PcapError::Corrupt {
            offset,
            packets,
            reason: format!(
                "record longer than {} MiB: its length field is corrupt",
                MAX_BLOCK >> 20
            ),
        }));
    }
    let capacity = capacity * 2;
    reader.grow(capacity);
    reader.refill().map_err(|_| Failure::Read { offset })?;
    Ok(capacity)
}

/// How to read one interface's packets.
#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: Linktype,
    /// Timestamp units per second.
    resolution: u64,
    /// Seconds added to every timestamp.
    offset_s: i64,
}

/// The capture being read: interfaces, flows, counters.
struct Capture {
    options: Options,
    table: FlowTable,
    /// Legacy pcap: the file's link type and timestamp resolution; pcapng:
    /// the current section's interfaces.
    interfaces: Vec<Interface>,
    /// Current flow number of each 5-tuple.
    by_tuple: HashMap<Tuple, u64>,
    flows: Vec<FlowState>,
    packets: u64,
    skipped: BTreeMap<Skip, u64>,
    last_ns: u64,
    /// Capture time of the next check for opaque flows whose cadence the
    /// agent would ask to observe (once a second, as the agent's tick).
    next_cadence_check_ns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Tuple {
    protocol: u8,
    low: SocketAddr,
    high: SocketAddr,
}

impl Tuple {
    fn new(transport: Transport, a: SocketAddr, b: SocketAddr) -> Self {
        Self {
            protocol: match transport {
                Transport::Tcp => 6,
                Transport::Udp => 17,
            },
            low: a.min(b),
            high: a.max(b),
        }
    }
}

/// A flow being read.
struct FlowState {
    report: FlowReport,
    /// The initiator's initial sequence number, when its SYN was seen.
    isn: Option<u32>,
    /// Per direction: the next TCP sequence number expected.
    next_seq: [Option<u32>; 2],
    /// Per direction: the next sample slot.
    next_index: [u32; 2],
    /// Samples per direction the table asks for.
    sample_limit: u32,
}

/// A TCP or UDP packet, decoded.
#[derive(Debug, Clone, Copy)]
struct Packet<'a> {
    transport: Transport,
    src: SocketAddr,
    dst: SocketAddr,
    tcp: Option<TcpFlags>,
    /// Captured payload.
    payload: &'a [u8],
    /// Payload length on the wire.
    wire_len: u32,
}

#[derive(Debug, Clone, Copy)]
struct TcpFlags {
    seq: u32,
    syn: bool,
    ack: bool,
    rst: bool,
}

fn side(direction: Direction) -> usize {
    match direction {
        Direction::Outbound => 0,
        Direction::Inbound => 1,
    }
}

impl Capture {
    fn new(options: &Options) -> Self {
        let samples = options.samples_per_direction.max(1);
        Self {
            options: Options {
                samples_per_direction: samples,
            },
            table: FlowTable::new(TABLE_CAPACITY, samples),
            interfaces: Vec::new(),
            by_tuple: HashMap::new(),
            flows: Vec::new(),
            packets: 0,
            skipped: BTreeMap::new(),
            last_ns: 0,
            next_cadence_check_ns: 0,
        }
    }

    fn finish(self) -> Report {
        Report {
            packets: self.packets,
            skipped: self.skipped,
            flows: self.flows.into_iter().map(|f| f.report).collect(),
            error: None,
        }
    }

    fn skip(&mut self, reason: Skip) {
        *self.skipped.entry(reason).or_default() += 1;
    }

    fn on_block(&mut self, block: PcapBlockOwned<'_>) {
        match block {
            PcapBlockOwned::LegacyHeader(header) => {
                self.interfaces = vec![Interface {
                    linktype: header.network,
                    resolution: if header.is_nanosecond_precision() {
                        1_000_000_000
                    } else {
                        1_000_000
                    },
                    offset_s: 0,
                }];
            }
            PcapBlockOwned::Legacy(record) => {
                let units = u64::from(record.ts_sec)
                    .saturating_mul(self.interface_resolution(0))
                    .saturating_add(u64::from(record.ts_usec));
                self.on_frame(0, units, record.data, record.origlen);
            }
            PcapBlockOwned::NG(Block::SectionHeader(_)) => self.interfaces.clear(),
            PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                self.interfaces.push(Interface {
                    linktype: idb.linktype,
                    resolution: idb.ts_resolution().unwrap_or(1_000_000).max(1),
                    offset_s: idb.ts_offset(),
                });
            }
            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                self.on_frame(epb.if_id as usize, units, epb.packet_data(), epb.origlen);
            }
            PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                // No timestamp: the previous packet's.
                let interface = self.interfaces.first().copied();
                let units = interface.map_or(0, |i| {
                    u128::from(self.last_ns) * u128::from(i.resolution) / 1_000_000_000
                });
                let units = u64::try_from(units).unwrap_or(u64::MAX);
                self.on_frame(0, units, spb.packet_data(), spb.origlen);
            }
            PcapBlockOwned::NG(_) => {}
        }
    }

    fn interface_resolution(&self, interface: usize) -> u64 {
        self.interfaces
            .get(interface)
            .map_or(1_000_000, |i| i.resolution)
    }

    fn on_frame(&mut self, interface: usize, units: u64, frame: &[u8], orig_len: u32) {
        self.packets += 1;
        let Some(&Interface {
            linktype,
            resolution,
            offset_s,
        }) = self.interfaces.get(interface)
        else {
            self.skip(Skip::UnknownInterface);
            return;
        };
        let seconds = i128::from(units / resolution) + i128::from(offset_s);
        let fraction = u128::from(units % resolution) * 1_000_000_000 / u128::from(resolution);
        let ns = seconds * 1_000_000_000 + fraction as i128;
        let ns = u64::try_from(ns.max(0)).unwrap_or(u64::MAX);
        self.last_ns = ns;
        let missing = (orig_len as usize).saturating_sub(frame.len());
        match decode(linktype, frame, missing) {
            Ok(packet) => self.on_packet(ns, &packet),
            Err(reason) => self.skip(reason),
        }
        if self.packets.is_multiple_of(EXPIRE_EVERY) {
            self.table.expire(ns, FLOW_IDLE.as_nanos() as u64);
        }
    }

    /// The flow a packet belongs to, created when new.
    fn flow_for(&mut self, ns: u64, packet: &Packet<'_>) -> usize {
        let tuple = Tuple::new(packet.transport, packet.src, packet.dst);
        let opening = packet.tcp.filter(|t| t.syn && !t.ack);
        if let Some(&number) = self.by_tuple.get(&tuple) {
            let index = (number - 1) as usize;
            let reused = opening.is_some_and(|t| self.flows[index].isn != Some(t.seq));
            if !reused {
                return index;
            }
        }
        let number = self.flows.len() as u64 + 1;
        let syn_ack = packet.tcp.is_some_and(|t| t.syn && t.ack);
        let (initiator, responder) = if syn_ack {
            (packet.dst, packet.src)
        } else {
            (packet.src, packet.dst)
        };
        self.by_tuple.insert(tuple, number);
        self.flows.push(FlowState {
            report: FlowReport {
                number,
                transport: packet.transport,
                initiator,
                responder,
                handshake_seen: opening.is_some() || syn_ack,
                first_seen_ns: ns,
                last_seen_ns: ns,
                initiator_sent: Traffic::default(),
                responder_sent: Traffic::default(),
                protocol: None,
                details: Details::default(),
                stratum_rejections: 0,
            },
            isn: opening.map(|t| t.seq),
            next_seq: [None; 2],
            next_index: [0; 2],
            sample_limit: self.options.samples_per_direction,
        });
        self.table.on_open(number, ns);
        self.flows.len() - 1
    }

    fn on_packet(&mut self, ns: u64, packet: &Packet<'_>) {
        if ns >= self.next_cadence_check_ns {
            self.next_cadence_check_ns = ns.saturating_add(1_000_000_000);
            for (key, limit) in self.table.request_cadence(ns, CADENCE_AFTER_NS, usize::MAX) {
                let index = key.checked_sub(1).and_then(|i| usize::try_from(i).ok());
                if let Some(flow) = index.and_then(|i| self.flows.get_mut(i)) {
                    flow.sample_limit = limit;
                }
            }
        }
        let index = self.flow_for(ns, packet);
        let flow = &mut self.flows[index];
        let direction = if packet.src == flow.report.initiator {
            Direction::Outbound
        } else {
            Direction::Inbound
        };
        let s = side(direction);
        flow.report.last_seen_ns = ns;
        let sent = flow.report.sent_mut(direction);
        sent.packets += 1;
        sent.bytes += u64::from(packet.wire_len);

        let mut payload = packet.payload;
        let mut wire_len = packet.wire_len;
        if let Some(tcp) = packet.tcp {
            // A retransmitted SYN leaves the sequence as it is.
            if tcp.syn && flow.next_seq[s].is_none() {
                flow.next_seq[s] = Some(tcp.seq.wrapping_add(1));
            }
            // What a reset carries is never delivered to the socket.
            if wire_len == 0 || tcp.rst {
                return;
            }
            // Data on a SYN (TCP Fast Open) starts after the SYN's number.
            let start = tcp.seq.wrapping_add(u32::from(tcp.syn));
            match flow.next_seq[s] {
                None => {}
                Some(next) => {
                    let ahead = start.wrapping_sub(next) as i32;
                    if ahead > 0 {
                        // Bytes in between are missing: leave the sample
                        // slot empty, as a lost sample does.
                        flow.report.sent_mut(direction).gaps += 1;
                        flow.next_index[s] = flow.next_index[s].saturating_add(1);
                        flow.next_seq[s] = Some(start.wrapping_add(wire_len));
                        return;
                    }
                    let seen = ahead.unsigned_abs();
                    if seen >= wire_len {
                        flow.report.sent_mut(direction).retransmissions += 1;
                        return;
                    }
                    // Partly a retransmission: keep the new tail.
                    payload = payload.get(seen as usize..).unwrap_or_default();
                    wire_len -= seen;
                }
            }
            flow.next_seq[s] = Some(start.wrapping_add(wire_len));
        } else if wire_len == 0 {
            return;
        }

        let slot = flow.next_index[s];
        if slot >= flow.sample_limit {
            return;
        }
        flow.next_index[s] += 1;
        flow.report.sent_mut(direction).sampled += 1;
        let key = flow.report.number;
        let outcome = self.table.on_segment(&Segment {
            key,
            direction,
            index: u16::try_from(slot).unwrap_or(u16::MAX),
            timestamp_ns: ns,
            transport: packet.transport,
            payload: &payload[..payload.len().min(SAMPLE_LEN)],
            wire_len,
            endpoints: Some((packet.src, packet.dst)),
        });
        if let Some(limit) = outcome.raised_limit {
            flow.sample_limit = limit;
        }
        flow.report.stratum_rejections += outcome.rejections.len() as u64;
        for observed in &outcome.observations {
            record(&mut flow.report.details, &observed.observation);
        }
        if let Some(protocol) = self.table.get(key).and_then(|f| f.protocol) {
            flow.report.protocol = Some(protocol);
        }
    }
}

fn push_distinct(list: &mut Vec<String>, value: &str) {
    if list.len() < MAX_LISTED && !list.iter().any(|v| v == value) {
        list.push(value.to_owned());
    }
}

/// Adds what an observation says to a flow's details.
fn record(details: &mut Details, observation: &Observation) {
    match observation {
        Observation::Stratum(message) => {
            let s = details.stratum.get_or_insert_with(Default::default);
            s.messages += 1;
            if s.variant.is_none() {
                s.variant = message.variant.map(stratum::Variant::id);
                s.variant_name = message.variant.map(stratum::Variant::describe);
            }
            push_distinct(&mut s.methods, &message.method);
            s.decisive |= message.decisive;
            for (field, value) in [
                (&mut s.agent, &message.agent),
                (&mut s.login, &message.login),
                (&mut s.worker, &message.worker),
            ] {
                if field.is_none() {
                    field.clone_from(value);
                }
            }
            for algorithm in &message.algorithms {
                push_distinct(&mut s.algorithms, algorithm);
            }
        }
        Observation::StratumV2Setup(setup) => {
            let s = details.stratum_v2.get_or_insert_with(Default::default);
            s.protocol = Some(stratum_v2::protocol_name(setup.protocol));
            s.endpoint = Some(format!("{}:{}", setup.endpoint_host, setup.endpoint_port));
            s.vendor = Some(setup.vendor.clone()).filter(|v| !v.is_empty());
            s.device = Some(setup.device_id.clone()).filter(|v| !v.is_empty());
        }
        Observation::StratumV2SetupSuccess { version } => {
            details
                .stratum_v2
                .get_or_insert_with(Default::default)
                .version = Some(*version);
        }
        Observation::StratumV2Noise { client } => {
            details
                .stratum_v2
                .get_or_insert_with(Default::default)
                .noise_client = Some(match client {
                Direction::Outbound => "initiator",
                Direction::Inbound => "responder",
            });
        }
        Observation::TlsClientHello(hello) => {
            let t = details.tls.get_or_insert_with(Default::default);
            t.sni.clone_from(&hello.sni);
            t.alpn.clone_from(&hello.alpn);
            t.ja4 = Some(hello.ja4.clone());
        }
        Observation::TlsServerHello(hello) => {
            let t = details.tls.get_or_insert_with(Default::default);
            t.server_hello = true;
            t.selected_alpn.clone_from(&hello.alpn);
            t.certificate.clone_from(&hello.certificate);
            t.certificate_cut = hello.certificate_cut;
        }
        Observation::Dns(message) => {
            let d = details.dns.get_or_insert_with(Default::default);
            if message.is_response {
                d.responses += 1;
            } else {
                d.queries += 1;
            }
            for question in &message.questions {
                push_distinct(&mut d.names, &question.name);
            }
            for answer in &message.answers {
                match &answer.data {
                    dns::RecordData::A(a) => push_distinct(&mut d.addresses, &a.to_string()),
                    dns::RecordData::Aaaa(a) => push_distinct(&mut d.addresses, &a.to_string()),
                    _ => {}
                }
            }
        }
        Observation::P2p(opening) => {
            details.p2p.get_or_insert_with(|| P2pDetails {
                network: opening.network.describe(),
                message: opening.message.clone(),
                confidence: opening.confidence,
            });
        }
        Observation::Discv4 => details.devp2p_discv4 = true,
        Observation::JobCadence(cadence) => details.job_cadence = Some(cadence.clone()),
    }
}

// ---- Decoding packets ---------------------------------------------------

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: [u16; 3] = [0x8100, 0x88a8, 0x9100];

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IpVersion {
    V4,
    V6,
    /// Raw IP: the version nibble says.
    Either,
}

/// Decodes a link-layer frame down to its TCP or UDP payload. `missing`:
/// bytes of the frame on the wire that the capture did not keep.
fn decode(linktype: Linktype, frame: &[u8], missing: usize) -> Result<Packet<'_>, Skip> {
    let (version, ip) = network_layer(linktype, frame)?;
    let nibble = ip.first().map(|b| b >> 4);
    match (version, nibble) {
        (IpVersion::V4 | IpVersion::Either, Some(4)) => ipv4(ip, missing),
        (IpVersion::V6 | IpVersion::Either, Some(6)) => ipv6(ip, missing),
        (IpVersion::Either, Some(_)) => Err(Skip::NotIp),
        _ => Err(Skip::MalformedIp),
    }
}

/// The network-layer bytes of a frame and the IP version its link header
/// announces.
fn network_layer(linktype: Linktype, frame: &[u8]) -> Result<(IpVersion, &[u8]), Skip> {
    match linktype {
        Linktype::ETHERNET => {
            let mut at = 12;
            let mut ethertype = be16(frame, at).ok_or(Skip::MalformedLink)?;
            // Up to two VLAN tags (802.1Q, QinQ).
            for _ in 0..2 {
                if !ETHERTYPE_VLAN.contains(&ethertype) {
                    break;
                }
                at += 4;
                ethertype = be16(frame, at).ok_or(Skip::MalformedLink)?;
            }
            by_ethertype(ethertype, &frame[at + 2..])
        }
        Linktype::LINUX_SLL => {
            let ethertype = be16(frame, 14).ok_or(Skip::MalformedLink)?;
            by_ethertype(ethertype, &frame[16..])
        }
        Linktype::LINUX_SLL2 => {
            let ethertype = be16(frame, 0).ok_or(Skip::MalformedLink)?;
            let rest = frame.get(20..).ok_or(Skip::MalformedLink)?;
            by_ethertype(ethertype, rest)
        }
        Linktype::RAW => Ok((IpVersion::Either, frame)),
        Linktype::IPV4 => Ok((IpVersion::V4, frame)),
        Linktype::IPV6 => Ok((IpVersion::V6, frame)),
        Linktype::NULL | Linktype::LOOP => {
            let header: [u8; 4] = frame
                .get(..4)
                .and_then(|h| h.try_into().ok())
                .ok_or(Skip::MalformedLink)?;
            // NULL: the capturing host's byte order; LOOP: network order.
            // Address families are small, so the order that gives a small
            // number is the right one.
            let little = u32::from_le_bytes(header);
            let family = if little <= 0xffff {
                little
            } else {
                u32::from_be_bytes(header)
            };
            match family {
                2 => Ok((IpVersion::V4, &frame[4..])),
                // AF_INET6: Linux, NetBSD/OpenBSD, FreeBSD, macOS.
                10 | 24 | 28 | 30 => Ok((IpVersion::V6, &frame[4..])),
                _ => Err(Skip::NotIp),
            }
        }
        other => Err(Skip::LinkType(other.0)),
    }
}

fn by_ethertype(ethertype: u16, rest: &[u8]) -> Result<(IpVersion, &[u8]), Skip> {
    match ethertype {
        ETHERTYPE_IPV4 => Ok((IpVersion::V4, rest)),
        ETHERTYPE_IPV6 => Ok((IpVersion::V6, rest)),
        _ => Err(Skip::NotIp),
    }
}

fn ipv4(ip: &[u8], missing: usize) -> Result<Packet<'_>, Skip> {
    if ip.len() < 20 {
        return Err(Skip::MalformedIp);
    }
    let header_len = usize::from(ip[0] & 0x0f) * 4;
    if header_len < 20 || header_len > ip.len() {
        return Err(Skip::MalformedIp);
    }
    let total = usize::from(be16(ip, 2).ok_or(Skip::MalformedIp)?);
    let fragment = be16(ip, 6).ok_or(Skip::MalformedIp)?;
    if fragment & 0x1fff != 0 {
        return Err(Skip::IpFragment);
    }
    let more_fragments = fragment & 0x2000 != 0;
    // Segmentation offload: a packet captured before the NIC split it may
    // carry a total length of 0.
    let total = if total == 0 {
        ip.len() + missing
    } else {
        total
    };
    if total < header_len || total > ip.len() + missing {
        return Err(Skip::MalformedIp);
    }
    let src = Ipv4Addr::from(<[u8; 4]>::try_from(&ip[12..16]).map_err(|_| Skip::MalformedIp)?);
    let dst = Ipv4Addr::from(<[u8; 4]>::try_from(&ip[16..20]).map_err(|_| Skip::MalformedIp)?);
    transport(
        ip[9],
        IpAddr::V4(src),
        IpAddr::V4(dst),
        &ip[header_len..total.min(ip.len())],
        total - header_len,
        more_fragments,
    )
}

fn ipv6(ip: &[u8], missing: usize) -> Result<Packet<'_>, Skip> {
    if ip.len() < 40 {
        return Err(Skip::MalformedIp);
    }
    let available = ip.len() - 40;
    let length = usize::from(be16(ip, 4).ok_or(Skip::MalformedIp)?);
    let length = if length == 0 {
        available + missing
    } else {
        length
    };
    if length > available + missing {
        return Err(Skip::MalformedIp);
    }
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).map_err(|_| Skip::MalformedIp)?);
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).map_err(|_| Skip::MalformedIp)?);
    let next = ip[6];
    match next {
        // Hop-by-hop, routing, fragment, ESP, AH, destination options,
        // mobility, HIP, shim6, experimental.
        0 | 43 | 44 | 50 | 51 | 60 | 135 | 139 | 140 | 253 | 254 => Err(Skip::Ipv6Extension),
        _ => transport(
            next,
            IpAddr::V6(src),
            IpAddr::V6(dst),
            &ip[40..40 + length.min(available)],
            length,
            false,
        ),
    }
}

/// `segment`: the captured transport bytes; `wire_len`: their length on
/// the wire; `fragmented`: the first fragment of a fragmented datagram.
fn transport(
    protocol: u8,
    src: IpAddr,
    dst: IpAddr,
    segment: &[u8],
    wire_len: usize,
    fragmented: bool,
) -> Result<Packet<'_>, Skip> {
    match protocol {
        6 => {
            let header = segment.get(..20).ok_or(Skip::MalformedTcp)?;
            let header_len = usize::from(header[12] >> 4) * 4;
            if header_len < 20 || header_len > segment.len() || header_len > wire_len {
                return Err(Skip::MalformedTcp);
            }
            let flags = header[13];
            Ok(Packet {
                transport: Transport::Tcp,
                src: SocketAddr::new(src, be16(header, 0).ok_or(Skip::MalformedTcp)?),
                dst: SocketAddr::new(dst, be16(header, 2).ok_or(Skip::MalformedTcp)?),
                tcp: Some(TcpFlags {
                    seq: be32(header, 4).ok_or(Skip::MalformedTcp)?,
                    syn: flags & 0x02 != 0,
                    rst: flags & 0x04 != 0,
                    ack: flags & 0x10 != 0,
                }),
                payload: &segment[header_len..],
                wire_len: u32::try_from(wire_len - header_len).map_err(|_| Skip::MalformedTcp)?,
            })
        }
        17 => {
            let header = segment.get(..8).ok_or(Skip::MalformedUdp)?;
            let length = usize::from(be16(header, 4).ok_or(Skip::MalformedUdp)?);
            // Length 0: a jumbogram; more than the IP payload: legal only in
            // the first fragment of a datagram.
            let length = match length {
                0 => wire_len,
                n if n < 8 || (n > wire_len && !fragmented) => return Err(Skip::MalformedUdp),
                n => n,
            };
            let payload = &segment[8..segment.len().min(length)];
            Ok(Packet {
                transport: Transport::Udp,
                src: SocketAddr::new(src, be16(header, 0).ok_or(Skip::MalformedUdp)?),
                dst: SocketAddr::new(dst, be16(header, 2).ok_or(Skip::MalformedUdp)?),
                tcp: None,
                payload,
                wire_len: u32::try_from(length - 8).map_err(|_| Skip::MalformedUdp)?,
            })
        }
        _ => Err(Skip::OtherTransport),
    }
}

#[cfg(test)]
mod tests {
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
            summary.starts_with("13 packets read, 12 skipped (1 malformed link header, 1 not IP, 4 malformed IP header"),
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
}
