//! User-space flow table: joins connect events (who) with payload samples
//! (what), keyed by socket cookie, and runs the content classifiers over the
//! bytes of each direction as they arrive.

use std::{collections::HashMap, net::SocketAddr};

use assay_common::event::{ConnectEvent, SampleEvent, direction};

use crate::{
    classify::{Direction, stratum},
    events::{c_string, connect_destination, sample_endpoints, sample_payload},
};

/// Bytes kept per direction of a flow for classification.
pub const STREAM_LIMIT: usize = 8 * 1024;

/// Who opened the flow, from the connect hook.
#[derive(Debug, Clone)]
pub struct Owner {
    pub pid: u32,
    pub tgid: u32,
    pub comm: String,
    pub cgroup_id: u64,
}

#[derive(Debug, Default)]
struct Stream {
    bytes: Vec<u8>,
    /// Set once the stream was cut at [`STREAM_LIMIT`] or lost a sample.
    broken: bool,
}

#[derive(Debug)]
pub struct Flow {
    pub owner: Option<Owner>,
    pub remote: Option<SocketAddr>,
    pub local: Option<SocketAddr>,
    /// Kernel timestamp of the first payload seen in either direction.
    pub first_payload_ns: Option<u64>,
    pub last_seen_ns: u64,
    streams: [Stream; 2],
    /// Stratum messages already reported for this flow.
    pub reported: bool,
}

/// What a new sample told us.
#[derive(Debug, Default)]
pub struct SampleOutcome {
    pub messages: Vec<stratum::Message>,
    pub rejections: Vec<stratum::Rejection>,
}

#[derive(Debug)]
pub struct FlowTable {
    flows: HashMap<u64, Flow>,
    capacity: usize,
    pub evicted: u64,
}

impl FlowTable {
    pub fn new(capacity: usize) -> Self {
        Self {
            flows: HashMap::new(),
            capacity,
            evicted: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    pub fn get(&self, cookie: u64) -> Option<&Flow> {
        self.flows.get(&cookie)
    }

    pub fn get_mut(&mut self, cookie: u64) -> Option<&mut Flow> {
        self.flows.get_mut(&cookie)
    }

    fn entry(&mut self, cookie: u64, now_ns: u64) -> &mut Flow {
        if !self.flows.contains_key(&cookie) && self.flows.len() >= self.capacity {
            self.evict_oldest();
        }
        self.flows.entry(cookie).or_insert_with(|| Flow {
            owner: None,
            remote: None,
            local: None,
            first_payload_ns: None,
            last_seen_ns: now_ns,
            streams: Default::default(),
            reported: false,
        })
    }

    fn evict_oldest(&mut self) {
        if let Some((&cookie, _)) = self.flows.iter().min_by_key(|(_, f)| f.last_seen_ns) {
            self.flows.remove(&cookie);
            self.evicted += 1;
        }
    }

    pub fn on_connect(&mut self, event: &ConnectEvent) {
        let flow = self.entry(event.cookie, event.header.timestamp_ns);
        flow.owner = Some(Owner {
            pid: event.header.pid,
            tgid: event.header.tgid,
            comm: c_string(&event.comm),
            cgroup_id: event.header.cgroup_id,
        });
        flow.remote = connect_destination(event);
    }

    /// Appends a sample to its stream and classifies what is new.
    pub fn on_sample(&mut self, event: &SampleEvent) -> SampleOutcome {
        let ts = event.header.timestamp_ns;
        let flow = self.entry(event.cookie, ts);
        flow.last_seen_ns = ts;
        flow.first_payload_ns.get_or_insert(ts);
        let egress = event.direction == direction::EGRESS;
        if let Some((src, dst)) = sample_endpoints(event) {
            let (local, remote) = if egress { (src, dst) } else { (dst, src) };
            flow.local = Some(local);
            flow.remote.get_or_insert(remote);
        }
        let (index, dir) = if egress {
            (0, Direction::Outbound)
        } else {
            (1, Direction::Inbound)
        };
        let stream = &mut flow.streams[index];
        if stream.broken {
            return SampleOutcome::default();
        }
        let payload = sample_payload(event);
        // A partial capture breaks line framing: classify what was complete
        // and stop following this direction.
        let partial = (event.captured as usize) < event.payload_len as usize;
        let room = STREAM_LIMIT - stream.bytes.len();
        stream
            .bytes
            .extend_from_slice(&payload[..payload.len().min(room)]);
        if partial {
            stream.bytes.push(b'\n');
        }
        let scan = stratum::scan(&stream.bytes, dir);
        stream.bytes.drain(..scan.consumed);
        if partial || stream.bytes.len() >= STREAM_LIMIT {
            stream.broken = true;
            stream.bytes = Vec::new();
        }
        SampleOutcome {
            messages: scan.messages,
            rejections: scan.rejections,
        }
    }

    /// Forgets flows not seen for `idle_ns`.
    pub fn expire(&mut self, now_ns: u64, idle_ns: u64) {
        self.flows
            .retain(|_, f| now_ns.saturating_sub(f.last_seen_ns) < idle_ns);
    }
}
