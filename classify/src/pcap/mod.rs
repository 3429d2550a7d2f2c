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
//! - the first `samples_per_direction` samples of each direction are
//!   classified, a segment longer than [`SAMPLE_LEN`] bytes in chunks of
//!   that size, each a sample, as the kernel takes them (more while JSON
//!   text is blank or has a line open, up to
//!   [`assay_common::flow::HOLD_CAP`]; while a TLS hello is open, up to
//!   [`crate::flow::MAX_SAMPLES_PER_DIRECTION`]; or for the push beat of an
//!   opaque flow that lives on). The table keeps that budget and says which
//!   samples the kernel would take ([`FlowTable::admits`]);
//! - TCP in sequence order, per direction: a retransmission of bytes
//!   already delivered is skipped (its new tail, if any, is kept); a
//!   segment beyond the next expected byte is dropped and its sample slot
//!   left empty, so the table sees a lost sample and stops following that
//!   direction, as it does when the kernel's ring buffer drops one.
//!
//! Link types: Ethernet (with VLAN tags), Linux cooked (SLL and SLL2, what
//! `-i any` gives), raw IPv4/IPv6 and BSD loopback (NULL, LOOP); headers
//! read with etherparse. IPv4 fragments after the first are skipped; IPv6
//! packets whose next header is an extension header are skipped (no header
//! walk, as the kernel's sampler). Every packet that is skipped is counted
//! by reason ([`Skip`]), never a panic.
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
//!     worker, algorithms, messages}` (variant: the docs/signatures.md id, e.g.
//!     `ST5`; methods: distinct, both directions, first seen first);
//!   - `tls`: `{sni, alpn, ja4, server_hello, selected_alpn, certificate,
//!     certificate_cut}` (certificate: the leaf a TLS 1.2 server sent in
//!     clear, `{subject_cn, dns_names, issuer_cn, self_signed, not_before,
//!     not_after, sha256, chain_len}`, null when none was seen whole;
//!     certificate_cut: the sample ended before it or its chain did);
//!   - `dns`: `{names, addresses, queries, responses}` (question names; A
//!     and AAAA answers);
//!   - `p2p`: `{network, message, confidence}`, and what names the
//!     network: `magic` (Bitcoin family) or `network_id` (Levin), in hex,
//!     and `chain` when the network is listed;
//!   - `stratum_v2`: `{protocol, endpoint, vendor, device, version,
//!     noise_client}` (noise_client: `initiator` or `responder`);
//!   - `devp2p_discv4`: true;
//!   - `stratum_rejections`: stratum-looking lines that did not parse.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    io::{self, Read, Write},
    net::{IpAddr, SocketAddr},
    time::{Duration, SystemTime},
};

use assay_common::{event::SAMPLE_LEN, flow::CHUNKS_PER_SEGMENT};
use pcap_parser::{
    Block, Linktype, PcapBlockOwned, PcapError as ParseError,
    traits::{PcapNGPacketBlock as _, PcapReaderIterator},
};
use serde::Serialize;

use crate::{
    Direction, dns,
    flow::{CADENCE_AFTER_NS, FlowTable, Observation, Segment, Transport},
    p2p, stratum, stratum_v2, tls,
};

mod capture;
mod output;
mod packet;
mod reader;
#[cfg(test)]
mod tests;

use capture::Capture;
pub use output::{write_json, write_table};
use reader::{Failure, KeepIoError, read_blocks};

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

/// How a capture is sampled, and what names it is reported with.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Payload segments classified per direction of a new flow.
    pub samples_per_direction: u32,
    /// Network names (the built-in catalogue, or it with an operator's
    /// file).
    pub catalogue: &'static crate::catalogue::Catalogue,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            samples_per_direction: DEFAULT_SAMPLES_PER_DIRECTION,
            catalogue: crate::catalogue::Catalogue::builtin(),
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
    pub job_cadence: Option<crate::cadence::PushCadence>,
    /// Chain use on plain HTTP, websocket or JSON lines, distinct, in the
    /// order first seen: `Ethereum JSON-RPC eth_call`, `beacon-api
    /// /eth/v1/beacon/pool/attestations (signed)`, `bittensor /Inference`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct StratumDetails {
    /// docs/signatures.md id (`ST5`) of the first message that had a variant.
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
    pub network: String,
    /// What identifies the network: `magic` or `network_id` (hex), and
    /// `chain`, its name, when listed.
    #[serde(flatten)]
    pub identifiers: std::collections::BTreeMap<String, String>,
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
