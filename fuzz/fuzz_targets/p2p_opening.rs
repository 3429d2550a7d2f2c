//! Arbitrary bytes as the first bytes of a TCP direction, to the blockchain
//! p2p identifier (with the first segment as long as the sample, and as a
//! full-sized segment the sample was cut from); and as a UDP datagram, to
//! the discv4 check.
//!
//! Invariants: no panic; only the RLPx shape is ever `Shape` (everything
//! else is verified framing); a Kaspa verdict needs the HTTP/2 preface; a
//! Bitcoin-family opening on a magic the name table does not list is a
//! `version` (the only message that proves the framing on its own). The
//! seeds carry versions on unlisted magics, whole and cut, so the checksum
//! and version-payload checks are reached.

#![no_main]

use assay_classify::p2p::{self, Confidence, Network};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for first_segment_len in [data.len(), 1448] {
        let Some(opening) = p2p::identify(data, first_segment_len) else {
            continue;
        };
        assert_eq!(
            opening.confidence == Confidence::Shape,
            opening.network == Network::Devp2pRlpx,
            "{opening:?}"
        );
        if opening.network == Network::Kaspa {
            assert!(data.starts_with(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
        }
        if let Network::Bitcoin(magic) = opening.network
            && !magic.is_builtin()
        {
            assert_eq!(opening.message.as_deref(), Some("version"), "{opening:?}");
        }
        let _ = (opening.network.describe(), opening.network.identifiers());
    }
    let _ = p2p::wants_more(data);
    let _ = p2p::is_discv4_packet(data);
});
