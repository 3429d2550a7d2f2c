//! Arbitrary bytes into the stratum line classifier and the stream scanner,
//! in both directions: they see untrusted payload from the network.
//!
//! Invariants: no panic; `scan` never consumes more than it was given and
//! leaves at most `MAX_LINE` bytes of unfinished line; a decisive message
//! always names its protocol variant.

#![no_main]

use assay_classify::{
    Direction,
    stratum::{self, MAX_LINE, Message},
};
use libfuzzer_sys::fuzz_target;

fn check(message: &Message) {
    if message.decisive {
        assert!(
            message.variant.is_some(),
            "decisive message without a variant: {message:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    for direction in [Direction::Outbound, Direction::Inbound] {
        if let Ok(Some(message)) = stratum::classify_line(data, direction) {
            check(&message);
        }

        let scan = stratum::scan(data, direction);
        assert!(
            scan.consumed <= data.len(),
            "scan consumed {} of {} bytes",
            scan.consumed,
            data.len()
        );
        // What is left is an unfinished line: no newline, and not so long
        // that the caller would buffer it forever.
        let tail = &data[scan.consumed..];
        assert!(!tail.contains(&b'\n'), "scan left a complete line behind");
        assert!(tail.len() <= MAX_LINE, "scan left {} bytes", tail.len());
        scan.messages.iter().for_each(check);
    }
});
