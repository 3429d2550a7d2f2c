//! Decoding of ring-buffer records into typed events.
//!
//! A record is trusted only after its header checks out: the length handed
//! by the ring buffer must hold a header, the header's `size` must match the
//! size of the type its `kind` names, and the record must hold that many
//! bytes. Anything else is a [`DecodeError`], counted by the caller, never a
//! panic.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    ptr,
};

use assay_common::event::{
    self as wire, EventHeader, ExecEvent, ExitEvent, ForkEvent, HygieneEvent, SAMPLE_HEAD_LEN,
    SampleEvent, kind,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than an event header")]
    Truncated(usize),
    #[error("unknown event kind {0}")]
    UnknownKind(u32),
    #[error("event kind {kind} says {claimed} bytes, expected {expected}, record has {available}")]
    BadSize {
        kind: u32,
        claimed: u32,
        expected: usize,
        available: usize,
    },
}

/// A decoded event. The wire structs are copied out of the ring buffer, so
/// the record can be released right away.
#[derive(Debug, Clone)]
pub enum Event {
    Exec(Box<ExecEvent>),
    Exit(ExitEvent),
    Fork(ForkEvent),
    Cuda(Box<assay_common::gpu::CudaEvent>),
    Hygiene(Box<HygieneEvent>),
    Sample(Box<SampleEvent>),
}

impl Event {
    pub fn header(&self) -> &EventHeader {
        match self {
            Self::Exec(e) => &e.header,
            Self::Exit(e) => &e.header,
            Self::Fork(e) => &e.header,
            Self::Cuda(e) => &e.header,
            Self::Hygiene(e) => &e.header,
            Self::Sample(e) => &e.header,
        }
    }
}

/// Reads a `T` from the start of `bytes`, which the caller checked is long
/// enough. The wire types are plain integers and byte arrays: any bytes are
/// a valid value.
fn read<T: Copy>(bytes: &[u8]) -> T {
    assert!(bytes.len() >= size_of::<T>());
    // SAFETY: length checked above; T is a #[repr(C)] wire type made of
    // integers and byte arrays (every bit pattern valid); read_unaligned
    // copes with the ring buffer's 8-byte alignment.
    unsafe { ptr::read_unaligned(bytes.as_ptr().cast::<T>()) }
}

pub fn decode(record: &[u8]) -> Result<Event, DecodeError> {
    if record.len() < size_of::<EventHeader>() {
        return Err(DecodeError::Truncated(record.len()));
    }
    let header: EventHeader = read(record);
    let fits = wire::is_size_of_kind(header.kind, header.size as usize)
        .ok_or(DecodeError::UnknownKind(header.kind))?;
    if !fits || record.len() < header.size as usize {
        return Err(DecodeError::BadSize {
            kind: header.kind,
            claimed: header.size,
            expected: wire::size_of_kind(header.kind).unwrap_or(0),
            available: record.len(),
        });
    }
    Ok(match header.kind {
        kind::PROCESS_EXEC => Event::Exec(Box::new(read(record))),
        kind::PROCESS_EXIT => Event::Exit(read(record)),
        kind::PROCESS_FORK => Event::Fork(read(record)),
        kind::CUDA => Event::Cuda(Box::new(read(record))),
        kind::HYGIENE => Event::Hygiene(Box::new(read(record))),
        kind::FLOW_SAMPLE => Event::Sample(read_sample(&record[..header.size as usize])),
        other => return Err(DecodeError::UnknownKind(other)),
    })
}

/// A sample record of any of the sizes the kernel writes
/// ([`wire::SAMPLE_CLASSES`]), as the largest: the bytes past the record's
/// own `data` are zero, and `captured` never claims more than it holds.
fn read_sample(record: &[u8]) -> Box<SampleEvent> {
    // Straight into a zeroed box: a 128-byte-class record costs a copy of
    // its 256 bytes, not two of the largest class's 2 KiB through the
    // stack (the agent decodes tens of thousands a second under a
    // connection storm).
    let len = record.len().min(size_of::<SampleEvent>());
    let mut sample = Box::<SampleEvent>::new_zeroed();
    // SAFETY: at most size_of::<SampleEvent>() bytes are copied into it,
    // and a SampleEvent is integers and byte arrays: any bytes, zeros
    // included, are a valid value.
    let mut sample = unsafe {
        ptr::copy_nonoverlapping(record.as_ptr(), sample.as_mut_ptr().cast::<u8>(), len);
        sample.assume_init()
    };
    let data_len = len.saturating_sub(SAMPLE_HEAD_LEN);
    sample.captured = sample.captured.min(data_len as u32);
    sample
}

/// The kernel time a ring buffer record carries (its header's), 0 for a
/// record too short to have one (decoding rejects it later).
pub fn timestamp_of(record: &[u8]) -> u64 {
    const AT: usize = std::mem::offset_of!(EventHeader, timestamp_ns);
    record
        .get(AT..AT + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_ne_bytes)
}

/// Bytes up to the first NUL, lossily as UTF-8.
pub fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl ExecEventExt for ExecEvent {
    fn argv_list(&self) -> Vec<String> {
        let len = usize::from(self.argv_len).min(self.argv.len());
        split_nul(&self.argv[..len])
    }
}

/// Splits a NUL-separated argument block (as /proc/<pid>/cmdline).
pub fn split_nul(block: &[u8]) -> Vec<String> {
    let block = block.strip_suffix(&[0]).unwrap_or(block);
    if block.is_empty() {
        return Vec::new();
    }
    block
        .split(|&b| b == 0)
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect()
}

pub trait ExecEventExt {
    fn argv_list(&self) -> Vec<String>;
}

/// Source and destination of a sampled segment.
pub fn sample_endpoints(event: &SampleEvent) -> Option<(SocketAddr, SocketAddr)> {
    let ip = |bytes: [u8; 16]| match event.ip_version {
        4 => Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        6 => Some(IpAddr::V6(Ipv6Addr::from(bytes))),
        _ => None,
    };
    Some((
        SocketAddr::new(ip(event.saddr)?, event.sport),
        SocketAddr::new(ip(event.daddr)?, event.dport),
    ))
}

/// The valid payload bytes of a sample.
pub fn sample_payload(event: &SampleEvent) -> &[u8] {
    let captured = (event.captured as usize).min(event.data.len());
    &event.data[..captured]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of<T>(value: &T) -> Vec<u8> {
        // SAFETY: reading the bytes of a plain #[repr(C)] value.
        unsafe { std::slice::from_raw_parts(ptr::from_ref(value).cast::<u8>(), size_of::<T>()) }
            .to_vec()
    }

    fn exit_event(size: u32) -> ExitEvent {
        ExitEvent {
            header: EventHeader {
                kind: kind::PROCESS_EXIT,
                size,
                timestamp_ns: 7,
                pid: 42,
                tgid: 42,
                cgroup_id: 9,
            },
            exit_code: 256,
            _pad: 0,
        }
    }

    #[test]
    fn a_well_formed_record_round_trips() {
        let record = bytes_of(&exit_event(size_of::<ExitEvent>() as u32));
        let Event::Exit(exit) = decode(&record).unwrap() else {
            panic!("not an exit")
        };
        assert_eq!(exit.header.tgid, 42);
        assert_eq!(exit.exit_code, 256);
    }

    #[test]
    fn truncated_records_are_rejected() {
        let record = bytes_of(&exit_event(size_of::<ExitEvent>() as u32));
        assert_eq!(
            decode(&record[..10]).err(),
            Some(DecodeError::Truncated(10))
        );
        assert!(matches!(
            decode(&record[..36]),
            Err(DecodeError::BadSize { available: 36, .. })
        ));
    }

    #[test]
    fn a_header_that_lies_about_its_size_is_rejected() {
        let record = bytes_of(&exit_event(4096));
        assert!(matches!(
            decode(&record),
            Err(DecodeError::BadSize { claimed: 4096, .. })
        ));
    }

    #[test]
    fn unknown_kinds_are_rejected() {
        let mut event = exit_event(40);
        event.header.kind = 9999;
        assert_eq!(
            decode(&bytes_of(&event)).err(),
            Some(DecodeError::UnknownKind(9999))
        );
    }

    /// A sample record of `class` data bytes holding `payload`, as the
    /// kernel writes it.
    fn sample_record(class: usize, payload: &[u8], captured: u32) -> Vec<u8> {
        let mut record = vec![0u8; SAMPLE_HEAD_LEN + class];
        let header = EventHeader {
            kind: kind::FLOW_SAMPLE,
            size: record.len() as u32,
            timestamp_ns: 5,
            pid: 7,
            tgid: 7,
            cgroup_id: 3,
        };
        record[..size_of::<EventHeader>()].copy_from_slice(&bytes_of(&header));
        let at = std::mem::offset_of!(SampleEvent, captured);
        record[at..at + 4].copy_from_slice(&captured.to_ne_bytes());
        let at = std::mem::offset_of!(SampleEvent, comm);
        record[at..at + 5].copy_from_slice(b"xmrig");
        record[SAMPLE_HEAD_LEN..SAMPLE_HEAD_LEN + payload.len()].copy_from_slice(payload);
        record
    }

    #[test]
    fn samples_of_every_size_class_decode_and_no_other_size_does() {
        for class in wire::SAMPLE_CLASSES {
            let payload = vec![b'{'; class.min(100)];
            let Ok(Event::Sample(sample)) =
                decode(&sample_record(class, &payload, payload.len() as u32))
            else {
                panic!("a {class}-byte sample does not decode");
            };
            assert_eq!(sample_payload(&sample), &payload[..]);
            assert_eq!(c_string(&sample.comm), "xmrig");
            assert_eq!(sample.header.tgid, 7);
        }
        let odd = sample_record(256, b"x", 1);
        assert!(matches!(decode(&odd), Err(DecodeError::BadSize { .. })));
    }

    #[test]
    fn a_sample_never_claims_more_bytes_than_its_record_holds() {
        let Ok(Event::Sample(sample)) = decode(&sample_record(128, b"abc", 4000)) else {
            panic!("does not decode");
        };
        assert_eq!(sample.captured, 128);
        assert!(sample.data[128..].iter().all(|&b| b == 0));
    }

    #[test]
    fn argument_blocks_split_on_nul() {
        assert_eq!(
            split_nul(b"xmrig\0-o\0pool:3333\0"),
            ["xmrig", "-o", "pool:3333"]
        );
        assert_eq!(split_nul(b""), Vec::<String>::new());
        assert_eq!(split_nul(b"a\xff\0b"), ["a\u{fffd}", "b"]);
    }
}
