//! Arbitrary bytes as the first bytes of a TCP direction, to the Stratum V2
//! frame header decoder and the SetupConnection (and .Success) parsers.
//!
//! Invariants: no panic; an accepted SetupConnection is a core frame whose
//! declared length covers exactly the fields, with a known sub-protocol and
//! a version range within 1..=2.

#![no_main]

use assay_classify::stratum_v2::{self, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let header = stratum_v2::parse_frame_header(data);
    assert_eq!(header.is_some(), data.len() >= HEADER_LEN);
    if let Ok(setup) = stratum_v2::parse_setup_connection(data) {
        let header = header.expect("a parsed frame has a header");
        assert_eq!(
            (header.extension_type, header.channel_msg, header.msg_type),
            (0, false, 0)
        );
        assert!(setup.protocol <= 3 && stratum_v2::protocol_name(setup.protocol) != "unknown");
        assert!(1 <= setup.min_version && setup.min_version <= setup.max_version);
        assert!(setup.max_version <= 2);
        let strings = [
            &setup.endpoint_host,
            &setup.vendor,
            &setup.hardware_version,
            &setup.firmware,
            &setup.device_id,
        ];
        let fields: usize = 11 + strings.iter().map(|s| 1 + s.len()).sum::<usize>();
        assert_eq!(fields, header.length as usize);
    }
    if let Ok((version, _flags)) = stratum_v2::parse_setup_connection_success(data) {
        assert!((1..=2).contains(&version));
    }
});
