//! User-space flow table: joins a flow's owner (who: named by the flow's
//! first sample, as of its connect) with payload samples (what), keyed by
//! socket cookie, recognises what each direction speaks
//! from its first bytes, and runs the matching content classifier.
//!
//! The same table serves the live agent (samples from the kernel) and
//! `assay pcap` (segments from a capture file): both hand it [`Segment`]s,
//! so both classify alike.
//!
//! How a TCP direction is followed depends on how it opens:
//! - `{` (after whitespace): newline-delimited JSON, scanned for stratum v1
//!   lines as they complete. Nothing else is: JSON lines inside an HTTP body
//!   are not stratum.
//! - a TLS handshake record: reassembled until the ClientHello or
//!   ServerHello parses (SNI, ALPN, JA4).
//! - an HTTP/1 request line: each complete request read, and after a
//!   websocket upgrade each text frame, for chain JSON-RPC, beacon-API
//!   validator calls and Bittensor's signed requests ([`requests`]).
//! - anything else: checked once enough bytes are in for a blockchain p2p
//!   opening, a stratum V2 SetupConnection or DNS over TCP. When both
//!   directions open with unrecognised bytes, the sizes of the two first
//!   segments are checked against the stratum V2 Noise handshake.
//!
//! UDP datagrams are classified one by one (DNS, devp2p discovery).
//!
//! Where content is unreadable (TLS, the Noise opening, unknown binary), a
//! flow that lives on gets more samples from the kernel on request
//! ([`FlowTable::request_cadence`]); their timestamps and sizes tell whether
//! the server pushes on a job-like beat ([`cadence`]).

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
};

use assay_common::{
    event::SAMPLE_LEN,
    flow::{ADOPTED_SAMPLE_SEGMENTS, CHUNKS_PER_SEGMENT, HOLD_CAP, holds, next_hold},
};

use crate::{
    Direction, beacon, bittensor,
    cadence::{self, Beat},
    chain_rpc, dns, http, p2p, stratum, stratum_v2, tls,
};

mod requests;
pub use requests::Carrier;

/// Bytes kept per direction of a flow for classification.
pub const STREAM_LIMIT: usize = 8 * 1024;
/// Most samples per direction user space ever asks the kernel for (a TLS
/// hello split over many segments), bounded so that a flow that never
/// completes a hello cannot keep sampling. JSON text needs no asking: the
/// kernel holds it open by itself up to [`HOLD_CAP`].
pub const MAX_SAMPLES_PER_DIRECTION: u32 = 16;
/// Opaque flows (TLS, unknown binary) that live this long get more samples
/// to observe their cadence.
pub const CADENCE_AFTER_NS: u64 = 5_000_000_000;
/// Extra samples per direction asked for to observe an opaque flow's cadence.
pub const CADENCE_SAMPLES: u32 = 16;
/// Segments remembered per flow for its cadence.
const TIMELINE_LIMIT: usize = 64;
/// Segments remembered per flow watched for a work loop (the newest):
/// minutes of a miner's rounds, 16 KiB.
pub const WORK_TIMELINE_LIMIT: usize = 1024;
/// Binary openings are checked over at most this many bytes, from at most
/// [`OPENING_SEGMENTS`] segments: every opening recognised fits (a Kaspa
/// HTTP/2 preface with its HEADERS frame is the longest, a few hundred
/// bytes), and an unknown protocol must not hold memory per flow.
const OPENING_LIMIT: usize = 1024;
const OPENING_SEGMENTS: u16 = 2;

/// The process holding the local end of a flow: from the connect hook, or
/// looked up for an adopted flow.
#[derive(Debug, Clone)]
pub struct Owner {
    pub pid: u32,
    pub tgid: u32,
    pub comm: String,
    pub cgroup_id: u64,
    pub role: Role,
}

/// Which end of the connection the owner is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// It connected out (or the socket is unconnected UDP).
    Client,
    /// It accepted the connection on a listening port.
    Server,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Tcp,
    Udp,
}

/// One payload-carrying segment (TCP) or datagram (UDP) of a flow.
#[derive(Debug, Clone)]
pub struct Segment<'a> {
    /// Identifies the flow: a socket cookie live, a flow number offline.
    pub key: u64,
    pub direction: Direction,
    /// Position among this direction's samples, from 0: a jump means a
    /// sample was lost.
    pub index: u16,
    pub timestamp_ns: u64,
    pub transport: Transport,
    /// The captured bytes: the start of the payload, or of the chunk at
    /// `offset`.
    pub payload: &'a [u8],
    /// The whole segment's payload length on the wire (more than
    /// `offset + payload.len()` when the capture was cut or chunked).
    pub wire_len: u32,
    /// Where `payload` starts in the segment's payload: 0, or the offset of
    /// a chunk of a segment longer than a sample
    /// ([`assay_common::flow::CHUNKS_PER_SEGMENT`]).
    pub offset: u32,
    /// Source and destination of the packet.
    pub endpoints: Option<(SocketAddr, SocketAddr)>,
}

/// How a TCP direction opened, which decides how it is followed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// Nothing seen yet.
    #[default]
    Pending,
    JsonLines,
    Tls,
    /// An HTTP/1 request line: requests followed ([`requests`]).
    Http(requests::Mode),
    /// Unrecognised bytes: checked for binary protocol openings.
    Binary,
}

#[derive(Debug, Default)]
struct Stream {
    framing: Framing,
    bytes: Vec<u8>,
    /// Set once the stream is no longer followed: cut at [`STREAM_LIMIT`],
    /// a partial capture or a gap, its last sample taken, or classified.
    done: bool,
    /// Payload length of the direction's first segment.
    first_segment_len: Option<u32>,
    /// The first segment has bytes above 0x7f: not plain text. Random
    /// handshake keys have them with overwhelming probability.
    opens_with_high_bytes: bool,
    /// Index of the next sample expected.
    next_segment: u16,
    /// Where the next sample starts in its segment when the last one was
    /// a chunk that did not reach its segment's end.
    resume_at: Option<u32>,
    /// The kernel's hold state for this direction, mirrored
    /// ([`assay_common::flow::next_hold`]) so that both agree on which
    /// samples come.
    hold: u8,
    /// The limit the kernel raised this direction to by holding it.
    held_limit: u32,
}

impl Stream {
    fn stop(&mut self) {
        self.done = true;
        self.bytes = Vec::new();
    }
}

/// How the table learnt of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A connect or first sendmsg: the local process opened it.
    Opened,
    /// Payload before any sample named an owner: accepted by a local server
    /// or opened before the agent started. Who owns it is looked up.
    Adopted,
}

#[derive(Debug)]
pub struct Flow {
    pub owner: Option<Owner>,
    /// An owner lookup was tried for this adopted flow (found or not).
    pub owner_looked_up: bool,
    pub origin: Origin,
    pub transport: Option<Transport>,
    pub remote: Option<SocketAddr>,
    pub local: Option<SocketAddr>,
    /// Timestamp of the first payload seen in either direction.
    pub first_payload_ns: Option<u64>,
    pub last_seen_ns: u64,
    /// Samples the kernel takes per direction for this flow.
    pub sample_limit: u32,
    /// What the flow was recognised as, for reports: the last label wins.
    pub protocol: Option<&'static str>,
    streams: [Stream; 2],
    noise_checked: bool,
    /// The network a Levin handshake on this flow named: the other end's
    /// first message (a node may open with a request, not its handshake
    /// response) is on the same network.
    levin_network: Option<p2p::NetworkId>,
    /// Payload segments seen (time, direction, length) since cadence was
    /// asked for, first [`TIMELINE_LIMIT`] only.
    timeline: Vec<Beat>,
    /// When more samples were asked for to observe cadence: the beat is
    /// measured from then (earlier samples are the opening, then a gap).
    cadence_since_ns: Option<u64>,
    /// A job-like cadence was reported (once per flow).
    cadence_reported: bool,
    /// The local process sent a miner's call on this flow (a decisive
    /// stratum message of the client side): what the pool side says is
    /// about it too from then on.
    sent_miner_call: bool,
    /// TCP payload segments seen per direction (outbound, inbound).
    pub segments: [u32; 2],
    /// The newest segments, while the flow is watched for a work loop
    /// ([`crate::work_loop`]); `None` otherwise.
    work_timeline: Option<VecDeque<Beat>>,
    /// Was watched and let go: never watched again (its sample cap holds).
    work_done: bool,
}

impl Flow {
    /// Both directions opened with bytes no framing recognised (not JSON
    /// lines, not TLS) and that are not plain text: the random-looking
    /// keys of an encrypted handshake (Bitcoin v2, RLPx, Noise), not an
    /// HTTP request, a Redis command or an SSH banner.
    pub fn opens_random_binary(&self) -> bool {
        self.streams
            .iter()
            .all(|s| s.framing == Framing::Binary && s.opens_with_high_bytes)
    }

    /// TCP whose content no classifier could read: TLS, the Noise opening,
    /// or unrecognised binary in both directions. JSON lines are readable.
    pub fn is_opaque(&self) -> bool {
        self.transport == Some(Transport::Tcp)
            && matches!(self.protocol, None | Some("tls") | Some("stratum-v2-noise"))
            && self.streams.iter().all(|s| {
                matches!(
                    s.framing,
                    Framing::Tls | Framing::Binary | Framing::Http(_) | Framing::Pending
                )
            })
            && self.streams.iter().any(|s| s.framing != Framing::Pending)
    }

    /// TCP on which no classifier recognised a protocol it reads: opaque
    /// (TLS, Noise, unknown binary) or plain text of an unknown protocol,
    /// JSON lines that are not stratum included.
    pub fn content_unrecognised(&self) -> bool {
        self.transport == Some(Transport::Tcp)
            && matches!(self.protocol, None | Some("tls") | Some("stratum-v2-noise"))
    }

    /// Neither watched for a work loop nor let go after being watched.
    pub fn work_watchable(&self) -> bool {
        self.work_timeline.is_none() && !self.work_done
    }

    /// True once the local process itself sent a stratum message only a
    /// miner sends (a login, subscribe, authorize or share with a miner's
    /// parameters) on this flow. Pool-shaped lines the other side sends
    /// are decisive only then: a server cannot make a wallet a miner by
    /// sending it `mining.notify`.
    pub fn sent_miner_call(&self) -> bool {
        self.sent_miner_call
    }

    /// The kernel's sample limit for one direction: the flow's, or higher
    /// where the kernel held the direction open.
    fn limit(&self, direction: Direction) -> u32 {
        self.sample_limit
            .max(self.streams[direction as usize].held_limit)
    }
}

/// Something a classifier recognised on a flow.
#[derive(Debug, Clone)]
pub enum Observation {
    Stratum(stratum::Message),
    StratumV2Setup(stratum_v2::SetupConnection),
    StratumV2SetupSuccess {
        version: u16,
    },
    /// A 64-byte client opening answered by exactly 234 bytes.
    StratumV2Noise {
        client: Direction,
    },
    /// An opaque flow on which the server pushes small messages on a
    /// regular beat, unanswered: a pool's job notifications.
    JobCadence(cadence::PushCadence),
    TlsClientHello(tls::ClientHello),
    TlsServerHello(tls::ServerHello),
    Dns(dns::Message),
    P2p(p2p::Opening),
    /// A devp2p discovery v4 datagram (its keccak hash checks out).
    Discv4,
    /// A chain's JSON-RPC request ([`chain_rpc`]), with the algorithm of
    /// the bearer JWT it was sent with, if any (the Engine API's).
    ChainRpc {
        call: chain_rpc::Call,
        carrier: Carrier,
        bearer_jwt: Option<String>,
    },
    /// A validator client's beacon-API call ([`beacon`]).
    BeaconApi(beacon::Call),
    /// A Bittensor-signed HTTP request ([`bittensor`]).
    Bittensor(bittensor::Signed),
}

impl Observation {
    /// Short protocol label for reports.
    pub fn protocol(&self) -> &'static str {
        match self {
            Self::Stratum(_) => "stratum-v1",
            Self::StratumV2Setup(_) | Self::StratumV2SetupSuccess { .. } => "stratum-v2",
            Self::StratumV2Noise { .. } => "stratum-v2-noise",
            Self::JobCadence(_) => "job-cadence",
            Self::TlsClientHello(_) | Self::TlsServerHello(_) => "tls",
            Self::Dns(_) => "dns",
            Self::P2p(opening) => opening.network.family(),
            Self::Discv4 => "devp2p-discv4",
            Self::ChainRpc { call, .. } => match call.family {
                chain_rpc::Family::EngineApi => "engine-api",
                _ => "chain-rpc",
            },
            Self::BeaconApi(_) => "beacon-api",
            Self::Bittensor(_) => "bittensor",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Observed {
    pub direction: Direction,
    pub observation: Observation,
}

/// What a new segment told us.
#[derive(Debug, Default)]
pub struct SampleOutcome {
    pub observations: Vec<Observed>,
    pub rejections: Vec<stratum::Rejection>,
    /// The flow's sample limit was raised (a TLS hello is still open at the
    /// last sample): the kernel should be told.
    pub raised_limit: Option<u32>,
    /// The kernel held the direction open past its limit at this sample
    /// (blank so far, or a line open): one more sample comes.
    pub held: bool,
    /// The direction reached [`HOLD_CAP`] still undecided: what follows is
    /// not sampled. Counted, never silent: padding past the cap is how a
    /// client would hide its login.
    pub hold_exhausted: bool,
}

#[derive(Debug)]
pub struct FlowTable {
    /// Boxed: the map's slots stay 16 bytes, so the slots reserved for
    /// the cap are 1 MiB, not 25.
    flows: HashMap<u64, Box<Flow>>,
    /// Keys in insertion order, for O(1) eviction of the oldest; may hold
    /// keys already expired (skipped when met).
    order: VecDeque<u64>,
    /// Flows not yet looked at for cadence ([`Self::request_cadence`]):
    /// when each was inserted, and its key, oldest first. Each flow is
    /// looked at once it is old enough, so that no tick walks the whole
    /// table (a full table's boxes are cold: the walk cost an idle agent
    /// 0.5 % of a core after a connection storm). At most `capacity`.
    cadence_queue: VecDeque<(u64, u64)>,
    capacity: usize,
    /// Samples the kernel takes per direction of a new flow.
    samples_per_direction: u32,
    pub evicted: u64,
}

impl FlowTable {
    /// A table that holds at most `capacity` flows. Its slots are
    /// reserved once, for twice the cap: a full table that keeps evicting
    /// and inserting fills its slots with tombstones, and a hash table more
    /// than half full then grows to twice its size instead of cleaning up
    /// in place. Grown on demand, a connection storm took the agent's
    /// table (inline flows) from 12 to 25 MiB of slots in one step, with
    /// every smaller copy left behind as free heap.
    pub fn new(capacity: usize, samples_per_direction: u32) -> Self {
        Self {
            flows: HashMap::with_capacity(capacity.saturating_mul(2)),
            order: VecDeque::with_capacity(capacity),
            cadence_queue: VecDeque::new(),
            capacity,
            samples_per_direction,
            evicted: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    pub fn get(&self, key: u64) -> Option<&Flow> {
        self.flows.get(&key).map(|flow| &**flow)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&u64, &Flow)> {
        self.flows.iter().map(|(key, flow)| (key, &**flow))
    }

    /// Records the result of an owner lookup for an adopted flow.
    pub fn set_owner(&mut self, key: u64, owner: Option<Owner>) {
        if let Some(flow) = self.flows.get_mut(&key) {
            flow.owner_looked_up = true;
            if owner.is_some() {
                flow.owner = owner;
            }
        }
    }

    /// The kernel's budget for a new flow (see its adopt()).
    fn new_flow_limit(&self, origin: Origin) -> u32 {
        match origin {
            Origin::Opened => self.samples_per_direction,
            Origin::Adopted => self.samples_per_direction.min(ADOPTED_SAMPLE_SEGMENTS),
        }
    }

    /// Whether the kernel samples a direction's sample number `index`
    /// (from 0) of flow `key`: below the direction's limit, as this table
    /// raised it or the kernel held it open. A flow the table does not hold
    /// gets the budget of the flow its next segment opens here: an adopted
    /// one.
    pub fn admits(&self, key: u64, direction: Direction, index: u16) -> bool {
        let limit = self.flows.get(&key).map_or_else(
            || self.new_flow_limit(Origin::Adopted),
            |f| f.limit(direction),
        );
        u32::from(index) < limit
    }

    fn entry(&mut self, key: u64, now_ns: u64, origin: Origin) -> &mut Flow {
        if !self.flows.contains_key(&key) {
            while self.flows.len() >= self.capacity {
                let Some(oldest) = self.order.pop_front() else {
                    break;
                };
                if self.flows.remove(&oldest).is_some() {
                    self.evicted += 1;
                }
            }
            self.order.push_back(key);
            if self.cadence_queue.len() >= self.capacity {
                // Its flow is the oldest: evicted already, or about to be.
                self.cadence_queue.pop_front();
            }
            self.cadence_queue.push_back((now_ns, key));
        }
        let sample_limit = self.new_flow_limit(origin);
        self.flows.entry(key).or_insert_with(|| {
            Box::new(Flow {
                owner: None,
                owner_looked_up: false,
                origin,
                transport: None,
                remote: None,
                local: None,
                first_payload_ns: None,
                last_seen_ns: now_ns,
                sample_limit,
                protocol: None,
                streams: Default::default(),
                noise_checked: false,
                levin_network: None,
                timeline: Vec::new(),
                cadence_since_ns: None,
                cadence_reported: false,
                sent_miner_call: false,
                segments: [0, 0],
                work_timeline: None,
                work_done: false,
            })
        })
    }

    /// A local process opened the flow (connect, or a first sendmsg on an
    /// unconnected UDP socket): it owns it, with the full sample budget.
    pub fn on_connect(
        &mut self,
        key: u64,
        timestamp_ns: u64,
        owner: Owner,
        remote: Option<SocketAddr>,
    ) {
        let samples = self.samples_per_direction;
        let flow = self.entry(key, timestamp_ns, Origin::Opened);
        if flow.origin == Origin::Adopted {
            // The sample naming the owner came after another sample of the
            // flow (two directions sampled at once on two CPUs): the kernel
            // gave the flow the full budget.
            flow.origin = Origin::Opened;
            flow.sample_limit = flow.sample_limit.max(samples);
        }
        flow.owner = Some(owner);
        flow.remote = remote;
    }

    /// A flow whose opener is known without the kernel naming it (a capture
    /// file's initiator): it gets an opened flow's sample budget.
    pub fn on_open(&mut self, key: u64, now_ns: u64) {
        let _ = self.entry(key, now_ns, Origin::Opened);
    }

    /// Appends a segment to its direction and classifies what is new.
    pub fn on_segment(&mut self, segment: &Segment<'_>) -> SampleOutcome {
        let ts = segment.timestamp_ns;
        let step = self.samples_per_direction.max(1);
        let flow = self.entry(segment.key, ts, Origin::Adopted);
        flow.last_seen_ns = ts;
        flow.first_payload_ns.get_or_insert(ts);
        flow.transport = Some(segment.transport);
        if let Some((src, dst)) = segment.endpoints {
            let (local, remote) = match segment.direction {
                Direction::Outbound => (src, dst),
                Direction::Inbound => (dst, src),
            };
            flow.local = Some(local);
            // An unconnected UDP socket talks to many peers: the latest is
            // the one this segment is about.
            if segment.transport == Transport::Udp || flow.remote.is_none() {
                flow.remote = Some(remote);
            }
        }
        // The kernel's view of this direction after this sample: held open
        // past its limit, or at its last sample.
        let mut held = false;
        let mut hold_exhausted = false;
        let last_sample = {
            let limit = flow.limit(segment.direction);
            let stream = &mut flow.streams[segment.direction as usize];
            let payload = segment.payload;
            let (first, last) = (
                payload.first().copied().unwrap_or(0),
                payload.last().copied().unwrap_or(0),
            );
            stream.hold = next_hold(stream.hold, first, last, payload.len() as u32);
            let at_limit = u32::from(segment.index) + 1 >= limit;
            if at_limit && holds(stream.hold) {
                if u32::from(segment.index) + 1 < u32::from(HOLD_CAP) {
                    stream.held_limit = u32::from(segment.index) + 2;
                    held = true;
                } else {
                    hold_exhausted = true;
                }
            }
            at_limit && !held
        };
        let mut outcome = match segment.transport {
            Transport::Tcp => {
                // Only cadence reads the timeline: kept once it was asked for.
                let beat = Beat {
                    at_ns: ts,
                    direction: segment.direction,
                    len: segment.wire_len,
                };
                if flow.cadence_since_ns.is_some() && flow.timeline.len() < TIMELINE_LIMIT {
                    flow.timeline.push(beat);
                }
                let count = &mut flow.segments[segment.direction as usize];
                *count = count.saturating_add(1);
                if let Some(timeline) = flow.work_timeline.as_mut() {
                    if timeline.len() >= WORK_TIMELINE_LIMIT {
                        timeline.pop_front();
                    }
                    // Rings drained out of order across CPUs: kept sorted.
                    let at = timeline.partition_point(|b| b.at_ns <= ts);
                    timeline.insert(at, beat);
                }
                on_tcp(flow, segment, last_sample)
            }
            Transport::Udp => on_datagram(segment),
        };
        outcome.held = held;
        outcome.hold_exhausted = hold_exhausted;
        if outcome.observations.iter().any(|o| {
            o.direction == Direction::Outbound
                && matches!(&o.observation, Observation::Stratum(m) if m.decisive && !m.from_pool)
        }) {
            flow.sent_miner_call = true;
        }
        if let Some(last) = outcome
            .observations
            .iter()
            .rev()
            .find(|o| !matches!(o.observation, Observation::JobCadence(_)))
        {
            flow.protocol = Some(last.observation.protocol());
        }
        if let Some(observed) = job_cadence(flow, segment.direction) {
            outcome.observations.push(observed);
        }
        // A JSON line, a TLS hello or an HTTP request body still open at
        // the last sample: ask for more, up to a bound, so a ClientHello
        // (post-quantum key shares make them several KiB) or a request
        // body written apart from its head is still read. JSON text the kernel holds open itself; it is asked for
        // here too where the kernel gave up on it (a non-ASCII byte at a
        // chunk's edge).
        let stream = &flow.streams[segment.direction as usize];
        if last_sample
            && match stream.framing {
                Framing::JsonLines | Framing::Tls => true,
                Framing::Http(mode) => requests::awaits_rest(&stream.bytes, mode),
                Framing::Pending | Framing::Binary => false,
            }
            && !stream.done
            && !stream.bytes.is_empty()
            && flow.limit(segment.direction) < MAX_SAMPLES_PER_DIRECTION
        {
            flow.sample_limit = (flow.sample_limit + step).min(MAX_SAMPLES_PER_DIRECTION);
            outcome.raised_limit = Some(flow.sample_limit);
        } else if last_sample && segment.transport == Transport::Tcp {
            flow.streams[segment.direction as usize].stop();
        }
        outcome
    }

    /// Opaque flows that have lived `min_age_ns`: each gets
    /// [`CADENCE_SAMPLES`] more samples per direction, once. Returns the
    /// flows and their new limits, for the kernel; at most `max`.
    ///
    /// Whether a flow is still open is not known here (a pool may push once
    /// a minute, and nothing is sampled in between): a closed one costs the
    /// kernel map update and nothing else.
    pub fn request_cadence(&mut self, now_ns: u64, min_age_ns: u64, max: usize) -> Vec<(u64, u32)> {
        let mut raised = Vec::new();
        // Looked at once each, oldest first: a flow whose content is known
        // by then stays known (opacity is decided by its first segments).
        // One without payload yet (a capture's handshake) waits its turn
        // again from its first payload.
        let mut later = Vec::new();
        while raised.len() < max {
            let Some(&(inserted_ns, key)) = self.cadence_queue.front() else {
                break;
            };
            if now_ns.saturating_sub(inserted_ns) < min_age_ns {
                break;
            }
            self.cadence_queue.pop_front();
            let Some(flow) = self.flows.get_mut(&key) else {
                continue;
            };
            if flow.cadence_since_ns.is_some() {
                continue;
            }
            match flow.first_payload_ns {
                Some(first) if now_ns.saturating_sub(first) >= min_age_ns => {}
                Some(first) => {
                    later.push((first, key));
                    continue;
                }
                None => {
                    later.push((now_ns, key));
                    continue;
                }
            }
            if !flow.is_opaque() {
                continue;
            }
            flow.cadence_since_ns = Some(now_ns);
            flow.sample_limit += CADENCE_SAMPLES;
            raised.push((key, flow.sample_limit));
        }
        self.cadence_queue.extend(later);
        raised
    }

    /// Starts keeping flow `key`'s timeline for the work-loop model; false
    /// when the table does not hold it or it was let go before.
    pub fn watch_work(&mut self, key: u64) -> bool {
        match self.flows.get_mut(&key) {
            Some(flow) if !flow.work_done => {
                flow.work_timeline.get_or_insert_default();
                true
            }
            _ => false,
        }
    }

    /// Stops keeping it, frees it, and never watches it again.
    pub fn unwatch_work(&mut self, key: u64) {
        if let Some(flow) = self.flows.get_mut(&key) {
            flow.work_timeline = None;
            flow.work_done = true;
        }
    }

    /// Starts a watched flow's timeline afresh (a new sampling window).
    pub fn restart_work_timeline(&mut self, key: u64) {
        if let Some(timeline) = self
            .flows
            .get_mut(&key)
            .and_then(|f| f.work_timeline.as_mut())
        {
            timeline.clear();
        }
    }

    /// The timeline kept for a watched flow, oldest first.
    pub fn work_timeline(&mut self, key: u64) -> Option<&[Beat]> {
        let timeline = self.flows.get_mut(&key)?.work_timeline.as_mut()?;
        Some(timeline.make_contiguous())
    }

    /// Raises flow `key`'s sample limit to `limit` (never lowers it);
    /// returns the new limit when it moved, for the kernel.
    pub fn raise_limit(&mut self, key: u64, limit: u32) -> Option<u32> {
        let flow = self.flows.get_mut(&key)?;
        (limit > flow.sample_limit).then(|| {
            flow.sample_limit = limit;
            limit
        })
    }

    /// Forgets flows not seen for `idle_ns`. It walks the whole table:
    /// callers space it out (the agent every few seconds).
    pub fn expire(&mut self, now_ns: u64, idle_ns: u64) {
        self.flows
            .retain(|_, f| now_ns.saturating_sub(f.last_seen_ns) < idle_ns);
        let flows = &self.flows;
        self.order.retain(|key| flows.contains_key(key));
    }
}

/// Once more samples were asked for, each new push re-measures the beat.
fn job_cadence(flow: &mut Flow, direction: Direction) -> Option<Observed> {
    if flow.cadence_reported || direction != Direction::Inbound {
        return None;
    }
    let since = flow.cadence_since_ns?;
    let start = flow.timeline.partition_point(|b| b.at_ns < since);
    let cadence = cadence::measure(&flow.timeline[start..])?;
    if !cadence.is_job_like() {
        return None;
    }
    flow.cadence_reported = true;
    Some(Observed {
        direction: Direction::Inbound,
        observation: Observation::JobCadence(cadence),
    })
}

fn on_datagram(segment: &Segment<'_>) -> SampleOutcome {
    let observation = if let Ok(message) = dns::parse(segment.payload) {
        Observation::Dns(message)
    } else if p2p::is_discv4_packet(segment.payload) {
        Observation::Discv4
    } else {
        return SampleOutcome::default();
    };
    SampleOutcome {
        observations: vec![Observed {
            direction: segment.direction,
            observation,
        }],
        ..SampleOutcome::default()
    }
}

/// `last_sample`: the kernel sends no more samples of this direction.
fn on_tcp(flow: &mut Flow, segment: &Segment<'_>, last_sample: bool) -> SampleOutcome {
    let dir = segment.direction;
    let index = dir as usize;
    let stream = &mut flow.streams[index];
    if stream.done {
        return SampleOutcome::default();
    }
    // A lost sample (ring buffer full) leaves a gap: bytes after it cannot
    // be joined to bytes before it.
    if segment.index != stream.next_segment {
        stream.stop();
        return SampleOutcome::default();
    }
    stream.next_segment = segment.index + 1;
    // A chunk of a long segment must follow the chunk before it; a new
    // segment must not start while the last one's rest is missing.
    if segment.offset != stream.resume_at.unwrap_or(0) {
        stream.stop();
        return SampleOutcome::default();
    }
    let payload = segment.payload;
    let end = segment.offset as usize + payload.len();
    let cut = end < segment.wire_len as usize;
    // The kernel sends the next chunk of a segment it copied a full chunk
    // of, while chunks and samples remain.
    let continues = cut
        && payload.len() == SAMPLE_LEN
        && end < CHUNKS_PER_SEGMENT as usize * SAMPLE_LEN
        && !last_sample;
    stream.resume_at = continues.then_some(end as u32);
    let pending = stream.framing == Framing::Pending;
    if pending {
        stream.first_segment_len = Some(segment.wire_len);
        stream.opens_with_high_bytes = payload.iter().any(|b| *b > 0x7f);
    }
    let partial = cut && !continues;
    let room = STREAM_LIMIT - stream.bytes.len();
    stream
        .bytes
        .extend_from_slice(&payload[..payload.len().min(room)]);
    let full = stream.bytes.len() >= STREAM_LIMIT;
    if pending {
        // From everything so far: blanks, or a request line's first bytes
        // written alone, leave it pending.
        stream.framing = framing_of(&stream.bytes);
    }

    let mut outcome = SampleOutcome::default();
    match stream.framing {
        Framing::Pending => {}
        Framing::JsonLines => {
            // A partial capture breaks line framing: classify what was
            // complete and stop following this direction.
            if partial {
                stream.bytes.push(b'\n');
            }
            let scan = stratum::scan(&stream.bytes, dir);
            let mut chain_calls = Vec::new();
            requests::json_lines(&stream.bytes[..scan.consumed], &mut chain_calls);
            stream.bytes.drain(..scan.consumed);
            outcome.rejections = scan.rejections;
            outcome.observations = scan
                .messages
                .into_iter()
                .map(Observation::Stratum)
                .chain(chain_calls)
                .map(|observation| Observed {
                    direction: dir,
                    observation,
                })
                .collect();
            if partial || full {
                stream.stop();
            }
        }
        Framing::Tls => match tls_hello(&stream.bytes) {
            // The server's certificate spills into the next sample: wait
            // for it while one can come (the hello is reported either way).
            Ok(Observation::TlsServerHello(hello))
                if hello.certificate_cut && !partial && !full && !last_sample => {}
            Ok(observation) => {
                outcome.observations.push(Observed {
                    direction: dir,
                    observation,
                });
                stream.stop();
            }
            Err(tls::TlsError::Incomplete) if !partial && !full => {}
            Err(_) => stream.stop(),
        },
        Framing::Http(mut mode) => {
            let followed = requests::follow(&mut stream.bytes, &mut mode);
            stream.framing = Framing::Http(mode);
            outcome
                .observations
                .extend(
                    followed
                        .observations
                        .into_iter()
                        .map(|observation| Observed {
                            direction: dir,
                            observation,
                        }),
                );
            if followed.lost || partial || full {
                stream.stop();
            }
        }
        Framing::Binary => {
            let first_len = stream.first_segment_len.unwrap_or(0) as usize;
            let bytes = &stream.bytes[..stream.bytes.len().min(OPENING_LIMIT)];
            let can_wait =
                !partial && bytes.len() < OPENING_LIMIT && segment.index + 1 < OPENING_SEGMENTS;
            match binary_opening(bytes, first_len, can_wait) {
                Opening::Found(observation) => {
                    outcome.observations.push(Observed {
                        direction: dir,
                        observation,
                    });
                    stream.stop();
                }
                Opening::NeedMore if can_wait => {}
                _ => stream.stop(),
            }
        }
    }
    if let Some(observed) = noise_opening(flow) {
        outcome.observations.push(observed);
    }
    for observed in &mut outcome.observations {
        if let Observation::P2p(p2p::Opening {
            network: p2p::Network::Levin { network_id },
            ..
        }) = &mut observed.observation
        {
            match network_id {
                Some(id) => flow.levin_network = Some(*id),
                None => *network_id = flow.levin_network,
            }
        }
    }
    outcome
}

fn framing_of(payload: &[u8]) -> Framing {
    match payload.iter().copied().find(|b| !b.is_ascii_whitespace()) {
        None => Framing::Pending,
        Some(b'{') => Framing::JsonLines,
        Some(_) if tls::is_handshake_record(payload) => Framing::Tls,
        Some(_) if http::opens_request(payload) => Framing::Http(requests::Mode::Http),
        // `POST /` written a few bytes at a time: wait for the request line
        // (a byte or two of some other protocol that happens to match costs
        // one more sample).
        Some(_) if http::may_open_request(payload) => Framing::Pending,
        Some(_) => Framing::Binary,
    }
}

fn tls_hello(bytes: &[u8]) -> Result<Observation, tls::TlsError> {
    match tls::parse_client_hello(bytes) {
        Ok(hello) => Ok(Observation::TlsClientHello(hello)),
        Err(tls::TlsError::Incomplete) => Err(tls::TlsError::Incomplete),
        Err(_) => tls::parse_server_hello(bytes).map(Observation::TlsServerHello),
    }
}

enum Opening {
    Found(Observation),
    NeedMore,
    Unknown,
}

/// Binary protocols recognisable from a direction's first bytes. A p2p
/// message that the next segment would prove (a Bitcoin-family `version`
/// with its checksum) or name (a Levin handshake's network id) is waited
/// for while `can_wait`.
fn binary_opening(bytes: &[u8], first_segment_len: usize, can_wait: bool) -> Opening {
    if can_wait && p2p::wants_more(bytes) {
        return Opening::NeedMore;
    }
    if let Some(opening) = p2p::identify(bytes, first_segment_len) {
        return Opening::Found(Observation::P2p(opening));
    }
    let mut need_more = false;
    match stratum_v2::parse_setup_connection(bytes) {
        Ok(setup) => return Opening::Found(Observation::StratumV2Setup(setup)),
        Err(stratum_v2::Sv2Error::Incomplete) => need_more = true,
        Err(_) => {}
    }
    match stratum_v2::parse_setup_connection_success(bytes) {
        Ok((version, _flags)) => {
            return Opening::Found(Observation::StratumV2SetupSuccess { version });
        }
        Err(stratum_v2::Sv2Error::Incomplete) => need_more = true,
        Err(_) => {}
    }
    match dns::parse_tcp(bytes) {
        Ok((message, _)) => return Opening::Found(Observation::Dns(message)),
        Err(dns::DnsError::Incomplete) => need_more = true,
        Err(_) => {}
    }
    if need_more {
        Opening::NeedMore
    } else {
        Opening::Unknown
    }
}

/// The stratum V2 Noise handshake, by the sizes of the two first segments:
/// checked once, when both directions opened with unrecognised bytes.
fn noise_opening(flow: &mut Flow) -> Option<Observed> {
    if flow.noise_checked {
        return None;
    }
    let [out, inb] = &flow.streams;
    let (Some(out_len), Some(in_len)) = (out.first_segment_len, inb.first_segment_len) else {
        return None;
    };
    flow.noise_checked = true;
    let random_looking = |s: &Stream| s.framing == Framing::Binary && s.opens_with_high_bytes;
    if !random_looking(out) || !random_looking(inb) {
        return None;
    }
    // The local process is the client of a flow it opened; of an adopted
    // flow it may be either.
    let client = if stratum_v2::is_noise_opening(out_len, in_len) {
        Direction::Outbound
    } else if flow.origin == Origin::Adopted && stratum_v2::is_noise_opening(in_len, out_len) {
        Direction::Inbound
    } else {
        return None;
    };
    Some(Observed {
        direction: client,
        observation: Observation::StratumV2Noise { client },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    mod direction {
        pub(super) const EGRESS: u8 = 0;
        pub(super) const INGRESS: u8 = 1;
    }

    #[test]
    fn a_full_table_under_churn_evicts_the_oldest_and_never_grows() {
        let cap = 64;
        let mut t = FlowTable::new(cap, 4);
        let slots = t.flows.capacity();
        for key in 0..(cap as u64) * 50 {
            t.on_open(key, key);
        }
        assert_eq!(t.len(), cap);
        assert_eq!(t.evicted, (cap as u64) * 49);
        assert!(t.get((cap as u64) * 50 - 1).is_some());
        assert!(t.get((cap as u64) * 49 - 1).is_none());
        // A table that grows in a storm keeps its old slots as free heap.
        assert_eq!(t.flows.capacity(), slots);
    }

    /// A TCP segment as a kernel sample would carry it.
    fn sample(key: u64, dir: u8, index: u8, payload: &[u8]) -> Segment<'_> {
        Segment {
            key,
            direction: if dir == direction::EGRESS {
                Direction::Outbound
            } else {
                Direction::Inbound
            },
            index: u16::from(index),
            timestamp_ns: 1,
            transport: Transport::Tcp,
            payload,
            wire_len: payload.len() as u32,
            offset: 0,
            endpoints: None,
        }
    }

    /// A TCP sample with a 16-bit index.
    fn sample_at(key: u64, dir: u8, index: u16, payload: &[u8]) -> Segment<'_> {
        Segment {
            index,
            ..sample(key, dir, 0, payload)
        }
    }

    fn stratum_messages(outcome: &SampleOutcome) -> usize {
        outcome
            .observations
            .iter()
            .filter(|o| matches!(o.observation, Observation::Stratum(_)))
            .count()
    }

    const SUBSCRIBE: &[u8] = b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n";

    #[test]
    fn a_line_split_over_two_samples_is_joined() {
        let mut t = FlowTable::new(8, 4);
        let first = t.on_segment(&sample(1, direction::EGRESS, 0, &SUBSCRIBE[..10]));
        assert_eq!(stratum_messages(&first), 0);
        let second = t.on_segment(&sample(1, direction::EGRESS, 1, &SUBSCRIBE[10..]));
        assert_eq!(stratum_messages(&second), 1);
    }

    fn p2p_openings(outcome: &SampleOutcome) -> Vec<p2p::Opening> {
        outcome
            .observations
            .iter()
            .filter_map(|o| match &o.observation {
                Observation::P2p(opening) => Some(opening.clone()),
                _ => None,
            })
            .collect()
    }

    /// A Bitcoin-family `version` on a magic no table lists: protocol
    /// version, services, time, two network addresses, nonce, user agent,
    /// start height, relay; header with the SHA256d checksum.
    fn unlisted_version() -> Vec<u8> {
        use sha2::{Digest as _, Sha256};
        let mut payload = 70_016i32.to_le_bytes().to_vec();
        payload.extend_from_slice(&[0; 8 + 8 + 26 + 26 + 8]);
        payload.push(4);
        payload.extend_from_slice(b"/x:1/"[..4].as_ref());
        payload.extend_from_slice(&[0, 0, 0, 0, 1]);
        let mut message = vec![0x5a, 0xa5, 0xc3, 0x3c];
        message.extend_from_slice(b"version\0\0\0\0\0");
        message.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        message.extend_from_slice(&Sha256::digest(Sha256::digest(&payload))[..4]);
        message.extend_from_slice(&payload);
        message
    }

    #[test]
    fn a_fork_version_split_over_two_samples_is_waited_for_and_proven() {
        let version = unlisted_version();
        let mut t = FlowTable::new(8, 4);
        let first = t.on_segment(&sample(1, direction::EGRESS, 0, &version[..30]));
        assert!(p2p_openings(&first).is_empty());
        let second = t.on_segment(&sample(1, direction::EGRESS, 1, &version[30..]));
        let [opening] = p2p_openings(&second).try_into().unwrap();
        assert_eq!(opening.message.as_deref(), Some("version"));
        assert_eq!(
            opening.network,
            p2p::Network::Bitcoin(p2p::Magic([0x5a, 0xa5, 0xc3, 0x3c]))
        );
        // Its checksum broken: nothing, once the bytes are all in.
        let mut forged = version.clone();
        forged[21] ^= 0xff;
        let _ = t.on_segment(&sample(2, direction::EGRESS, 0, &forged[..30]));
        let second = t.on_segment(&sample(2, direction::EGRESS, 1, &forged[30..]));
        assert!(p2p_openings(&second).is_empty());
    }

    /// A Levin message (epee levin_base.h `bucket_head2`).
    fn levin(command: u32, flags: u32, body: &[u8]) -> Vec<u8> {
        let mut out = vec![0x01, 0x21, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01];
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.push(u8::from(flags == 1));
        out.extend_from_slice(&command.to_le_bytes());
        out.extend_from_slice(&0i32.to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn a_levin_reply_that_opens_with_a_request_is_on_the_handshake_network() {
        const STORAGE: [u8; 9] = [0x01, 0x11, 0x01, 0x01, 0x01, 0x01, 0x02, 0x01, 0x01];
        let mut handshake = STORAGE.to_vec();
        handshake.extend_from_slice(b"\x08\x09node_data\x0c\x04\x0anetwork_id\x0a\x40");
        let id = [7u8; 16];
        handshake.extend_from_slice(&id);
        let mut t = FlowTable::new(8, 4);
        let inbound = t.on_segment(&sample(
            1,
            direction::INGRESS,
            0,
            &levin(1001, 1, &handshake),
        ));
        let [received] = p2p_openings(&inbound).try_into().unwrap();
        let named = p2p::Network::Levin {
            network_id: Some(p2p::NetworkId(id)),
        };
        assert_eq!(received.network, named);
        // The local node answers first with a pool request of its own.
        let outbound = t.on_segment(&sample(1, direction::EGRESS, 0, &levin(2010, 1, &STORAGE)));
        let [sent] = p2p_openings(&outbound).try_into().unwrap();
        assert_eq!(
            sent.message.as_deref(),
            Some("get_txpool_complement (2010)")
        );
        assert_eq!(sent.network, named);
        // Another flow has no network to inherit.
        let other = t.on_segment(&sample(2, direction::EGRESS, 0, &levin(2010, 1, &STORAGE)));
        let [alone] = p2p_openings(&other).try_into().unwrap();
        assert_eq!(alone.network, p2p::Network::Levin { network_id: None });
    }

    #[test]
    fn json_lines_inside_http_are_not_followed() {
        let mut t = FlowTable::new(8, 4);
        let mut response = b"HTTP/1.1 200 OK\r\nContent-Length: 48\r\n\r\n".to_vec();
        response.extend_from_slice(b"{\"id\":null,\"method\":\"mining.notify\",\"params\":[1]}\n");
        let first = t.on_segment(&sample(1, direction::INGRESS, 0, &response));
        assert!(first.observations.is_empty());
        let second = t.on_segment(&sample(1, direction::INGRESS, 1, SUBSCRIBE));
        assert!(second.observations.is_empty());
    }

    #[test]
    fn a_lost_sample_stops_the_stream_instead_of_splicing_it() {
        let mut t = FlowTable::new(8, 4);
        let _ = t.on_segment(&sample(1, direction::EGRESS, 0, &SUBSCRIBE[..10]));
        // Sample 1 was lost in the ring buffer.
        let after_gap = t.on_segment(&sample(1, direction::EGRESS, 2, &SUBSCRIBE[10..]));
        assert_eq!(stratum_messages(&after_gap), 0);
    }

    #[test]
    fn a_line_open_at_the_last_sample_is_held_open_up_to_the_cap() {
        let mut t = FlowTable::new(8, 2);
        let padded: Vec<u8> = std::iter::once(b'{')
            .chain(std::iter::repeat_n(b' ', 100))
            .collect();
        let mut exhausted_at = None;
        for index in 0..u16::MAX {
            if !t.admits(1, Direction::Outbound, index) {
                break;
            }
            let outcome = t.on_segment(&sample_at(1, direction::EGRESS, index, &padded));
            assert_eq!(
                outcome.held,
                index >= 1 && u32::from(index) + 1 < u32::from(HOLD_CAP)
            );
            if outcome.hold_exhausted {
                exhausted_at = Some(index);
            }
        }
        assert_eq!(exhausted_at, Some(HOLD_CAP - 1));
        assert!(!t.admits(1, Direction::Outbound, HOLD_CAP));
        // Held by the kernel: nothing to ask it for, and the other
        // direction keeps its own budget.
        assert_eq!(t.get(1).unwrap().sample_limit, 2);
        assert!(!t.admits(1, Direction::Inbound, 2));
    }

    /// Feeds `segments` to flow `key`'s outbound side as the kernel would:
    /// each in chunks, each chunk only where admitted. Returns the stratum
    /// messages seen.
    fn feed(t: &mut FlowTable, key: u64, segments: &[&[u8]]) -> Vec<stratum::Message> {
        let mut index = 0u16;
        let mut seen = Vec::new();
        for segment in segments {
            for (chunk, bytes) in segment.chunks(SAMPLE_LEN).enumerate() {
                if chunk as u32 >= CHUNKS_PER_SEGMENT || !t.admits(key, Direction::Outbound, index)
                {
                    break;
                }
                let outcome = t.on_segment(&Segment {
                    key,
                    direction: Direction::Outbound,
                    index,
                    timestamp_ns: 1,
                    transport: Transport::Tcp,
                    payload: bytes,
                    wire_len: segment.len() as u32,
                    offset: (chunk * SAMPLE_LEN) as u32,
                    endpoints: None,
                });
                index += 1;
                seen.extend(
                    outcome
                        .observations
                        .into_iter()
                        .filter_map(|o| match o.observation {
                            Observation::Stratum(m) => Some(m),
                            _ => None,
                        }),
                );
            }
        }
        seen
    }

    const LOGIN: &str = r#"{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A","pass":"x","agent":"XMRig/6.21.0","algo":["rx/0"]}}"#;

    fn logged_in(seen: &[stratum::Message]) -> bool {
        seen.iter().any(|m| m.decisive && m.method == "login")
    }

    #[test]
    fn blank_writes_before_a_login_do_not_spend_its_budget() {
        let mut t = FlowTable::new(8, 4);
        let login = format!("{LOGIN}\n");
        let mut segments: Vec<&[u8]> = vec![b" ", b"\n", b"\r\n", b"\t \t", b"\n\n"];
        segments.extend(std::iter::repeat_n(&b"  "[..], 20));
        segments.push(login.as_bytes());
        let seen = feed(&mut t, 1, &segments);
        assert!(logged_in(&seen), "{seen:?}");
        assert!(t.get(1).unwrap().sent_miner_call());
    }

    #[test]
    fn a_login_longer_than_a_sample_in_one_write_is_read_from_its_chunks() {
        for pad in [SAMPLE_LEN, 3 * SAMPLE_LEN + 17, 6 * 1024 + 100] {
            // A long rig id: the line is longer than one sample.
            let login = LOGIN.replace(
                r#""pass":"x""#,
                &format!(r#""pass":"x","rigid":"{}""#, "r".repeat(pad)),
            );
            let line = format!("{login}\n");
            let mut t = FlowTable::new(8, 4);
            let seen = feed(&mut t, 1, &[line.as_bytes()]);
            assert!(logged_in(&seen), "pad {pad}: {seen:?}");
            // The same after a first line, split in two writes, on a
            // smaller budget.
            let mut t = FlowTable::new(8, 2);
            let (head, tail) = line.as_bytes().split_at(100);
            let seen = feed(
                &mut t,
                2,
                &[b"{\"id\":0,\"method\":\"ping\"}\n", head, tail],
            );
            assert!(logged_in(&seen), "pad {pad} split: {seen:?}");
        }
    }

    #[test]
    fn chunks_that_do_not_follow_each_other_are_not_spliced() {
        let line = format!(
            "{}\n",
            LOGIN.replace(
                r#""pass":"x""#,
                &format!(r#""pass":"{}""#, "x".repeat(3000))
            )
        );
        let bytes = line.as_bytes();
        let chunk = |index: u16, offset: usize, wire: usize, payload| Segment {
            key: 1,
            direction: Direction::Outbound,
            index,
            timestamp_ns: 1,
            transport: Transport::Tcp,
            payload,
            wire_len: wire as u32,
            offset: offset as u32,
            endpoints: None,
        };
        let mut t = FlowTable::new(8, 4);
        let _ = t.on_segment(&chunk(0, 0, bytes.len(), &bytes[..SAMPLE_LEN]));
        // The segment's second chunk never came; the next sample starts a
        // new segment: the line cannot be completed.
        let next = t.on_segment(&chunk(1, 0, bytes.len() - SAMPLE_LEN, &bytes[SAMPLE_LEN..]));
        assert_eq!(stratum_messages(&next), 0);
        // A chunk at the wrong offset likewise.
        let mut t = FlowTable::new(8, 4);
        let _ = t.on_segment(&chunk(0, 0, bytes.len(), &bytes[..SAMPLE_LEN]));
        let wrong = t.on_segment(&chunk(1, 2 * SAMPLE_LEN, bytes.len(), &bytes[SAMPLE_LEN..]));
        assert_eq!(stratum_messages(&wrong), 0);
        // In order, the same bytes make the login.
        let mut t = FlowTable::new(8, 4);
        let _ = t.on_segment(&chunk(0, 0, bytes.len(), &bytes[..SAMPLE_LEN]));
        let whole = t.on_segment(&chunk(1, SAMPLE_LEN, bytes.len(), &bytes[SAMPLE_LEN..]));
        assert_eq!(stratum_messages(&whole), 1);
    }

    #[test]
    fn binary_tls_and_http_are_not_held_past_their_budget() {
        let random: Vec<u8> = (0..200u8)
            .map(|i| i.wrapping_mul(151).wrapping_add(0x81))
            .collect();
        let mut blank_then_random = vec![b' '];
        blank_then_random.extend_from_slice(&random);
        let openings: [&[u8]; 4] = [
            &random,
            &blank_then_random,
            b"GET / HTTP/1.1\r\nHost: x\r\n",
            &[0x17, 0x03, 0x03, 0x00, 0x10, 0xaa],
        ];
        for opening in openings {
            let mut t = FlowTable::new(8, 2);
            for index in 0..2 {
                let outcome = t.on_segment(&sample(1, direction::EGRESS, index, opening));
                assert!(!outcome.held, "{opening:?}");
            }
            assert!(!t.admits(1, Direction::Outbound, 2), "{opening:?}");
        }
    }

    #[test]
    fn only_the_local_side_s_own_miner_call_makes_the_pool_side_about_it() {
        let notify = b"{\"id\":null,\"method\":\"mining.notify\",\"params\":[\"bf\",\"00\"]}\n";
        let wallet = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"getbalance\",\"params\":[]}\n";
        let mut t = FlowTable::new(8, 4);
        // The pool speaks first; the client is a wallet.
        let _ = t.on_segment(&sample(1, direction::INGRESS, 0, notify));
        let _ = t.on_segment(&sample(1, direction::EGRESS, 0, wallet));
        assert!(!t.get(1).unwrap().sent_miner_call());
        // A server sending a miner's call proves nothing of the client.
        let _ = t.on_segment(&sample(1, direction::INGRESS, 1, SUBSCRIBE));
        assert!(!t.get(1).unwrap().sent_miner_call());
        // The client subscribes: from now on.
        let _ = t.on_segment(&sample(1, direction::EGRESS, 1, SUBSCRIBE));
        assert!(t.get(1).unwrap().sent_miner_call());
    }

    #[test]
    fn admits_says_what_the_kernel_samples_as_the_limit_moves() {
        let mut t = FlowTable::new(8, 4);
        let out = Direction::Outbound;
        // Unknown: the budget of the adopted flow its segment would open.
        assert!(t.admits(1, out, 0));
        assert!(t.admits(1, out, ADOPTED_SAMPLE_SEGMENTS as u16 - 1));
        assert!(!t.admits(1, out, ADOPTED_SAMPLE_SEGMENTS as u16));
        // Opened: the full budget.
        t.on_open(2, 1);
        assert!(t.admits(2, out, 3));
        assert!(!t.admits(2, out, 4));
        // A line open at the last sample: the kernel holds the direction
        // open, one sample at a time; the other direction keeps its limit.
        let _ = t.on_segment(&sample(2, direction::EGRESS, 0, b"{"));
        let _ = t.on_segment(&sample(2, direction::EGRESS, 1, b" "));
        let _ = t.on_segment(&sample(2, direction::EGRESS, 2, b" "));
        let held = t.on_segment(&sample(2, direction::EGRESS, 3, b" "));
        assert!(held.held && held.raised_limit.is_none());
        assert!(t.admits(2, out, 4));
        assert!(!t.admits(2, out, 5));
        assert!(!t.admits(2, Direction::Inbound, 4));
        // A TLS hello still open at the last sample raises the flow's limit.
        let hello: &[u8] = &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc];
        t.on_open(4, 1);
        for index in 0..4 {
            let payload: &[u8] = if index == 0 { hello } else { &[0x00; 8] };
            let outcome = t.on_segment(&sample(4, direction::EGRESS, index, payload));
            if index == 3 {
                assert_eq!(outcome.raised_limit, Some(8));
            }
        }
        assert!(t.admits(4, out, 7));
        assert!(t.admits(4, Direction::Inbound, 7));
        assert!(!t.admits(4, out, 8));
        // The limit is the flow's, both directions alike.
        let _ = t.on_segment(&sample(3, direction::INGRESS, 0, b"x"));
        assert_eq!(t.admits(3, out, 1), ADOPTED_SAMPLE_SEGMENTS > 1);
        assert!(!t.admits(3, out, ADOPTED_SAMPLE_SEGMENTS as u16));
    }

    #[test]
    fn a_client_hello_split_over_more_segments_than_sampled_is_still_read() {
        let hello: &[u8] = include_bytes!("../../fuzz/seeds/tls_hello/chrome_like_client_hello");
        let mut t = FlowTable::new(8, 4);
        let chunk = hello.len().div_ceil(6);
        let mut seen = Vec::new();
        let mut limit = 4;
        for (i, piece) in hello.chunks(chunk).enumerate() {
            // The kernel sends nothing past the limit.
            assert!((i as u32) < limit, "segment {i} past the limit {limit}");
            let outcome = t.on_segment(&sample(1, direction::EGRESS, i as u8, piece));
            if let Some(raised) = outcome.raised_limit {
                limit = raised;
            }
            seen.extend(outcome.observations);
        }
        assert!(limit > 4, "the limit was not raised");
        assert!(
            seen.iter()
                .any(|o| matches!(o.observation, Observation::TlsClientHello(_))),
            "{seen:?}"
        );
    }

    #[test]
    fn only_random_looking_openings_both_ways_count_as_encrypted_binary() {
        let mut t = FlowTable::new(8, 4);
        let key: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(151)).collect();
        // An encrypted handshake: keys both ways.
        let _ = t.on_segment(&sample(1, direction::EGRESS, 0, &key));
        let _ = t.on_segment(&sample(1, direction::INGRESS, 0, &key));
        assert!(t.get(1).unwrap().opens_random_binary());
        // Redis, SSH: binary to the framing, but plain text.
        let _ = t.on_segment(&sample(2, direction::EGRESS, 0, b"*1\r\n$4\r\nPING\r\n"));
        let _ = t.on_segment(&sample(2, direction::INGRESS, 0, b"+PONG\r\n"));
        assert!(!t.get(2).unwrap().opens_random_binary());
        let _ = t.on_segment(&sample(3, direction::EGRESS, 0, b"SSH-2.0-OpenSSH_9.2\r\n"));
        let _ = t.on_segment(&sample(3, direction::INGRESS, 0, &key));
        assert!(!t.get(3).unwrap().opens_random_binary());
        // One direction only: not yet.
        let _ = t.on_segment(&sample(4, direction::EGRESS, 0, &key));
        assert!(!t.get(4).unwrap().opens_random_binary());
    }

    #[test]
    fn cadence_looks_at_each_flow_once_oldest_first_and_at_a_silent_one_once_it_speaks() {
        const S: u64 = 1_000_000_000;
        let mut t = FlowTable::new(64, 4);
        let random: Vec<u8> = (0..200u8).map(|i| i.wrapping_mul(151)).collect();
        // A capture's flow: open from its handshake, no payload yet.
        t.on_open(100, 0);
        for key in 1..=5u64 {
            let mut segment = sample(key, direction::EGRESS, 0, &random);
            segment.timestamp_ns = key * S / 10;
            let _ = t.on_segment(&segment);
        }
        let keys = |raised: Vec<(u64, u32)>| raised.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(keys(t.request_cadence(6 * S, 5 * S, 2)), [1, 2]);
        assert_eq!(keys(t.request_cadence(6 * S, 5 * S, 2)), [3, 4]);
        assert_eq!(keys(t.request_cadence(6 * S, 5 * S, 2)), [5]);
        assert!(t.request_cadence(6 * S, 5 * S, 2).is_empty(), "each once");
        // The silent flow speaks at 7 s: it is old enough 5 s after that.
        let mut segment = sample(100, direction::EGRESS, 0, &random);
        segment.timestamp_ns = 7 * S;
        let _ = t.on_segment(&segment);
        assert!(t.request_cadence(11 * S, 5 * S, 16).is_empty());
        assert_eq!(keys(t.request_cadence(12 * S, 5 * S, 16)), [100]);
        assert!(t.request_cadence(30 * S, 5 * S, 16).is_empty());
    }

    #[test]
    fn an_opaque_flow_gets_more_samples_and_its_push_beat_is_measured() {
        const S: u64 = 1_000_000_000;
        let mut t = FlowTable::new(8, 4);
        fn at(mut e: Segment<'_>, ts: u64) -> Segment<'_> {
            e.timestamp_ns = ts;
            e
        }
        let random: Vec<u8> = (0..200u8).map(|i| i.wrapping_mul(151)).collect();
        let _ = t.on_segment(&at(sample(1, direction::EGRESS, 0, &random), S));
        let _ = t.on_segment(&at(sample(1, direction::INGRESS, 0, &random), S));
        // A JSON-lines flow is readable: never asked for cadence.
        let _ = t.on_segment(&at(sample(2, direction::EGRESS, 0, SUBSCRIBE), S));
        assert!(t.request_cadence(3 * S, 5 * S, 16).is_empty(), "too young");
        assert_eq!(
            t.request_cadence(6 * S, 5 * S, 16),
            [(1, ADOPTED_SAMPLE_SEGMENTS + CADENCE_SAMPLES)]
        );
        assert!(t.request_cadence(7 * S, 5 * S, 16).is_empty(), "asked once");
        let mut found = None;
        for i in 1..=8u8 {
            let push = at(
                sample(1, direction::INGRESS, i, &random[..150]),
                6 * S + u64::from(i) * S,
            );
            let outcome = t.on_segment(&push);
            if let Some(o) = outcome
                .observations
                .iter()
                .find(|o| matches!(o.observation, Observation::JobCadence(_)))
            {
                assert!(found.is_none(), "reported once");
                found = Some((i, o.clone()));
            }
        }
        let (at_push, _) = found.expect("a regular unanswered beat");
        assert_eq!(usize::from(at_push), cadence::MIN_PUSHES);
    }

    #[test]
    fn the_oldest_flow_makes_room() {
        let mut t = FlowTable::new(2, 4);
        for cookie in 1..=3 {
            let _ = t.on_segment(&sample(cookie, direction::EGRESS, 0, b"{"));
        }
        assert_eq!(t.len(), 2);
        assert!(t.get(1).is_none() && t.get(3).is_some());
        assert_eq!(t.evicted, 1);
    }

    #[test]
    fn a_noise_sized_opening_is_recognised_once_both_sides_spoke() {
        let mut t = FlowTable::new(8, 4);
        let client: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37)).collect();
        let server: Vec<u8> = (0..234u8).map(|i| i.wrapping_mul(91)).collect();
        let first = t.on_segment(&sample(1, direction::EGRESS, 0, &client));
        assert!(first.observations.is_empty());
        let answer = t.on_segment(&sample(1, direction::INGRESS, 0, &server));
        assert!(matches!(
            answer.observations.as_slice(),
            [Observed {
                observation: Observation::StratumV2Noise {
                    client: Direction::Outbound
                },
                ..
            }]
        ));
        // An HTTP exchange of the same sizes is not.
        let mut request = b"GET / HTTP/1.1\r\n".to_vec();
        request.resize(64, b'a');
        let _ = t.on_segment(&sample(2, direction::EGRESS, 0, &request));
        let reply = t.on_segment(&sample(2, direction::INGRESS, 0, &server));
        assert!(reply.observations.is_empty());
    }
}
