//! Stratum v1: newline-delimited JSON-RPC over one long-lived TCP connection
//! (docs/signatures.md, ST1–ST8).
//!
//! Key order and whitespace vary by client, so bytes are only a prefilter: a
//! line counts only once it parses as a JSON object whose method (or result)
//! has the shape of a mining protocol message. A method name alone is not
//! enough where benign JSON-RPC uses the same word (`login`, `submit`): the
//! parameters must carry what only a miner sends (agent/algo, job ids with
//! nonce and result hashes).

use serde_json::{Map, Value};

use super::Direction;

/// Longest line considered; longer ones are rejected, not parsed.
pub const MAX_LINE: usize = 16 * 1024;

/// The protocol variants of docs/signatures.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Variant {
    /// ST1: Bitcoin-style `mining.*` (slush).
    #[serde(rename = "ST1-bitcoin")]
    Bitcoin,
    /// ST2: BIP310 `mining.configure` version rolling.
    #[serde(rename = "ST2-bip310")]
    Bip310,
    /// ST3: EthereumStratum/1.0.0 (NiceHash).
    #[serde(rename = "ST3-ethereumstratum")]
    EthereumStratum,
    /// ST4: EthProxy / getwork (`eth_submitLogin`, `eth_getWork`, …).
    #[serde(rename = "ST4-ethproxy")]
    EthProxy,
    /// ST5: CryptoNote / XMRig (`login` with agent and algo, `job` pushes).
    #[serde(rename = "ST5-cryptonote")]
    CryptoNote,
    /// ST6: KawPow (Ravencoin) submits with 0x-prefixed nonce, header, mix.
    #[serde(rename = "ST6-kawpow")]
    KawPow,
    /// ST8: AleoStratum.
    #[serde(rename = "ST8-aleo")]
    Aleo,
    /// Solo mining against a node: `getblocktemplate`, `submitblock`, `getwork`.
    #[serde(rename = "getwork")]
    Getwork,
}

impl Variant {
    pub fn id(self) -> &'static str {
        match self {
            Self::Bitcoin => "ST1",
            Self::Bip310 => "ST2",
            Self::EthereumStratum => "ST3",
            Self::EthProxy => "ST4",
            Self::CryptoNote => "ST5",
            Self::KawPow => "ST6",
            Self::Aleo => "ST8",
            Self::Getwork => "getwork",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Bitcoin => "stratum v1 (Bitcoin-style mining.*)",
            Self::Bip310 => "stratum v1 with BIP310 version rolling",
            Self::EthereumStratum => "EthereumStratum/1.0.0 (NiceHash)",
            Self::EthProxy => "EthProxy stratum (eth_submitLogin/eth_getWork)",
            Self::CryptoNote => "CryptoNote stratum (XMRig-style login/job)",
            Self::KawPow => "KawPow stratum (Ravencoin)",
            Self::Aleo => "AleoStratum",
            Self::Getwork => "getwork/getblocktemplate mining RPC",
        }
    }
}

/// One line recognised as a mining protocol message.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Message {
    pub variant: Option<Variant>,
    /// The JSON-RPC method, or `result` for a recognised reply.
    pub method: String,
    /// True when the message alone proves a mining protocol.
    pub decisive: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Login, user or wallet address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub algorithms: Vec<String>,
}

/// Why a stratum-looking line was not accepted. Counted by callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Rejection {
    #[error("line longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("not valid UTF-8")]
    NotUtf8,
    #[error("invalid or too deeply nested JSON")]
    BadJson,
}

/// What [`scan`] found in a byte stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    pub messages: Vec<Message>,
    pub rejections: Vec<Rejection>,
    /// Bytes consumed (complete lines); the rest is an unfinished line.
    pub consumed: usize,
}

/// Scans the complete lines of a stream. An unterminated tail is left for
/// the caller to retry when more bytes arrive.
pub fn scan(bytes: &[u8], direction: Direction) -> Scan {
    let mut out = Scan::default();
    let mut start = 0;
    while let Some(newline) = bytes[start..].iter().position(|&b| b == b'\n') {
        let line = &bytes[start..start + newline];
        start += newline + 1;
        match classify_line(line, direction) {
            Ok(Some(message)) => out.messages.push(message),
            Ok(None) => {}
            Err(rejection) => out.rejections.push(rejection),
        }
    }
    if bytes.len() - start > MAX_LINE {
        // A line that never ends: drop it rather than buffer it forever.
        out.rejections.push(Rejection::TooLong);
        start = bytes.len();
    }
    out.consumed = start;
    out
}

/// Classifies one line (without its `\n`). `Ok(None)`: not stratum.
pub fn classify_line(line: &[u8], direction: Direction) -> Result<Option<Message>, Rejection> {
    let line = line.trim_ascii();
    if line.first() != Some(&b'{') || !looks_like_json_rpc(line) {
        return Ok(None);
    }
    if line.len() > MAX_LINE {
        return Err(Rejection::TooLong);
    }
    let text = std::str::from_utf8(line).map_err(|_| Rejection::NotUtf8)?;
    // serde_json bounds nesting (128 levels): a JSON bomb is an error, not a
    // stack overflow.
    let value: Value = serde_json::from_str(text).map_err(|_| Rejection::BadJson)?;
    let Value::Object(object) = value else {
        return Ok(None);
    };
    Ok(match direction {
        Direction::Outbound => client_message(&object).or_else(|| pool_message(&object)),
        Direction::Inbound => pool_message(&object).or_else(|| client_message(&object)),
    })
}

/// Fast byte prefilter: JSON-RPC carries "method" or "result".
fn looks_like_json_rpc(line: &[u8]) -> bool {
    contains(line, b"\"method\"") || contains(line, b"\"result\"")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn str_of(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_str).map(str::to_owned)
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `user.worker` → (user, worker).
fn split_worker(login: &str) -> (String, Option<String>) {
    match login.split_once('.') {
        Some((user, worker)) if !user.is_empty() && !worker.is_empty() => {
            (user.to_owned(), Some(worker.to_owned()))
        }
        _ => (login.to_owned(), None),
    }
}

fn message(variant: Variant, method: &str, decisive: bool) -> Message {
    Message {
        variant: Some(variant),
        method: method.to_owned(),
        decisive,
        ..Message::default()
    }
}

/// Client → pool messages.
fn client_message(object: &Map<String, Value>) -> Option<Message> {
    let method = object.get("method")?.as_str()?;
    let params = object.get("params");
    let list = params
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let strings = || list.iter().filter_map(Value::as_str);

    if let Some(op) = method.strip_prefix("mining.") {
        if op.is_empty() {
            return None;
        }
        let mut m = message(Variant::Bitcoin, method, true);
        match op {
            "subscribe" => {
                if strings().any(|s| s.starts_with("EthereumStratum/")) {
                    m.variant = Some(Variant::EthereumStratum);
                } else if strings().any(|s| s.starts_with("AleoStratum/")) {
                    m.variant = Some(Variant::Aleo);
                }
                m.agent = str_of(list.first());
            }
            "configure" => m.variant = Some(Variant::Bip310),
            "authorize" => {
                if let Some(login) = list.first().and_then(Value::as_str) {
                    let (user, worker) = split_worker(login);
                    m.login = Some(user);
                    m.worker = worker;
                }
            }
            "submit" => {
                let hex_prefixed = list.iter().skip(2).filter_map(Value::as_str);
                if list.len() == 5 && hex_prefixed.clone().all(|s| s.starts_with("0x")) {
                    m.variant = Some(Variant::KawPow);
                }
                if let Some(login) = list.first().and_then(Value::as_str) {
                    let (user, worker) = split_worker(login);
                    m.login = Some(user);
                    m.worker = worker;
                }
            }
            _ => {}
        }
        return Some(m);
    }

    match method {
        "login" => {
            // XMRig and other CryptoNote miners: {login, pass, agent, algo, rigid}.
            // A generic API "login" has no algo/rigid, and rarely both pass
            // and agent.
            let p = params?.as_object()?;
            let login = p.get("login")?.as_str()?;
            let miner_keys = p.contains_key("algo")
                || p.contains_key("rigid")
                || (p.contains_key("agent") && p.contains_key("pass"));
            if !miner_keys {
                return None;
            }
            let mut m = message(Variant::CryptoNote, method, true);
            m.login = Some(login.to_owned());
            m.agent = str_of(p.get("agent"));
            m.worker = str_of(p.get("rigid")).filter(|s| !s.is_empty());
            m.algorithms = p
                .get("algo")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            Some(m)
        }
        "submit" => {
            // {id, job_id, nonce (hex), result (64 hex)}
            let p = params?.as_object()?;
            let result = p.get("result")?.as_str()?;
            let nonce = p.get("nonce")?.as_str()?;
            p.get("job_id")?;
            (is_hex(result, 64) && nonce.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| message(Variant::CryptoNote, method, true))
        }
        "keepalived" => {
            let p = params?.as_object()?;
            p.contains_key("id")
                .then(|| message(Variant::CryptoNote, method, false))
        }
        "eth_submitLogin" | "eth_getWork" | "eth_submitWork" | "eth_submitHashrate" => {
            let mut m = message(Variant::EthProxy, method, true);
            if method == "eth_submitLogin" {
                m.login = str_of(list.first());
            }
            m.worker = str_of(object.get("worker")).filter(|s| !s.is_empty());
            Some(m)
        }
        "getblocktemplate" | "submitblock" | "getwork" => {
            Some(message(Variant::Getwork, method, true))
        }
        _ => None,
    }
}

/// Pool → client messages: notifications and replies that only a pool sends.
fn pool_message(object: &Map<String, Value>) -> Option<Message> {
    if let Some(method) = object.get("method").and_then(Value::as_str) {
        let params = object.get("params");
        return match method {
            "mining.notify"
            | "mining.set_difficulty"
            | "mining.set_target"
            | "mining.set_extranonce" => {
                let list = params.and_then(Value::as_array)?;
                (!list.is_empty()).then(|| message(Variant::Bitcoin, method, true))
            }
            "job" => {
                let p = params?.as_object()?;
                (p.contains_key("blob") && p.contains_key("job_id") && p.contains_key("target"))
                    .then(|| message(Variant::CryptoNote, method, true))
            }
            _ => None,
        };
    }
    let result = object.get("result")?;
    // CryptoNote login reply: {id, job: {blob, job_id, target, seed_hash?}}.
    if let Some(job) = result.get("job").and_then(Value::as_object)
        && job.contains_key("blob")
        && (job.contains_key("seed_hash") || job.contains_key("job_id"))
    {
        let mut m = message(Variant::CryptoNote, "result", true);
        m.algorithms = str_of(job.get("algo")).into_iter().collect();
        return Some(m);
    }
    // mining.subscribe reply: [[["mining.set_difficulty", id], ["mining.notify", id]], en1, size].
    let list = result.as_array()?;
    let subscriptions = list.first()?.as_array()?;
    let names_notify = subscriptions.iter().any(|s| {
        s.as_array()
            .and_then(|pair| pair.first())
            .and_then(Value::as_str)
            .is_some_and(|name| name.starts_with("mining."))
    });
    names_notify.then(|| message(Variant::Bitcoin, "result", true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(line: &str) -> Option<Message> {
        classify_line(line.as_bytes(), Direction::Outbound).unwrap()
    }

    fn pool(line: &str) -> Option<Message> {
        classify_line(line.as_bytes(), Direction::Inbound).unwrap()
    }

    #[test]
    fn st1_bitcoin_subscribe_and_authorize() {
        let m = client(r#"{"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.11.1"]}"#)
            .unwrap();
        assert_eq!(m.variant, Some(Variant::Bitcoin));
        assert_eq!(m.agent.as_deref(), Some("cgminer/4.11.1"));
        assert!(m.decisive);
        let m = client(
            r#"{"params": ["bc1qwallet.rig7", "x"], "id": 2, "method": "mining.authorize"}"#,
        )
        .unwrap();
        assert_eq!(m.login.as_deref(), Some("bc1qwallet"));
        assert_eq!(m.worker.as_deref(), Some("rig7"));
    }

    #[test]
    fn st2_bip310_configure() {
        let m = client(r#"{"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"1fffe000"}]}"#).unwrap();
        assert_eq!(m.variant, Some(Variant::Bip310));
    }

    #[test]
    fn st3_ethereumstratum_subscribe() {
        let m = client(r#"{"id":1,"method":"mining.subscribe","params":["MinerName/1.0.0","EthereumStratum/1.0.0"]}"#).unwrap();
        assert_eq!(m.variant, Some(Variant::EthereumStratum));
        assert_eq!(m.agent.as_deref(), Some("MinerName/1.0.0"));
    }

    #[test]
    fn st4_ethproxy_login_with_worker_first() {
        let m = client(r#"{"worker":"rig1","id":1,"method":"eth_submitLogin","params":["0x5a0b54d5dc17e0aadc383d2db43b0a0d3e029c4c"]}"#).unwrap();
        assert_eq!(m.variant, Some(Variant::EthProxy));
        assert_eq!(
            m.login.as_deref(),
            Some("0x5a0b54d5dc17e0aadc383d2db43b0a0d3e029c4c")
        );
        assert_eq!(m.worker.as_deref(), Some("rig1"));
    }

    #[test]
    fn st5_xmrig_login_compact() {
        let line = r#"{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A","pass":"x","agent":"XMRig/6.16.0 (Linux x86_64) libuv/1.42.0 gcc/10.2.1","algo":["rx/0","cn/r"]}}"#;
        let m = client(line).unwrap();
        assert_eq!(m.variant, Some(Variant::CryptoNote));
        assert!(m.agent.unwrap().starts_with("XMRig/6.16.0"));
        assert!(m.login.unwrap().starts_with("44AFF"));
        assert_eq!(m.algorithms, ["rx/0", "cn/r"]);
    }

    #[test]
    fn st6_kawpow_submit() {
        let m = client(r#"{"id":4,"method":"mining.submit","params":["wallet.w","6a1","0x00000000a1b2c3d4","0xabc","0xdef"]}"#).unwrap();
        assert_eq!(m.variant, Some(Variant::KawPow));
    }

    #[test]
    fn st8_aleo_subscribe() {
        let m = client(r#"{"id":1,"method":"mining.subscribe","params":["aleominer/1.0","AleoStratum/2.0.0",null]}"#).unwrap();
        assert_eq!(m.variant, Some(Variant::Aleo));
    }

    #[test]
    fn pool_pushes_classify_from_the_server_side() {
        assert!(pool(r#"{"id":null,"method":"mining.notify","params":["bf","4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000","01","02",[],"00000002","1c2ac4af","504e86b9",false]}"#).is_some());
        assert!(pool(r#"{"jsonrpc":"2.0","method":"job","params":{"blob":"0707","job_id":"1","target":"b88d0600"}}"#).is_some());
        assert!(pool(r#"{"id":1,"jsonrpc":"2.0","error":null,"result":{"id":"x","job":{"blob":"0707","job_id":"1","target":"ff","seed_hash":"00"},"status":"OK"}}"#).is_some());
        assert!(pool(r#"{"id":1,"result":[[["mining.set_difficulty","1"],["mining.notify","1"]],"08000002",4],"error":null}"#).is_some());
    }

    #[test]
    fn benign_json_rpc_is_not_stratum() {
        for line in [
            r#"{"jsonrpc":"2.0","id":1,"method":"getinfo","params":[]}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"login","params":{"username":"alice","password":"pw"}}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"login","params":{"login":"alice","pass":"pw"}}"#,
            r#"{"jsonrpc":"2.0","id":8,"method":"login","params":{"login":"alice","agent":"Mozilla/5.0"}}"#,
            r#"{"jsonrpc":"2.0","id":4,"method":"submit","params":{"form":"contact","text":"hi"}}"#,
            r#"{"jsonrpc":"2.0","id":5,"method":"subscribe","params":["ticker"]}"#,
            r#"{"jsonrpc":"2.0","id":6,"result":{"job":{"name":"nightly-build"}}}"#,
            r#"{"jsonrpc":"2.0","id":7,"result":[["a","b"]]}"#,
            r#"{"method":"mining.","params":[]}"#,
            r#"{"event":"mining.notify"}"#,
            "GET / HTTP/1.1",
        ] {
            assert_eq!(client(line), None, "{line}");
            assert_eq!(pool(line), None, "{line}");
        }
    }

    #[test]
    fn scan_keeps_unterminated_tails_for_later() {
        let stream =
            b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\r\n{\"id\":2,\"meth";
        let s = scan(stream, Direction::Outbound);
        assert_eq!(s.messages.len(), 1);
        assert_eq!(&stream[s.consumed..], b"{\"id\":2,\"meth");
    }

    #[test]
    fn bad_input_is_rejected_not_panicked_on() {
        // A JSON bomb: nesting deeper than serde_json's limit.
        let bomb = format!(
            r#"{{"method":"mining.subscribe","params":{}{}}}"#,
            "[".repeat(5000),
            "]".repeat(5000)
        );
        assert_eq!(
            classify_line(bomb.as_bytes(), Direction::Outbound),
            Err(Rejection::BadJson)
        );
        assert_eq!(
            classify_line(b"{\"method\":\"mining.sub\xff\"}", Direction::Outbound),
            Err(Rejection::NotUtf8)
        );
        assert_eq!(
            classify_line(b"{\"method\":\"mining.subscribe\",", Direction::Outbound),
            Err(Rejection::BadJson)
        );
        let long = format!(
            r#"{{"method":"mining.subscribe","params":["{}"]}}"#,
            "a".repeat(MAX_LINE)
        );
        assert_eq!(
            classify_line(long.as_bytes(), Direction::Outbound),
            Err(Rejection::TooLong)
        );
        let endless = vec![b'{'; MAX_LINE + 10];
        assert_eq!(
            scan(&endless, Direction::Outbound).rejections,
            [Rejection::TooLong]
        );
    }
}
