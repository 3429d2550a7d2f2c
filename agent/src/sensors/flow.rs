//! The flow sensor's events, handed to the flow model of the classify crate
//! ([`FlowTable`]), which `assay pcap` shares: a payload sample becomes a
//! [`Segment`], and the first sample of a flow a local process opened names
//! that process, its owner (the kernel keeps the owner from the connect in
//! the socket's storage and sends it once, with the first sample, rather
//! than in a record of its own).

use assay_classify::{
    Direction,
    flow::{FlowTable, Owner, Role, SampleOutcome, Segment, Transport},
};
use assay_common::event::{SampleEvent, direction};

use crate::sensors::decode::{c_string, sample_endpoints, sample_payload};

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

/// The segment a kernel sample carries. `None` for a transport the flow
/// sensor does not sample.
pub fn segment_of(event: &SampleEvent) -> Option<Segment<'_>> {
    let transport = match event.protocol {
        IPPROTO_TCP => Transport::Tcp,
        IPPROTO_UDP => Transport::Udp,
        _ => return None,
    };
    Some(Segment {
        key: event.cookie,
        direction: if event.direction == direction::EGRESS {
            Direction::Outbound
        } else {
            Direction::Inbound
        },
        index: u16::from(event.segment),
        timestamp_ns: event.header.timestamp_ns,
        transport,
        payload: sample_payload(event),
        wire_len: event.payload_len,
        offset: event.offset,
        endpoints: sample_endpoints(event),
    })
}

/// The process that opened the sample's flow, when this is the sample that
/// names it (the flow's first): `None` on every other sample.
pub fn owner_of(event: &SampleEvent) -> Option<Owner> {
    if event.header.tgid == 0 {
        return None;
    }
    Some(Owner {
        pid: event.header.pid,
        tgid: event.header.tgid,
        comm: c_string(&event.comm),
        cgroup_id: event.header.cgroup_id,
        role: Role::Client,
    })
}

/// Records the owner a flow's first sample names, as of when it connected,
/// with the remote end the sample's packet shows.
pub fn on_owner(flows: &mut FlowTable, event: &SampleEvent, owner: Owner) {
    let remote = sample_endpoints(event).map(|(source, destination)| {
        if event.direction == direction::EGRESS {
            destination
        } else {
            source
        }
    });
    let opened_ns = if event.opened_ns == 0 {
        event.header.timestamp_ns
    } else {
        event.opened_ns
    };
    flows.on_connect(event.cookie, opened_ns, owner, remote);
}

/// A payload sample, classified by the flow model.
pub fn on_sample(flows: &mut FlowTable, event: &SampleEvent) -> SampleOutcome {
    match segment_of(event) {
        Some(segment) => flows.on_segment(&segment),
        None => SampleOutcome::default(),
    }
}

/// Asks the kernel to sample more of a flow (assay_common::flow): the new
/// limit goes into `REARM` by socket cookie, then the generation in
/// `REARM_GEN` moves so that finished directions look again. User space
/// never writes the kernel's per-socket state itself.
pub struct Rearm {
    limits: aya::maps::HashMap<aya::maps::MapData, u64, u32>,
    generation: aya::maps::Array<aya::maps::MapData, u32>,
    next: u32,
    /// Requests the kernel's map refused.
    pub errors: u64,
}

impl Rearm {
    /// From the loaded object's `REARM` and `REARM_GEN` maps.
    pub fn new(ebpf: &mut aya::Ebpf) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let limits = ebpf.take_map("REARM").context("map REARM missing")?;
        let generation = ebpf
            .take_map("REARM_GEN")
            .context("map REARM_GEN missing")?;
        Ok(Self {
            limits: aya::maps::HashMap::try_from(limits)?,
            generation: aya::maps::Array::try_from(generation)?,
            next: 1,
            errors: 0,
        })
    }

    /// Lets flow `cookie` take up to `limit` samples per direction.
    pub fn raise(&mut self, cookie: u64, limit: u32) {
        let stored = self
            .limits
            .insert(cookie, limit, 0)
            .and_then(|()| self.generation.set(0, self.next, 0));
        match stored {
            Ok(()) => self.next = self.next.wrapping_add(1).max(1),
            Err(err) => {
                self.errors += 1;
                tracing::debug!(cookie, "cannot raise the flow's sample limit: {err}");
            }
        }
    }
}
