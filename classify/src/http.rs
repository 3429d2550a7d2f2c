//! HTTP/1.x requests and websocket frames, as far as chain APIs need them
//! (RFC 9112 message framing, RFC 6455 base framing).
//!
//! Chain clients, validator clients and Bittensor's axon/dendrite all speak
//! plain HTTP or websocket on the host: the request line and headers say
//! where a request goes and how it is authenticated, the body (or a text
//! frame) carries the JSON-RPC call. Only what those readers need is
//! parsed; anything malformed is an error, never a panic.

/// Request methods followed; others (CONNECT, the HTTP/2 preface's `PRI`)
/// are not HTTP/1 requests this reads.
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"];
/// Longest request head (request line and headers) read.
pub const MAX_HEAD: usize = 8 * 1024;
/// Headers kept per request.
const MAX_HEADERS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// More bytes may complete it.
    Incomplete,
    /// Not an HTTP/1 request, or a malformed one.
    Invalid,
}

/// One request, its body de-chunked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    /// Header names lower-cased, values trimmed, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Bytes of the stream the request took.
    pub len: usize,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// A query parameter's value, as sent (not percent-decoded).
    pub fn query(&self, key: &str) -> Option<&str> {
        let (_, query) = self.target.split_once('?')?;
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// The request asks to switch to the websocket protocol.
    pub fn is_websocket_upgrade(&self) -> bool {
        self.method == "GET"
            && self
                .header("upgrade")
                .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    }

    /// The algorithm named in the header of a `Bearer` JSON Web Token
    /// (RFC 7519), when the Authorization header carries one.
    pub fn bearer_jwt_alg(&self) -> Option<String> {
        let value = self.header("authorization")?;
        let (scheme, token) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let mut parts = token.trim().split('.');
        let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || signature.is_empty() {
            return None;
        }
        let header: serde_json::Value = serde_json::from_slice(&base64url(header)?).ok()?;
        let claims: serde_json::Value = serde_json::from_slice(&base64url(claims)?).ok()?;
        claims.as_object()?;
        header.get("alg")?.as_str().map(str::to_owned)
    }
}

/// Whether a direction that opens with `bytes` is an HTTP/1 request: a
/// known method, a space and an origin-form target.
pub fn opens_request(bytes: &[u8]) -> bool {
    METHODS.iter().any(|m| {
        bytes.len() > m.len() + 1
            && bytes.starts_with(m.as_bytes())
            && bytes[m.len()] == b' '
            && bytes[m.len() + 1] == b'/'
    })
}

/// Whether `bytes` are the first bytes of a request line, too few to tell
/// ([`opens_request`] needs the method, a space and the `/`).
pub fn may_open_request(bytes: &[u8]) -> bool {
    METHODS.iter().any(|m| {
        let opening = [m.as_bytes(), b" /"].concat();
        bytes.len() < opening.len() && opening.starts_with(bytes)
    })
}

/// The first request of `bytes`, if complete.
pub fn parse_request(bytes: &[u8]) -> Result<Request, HttpError> {
    let Some(head_end) = find(bytes, b"\r\n\r\n") else {
        return Err(if bytes.len() > MAX_HEAD {
            HttpError::Invalid
        } else {
            HttpError::Incomplete
        });
    };
    if head_end > MAX_HEAD {
        return Err(HttpError::Invalid);
    }
    let head = std::str::from_utf8(&bytes[..head_end]).map_err(|_| HttpError::Invalid)?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(target), Some(version), None) = (
        request_line.next(),
        request_line.next(),
        request_line.next(),
        request_line.next(),
    ) else {
        return Err(HttpError::Invalid);
    };
    if !METHODS.contains(&method) || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
        return Err(HttpError::Invalid);
    }
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(HttpError::Invalid)?;
        if name.is_empty() || name.contains(' ') {
            return Err(HttpError::Invalid);
        }
        if headers.len() < MAX_HEADERS {
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let mut request = Request {
        method: method.to_owned(),
        target: target.to_owned(),
        headers,
        body: Vec::new(),
        len: 0,
    };
    let rest = &bytes[head_end + 4..];
    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let (body, used) = if chunked {
        dechunk(rest)?
    } else {
        let length = match request.header("content-length") {
            Some(v) => v.parse::<usize>().map_err(|_| HttpError::Invalid)?,
            None => 0,
        };
        if rest.len() < length {
            return Err(HttpError::Incomplete);
        }
        (rest[..length].to_vec(), length)
    };
    request.body = body;
    request.len = head_end + 4 + used;
    Ok(request)
}

/// A chunked body (RFC 9112 §7.1): the data and the bytes it took.
fn dechunk(bytes: &[u8]) -> Result<(Vec<u8>, usize), HttpError> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let line_end = find(&bytes[at..], b"\r\n").ok_or(HttpError::Incomplete)?;
        let size_text = std::str::from_utf8(&bytes[at..at + line_end])
            .map_err(|_| HttpError::Invalid)?
            .split(';')
            .next()
            .unwrap_or("")
            .trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| HttpError::Invalid)?;
        at += line_end + 2;
        if size == 0 {
            // Trailers, if any, end with an empty line.
            let end = find(&bytes[at..], b"\r\n").ok_or(HttpError::Incomplete)?;
            return Ok((body, at + end + 2));
        }
        let end = at.checked_add(size).ok_or(HttpError::Invalid)?;
        if bytes.len() < end + 2 {
            return Err(HttpError::Incomplete);
        }
        body.extend_from_slice(&bytes[at..end]);
        at = end + 2;
    }
}

/// One websocket message's worth of frame: what a reader of text needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    /// 0 continuation, 1 text, 2 binary, 8–10 control.
    pub opcode: u8,
    /// Unmasked payload.
    pub payload: Vec<u8>,
    /// Bytes of the stream the frame took.
    pub len: usize,
}

/// Longest frame payload read.
pub const MAX_FRAME: usize = 64 * 1024;

/// The first websocket frame of `bytes` (RFC 6455 §5.2), unmasked.
pub fn parse_frame(bytes: &[u8]) -> Result<Frame, HttpError> {
    let [b0, b1, ..] = *bytes else {
        return Err(HttpError::Incomplete);
    };
    if b0 & 0x70 != 0 {
        // Reserved bits: no extension is negotiated by what this reads.
        return Err(HttpError::Invalid);
    }
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes(
                bytes
                    .get(2..4)
                    .ok_or(HttpError::Incomplete)?
                    .try_into()
                    .unwrap_or([0; 2]),
            )),
            4,
        ),
        127 => (
            u64::from_be_bytes(
                bytes
                    .get(2..10)
                    .ok_or(HttpError::Incomplete)?
                    .try_into()
                    .unwrap_or([0; 8]),
            ),
            10,
        ),
        n => (u64::from(n), 2),
    };
    if len > MAX_FRAME as u64 {
        return Err(HttpError::Invalid);
    }
    let len = len as usize;
    let mask: Option<[u8; 4]> = if masked {
        let key = bytes.get(at..at + 4).ok_or(HttpError::Incomplete)?;
        at += 4;
        Some([key[0], key[1], key[2], key[3]])
    } else {
        None
    };
    let data = bytes.get(at..at + len).ok_or(HttpError::Incomplete)?;
    let payload = match mask {
        Some(key) => data
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect(),
        None => data.to_vec(),
    };
    Ok(Frame {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0f,
        payload,
        len: at + len,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// base64url without padding (RFC 4648 §5), as JWTs carry it.
fn base64url(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_post_with_its_body_split_over_writes_is_incomplete_until_whole() {
        let body = br#"{"jsonrpc":"2.0","method":"eth_chainId","params":[],"id":1}"#;
        let mut bytes = format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1:8545\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        bytes.extend_from_slice(body);
        for cut in [10, 40, bytes.len() - 1] {
            assert_eq!(
                parse_request(&bytes[..cut]),
                Err(HttpError::Incomplete),
                "{cut}"
            );
        }
        bytes.extend_from_slice(b"GET /next HTTP/1.1\r\n\r\n");
        let request = parse_request(&bytes).unwrap();
        assert_eq!(request.body, body);
        assert_eq!(request.header("content-type"), Some("application/json"));
        let next = parse_request(&bytes[request.len..]).unwrap();
        assert_eq!(next.path(), "/next");
    }

    #[test]
    fn a_chunked_body_is_joined() {
        let bytes = b"POST /rpc HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
        let request = parse_request(bytes).unwrap();
        assert_eq!(request.body, b"{\"a\":1}");
        assert_eq!(request.len, bytes.len());
        assert_eq!(
            parse_request(&bytes[..bytes.len() - 3]),
            Err(HttpError::Incomplete)
        );
    }

    #[test]
    fn what_is_not_an_http_1_request_is_refused() {
        assert!(!opens_request(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
        assert!(!opens_request(b"HTTP/1.1 200 OK\r\n"));
        assert!(opens_request(b"GET /metrics HTTP/1.1\r\n"));
        for bytes in [
            &b"GET /a b HTTP/1.1\r\n\r\n"[..],
            b"GET http://x/ HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nbad header\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            assert_eq!(parse_request(bytes), Err(HttpError::Invalid), "{bytes:?}");
        }
    }

    #[test]
    fn a_masked_text_frame_is_unmasked() {
        let text = br#"{"id":1}"#;
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let mut frame = vec![0x81, 0x80 | text.len() as u8];
        frame.extend_from_slice(&key);
        frame.extend(text.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        let parsed = parse_frame(&frame).unwrap();
        assert_eq!(
            (parsed.fin, parsed.opcode, parsed.len),
            (true, 1, frame.len())
        );
        assert_eq!(parsed.payload, text);
        assert_eq!(parse_frame(&frame[..5]), Err(HttpError::Incomplete));
        // A 64-bit length past the bound.
        let mut huge = vec![0x81, 127];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(parse_frame(&huge), Err(HttpError::Invalid));
    }

    #[test]
    fn a_bearer_jwt_names_its_algorithm() {
        // {"alg":"HS256","typ":"JWT"} . {"iat":1700000000} . signature
        let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3MDAwMDAwMDB9.c2ln";
        let request = |auth: &str| Request {
            method: "POST".into(),
            target: "/".into(),
            headers: vec![("authorization".into(), auth.into())],
            body: Vec::new(),
            len: 0,
        };
        assert_eq!(
            request(&format!("Bearer {token}"))
                .bearer_jwt_alg()
                .as_deref(),
            Some("HS256")
        );
        assert_eq!(request(&format!("Basic {token}")).bearer_jwt_alg(), None);
        assert_eq!(request("Bearer opaque-api-key").bearer_jwt_alg(), None);
        assert_eq!(request("Bearer a.b.c").bearer_jwt_alg(), None);
    }
}
