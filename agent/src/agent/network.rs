//! Flow samples to evidence: the flow model classifies, the owner of the
//! flow is found (at once from its first sample, which names the process
//! that connected it, or for an adopted flow from a socket-table snapshot
//! taken on a worker), and the observation becomes evidence about that
//! process, with the resolver and peer books as context.

use assay_classify::{
    Direction,
    flow::{Observation, Observed, Origin, Owner, Role},
    p2p,
};
use assay_common::event::SampleEvent;
use tracing::debug;

use super::{state::Agent, work};
use crate::{
    evidence::{
        Evidence,
        network::{self, FlowFacts},
    },
    procfs::sockets,
    sensors::flow as flow_sensor,
    tables::{processes::ProcessInfo, workload::Workload},
    time::{monotonic_ns, wall_of_monotonic},
};

/// Ticks an observation on an adopted flow waits for its owner.
const OWNER_LOOKUP_ATTEMPTS: u32 = 5;
/// Observations waiting for their flow's owner, at most.
const MAX_PENDING_OBSERVATIONS: usize = 1024;

impl Agent {
    pub(super) fn on_sample(&mut self, sample: &SampleEvent) {
        let outcome = flow_sensor::on_sample(&mut self.tables.flows, sample);
        self.stats.stratum_rejections += outcome.rejections.len() as u64;
        self.stats.flow_samples_held += u64::from(outcome.held);
        if outcome.hold_exhausted {
            self.stats.flow_holds_exhausted += 1;
            debug!(
                cookie = sample.cookie,
                "a flow direction reached the hold cap still blank or with a line open"
            );
        }
        for rejection in outcome.rejections {
            debug!(
                cookie = sample.cookie,
                "stratum-looking line rejected: {rejection}"
            );
        }
        if let Some(limit) = outcome.raised_limit {
            self.raise_sample_limit(sample.cookie, limit);
        }
        for observed in outcome.observations {
            self.on_observation(sample.cookie, observed);
        }
    }

    /// Lets the kernel sample more of a flow (a JSON line still open at its
    /// last sample, or an opaque flow's cadence).
    pub(super) fn raise_sample_limit(&mut self, cookie: u64, limit: u32) {
        if let Some(rearm) = self.rearm.as_mut() {
            rearm.raise(cookie, limit);
        }
    }

    fn on_observation(&mut self, cookie: u64, observed: Observed) {
        // A query a local server received: if the same name leaves the host
        // next, it is that server forwarding it, not asking for itself.
        if let Observation::Dns(message) = &observed.observation
            && observed.direction == Direction::Inbound
            && !message.is_response
        {
            self.tables.resolvers.query_received(
                message.questions.iter().map(|q| q.name.as_str()),
                monotonic_ns(),
            );
        }
        self.attribute_observation(cookie, observed, None, 0);
    }

    /// A DNS message on a flow of `tgid` with `client`: a query it received
    /// or an answer it sent. Answers to distinct others earn it being taken
    /// for a resolver ([`crate::tables::resolvers`]).
    fn note_resolver_work(
        &mut self,
        tgid: u32,
        direction: Direction,
        message: &assay_classify::dns::Message,
        client: std::net::SocketAddr,
    ) {
        let resolvers = &mut self.tables.resolvers;
        match (direction, message.is_response) {
            (Direction::Inbound, false) => resolvers.query_received_by(tgid, client, message.id),
            (Direction::Outbound, true) if resolvers.answered(tgid, client, message.id) => {
                if let Some(identity) = self.client_identity(tgid, client) {
                    self.tables.resolvers.credit(tgid, identity);
                }
            }
            _ => {}
        }
    }

    /// Who `client` is, as the resolver `tgid` serves it: another host, or
    /// the workload of the local process that owns the client's socket.
    /// None when that is the resolver's own workload (a process answering
    /// itself or its children earns nothing) or the owner is unknown.
    fn client_identity(&mut self, tgid: u32, client: std::net::SocketAddr) -> Option<String> {
        let local = client.ip().is_loopback()
            || self
                .tables
                .flows
                .iter()
                .any(|(_, f)| f.local.is_some_and(|l| l.ip() == client.ip()));
        if !local {
            return Some(format!("host {}", client.ip()));
        }
        let owner = self
            .tables
            .flows
            .iter()
            .find(|(_, f)| f.local == Some(client))
            .and_then(|(_, f)| f.owner.as_ref())
            .map(|o| o.tgid)?;
        if owner == tgid {
            return None;
        }
        let workload_of = |processes: &mut crate::tables::processes::ProcessTable, pid| {
            processes
                .get_for_evidence(pid)
                .map(ProcessInfo::workload)
                .unwrap_or(Workload::Process { tgid: pid })
        };
        let theirs = workload_of(&mut self.tables.processes, owner);
        let ours = workload_of(&mut self.tables.processes, tgid);
        (theirs != ours).then(|| format!("workload {theirs}"))
    }

    /// The owner of a flow; for a flow the kernel adopted, looked up in
    /// the socket tables (until found or given up on).
    fn flow_owner(
        &mut self,
        cookie: u64,
        sockets: Option<&sockets::Snapshot>,
        last_try: bool,
    ) -> Option<Owner> {
        let flow = self.tables.flows.get(cookie)?;
        if flow.owner.is_some() || flow.owner_looked_up {
            return flow.owner.clone();
        }
        let sockets = sockets?;
        let (Some(transport), Some(local), Some(remote)) =
            (flow.transport, flow.local, flow.remote)
        else {
            return None;
        };
        let owner = sockets.owner(transport, local, remote).map(|found| {
            let comm = self
                .tables
                .processes
                .get_or_load(found.tgid)
                .map(|p| p.comm.clone())
                .unwrap_or_default();
            Owner {
                pid: found.tgid,
                tgid: found.tgid,
                comm,
                cgroup_id: 0,
                role: found.role,
            }
        });
        if owner.is_some() || last_try {
            self.tables.flows.set_owner(cookie, owner.clone());
        }
        owner
    }

    /// A flow that lived [`assay_classify::flow::CADENCE_AFTER_NS`] with
    /// unrecognised binary content, opened by a known process: one more
    /// distinct peer for that process's fan-out.
    pub(super) fn count_binary_peer(&mut self, cookie: u64) {
        let Some(flow) = self.tables.flows.get(cookie) else {
            return;
        };
        let (Some(owner), Some(remote)) = (flow.owner.clone(), flow.remote) else {
            return;
        };
        if flow.protocol.is_some() || !flow.opens_random_binary() {
            return;
        }
        let facts = FlowFacts::of(&owner, flow);
        let first_payload_ns = flow.first_payload_ns;
        let flows = &self.tables.flows;
        let Some(count) = self
            .tables
            .peers
            .add_binary(owner.tgid, remote, cookie, |key| flows.get(key).is_some())
        else {
            return;
        };
        // Once, when the threshold is crossed: more peers are more of the
        // same.
        if count != network::GOSSIP_PEERS {
            return;
        }
        let Some(draft) = network::fanout_evidence(&facts, count) else {
            return;
        };
        // Fan-out builds up over minutes: no detection latency to report.
        self.report_flow_draft(owner.tgid, draft, first_payload_ns, false);
    }

    /// Observations on adopted flows wait for a snapshot of the socket
    /// tables, taken on a worker (it walks /proc); one snapshot serves them
    /// all. A connection still in its listener's accept queue has no owner
    /// until the server accepts it: retried on later ticks, up to
    /// [`OWNER_LOOKUP_ATTEMPTS`].
    pub(super) fn retry_pending(&mut self) {
        if self.pending.is_empty() || self.snapshot_in_flight {
            return;
        }
        let flows = &self.tables.flows;
        let wanted: Vec<sockets::Wanted> = self
            .pending
            .iter()
            .filter_map(|(cookie, ..)| {
                let flow = flows.get(*cookie)?;
                Some((flow.transport?, flow.local?, flow.remote?))
            })
            .collect();
        if self
            .workers
            .submit(move || work::Done::Sockets(sockets::Snapshot::take_for(&wanted)))
        {
            self.snapshot_in_flight = true;
            self.stats.socket_snapshots += 1;
        }
    }

    pub(super) fn on_socket_snapshot(&mut self, snapshot: &sockets::Snapshot) {
        self.snapshot_in_flight = false;
        for (cookie, observed, attempts) in std::mem::take(&mut self.pending) {
            self.attribute_observation(cookie, observed, Some(snapshot), attempts + 1);
        }
    }

    fn attribute_observation(
        &mut self,
        cookie: u64,
        observed: Observed,
        sockets: Option<&sockets::Snapshot>,
        attempts: u32,
    ) {
        let is_stratum = matches!(observed.observation, Observation::Stratum(_));
        let last_try = attempts >= OWNER_LOOKUP_ATTEMPTS;
        let Some(owner) = self.flow_owner(cookie, sockets, last_try) else {
            let adopted = self
                .tables
                .flows
                .get(cookie)
                .is_some_and(|f| f.origin == Origin::Adopted && !f.owner_looked_up);
            if adopted && self.pending.len() < MAX_PENDING_OBSERVATIONS {
                self.pending.push((cookie, observed, attempts));
                return;
            }
            self.stats.unattributed_observations += 1;
            if is_stratum {
                self.stats.unattributed_stratum += 1;
            }
            debug!(
                cookie,
                protocol = observed.observation.protocol(),
                "observation on a flow whose owner is unknown: not attributed"
            );
            return;
        };
        if owner.tgid == std::process::id() {
            return;
        }
        let Some(flow) = self.tables.flows.get(cookie) else {
            return;
        };
        if let (Observation::Dns(message), Some(client)) = (&observed.observation, flow.remote) {
            self.note_resolver_work(owner.tgid, observed.direction, message, client);
        }
        let Some(flow) = self.tables.flows.get(cookie) else {
            return;
        };
        let facts = FlowFacts {
            sent_miner_call: flow.sent_miner_call(),
            owner_cores: self
                .cpu_time
                .as_ref()
                .and_then(|c| c.accounts.cores(owner.tgid)),
            forwarding: match &observed.observation {
                Observation::Dns(message) => self.tables.resolvers.is_forwarding(
                    owner.tgid,
                    message.questions.iter().map(|q| q.name.as_str()),
                ),
                _ => false,
            },
            ..FlowFacts::of(&owner, flow)
        };
        let first_payload_ns = flow.first_payload_ns;
        if let (Observation::P2p(opening), Some(remote)) = (&observed.observation, flow.remote)
            && opening.network == p2p::Network::Libp2p
        {
            self.tables.peers.add_libp2p(owner.tgid, remote);
        }
        if let Observation::TlsClientHello(hello) = &observed.observation {
            self.on_tls13_link(hello, observed.direction, facts.clone(), first_payload_ns);
        }
        let Some(draft) = network::evidence_for(
            &observed.observation,
            observed.direction,
            &facts,
            self.catalogue,
            self.tables.peers.libp2p(owner.tgid),
        ) else {
            if is_stratum && owner.role == Role::Server {
                self.stats.unattributed_stratum += 1;
            }
            return;
        };
        self.report_flow_draft(owner.tgid, draft, first_payload_ns, true);
    }

    /// Flow evidence about its owner, first seen at the flow's first
    /// payload; `timed`: report how long after it the verdict came.
    pub(super) fn report_flow_draft(
        &mut self,
        tgid: u32,
        draft: network::Draft,
        first_payload_ns: Option<u64>,
        timed: bool,
    ) {
        let workload = self
            .tables
            .processes
            .get_for_evidence(tgid)
            .map(ProcessInfo::workload)
            .unwrap_or(Workload::Process { tgid });
        let evidence = Evidence::new(
            workload,
            tgid,
            draft.kind,
            draft.strength,
            draft.decisive,
            draft.summary,
            draft.attributes,
            first_payload_ns
                .map(wall_of_monotonic)
                .unwrap_or_else(std::time::SystemTime::now),
        );
        self.report(evidence, if timed { first_payload_ns } else { None });
    }
}
