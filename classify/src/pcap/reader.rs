//! Reading the file's blocks with pcap-parser, keeping the I/O error it
//! reduces to `ReadError`.

use super::*;

// ---- Reading the file -------------------------------------------------

/// Keeps the I/O error that pcap-parser reduces to `ReadError`.
pub(super) struct KeepIoError<R> {
    pub(super) inner: R,
    pub(super) error: Option<io::Error>,
}

impl<R: Read> Read for KeepIoError<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let kind = e.kind();
                    self.error = Some(e);
                    return Err(kind.into());
                }
                ok => return ok,
            }
        }
    }
}

pub(super) enum Failure {
    Read { offset: u64 },
    Pcap(PcapError),
}

pub(super) fn read_blocks(
    input: &mut (impl Read + Send),
    capture: &mut Capture,
) -> Result<(), Failure> {
    let mut reader = match pcap_parser::create_reader(READ_BUFFER, input) {
        Ok(reader) => reader,
        Err(ParseError::Eof) => return Err(Failure::Pcap(PcapError::Empty)),
        Err(ParseError::ReadError) => return Err(Failure::Read { offset: 0 }),
        // Shorter than a file header, or not one.
        Err(_) => return Err(Failure::Pcap(PcapError::NotACapture)),
    };
    let mut capacity = READ_BUFFER;
    loop {
        let offset = reader.consumed() as u64;
        let packets = capture.packets;
        let corrupt = |reason: String| {
            Err(Failure::Pcap(PcapError::Corrupt {
                offset,
                packets,
                reason,
            }))
        };
        let step = match reader.next() {
            Ok((length, block)) => {
                capture.on_block(block);
                Step::Consume(length)
            }
            Err(ParseError::Eof) => return Ok(()),
            Err(ParseError::Incomplete(_)) => Step::Refill,
            Err(ParseError::BufferTooSmall) => Step::Grow,
            Err(ParseError::UnexpectedEof) => {
                return Err(Failure::Pcap(PcapError::Truncated { offset, packets }));
            }
            Err(ParseError::ReadError) => return Err(Failure::Read { offset }),
            Err(ParseError::HeaderNotRecognized) => return corrupt("not a block header".into()),
            Err(ParseError::NomError(_, kind) | ParseError::OwnedNomError(_, kind)) => {
                return corrupt(format!("unparseable block ({kind:?})"));
            }
        };
        match step {
            Step::Consume(length) => reader.consume(length),
            Step::Refill => {
                let before = reader.data().len();
                reader.refill().map_err(|_| Failure::Read { offset })?;
                // A full buffer refills nothing: the record is bigger.
                if reader.data().len() == before && !reader.reader_exhausted() {
                    capacity = grow(&mut *reader, capacity, offset, packets)?;
                }
            }
            Step::Grow => capacity = grow(&mut *reader, capacity, offset, packets)?,
        }
    }
}

pub(super) enum Step {
    Consume(usize),
    Refill,
    Grow,
}

/// Doubles the read buffer for a record that does not fit, up to
/// [`MAX_BLOCK`]; returns the new capacity.
pub(super) fn grow(
    reader: &mut dyn PcapReaderIterator,
    capacity: usize,
    offset: u64,
    packets: u64,
) -> Result<usize, Failure> {
    if capacity >= MAX_BLOCK {
        return Err(Failure::Pcap(PcapError::Corrupt {
            offset,
            packets,
            reason: format!(
                "record longer than {} MiB: its length field is corrupt",
                MAX_BLOCK >> 20
            ),
        }));
    }
    let capacity = capacity * 2;
    reader.grow(capacity);
    reader.refill().map_err(|_| Failure::Read { offset })?;
    Ok(capacity)
}
