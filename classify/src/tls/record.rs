//! The record layer: one handshake message gathered from the records it
//! spans, and where the next one starts. Kept apart from the message
//! parsers so that they see whole messages only, and so that a sample cut
//! mid-record reads as incomplete rather than malformed.

use std::borrow::Cow;

use super::{CLIENT_HELLO, MAX_HANDSHAKE_LEN, TlsError, is_handshake_record};
/// The body of the first handshake message, which must be of type
/// `msg_type`, reassembled from as many records as it spans, and where the
/// message after it starts.
pub(super) fn handshake_message(
    stream: &[u8],
    msg_type: u8,
) -> Result<(Cow<'_, [u8]>, Cursor), TlsError> {
    let message = reassemble(stream, Cursor::START)?;
    if let Some(&kind) = message.bytes.first()
        && message.bytes.len() >= 4
        && kind != msg_type
    {
        return Err(TlsError::Malformed(if msg_type == CLIENT_HELLO {
            "first handshake message is not a ClientHello"
        } else {
            "first handshake message is not a ServerHello"
        }));
    }
    match message.next {
        Some(next) => Ok((body(message.bytes), next)),
        None => Err(TlsError::Incomplete),
    }
}

/// Where a handshake message starts: `offset` bytes into the payload of
/// the record whose header is at `record` in the stream.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cursor {
    record: usize,
    offset: usize,
}

impl Cursor {
    const START: Cursor = Cursor {
        record: 0,
        offset: 0,
    };
}

/// One handshake message, header included, as far as the stream holds it.
pub(super) struct Message<'a> {
    pub(super) bytes: Cow<'a, [u8]>,
    /// Where the next message starts; `None` when the stream ended first.
    pub(super) next: Option<Cursor>,
}

/// Gathers the handshake message at `at` from its records. Running out of
/// stream is not an error here: the message comes back cut (`next` empty),
/// for the caller to decide.
pub(super) fn reassemble(stream: &[u8], at: Cursor) -> Result<Message<'_>, TlsError> {
    let mut bytes: Cow<'_, [u8]> = Cow::Borrowed(&[]);
    let mut pos = at.record;
    let mut offset = at.offset;
    loop {
        let fragment = match record_fragment(stream, pos) {
            Ok(fragment) => fragment,
            Err(TlsError::Incomplete) => return Ok(Message { bytes, next: None }),
            Err(e) => return Err(e),
        };
        if offset >= fragment.declared {
            // The message starts with the next record.
            pos += 5 + fragment.declared;
            offset = 0;
            continue;
        }
        let start = offset.min(fragment.bytes.len());
        let before = bytes.len();
        if bytes.is_empty() {
            bytes = Cow::Borrowed(&fragment.bytes[start..]);
        } else {
            bytes.to_mut().extend_from_slice(&fragment.bytes[start..]);
        }
        if let Some(total) = message_len(&bytes)? {
            bytes = match bytes {
                Cow::Borrowed(all) => Cow::Borrowed(&all[..total]),
                Cow::Owned(mut all) => {
                    all.truncate(total);
                    Cow::Owned(all)
                }
            };
            let next = Cursor {
                record: pos,
                offset: start + (total - before),
            };
            return Ok(Message {
                bytes,
                next: Some(next),
            });
        }
        if fragment.cut {
            return Ok(Message { bytes, next: None });
        }
        pos += 5 + fragment.declared;
        offset = 0;
    }
}

/// A whole message (header included) without its 4-byte header.
fn body(message: Cow<'_, [u8]>) -> Cow<'_, [u8]> {
    match message {
        Cow::Borrowed(all) => Cow::Borrowed(&all[4.min(all.len())..]),
        Cow::Owned(mut all) => {
            all.drain(..4.min(all.len()));
            Cow::Owned(all)
        }
    }
}

/// One record's payload, possibly cut short by the end of the sample.
struct Fragment<'a> {
    bytes: &'a [u8],
    /// Length the record header declares.
    declared: usize,
    /// The sample ends inside this record.
    cut: bool,
}

fn record_fragment(stream: &[u8], pos: usize) -> Result<Fragment<'_>, TlsError> {
    // Inside a message, a record that is not a handshake is a broken
    // stream, not "some other protocol".
    let reject = if pos == 0 {
        TlsError::NotTls
    } else {
        TlsError::Malformed("handshake message interrupted by another record")
    };
    let rest = &stream[pos.min(stream.len())..];
    if rest.is_empty() {
        return Err(TlsError::Incomplete);
    }
    if !is_handshake_record(rest) {
        return Err(reject);
    }
    let [_, _, _, hi, lo, payload @ ..] = rest else {
        return Err(TlsError::Incomplete);
    };
    let declared = usize::from(u16::from_be_bytes([*hi, *lo]));
    let cut = payload.len() < declared;
    Ok(Fragment {
        bytes: &payload[..declared.min(payload.len())],
        declared,
        cut,
    })
}

/// The whole length (header included) once `message` holds all of it.
fn message_len(message: &[u8]) -> Result<Option<usize>, TlsError> {
    let [_, a, b, c, ..] = *message else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([0, a, b, c]) as usize;
    if len > MAX_HANDSHAKE_LEN {
        return Err(TlsError::Malformed("handshake message too long"));
    }
    Ok((message.len() >= 4 + len).then_some(4 + len))
}
