//! A sequence of payload samples of one flow (fixed socket cookie) into the
//! flow table, which reassembles each direction and runs the stratum scanner
//! over it.
//!
//! The input is sliced into samples, each:
//!
//! ```text
//! byte 0     flags: bit 0 direction (0 egress, 1 ingress)
//!                   bit 1 partial capture (payload_len > captured)
//!                   bit 2 `captured` claims the length field, even past the
//!                         bytes that follow or the data array
//!                   bits 3-4 ip_version: 4, 6, 0, 5
//!                   bit 5 UDP instead of TCP
//!                   bit 6 skip a segment number (a lost sample)
//! bytes 1-2  length, little endian, low 12 bits (0..=4095)
//! then       min(length, SAMPLE_LEN, what is left) payload bytes
//! ```
//!
//! Every classifier the flow table dispatches to (stratum, TLS, DNS, p2p,
//! stratum V2) is reached this way, behind the framing decisions.
//!
//! Invariants: no panic; one cookie is one flow; a decisive stratum message
//! always names its protocol variant; the sample limit never passes its
//! bound.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use assay_classify::{
    Direction,
    flow::{FlowTable, MAX_SAMPLES_PER_DIRECTION, Observation, Segment, Transport},
};
use assay_common::event::SAMPLE_LEN;
use libfuzzer_sys::fuzz_target;

const KEY: u64 = 0x00c0_ffee;
const MAX_SAMPLES: usize = 256;

fuzz_target!(|data: &[u8]| {
    let mut table = FlowTable::new(16, 4);
    let mut rest = data;
    let mut index = [0u16; 2];
    let mut ts = 1_000_000u64;
    let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40000);
    let remote = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 3333);
    for _ in 0..MAX_SAMPLES {
        let Some((&flags, tail)) = rest.split_first() else {
            break;
        };
        let (length, tail) = match tail {
            [lo, hi, tail @ ..] => (u16::from_le_bytes([*lo, *hi]) & 0x0fff, tail),
            _ => (0, &[][..]),
        };
        let take = usize::from(length).min(SAMPLE_LEN).min(tail.len());
        let (payload, tail) = tail.split_at(take);
        rest = tail;

        let inbound = flags & 1 != 0;
        // The wire length may exceed what was captured (a cut sample).
        let wire_len = take as u32 + u32::from(flags & 2 != 0) + if flags & 4 != 0 { u32::from(length) } else { 0 };
        let side = usize::from(inbound);
        let segment = Segment {
            key: KEY,
            direction: if inbound {
                Direction::Inbound
            } else {
                Direction::Outbound
            },
            index: index[side],
            timestamp_ns: ts,
            transport: if flags & 0x20 != 0 {
                Transport::Udp
            } else {
                Transport::Tcp
            },
            payload,
            wire_len,
            // Sometimes a chunk further into its segment.
            offset: if flags & 0x80 != 0 { SAMPLE_LEN as u32 } else { 0 },
            endpoints: (flags & 0x10 == 0).then_some(if inbound {
                (remote, local)
            } else {
                (local, remote)
            }),
        };
        // A jump in the index: a lost sample.
        index[side] = index[side].wrapping_add(if flags & 0x40 != 0 { 2 } else { 1 });
        ts += 1_000;

        let outcome = table.on_segment(&segment);
        for observed in &outcome.observations {
            if let Observation::Stratum(message) = &observed.observation {
                assert!(
                    !message.decisive || message.variant.is_some(),
                    "decisive message without a variant: {message:?}"
                );
            }
        }
        assert_eq!(table.len(), 1, "one key, one flow");
        let flow = table.get(KEY).expect("the flow just sampled");
        assert_eq!(flow.last_seen_ns, ts - 1_000);
        assert!(flow.sample_limit <= MAX_SAMPLES_PER_DIRECTION + assay_classify::flow::CADENCE_SAMPLES);
    }
});
