//! Arbitrary bytes as a capture file: `assay pcap` must read what it can,
//! stop with an error (never a panic, never a hang) at what it cannot, and
//! print whatever it read.
//!
//! Invariants: no panic; the report is printable both ways; a report with
//! no error read the whole input.

#![no_main]

use assay_classify::pcap::{Options, classify_capture, write_json, write_table};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the sampling depth, as `--sample-segments` does.
    let (options, capture) = match data.split_first() {
        Some((&depth, rest)) => (
            Options {
                samples_per_direction: u32::from(depth % 16) + 1,
                ..Options::default()
            },
            rest,
        ),
        None => (Options::default(), data),
    };
    let report = classify_capture(capture, &options);
    let mut out = Vec::new();
    write_json(&report, &mut out).expect("writing to memory");
    write_table(&report, &mut out).expect("writing to memory");
    let _ = report.summary();
});
