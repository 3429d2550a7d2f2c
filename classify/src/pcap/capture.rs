//! The capture being read: interfaces, flows and their segments, handed
//! to the flow table as the kernel would sample them.

use super::*;
use packet::{Packet, decode};

/// How to read one interface's packets.
#[derive(Debug, Clone, Copy)]
pub(super) struct Interface {
    pub(super) linktype: Linktype,
    /// Timestamp units per second.
    pub(super) resolution: u64,
    /// Seconds added to every timestamp.
    pub(super) offset_s: i64,
}

/// The capture being read: interfaces, flows, counters.
pub(super) struct Capture {
    /// The flow model, and the kernel's sampling budget of each flow: the
    /// capture hands it a segment only where it admits one.
    pub(super) table: FlowTable,
    /// Network names for the report.
    pub(super) catalogue: &'static crate::catalogue::Catalogue,
    /// Legacy pcap: the file's link type and timestamp resolution; pcapng:
    /// the current section's interfaces.
    pub(super) interfaces: Vec<Interface>,
    /// Current flow number of each 5-tuple.
    pub(super) by_tuple: HashMap<Tuple, u64>,
    pub(super) flows: Vec<FlowState>,
    pub(super) packets: u64,
    pub(super) skipped: BTreeMap<Skip, u64>,
    pub(super) last_ns: u64,
    /// Capture time of the next check for opaque flows whose cadence the
    /// agent would ask to observe (once a second, as the agent's tick).
    pub(super) next_cadence_check_ns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Tuple {
    pub(super) protocol: u8,
    pub(super) low: SocketAddr,
    pub(super) high: SocketAddr,
}

impl Tuple {
    pub(super) fn new(transport: Transport, a: SocketAddr, b: SocketAddr) -> Self {
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
pub(super) struct FlowState {
    pub(super) report: FlowReport,
    /// The initiator's initial sequence number, when its SYN was seen.
    pub(super) isn: Option<u32>,
    /// Per direction: the next TCP sequence number expected.
    pub(super) next_seq: [Option<u32>; 2],
    /// Per direction: the next sample slot.
    pub(super) next_index: [u32; 2],
}

pub(super) fn side(direction: Direction) -> usize {
    match direction {
        Direction::Outbound => 0,
        Direction::Inbound => 1,
    }
}

impl Capture {
    pub(super) fn new(options: &Options) -> Self {
        let samples = options.samples_per_direction.max(1);
        Self {
            table: FlowTable::new(TABLE_CAPACITY, samples),
            catalogue: options.catalogue,
            interfaces: Vec::new(),
            by_tuple: HashMap::new(),
            flows: Vec::new(),
            packets: 0,
            skipped: BTreeMap::new(),
            last_ns: 0,
            next_cadence_check_ns: 0,
        }
    }

    pub(super) fn finish(self) -> Report {
        Report {
            packets: self.packets,
            skipped: self.skipped,
            flows: self.flows.into_iter().map(|f| f.report).collect(),
            error: None,
        }
    }

    pub(super) fn skip(&mut self, reason: Skip) {
        *self.skipped.entry(reason).or_default() += 1;
    }

    pub(super) fn on_block(&mut self, block: PcapBlockOwned<'_>) {
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

    pub(super) fn interface_resolution(&self, interface: usize) -> u64 {
        self.interfaces
            .get(interface)
            .map_or(1_000_000, |i| i.resolution)
    }

    pub(super) fn on_frame(&mut self, interface: usize, units: u64, frame: &[u8], orig_len: u32) {
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
    pub(super) fn flow_for(&mut self, ns: u64, packet: &Packet<'_>) -> usize {
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
        });
        self.table.on_open(number, ns);
        self.flows.len() - 1
    }

    pub(super) fn on_packet(&mut self, ns: u64, packet: &Packet<'_>) {
        if ns >= self.next_cadence_check_ns {
            self.next_cadence_check_ns = ns.saturating_add(1_000_000_000);
            // The table raises the flows' limits itself: the list is for a
            // kernel, and there is none here.
            let _raised = self.table.request_cadence(ns, CADENCE_AFTER_NS, usize::MAX);
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

        let key = flow.report.number;
        // As the kernel does: a segment longer than a sample in chunks,
        // each a sample, while the direction admits them.
        let mut offset = 0usize;
        for _ in 0..CHUNKS_PER_SEGMENT {
            let slot = u16::try_from(flow.next_index[s]).unwrap_or(u16::MAX);
            if !self.table.admits(key, direction, slot) {
                break;
            }
            flow.next_index[s] += 1;
            flow.report.sent_mut(direction).sampled += 1;
            let chunk = payload.get(offset..).unwrap_or_default();
            let outcome = self.table.on_segment(&Segment {
                key,
                direction,
                index: slot,
                timestamp_ns: ns,
                transport: packet.transport,
                payload: &chunk[..chunk.len().min(SAMPLE_LEN)],
                wire_len,
                offset: offset as u32,
                endpoints: Some((packet.src, packet.dst)),
            });
            flow.report.stratum_rejections += outcome.rejections.len() as u64;
            for observed in &outcome.observations {
                record(
                    &mut flow.report.details,
                    &observed.observation,
                    self.catalogue,
                );
            }
            offset += SAMPLE_LEN;
            if chunk.len() <= SAMPLE_LEN || offset >= wire_len as usize {
                break;
            }
        }
        if let Some(protocol) = self.table.get(key).and_then(|f| f.protocol) {
            flow.report.protocol = Some(protocol);
        }
    }
}

pub(super) fn push_distinct(list: &mut Vec<String>, value: &str) {
    if list.len() < MAX_LISTED && !list.iter().any(|v| v == value) {
        list.push(value.to_owned());
    }
}

/// Adds what an observation says to a flow's details.
pub(super) fn record(
    details: &mut Details,
    observation: &Observation,
    catalogue: &crate::catalogue::Catalogue,
) {
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
                network: opening.network.describe_in(catalogue),
                identifiers: opening
                    .network
                    .identifiers_in(catalogue)
                    .into_iter()
                    .map(|(key, value)| (key.to_owned(), value))
                    .collect(),
                message: opening.message.clone(),
                confidence: opening.confidence,
            });
        }
        Observation::Discv4 => details.devp2p_discv4 = true,
        Observation::ChainRpc { call, .. } => push_distinct(
            &mut details.chain,
            &format!("{} {}", call.family.describe(), call.method),
        ),
        Observation::BeaconApi(call) => push_distinct(
            &mut details.chain,
            &format!(
                "beacon-api {}{}",
                call.path,
                if call.signed { " (signed)" } else { "" }
            ),
        ),
        Observation::Bittensor(signed) => {
            push_distinct(&mut details.chain, &format!("bittensor {}", signed.path));
        }
        Observation::JobCadence(cadence) => details.job_cadence = Some(cadence.clone()),
    }
}
