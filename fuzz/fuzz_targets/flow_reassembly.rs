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

use assay::flows::{FlowTable, MAX_SAMPLES_PER_DIRECTION, Observation};
use assay_common::event::{EventHeader, SAMPLE_LEN, SampleEvent, direction, kind};
use libfuzzer_sys::fuzz_target;

const COOKIE: u64 = 0x00c0_ffee;
const MAX_SAMPLES: usize = 256;

fuzz_target!(|data: &[u8]| {
    let mut table = FlowTable::new(16, 4);
    let mut rest = data;
    let mut segment = [0u8; 2];
    let mut ts = 1_000_000u64;
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

        let ingress = flags & 1 != 0;
        let captured = if flags & 4 != 0 {
            u32::from(length)
        } else {
            take as u32
        };
        let payload_len = if flags & 2 != 0 {
            captured + 1
        } else {
            captured
        };
        let ip_version = [4, 6, 0, 5][usize::from((flags >> 3) & 3)];
        let dir_index = usize::from(ingress);

        let mut sample = SampleEvent {
            header: EventHeader {
                kind: kind::FLOW_SAMPLE,
                size: size_of::<SampleEvent>() as u32,
                timestamp_ns: ts,
                pid: 4242,
                tgid: 4242,
                cgroup_id: 7,
            },
            cookie: COOKIE,
            direction: if ingress {
                direction::INGRESS
            } else {
                direction::EGRESS
            },
            segment: segment[dir_index],
            ip_version,
            protocol: if flags & 0x20 != 0 { 17 } else { 6 },
            payload_len,
            captured,
            sport: if ingress { 3333 } else { 40000 },
            dport: if ingress { 40000 } else { 3333 },
            saddr: [
                10,
                0,
                0,
                if ingress { 2 } else { 1 },
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
            ],
            daddr: [
                10,
                0,
                0,
                if ingress { 1 } else { 2 },
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
            ],
            _pad: 0,
            data: [0; SAMPLE_LEN],
        };
        sample.data[..payload.len()].copy_from_slice(payload);
        segment[dir_index] = segment[dir_index].wrapping_add(if flags & 0x40 != 0 { 2 } else { 1 });
        ts += 1_000;

        let outcome = table.on_sample(&sample);
        for observed in &outcome.observations {
            if let Observation::Stratum(message) = &observed.observation {
                assert!(
                    !message.decisive || message.variant.is_some(),
                    "decisive message without a variant: {message:?}"
                );
            }
        }
        assert_eq!(table.len(), 1, "one cookie, one flow");
        let flow = table.get(COOKIE).expect("the flow just sampled");
        assert_eq!(flow.last_seen_ns, ts - 1_000);
        assert!(flow.sample_limit <= MAX_SAMPLES_PER_DIRECTION);
    }
});
