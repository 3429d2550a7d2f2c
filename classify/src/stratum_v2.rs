//! Stratum V2: the binary successor of stratum v1 (docs/signatures.md, "Stratum
//! V2"; stratum-mining/sv2-spec 03-Protocol-Overview.md and
//! 04-Protocol-Security.md).
//!
//! Two ways in, depending on whether the connection is encrypted:
//!
//! - **Plaintext** (trusted LANs, proxies on the same host): the client's
//!   first frame is `SetupConnection`, which names the sub-protocol (mining,
//!   job declaration, template distribution), the version range, the pool
//!   endpoint and the device's vendor, hardware, firmware and id. Every field
//!   is checked (frame length equal to what the fields use, protocol 0..=3,
//!   versions 1..=2 with min ≤ max, strings valid UTF-8), so a match is
//!   decisive. The server's `SetupConnection.Success` is recognised too, but
//!   at 12 bytes it is weak alone: use it to confirm a client match.
//! - **Noise NX** (the default): nothing is readable, but the handshake has a
//!   fixed shape: the client's first write is exactly 64 bytes (an
//!   ElligatorSwift key, no header) and the server answers exactly 234 bytes.
//!   The spec's prose says 170 for the answer; its own field list (64 key +
//!   80 encrypted static key + 90 encrypted certificate) sums to 234, which
//!   is also what SRI's `noise_sv2` sends. Two exact sizes are a shape, not
//!   proof: any protocol that opens with 64 random bytes answered by 234
//!   matches. Callers should want more (small periodic records after it, a
//!   busy CPU/GPU) before calling it mining.

/// Size of a frame header: `extension_type u16 | msg_type u8 | msg_length u24`.
pub const HEADER_LEN: usize = 6;
/// The client's Noise NX act 1: a 64-byte ElligatorSwift-encoded key.
pub const NOISE_CLIENT_HELLO_LEN: u32 = 64;
/// The server's Noise NX act 2: key (64) + encrypted static key (64 + 16 MAC)
/// + encrypted signature noise message (74 + 16 MAC).
pub const NOISE_SERVER_REPLY_LEN: u32 = 234;

/// `SetupConnection` message type (extension 0, common messages).
const MSG_SETUP_CONNECTION: u8 = 0x00;
/// `SetupConnection.Success` message type.
const MSG_SETUP_CONNECTION_SUCCESS: u8 = 0x01;
/// Bit 15 of `extension_type`: the payload starts with a channel id.
const CHANNEL_MSG_BIT: u16 = 0x8000;
/// The largest possible `SetupConnection` payload: fixed fields (1 + 2 + 2 +
/// 4 + 2) plus five STR0_255 strings of at most 1 + 255 bytes.
const MAX_SETUP_CONNECTION_LEN: u32 = 11 + 5 * 256;
/// Highest protocol version defined by the spec (2, "Stratum V2").
const MAX_VERSION: u16 = 2;
/// Highest sub-protocol number ever assigned (3: job distribution, in early
/// drafts of the spec).
const MAX_PROTOCOL: u8 = 3;

/// A decoded frame header. Says nothing about whether the bytes are SV2: any
/// six bytes decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FrameHeader {
    /// Extension type without the channel bit (0 = core protocol).
    pub extension_type: u16,
    /// Bit 15 of the extension type: a channel message.
    pub channel_msg: bool,
    pub msg_type: u8,
    /// Payload length in bytes.
    pub length: u32,
}

/// The client's plaintext `SetupConnection`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SetupConnection {
    /// 0 mining, 1 job declaration, 2 template distribution (see
    /// [`protocol_name`]).
    pub protocol: u8,
    pub min_version: u16,
    pub max_version: u16,
    pub flags: u32,
    pub endpoint_host: String,
    pub endpoint_port: u16,
    pub vendor: String,
    pub hardware_version: String,
    pub firmware: String,
    pub device_id: String,
}

/// Why bytes are not a `SetupConnection` (or its success reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Sv2Error {
    /// The frame is not complete yet: retry with more bytes.
    #[error("incomplete Stratum V2 frame")]
    Incomplete,
    /// The frame has the right type but its fields are wrong.
    #[error("malformed Stratum V2 frame: {0}")]
    Malformed(&'static str),
    /// The frame is not the message asked for (or not SV2 at all).
    #[error("not a Stratum V2 SetupConnection frame")]
    NotSetupConnection,
}

/// Decodes the six-byte frame header at the start of `bytes`.
pub fn parse_frame_header(bytes: &[u8]) -> Option<FrameHeader> {
    let header: &[u8; HEADER_LEN] = bytes.get(..HEADER_LEN)?.try_into().ok()?;
    let extension = u16::from_le_bytes([header[0], header[1]]);
    Some(FrameHeader {
        extension_type: extension & !CHANNEL_MSG_BIT,
        channel_msg: extension & CHANNEL_MSG_BIT != 0,
        msg_type: header[2],
        length: u32::from_le_bytes([header[3], header[4], header[5], 0]),
    })
}

/// Human name of a `SetupConnection` protocol number.
pub fn protocol_name(protocol: u8) -> &'static str {
    match protocol {
        0 => "mining",
        1 => "job declaration",
        2 => "template distribution",
        3 => "job distribution",
        _ => "unknown",
    }
}

/// True when the first client and server segments have the Noise NX sizes.
pub fn is_noise_opening(client_first_segment_len: u32, server_first_segment_len: u32) -> bool {
    client_first_segment_len == NOISE_CLIENT_HELLO_LEN
        && server_first_segment_len == NOISE_SERVER_REPLY_LEN
}

/// Parses a plaintext `SetupConnection` at the start of a client stream.
pub fn parse_setup_connection(stream: &[u8]) -> Result<SetupConnection, Sv2Error> {
    let payload = core_frame(stream, MSG_SETUP_CONNECTION, MAX_SETUP_CONNECTION_LEN)?;
    let mut r = Reader(payload);
    let protocol = r.u8()?;
    if protocol > MAX_PROTOCOL {
        return Err(Sv2Error::Malformed("unknown sub-protocol"));
    }
    let min_version = r.u16()?;
    let max_version = r.u16()?;
    if !(1..=MAX_VERSION).contains(&min_version)
        || !(min_version..=MAX_VERSION).contains(&max_version)
    {
        return Err(Sv2Error::Malformed("implausible version range"));
    }
    let setup = SetupConnection {
        protocol,
        min_version,
        max_version,
        flags: r.u32()?,
        endpoint_host: r.str0_255()?,
        endpoint_port: r.u16()?,
        vendor: r.str0_255()?,
        hardware_version: r.str0_255()?,
        firmware: r.str0_255()?,
        device_id: r.str0_255()?,
    };
    if !r.0.is_empty() {
        return Err(Sv2Error::Malformed("bytes after the last field"));
    }
    Ok(setup)
}

/// Parses the server's `SetupConnection.Success`: `(used_version, flags)`.
pub fn parse_setup_connection_success(stream: &[u8]) -> Result<(u16, u32), Sv2Error> {
    const LEN: u32 = 6;
    let payload = core_frame(stream, MSG_SETUP_CONNECTION_SUCCESS, LEN)?;
    if payload.len() != LEN as usize {
        return Err(Sv2Error::Malformed("SetupConnection.Success is 6 bytes"));
    }
    let mut r = Reader(payload);
    let used_version = r.u16()?;
    if !(1..=MAX_VERSION).contains(&used_version) {
        return Err(Sv2Error::Malformed("implausible version"));
    }
    Ok((used_version, r.u32()?))
}

/// The payload of a core (extension 0, non-channel) frame of type `msg_type`
/// whose length is at most `max_len`.
fn core_frame(stream: &[u8], msg_type: u8, max_len: u32) -> Result<&[u8], Sv2Error> {
    let header = parse_frame_header(stream).ok_or(Sv2Error::Incomplete)?;
    if header.extension_type != 0 || header.channel_msg || header.msg_type != msg_type {
        return Err(Sv2Error::NotSetupConnection);
    }
    if header.length > max_len {
        return Err(Sv2Error::Malformed("frame longer than the message can be"));
    }
    let end = HEADER_LEN + header.length as usize;
    stream.get(HEADER_LEN..end).ok_or(Sv2Error::Incomplete)
}

/// Little-endian field reader over a complete payload: running out of bytes
/// is a malformed frame, not an incomplete one.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Sv2Error> {
        if self.0.len() < n {
            return Err(Sv2Error::Malformed("field runs past the frame"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, Sv2Error> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Sv2Error> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Sv2Error> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// STR0_255: a one-byte length, then that many bytes of UTF-8.
    fn str0_255(&mut self) -> Result<String, Sv2Error> {
        let len = self.u8()?;
        let bytes = self.take(usize::from(len))?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| Sv2Error::Malformed("string is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame: `extension_type u16 LE | msg_type u8 | msg_length u24 LE |
    /// payload` (sv2-spec 03-Protocol-Overview.md, "Framing").
    fn frame(extension: u16, msg_type: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = extension.to_le_bytes().to_vec();
        out.push(msg_type);
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes()[..3]);
        out.extend_from_slice(payload);
        out
    }

    fn str0_255(out: &mut Vec<u8>, s: &str) {
        out.push(s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    }

    /// SetupConnection payload, field by field as in the spec's table.
    fn setup_payload(protocol: u8, min: u16, max: u16) -> Vec<u8> {
        let mut p = vec![protocol];
        p.extend_from_slice(&min.to_le_bytes());
        p.extend_from_slice(&max.to_le_bytes());
        p.extend_from_slice(&0b110u32.to_le_bytes()); // flags
        str0_255(&mut p, "pool.example.com");
        p.extend_from_slice(&34254u16.to_le_bytes());
        str0_255(&mut p, "Bitmain");
        str0_255(&mut p, "S19 XP");
        str0_255(&mut p, "braiins-os-2023-06");
        str0_255(&mut p, "some-device-uuid");
        p
    }

    #[test]
    fn a_mining_setup_connection_is_decoded_field_by_field() {
        let mut stream = frame(0, 0x00, &setup_payload(0, 2, 2));
        // The next frame may already follow in the same segment.
        stream.extend_from_slice(&frame(0, 0x01, &[0; 6]));
        let setup = parse_setup_connection(&stream).unwrap();
        assert_eq!(
            setup,
            SetupConnection {
                protocol: 0,
                min_version: 2,
                max_version: 2,
                flags: 0b110,
                endpoint_host: "pool.example.com".into(),
                endpoint_port: 34254,
                vendor: "Bitmain".into(),
                hardware_version: "S19 XP".into(),
                firmware: "braiins-os-2023-06".into(),
                device_id: "some-device-uuid".into(),
            }
        );
        assert_eq!(protocol_name(setup.protocol), "mining");
    }

    #[test]
    fn empty_strings_are_valid() {
        let mut p = vec![2, 2, 0, 2, 0, 0, 0, 0, 0];
        p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0]); // host "", port 0, 4 × ""
        let setup = parse_setup_connection(&frame(0, 0, &p)).unwrap();
        assert_eq!(protocol_name(setup.protocol), "template distribution");
        assert_eq!(setup.vendor, "");
    }

    #[test]
    fn frame_header_splits_the_channel_bit() {
        let h = parse_frame_header(&[0x00, 0x80, 0x1f, 0x10, 0x00, 0x00]).unwrap();
        assert_eq!(
            h,
            FrameHeader {
                extension_type: 0,
                channel_msg: true,
                msg_type: 0x1f,
                length: 16
            }
        );
        assert_eq!(parse_frame_header(&[0; 5]), None);
    }

    #[test]
    fn truncated_frames_are_incomplete() {
        let stream = frame(0, 0, &setup_payload(0, 2, 2));
        for cut in [0, 3, HEADER_LEN, stream.len() - 1] {
            assert_eq!(
                parse_setup_connection(&stream[..cut]),
                Err(Sv2Error::Incomplete),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn bogus_fields_are_malformed() {
        let bad_protocol = frame(0, 0, &setup_payload(9, 2, 2));
        let no_version = frame(0, 0, &setup_payload(0, 0, 2));
        let inverted = frame(0, 0, &setup_payload(0, 2, 1));
        let future = frame(0, 0, &setup_payload(0, 2, 3));
        for stream in [bad_protocol, no_version, inverted, future] {
            assert!(matches!(
                parse_setup_connection(&stream),
                Err(Sv2Error::Malformed(_))
            ));
        }
        // Declared length one byte longer than the fields: a trailing byte.
        let mut p = setup_payload(0, 2, 2);
        p.push(0);
        assert_eq!(
            parse_setup_connection(&frame(0, 0, &p)),
            Err(Sv2Error::Malformed("bytes after the last field"))
        );
        // A string length pointing past the frame.
        let mut p = setup_payload(0, 2, 2);
        p.truncate(p.len() - 3);
        assert!(matches!(
            parse_setup_connection(&frame(0, 0, &p)),
            Err(Sv2Error::Malformed(_))
        ));
        // Invalid UTF-8 in the vendor string.
        let mut p = setup_payload(0, 2, 2);
        let vendor = p.iter().position(|&b| b == b'B').unwrap();
        p[vendor] = 0xff;
        assert_eq!(
            parse_setup_connection(&frame(0, 0, &p)),
            Err(Sv2Error::Malformed("string is not UTF-8"))
        );
        // A huge declared length is rejected before waiting for the bytes.
        assert!(matches!(
            parse_setup_connection(&[0, 0, 0, 0xff, 0xff, 0xff]),
            Err(Sv2Error::Malformed(_))
        ));
    }

    #[test]
    fn other_frames_and_protocols_are_not_setup_connection() {
        // A channel message, an extension message, another message type.
        for stream in [
            frame(0x8000, 0, &setup_payload(0, 2, 2)),
            frame(1, 0, &setup_payload(0, 2, 2)),
            frame(0, 0x1e, &setup_payload(0, 2, 2)),
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00],
            br#"{"id":1,"method":"mining.subscribe","params":[]}"#.to_vec(),
        ] {
            assert_eq!(
                parse_setup_connection(&stream),
                Err(Sv2Error::NotSetupConnection)
            );
        }
    }

    #[test]
    fn setup_connection_success_from_the_server() {
        // used_version u16 = 2, flags u32 = 0b1.
        let stream = frame(0, 0x01, &[2, 0, 1, 0, 0, 0]);
        assert_eq!(parse_setup_connection_success(&stream), Ok((2, 1)));
        assert_eq!(
            parse_setup_connection_success(&stream[..8]),
            Err(Sv2Error::Incomplete)
        );
        assert!(matches!(
            parse_setup_connection_success(&frame(0, 0x01, &[7, 0, 0, 0, 0, 0])),
            Err(Sv2Error::Malformed(_))
        ));
        assert!(matches!(
            parse_setup_connection_success(&frame(0, 0x01, &[2, 0, 0, 0, 0])),
            Err(Sv2Error::Malformed(_))
        ));
        assert_eq!(
            parse_setup_connection_success(&frame(0, 0x00, &[2, 0, 0, 0, 0, 0])),
            Err(Sv2Error::NotSetupConnection)
        );
    }

    #[test]
    fn noise_opening_needs_both_exact_sizes() {
        assert!(is_noise_opening(64, 234));
        assert!(!is_noise_opening(64, 170));
        assert!(!is_noise_opening(65, 234));
        assert!(!is_noise_opening(0, 0));
    }
}
