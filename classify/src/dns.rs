//! DNS messages (RFC 1035 §4), over UDP and over TCP, and the built-in list
//! of mining-pool domains (data/pool-domains.txt).
//!
//! A miner finds its pool by name. Seeing a workload resolve
//! `xmr-eu1.nanopool.org`, and which addresses came back, ties the flows it
//! opens next to a pool even when they are encrypted. assay only reads the
//! DNS traffic the workload itself sends: it never resolves pool names.
//!
//! The parser is used to sniff arbitrary UDP, so it is strict where real
//! DNS is regular and random bytes are not: opcode QUERY only, 1–8
//! questions, record counts that can fit the message, known classes (IN,
//! CH, HS, ANY; mDNS's top bit allowed), label lengths ≤ 63, names ≤ 255
//! bytes without control characters or dots inside labels, compression
//! pointers that point backwards (which also guarantees termination, with a
//! jump bound on top), and no bytes after the last declared record. A query
//! must not carry a response code. What it cannot rule out is a non-DNS protocol that is
//! built exactly like DNS (mDNS and LLMNR are parsed as DNS, as they are).

use std::{
    collections::HashSet,
    net::{Ipv4Addr, Ipv6Addr},
    sync::LazyLock,
};

/// Size of the fixed header.
pub const HEADER_LEN: usize = 12;
/// Most questions accepted; real messages carry one.
pub const MAX_QUESTIONS: u16 = 8;
/// Answers kept in [`Message::answers`]; later ones are still validated.
pub const MAX_KEPT_ANSWERS: usize = 64;
/// Longest name on the wire, length bytes included (RFC 1035 §2.3.4).
const MAX_NAME_WIRE_LEN: usize = 255;
const MAX_LABEL_LEN: usize = 63;
/// Compression pointers followed for one name.
const MAX_POINTER_JUMPS: usize = 32;
/// A question is at least a root name (1) + type + class.
const MIN_QUESTION_LEN: usize = 5;
/// A record is at least a root name (1) + type + class + TTL + rdlength.
const MIN_RECORD_LEN: usize = 11;

const TYPE_A: u16 = 1;
const TYPE_CNAME: u16 = 5;
const TYPE_AAAA: u16 = 28;
/// EDNS(0) pseudo-record: its class is a UDP payload size.
const TYPE_OPT: u16 = 41;

/// A parsed DNS message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Message {
    pub id: u16,
    pub is_response: bool,
    /// Header RCODE (0 = NOERROR, 3 = NXDOMAIN).
    pub rcode: u8,
    pub questions: Vec<Question>,
    /// Answer section, at most [`MAX_KEPT_ANSWERS`].
    pub answers: Vec<Record>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Question {
    /// Lowercased, no trailing dot; `.` for the root.
    pub name: String,
    pub qtype: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Record {
    pub name: String,
    pub rtype: u16,
    pub ttl: u32,
    pub data: RecordData,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum RecordData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// The canonical name, lowercased, no trailing dot.
    Cname(String),
    Other,
}

/// Why bytes are not a DNS message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// DNS over TCP: the length prefix says more bytes are coming.
    #[error("incomplete DNS-over-TCP message")]
    Incomplete,
    /// The message ends inside the header or a record.
    #[error("DNS message truncated")]
    Truncated,
    /// A valid header for another operation (NOTIFY, UPDATE, …).
    #[error("DNS opcode {0} is not QUERY")]
    NotQuery(u8),
    #[error("malformed DNS message: {0}")]
    Malformed(&'static str),
}

/// Parses one DNS message (a UDP datagram's payload).
pub fn parse(datagram: &[u8]) -> Result<Message, DnsError> {
    let header = Header::read(datagram)?;
    let mut pos = HEADER_LEN;
    let mut questions = Vec::with_capacity(usize::from(header.qdcount));
    for _ in 0..header.qdcount {
        let (question, next) = read_question(datagram, pos)?;
        questions.push(question);
        pos = next;
    }
    let mut answers = Vec::new();
    for i in 0..header.ancount {
        let (record, next) = read_record(datagram, pos)?;
        if usize::from(i) < MAX_KEPT_ANSWERS {
            answers.push(record);
        }
        pos = next;
    }
    for _ in 0..u32::from(header.nscount) + u32::from(header.arcount) {
        pos = read_record(datagram, pos)?.1;
    }
    if pos != datagram.len() {
        return Err(DnsError::Malformed("bytes after the last record"));
    }
    Ok(Message {
        id: header.id,
        is_response: header.is_response,
        rcode: header.rcode,
        questions,
        answers,
    })
}

/// Parses one DNS-over-TCP message (RFC 1035 §4.2.2: a two-byte big-endian
/// length, then the message). Returns the message and the bytes consumed.
pub fn parse_tcp(stream: &[u8]) -> Result<(Message, usize), DnsError> {
    let [hi, lo, rest @ ..] = stream else {
        return Err(DnsError::Incomplete);
    };
    let len = usize::from(u16::from_be_bytes([*hi, *lo]));
    if len < HEADER_LEN {
        return Err(DnsError::Malformed("length prefix shorter than a header"));
    }
    let message = rest.get(..len).ok_or(DnsError::Incomplete)?;
    Ok((parse(message)?, 2 + len))
}

struct Header {
    id: u16,
    is_response: bool,
    rcode: u8,
    qdcount: u16,
    ancount: u16,
    nscount: u16,
    arcount: u16,
}

impl Header {
    fn read(message: &[u8]) -> Result<Self, DnsError> {
        let h = message.get(..HEADER_LEN).ok_or(DnsError::Truncated)?;
        let word = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
        let flags = word(2);
        let header = Header {
            id: word(0),
            is_response: flags & 0x8000 != 0,
            rcode: (flags & 0x000f) as u8,
            qdcount: word(4),
            ancount: word(6),
            nscount: word(8),
            arcount: word(10),
        };
        let opcode = ((flags >> 11) & 0xf) as u8;
        if opcode != 0 {
            return Err(DnsError::NotQuery(opcode));
        }
        if header.qdcount == 0 || header.qdcount > MAX_QUESTIONS {
            return Err(DnsError::Malformed("question count"));
        }
        if !header.is_response && header.rcode != 0 {
            return Err(DnsError::Malformed("query with a response code"));
        }
        let records =
            usize::from(header.ancount) + usize::from(header.nscount) + usize::from(header.arcount);
        let least = usize::from(header.qdcount) * MIN_QUESTION_LEN + records * MIN_RECORD_LEN;
        if HEADER_LEN + least > message.len() {
            return Err(DnsError::Malformed("record counts cannot fit the message"));
        }
        Ok(header)
    }
}

fn read_question(message: &[u8], pos: usize) -> Result<(Question, usize), DnsError> {
    let (name, pos) = read_name(message, pos)?;
    let qtype = read_u16(message, pos)?;
    let qclass = read_u16(message, pos + 2)?;
    if qtype == 0 {
        return Err(DnsError::Malformed("question type 0"));
    }
    if !known_class(qclass) {
        return Err(DnsError::Malformed("unknown question class"));
    }
    Ok((Question { name, qtype }, pos + 4))
}

fn read_record(message: &[u8], pos: usize) -> Result<(Record, usize), DnsError> {
    let (name, pos) = read_name(message, pos)?;
    let rtype = read_u16(message, pos)?;
    let class = read_u16(message, pos + 2)?;
    let ttl = read_u32(message, pos + 4)?;
    let rdlength = usize::from(read_u16(message, pos + 8)?);
    let start = pos + 10;
    let rdata = message
        .get(start..start + rdlength)
        .ok_or(DnsError::Truncated)?;
    if rtype != TYPE_OPT && !known_class(class) {
        return Err(DnsError::Malformed("unknown record class"));
    }
    let data = match rtype {
        TYPE_A => RecordData::A(Ipv4Addr::from(
            <[u8; 4]>::try_from(rdata).map_err(|_| DnsError::Malformed("A record length"))?,
        )),
        TYPE_AAAA => RecordData::Aaaa(Ipv6Addr::from(
            <[u8; 16]>::try_from(rdata).map_err(|_| DnsError::Malformed("AAAA record length"))?,
        )),
        TYPE_CNAME => {
            // The name may be compressed, but its own bytes must fill RDATA.
            let (target, end) = read_name(&message[..start + rdlength], start)?;
            if end != start + rdlength {
                return Err(DnsError::Malformed("CNAME shorter than its RDATA"));
            }
            RecordData::Cname(target)
        }
        _ => RecordData::Other,
    };
    let record = Record {
        name,
        rtype,
        ttl,
        data,
    };
    Ok((record, start + rdlength))
}

/// IN, CH, HS, NONE, ANY; mDNS uses the top bit for "unicast response" and
/// "cache flush".
fn known_class(class: u16) -> bool {
    matches!(class & 0x7fff, 1 | 3 | 4 | 254 | 255)
}

fn read_u16(message: &[u8], pos: usize) -> Result<u16, DnsError> {
    match message.get(pos..pos + 2) {
        Some(&[a, b]) => Ok(u16::from_be_bytes([a, b])),
        _ => Err(DnsError::Truncated),
    }
}

fn read_u32(message: &[u8], pos: usize) -> Result<u32, DnsError> {
    match message.get(pos..pos + 4) {
        Some(&[a, b, c, d]) => Ok(u32::from_be_bytes([a, b, c, d])),
        _ => Err(DnsError::Truncated),
    }
}

/// Decodes the name at `pos`, following compression pointers. Returns it
/// lowercased without the trailing dot (`.` for the root) and the offset
/// just after the name's own bytes (after the first pointer, if any).
fn read_name(message: &[u8], mut pos: usize) -> Result<(String, usize), DnsError> {
    let mut text = [0u8; MAX_NAME_WIRE_LEN];
    let mut text_len = 0;
    let mut wire_len = 1; // the root label
    let mut end = None;
    let mut jumps = 0;
    // Pointers must point before the start of the stretch being read: real
    // compressors only refer back to names already written.
    let mut segment_start = pos;
    loop {
        let len = *message.get(pos).ok_or(DnsError::Truncated)?;
        match len & 0xc0 {
            0xc0 => {
                let low = *message.get(pos + 1).ok_or(DnsError::Truncated)?;
                let target = usize::from(u16::from_be_bytes([len & 0x3f, low]));
                end.get_or_insert(pos + 2);
                jumps += 1;
                if target < HEADER_LEN || target >= segment_start || jumps > MAX_POINTER_JUMPS {
                    return Err(DnsError::Malformed("bad compression pointer"));
                }
                pos = target;
                segment_start = target;
            }
            0x00 if len == 0 => {
                let end = *end.get_or_insert(pos + 1);
                let name = if text_len == 0 {
                    ".".to_owned()
                } else {
                    String::from_utf8(text[..text_len].to_vec())
                        .map_err(|_| DnsError::Malformed("name is not UTF-8"))?
                };
                return Ok((name, end));
            }
            0x00 => {
                let len = usize::from(len);
                let label = message
                    .get(pos + 1..pos + 1 + len)
                    .ok_or(DnsError::Truncated)?;
                wire_len += 1 + len;
                if wire_len > MAX_NAME_WIRE_LEN {
                    return Err(DnsError::Malformed("name longer than 255 bytes"));
                }
                if label.iter().any(|&b| b < 0x20 || b == 0x7f) {
                    return Err(DnsError::Malformed("control character in a name"));
                }
                // A dot inside a label would make the text form ambiguous
                // (and could forge a pool suffix).
                if label.contains(&b'.') {
                    return Err(DnsError::Malformed("dot inside a label"));
                }
                if text_len > 0 {
                    text[text_len] = b'.';
                    text_len += 1;
                }
                for &b in label {
                    text[text_len] = b.to_ascii_lowercase();
                    text_len += 1;
                }
                pos += 1 + len;
            }
            // 0x40 and 0x80: extended label types (RFC 6891 §5), unused.
            _ => return Err(DnsError::Malformed("unknown label type")),
        }
    }
}

/// The mining-pool domains of data/pool-domains.txt (or another list in
/// its format).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PoolDomains {
    entries: HashSet<Box<str>>,
}

/// A bad line in a pool-domain list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("pool domain list, line {line}: {reason}")]
pub struct PoolListError {
    /// 1-based line number.
    pub line: usize,
    pub reason: &'static str,
}

/// Longest domain name in text form (RFC 1035 §2.3.4 less the length bytes).
const MAX_DOMAIN_LEN: usize = 253;

static BUILTIN: LazyLock<PoolDomains> = LazyLock::new(|| {
    PoolDomains::parse(include_str!("../data/pool-domains.txt"))
        .expect("data/pool-domains.txt is valid (checked by a unit test)")
});

impl PoolDomains {
    /// The list shipped in the binary.
    pub fn builtin() -> &'static PoolDomains {
        &BUILTIN
    }

    /// Parses a list: one domain per line, `#` starts a comment.
    pub fn parse(text: &str) -> Result<PoolDomains, PoolListError> {
        let mut entries = HashSet::new();
        for (index, line) in text.lines().enumerate() {
            let error = |reason| PoolListError {
                line: index + 1,
                reason,
            };
            let entry = line.split('#').next().unwrap_or_default().trim();
            if entry.is_empty() {
                continue;
            }
            let entry = entry
                .strip_suffix('.')
                .unwrap_or(entry)
                .to_ascii_lowercase();
            check_domain(&entry).map_err(error)?;
            if !entries.insert(entry.into_boxed_str()) {
                return Err(error("duplicate entry"));
            }
        }
        Ok(PoolDomains { entries })
    }

    /// The entry that `name` equals or is a subdomain of, if any.
    pub fn matches(&self, name: &str) -> Option<&str> {
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() || name.len() > MAX_DOMAIN_LEN {
            return None;
        }
        let mut buf = [0u8; MAX_DOMAIN_LEN];
        let lower = &mut buf[..name.len()];
        lower.copy_from_slice(name.as_bytes());
        lower.make_ascii_lowercase();
        // ASCII lowercasing of valid UTF-8 is valid UTF-8.
        let lower = std::str::from_utf8(lower).ok()?;
        let suffixes = std::iter::once(lower)
            .chain(lower.match_indices('.').map(|(dot, _)| &lower[dot + 1..]));
        suffixes
            .filter_map(|suffix| self.entries.get(suffix))
            .map(|entry| &**entry)
            .next()
    }

    /// Both lists' domains.
    pub fn union(&self, other: &PoolDomains) -> PoolDomains {
        PoolDomains {
            entries: self.entries.union(&other.entries).cloned().collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A lowercase host name of at least two labels: letters, digits, hyphens
/// (not at a label's ends), labels of 1–63 characters.
fn check_domain(entry: &str) -> Result<(), &'static str> {
    if entry.split_whitespace().nth(1).is_some() {
        return Err("more than one domain on the line");
    }
    if entry.len() > MAX_DOMAIN_LEN {
        return Err("domain longer than 253 characters");
    }
    let mut labels = 0;
    for label in entry.split('.') {
        labels += 1;
        if label.is_empty() || label.len() > MAX_LABEL_LEN {
            return Err("empty label or label longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("not a host name (letters, digits and hyphens only)");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("label starts or ends with a hyphen");
        }
    }
    if labels < 2 {
        return Err("not a registrable domain (needs at least two labels)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Header (RFC 1035 §4.1.1): id, flags, qd/an/ns/ar counts.
    fn header(id: u16, flags: u16, counts: [u16; 4]) -> Vec<u8> {
        let mut out = id.to_be_bytes().to_vec();
        out.extend_from_slice(&flags.to_be_bytes());
        for count in counts {
            out.extend_from_slice(&count.to_be_bytes());
        }
        out
    }

    /// A name as labels (§3.1): length byte + bytes, then the root (0).
    fn name(dotted: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for label in dotted.split('.').filter(|l| !l.is_empty()) {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out
    }

    /// Question (§4.1.2): name, QTYPE, QCLASS.
    fn question(dotted: &str, qtype: u16) -> Vec<u8> {
        let mut out = name(dotted);
        out.extend_from_slice(&qtype.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes()); // IN
        out
    }

    /// Resource record (§4.1.3) with an already encoded owner name.
    fn record(owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
        let mut out = owner.to_vec();
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes()); // IN
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(rdata);
        out
    }

    /// `dig xmr-eu1.nanopool.org A` with an EDNS(0) OPT record, RD set.
    fn pool_query() -> Vec<u8> {
        let mut q = header(0xbeef, 0x0100, [1, 0, 0, 1]);
        q.extend_from_slice(&question("XMR-eu1.Nanopool.org", TYPE_A));
        // OPT: root owner, type 41, class = 1232 (UDP size), TTL 0, no data.
        q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
        q
    }

    /// Its answer: a CNAME then two A records, names compressed with
    /// pointers to the question (offset 12) and to the CNAME's target.
    fn pool_response() -> Vec<u8> {
        let mut r = header(0xbeef, 0x8180, [1, 3, 0, 0]);
        r.extend_from_slice(&question("xmr-eu1.nanopool.org", TYPE_A));
        let to_question = [0xc0, 12];
        // CNAME target "eu1.lb.nanopool.org": "eu1" "lb" then a pointer to
        // "nanopool.org" inside the question (offset 12 + 1 + 7 = 20).
        let cname_rdata = [&[3][..], b"eu1", &[2], b"lb", &[0xc0, 20]].concat();
        let cname_at = r.len();
        r.extend_from_slice(&record(&to_question, TYPE_CNAME, 300, &cname_rdata));
        let target = [0xc0, (cname_at + 12) as u8]; // owner 2 + 10 fixed bytes
        r.extend_from_slice(&record(&target, TYPE_A, 60, &[51, 15, 58, 224]));
        r.extend_from_slice(&record(
            &target,
            TYPE_AAAA,
            60,
            &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        ));
        r
    }

    #[test]
    fn a_query_for_a_pool_is_parsed_and_lowercased() {
        let m = parse(&pool_query()).unwrap();
        assert_eq!(m.id, 0xbeef);
        assert!(!m.is_response);
        assert_eq!(
            m.questions,
            [Question {
                name: "xmr-eu1.nanopool.org".into(),
                qtype: TYPE_A
            }]
        );
        assert!(m.answers.is_empty());
    }

    #[test]
    fn a_compressed_response_yields_cname_and_addresses() {
        let m = parse(&pool_response()).unwrap();
        assert!(m.is_response);
        assert_eq!(m.rcode, 0);
        assert_eq!(m.answers.len(), 3);
        assert_eq!(m.answers[0].name, "xmr-eu1.nanopool.org");
        assert_eq!(
            m.answers[0].data,
            RecordData::Cname("eu1.lb.nanopool.org".into())
        );
        assert_eq!(m.answers[1].name, "eu1.lb.nanopool.org");
        assert_eq!(m.answers[1].ttl, 60);
        assert_eq!(
            m.answers[1].data,
            RecordData::A(Ipv4Addr::new(51, 15, 58, 224))
        );
        assert_eq!(
            m.answers[2].data,
            RecordData::Aaaa("2001:db8::1".parse().unwrap())
        );
    }

    #[test]
    fn nxdomain_and_root_names() {
        let mut r = header(7, 0x8183, [1, 0, 0, 0]);
        r.extend_from_slice(&question(".", 2)); // NS of the root
        let m = parse(&r).unwrap();
        assert_eq!(m.rcode, 3);
        assert_eq!(m.questions[0].name, ".");
    }

    #[test]
    fn tcp_messages_carry_a_length_prefix() {
        let q = pool_query();
        let mut stream = (q.len() as u16).to_be_bytes().to_vec();
        stream.extend_from_slice(&q);
        stream.extend_from_slice(&[0, 40, 1, 2]); // the next message begins
        let (m, used) = parse_tcp(&stream).unwrap();
        assert_eq!(used, 2 + q.len());
        assert_eq!(m.questions[0].name, "xmr-eu1.nanopool.org");
        assert_eq!(parse_tcp(&stream[..1]), Err(DnsError::Incomplete));
        assert_eq!(parse_tcp(&stream[..20]), Err(DnsError::Incomplete));
        assert!(matches!(
            parse_tcp(&[0, 3, 1, 2, 3]),
            Err(DnsError::Malformed(_))
        ));
    }

    #[test]
    fn pointer_loops_and_forward_pointers_are_rejected() {
        // A pointer to itself, at offset 12.
        let mut m = header(1, 0x0100, [1, 0, 0, 0]);
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(
            parse(&m),
            Err(DnsError::Malformed("bad compression pointer"))
        );
        // Two labels pointing at each other: "a" → ptr 17, at 17 "b" → ptr 12.
        let mut m = header(1, 0x0100, [1, 0, 0, 0]);
        m.extend_from_slice(&[1, b'a', 0xc0, 17, 0, 1, 0, 1]);
        m.extend_from_slice(&[1, b'b', 0xc0, 12]);
        assert!(matches!(parse(&m), Err(DnsError::Malformed(_))));
        // A pointer into the header.
        let mut m = header(1, 0x0100, [1, 0, 0, 0]);
        m.extend_from_slice(&[0xc0, 2, 0, 1, 0, 1]);
        assert!(matches!(parse(&m), Err(DnsError::Malformed(_))));
    }

    #[test]
    fn overlong_labels_and_names_are_rejected() {
        let mut m = header(1, 0x0100, [1, 0, 0, 0]);
        m.push(64);
        m.extend_from_slice(&[b'a'; 64]);
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(parse(&m), Err(DnsError::Malformed("unknown label type")));
        let long = vec!["a".repeat(63); 5].join(".");
        let mut m = header(1, 0x0100, [1, 0, 0, 0]);
        m.extend_from_slice(&question(&long, TYPE_A));
        assert_eq!(
            parse(&m),
            Err(DnsError::Malformed("name longer than 255 bytes"))
        );
        let mut m = header(1, 0x0100, [1, 0, 0, 0]);
        m.extend_from_slice(&question("a\u{1}b.example", TYPE_A));
        assert!(matches!(parse(&m), Err(DnsError::Malformed(_))));
        // One label "nanopool.org" (not two): would read as the pool.
        let mut m = header(1, 0x0100, [1, 0, 0, 0]);
        m.push(12);
        m.extend_from_slice(b"nanopool.org");
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(parse(&m), Err(DnsError::Malformed("dot inside a label")));
    }

    #[test]
    fn header_rules_reject_non_dns() {
        let q = pool_query();
        let with_flags = |flags: u16| {
            let mut m = q.clone();
            m[2..4].copy_from_slice(&flags.to_be_bytes());
            m
        };
        // Opcode 5 (UPDATE), a query with RCODE 2.
        assert_eq!(parse(&with_flags(0x2800)), Err(DnsError::NotQuery(5)));
        assert!(matches!(
            parse(&with_flags(0x0102)),
            Err(DnsError::Malformed(_))
        ));
        // Z bit set: allowed.
        assert!(parse(&with_flags(0x0140)).is_ok());
        let with_counts = |counts: [u16; 4]| {
            let mut m = q.clone();
            m[..HEADER_LEN].copy_from_slice(&header(0xbeef, 0x0100, counts));
            m
        };
        assert!(matches!(
            parse(&with_counts([0, 0, 0, 1])),
            Err(DnsError::Malformed(_))
        ));
        assert!(matches!(
            parse(&with_counts([9, 0, 0, 1])),
            Err(DnsError::Malformed(_))
        ));
        assert_eq!(
            parse(&with_counts([1, 0xffff, 0, 1])),
            Err(DnsError::Malformed("record counts cannot fit the message"))
        );
        // Declares one record fewer: the OPT record is trailing garbage.
        assert_eq!(
            parse(&with_counts([1, 0, 0, 0])),
            Err(DnsError::Malformed("bytes after the last record"))
        );
        let mut trailing = q.clone();
        trailing.push(0);
        assert!(matches!(parse(&trailing), Err(DnsError::Malformed(_))));
        // An unknown class.
        let mut m = header(1, 0x0100, [1, 0, 0, 0]);
        m.extend_from_slice(&[0, 0, 1, 0, 9]);
        assert!(matches!(parse(&m), Err(DnsError::Malformed(_))));
    }

    #[test]
    fn truncated_messages_are_errors() {
        let r = pool_response();
        for cut in [0, 5, 11, 20, 40, r.len() - 1] {
            assert!(parse(&r[..cut]).is_err(), "cut at {cut}");
        }
        // An A record whose RDATA is 3 bytes.
        let mut m = header(1, 0x8180, [1, 1, 0, 0]);
        m.extend_from_slice(&question("a.example", TYPE_A));
        m.extend_from_slice(&record(&[0xc0, 12], TYPE_A, 1, &[1, 2, 3]));
        assert_eq!(parse(&m), Err(DnsError::Malformed("A record length")));
    }

    #[test]
    fn other_protocols_are_not_dns() {
        for bytes in [
            &b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n"[..],
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n",
            b"SSH-2.0-OpenSSH_9.6\r\n",
            &[0u8; 64],
            &[0xffu8; 64],
        ] {
            assert!(parse(bytes).is_err(), "{bytes:?}");
        }
    }

    #[test]
    fn the_builtin_pool_list_parses_and_is_substantial() {
        let list = PoolDomains::builtin();
        assert!((60..=150).contains(&list.len()), "{} entries", list.len());
        assert!(!list.is_empty());
        assert_eq!(list.matches("xmr-eu1.nanopool.org"), Some("nanopool.org"));
        assert_eq!(
            list.matches("gulf.moneroocean.stream."),
            Some("moneroocean.stream")
        );
        assert_eq!(list.matches("POOL.SUPPORTXMR.COM"), Some("supportxmr.com"));
    }

    #[test]
    fn matching_is_on_label_boundaries() {
        let list = PoolDomains::parse("nanopool.org\n").unwrap();
        assert_eq!(list.matches("nanopool.org"), Some("nanopool.org"));
        assert_eq!(list.matches("xmr-eu1.nanopool.org"), Some("nanopool.org"));
        assert_eq!(list.matches("Xmr-EU1.NanoPool.org."), Some("nanopool.org"));
        assert_eq!(list.matches("notnanopool.org"), None);
        assert_eq!(list.matches("nanopool.org.evil.example"), None);
        assert_eq!(list.matches("org"), None);
        assert_eq!(list.matches(""), None);
        assert_eq!(list.matches("."), None);
        assert_eq!(list.matches(&"a.".repeat(200)), None);
    }

    #[test]
    fn pool_list_errors_name_the_line() {
        let text = "# header\n\nok.example  # comment\nFine.Example.\nbad_domain.example\n";
        assert_eq!(
            PoolDomains::parse(text),
            Err(PoolListError {
                line: 5,
                reason: "not a host name (letters, digits and hyphens only)"
            })
        );
        for (text, reason) in [
            ("a.example\na.example\n", "duplicate entry"),
            (
                "localhost\n",
                "not a registrable domain (needs at least two labels)",
            ),
            ("a.example b.example\n", "more than one domain on the line"),
            ("-a.example\n", "label starts or ends with a hyphen"),
            (
                "a..example\n",
                "empty label or label longer than 63 characters",
            ),
        ] {
            let err = PoolDomains::parse(text).unwrap_err();
            assert_eq!(err.reason, reason, "{text:?}");
        }
        let err = PoolDomains::parse("x\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "pool domain list, line 1: not a registrable domain (needs at least two labels)"
        );
        let list = PoolDomains::parse(text.replace("bad_domain.example\n", "").as_str()).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list.matches("fine.example"), Some("fine.example"));
    }
}
