//! Arbitrary bytes as a ring-buffer record: the decoder must reject what
//! does not check out, and the accessors must cope with any field values a
//! record that does check out may carry.

#![no_main]

use assay_classify::record::{
    self as events, Event, ExecEventExt, sample_endpoints, sample_payload,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = events::decode(data) else {
        return;
    };
    // decode promised that the header's size is the type's and fits.
    assert!(event.header().size as usize <= data.len());
    assert_eq!(events::timestamp_of(data), event.header().timestamp_ns);
    match &event {
        Event::Exec(exec) => {
            let argv = exec.argv_list();
            assert!(argv.len() <= exec.argv.len());
            let _ = events::c_string(&exec.comm);
            let _ = events::c_string(&exec.filename);
        }
        Event::Exit(_) | Event::Fork(_) => {}
        Event::Hygiene(hygiene) => {
            let _ = events::c_string(&hygiene.path);
        }
        Event::Cuda(cuda) => {
            let _ = events::c_string(&cuda.name);
        }
        Event::Sample(sample) => {
            let payload = sample_payload(sample);
            assert!(payload.len() <= sample.data.len());
            assert!(payload.len() <= sample.captured as usize);
            let _ = sample_endpoints(sample);
            let _ = events::c_string(&sample.comm);
        }
    }
});
