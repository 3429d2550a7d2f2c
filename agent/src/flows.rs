//! User-space flow table: joins connect events (who) with payload samples
//! (what), keyed by socket cookie, and runs the content classifiers over the
//! bytes of each direction as they arrive.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
};

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
    /// Set once the stream is no longer followed: cut at [`STREAM_LIMIT`],
    /// a partial capture, its last sample taken, or not JSON lines.
    done: bool,
    /// What the direction's first payload byte (after whitespace) was.
    first_byte: Option<u8>,
    /// Index of the next sample expected from the kernel.
    next_segment: u16,
}

impl Stream {
    /// Stratum is newline-delimited JSON from the first byte: a stream
    /// that opens with anything else (an HTTP request or status line, a TLS
    /// record) is not followed, so JSON lines inside HTTP bodies are not
    /// mistaken for it.
    fn is_json_lines(&self) -> bool {
        self.first_byte == Some(b'{')
    }
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
}

impl Flow {
    /// True when the local process's own bytes are JSON lines.
    pub fn outbound_is_json_lines(&self) -> bool {
        self.streams[0].is_json_lines()
    }
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
    /// Cookies in insertion order, for O(1) eviction of the oldest; may
    /// hold cookies already expired (skipped when met).
    order: VecDeque<u64>,
    capacity: usize,
    /// Samples the kernel takes per direction: after the last one a stream
    /// is released.
    samples_per_direction: u32,
    pub evicted: u64,
}

impl FlowTable {
    pub fn new(capacity: usize, samples_per_direction: u32) -> Self {
        Self {
            flows: HashMap::new(),
            order: VecDeque::new(),
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

    pub fn get(&self, cookie: u64) -> Option<&Flow> {
        self.flows.get(&cookie)
    }

    fn entry(&mut self, cookie: u64, now_ns: u64) -> &mut Flow {
        if !self.flows.contains_key(&cookie) {
            while self.flows.len() >= self.capacity {
                let Some(oldest) = self.order.pop_front() else {
                    break;
                };
                if self.flows.remove(&oldest).is_some() {
                    self.evicted += 1;
                }
            }
            self.order.push_back(cookie);
        }
        self.flows.entry(cookie).or_insert_with(|| Flow {
            owner: None,
            remote: None,
            local: None,
            first_payload_ns: None,
            last_seen_ns: now_ns,
            streams: Default::default(),
        })
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
        let last_sample = u32::from(event.segment) + 1 >= self.samples_per_direction;
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
        if stream.done {
            return SampleOutcome::default();
        }
        let payload = sample_payload(event);
        if stream.first_byte.is_none() {
            stream.first_byte = payload.iter().copied().find(|b| !b.is_ascii_whitespace());
        }
        // A lost sample (ring buffer full) leaves a gap: bytes after it
        // cannot be joined to bytes before it.
        let gap = u16::from(event.segment) != stream.next_segment;
        stream.next_segment = u16::from(event.segment) + 1;
        if !stream.is_json_lines() || gap {
            stream.done = true;
            stream.bytes = Vec::new();
            return SampleOutcome::default();
        }
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
        if partial || last_sample || stream.bytes.len() >= STREAM_LIMIT {
            stream.done = true;
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
        let flows = &self.flows;
        self.order.retain(|cookie| flows.contains_key(cookie));
    }
}

#[cfg(test)]
mod tests {
    use assay_common::event::{EventHeader, SAMPLE_LEN, kind};

    use super::*;

    fn sample(cookie: u64, dir: u8, segment: u8, payload: &[u8]) -> SampleEvent {
        let mut data = [0u8; SAMPLE_LEN];
        data[..payload.len()].copy_from_slice(payload);
        SampleEvent {
            header: EventHeader {
                kind: kind::FLOW_SAMPLE,
                size: size_of::<SampleEvent>() as u32,
                timestamp_ns: 1,
                pid: 0,
                tgid: 0,
                cgroup_id: 0,
            },
            cookie,
            direction: dir,
            segment,
            ip_version: 4,
            protocol: 6,
            payload_len: payload.len() as u32,
            captured: payload.len() as u32,
            sport: 1,
            dport: 2,
            saddr: [0; 16],
            daddr: [0; 16],
            _pad: 0,
            data,
        }
    }

    const SUBSCRIBE: &[u8] = b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n";

    #[test]
    fn a_line_split_over_two_samples_is_joined() {
        let mut t = FlowTable::new(8, 4);
        assert!(
            t.on_sample(&sample(1, direction::EGRESS, 0, &SUBSCRIBE[..10]))
                .messages
                .is_empty()
        );
        assert_eq!(
            t.on_sample(&sample(1, direction::EGRESS, 1, &SUBSCRIBE[10..]))
                .messages
                .len(),
            1
        );
    }

    #[test]
    fn json_lines_inside_http_are_not_followed() {
        let mut t = FlowTable::new(8, 4);
        let mut response = b"HTTP/1.1 200 OK\r\nContent-Length: 48\r\n\r\n".to_vec();
        response.extend_from_slice(b"{\"id\":null,\"method\":\"mining.notify\",\"params\":[1]}\n");
        assert!(
            t.on_sample(&sample(1, direction::INGRESS, 0, &response))
                .messages
                .is_empty()
        );
        assert!(
            t.on_sample(&sample(1, direction::INGRESS, 1, SUBSCRIBE))
                .messages
                .is_empty()
        );
    }

    #[test]
    fn a_lost_sample_stops_the_stream_instead_of_splicing_it() {
        let mut t = FlowTable::new(8, 4);
        let _ = t.on_sample(&sample(1, direction::EGRESS, 0, &SUBSCRIBE[..10]));
        // Sample 1 was lost in the ring buffer.
        assert!(
            t.on_sample(&sample(1, direction::EGRESS, 2, &SUBSCRIBE[10..]))
                .messages
                .is_empty()
        );
    }

    #[test]
    fn the_oldest_flow_makes_room() {
        let mut t = FlowTable::new(2, 4);
        for cookie in 1..=3 {
            let _ = t.on_sample(&sample(cookie, direction::EGRESS, 0, b"{"));
        }
        assert_eq!(t.len(), 2);
        assert!(t.get(1).is_none() && t.get(3).is_some());
        assert_eq!(t.evicted, 1);
    }
}
