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
    /// True when the message, sent by the party it is the message of,
    /// proves a mining protocol: a miner's call with a miner's parameters,
    /// or a pool's push. Who sent it decides what it says about whom: a
    /// pool-side message is about the local process only once that
    /// process spoke as a miner on the same flow (agent evidence).
    pub decisive: bool,
    /// A pool → miner message (notification or reply): what the server
    /// side says, not what the client did.
    #[serde(skip)]
    pub from_pool: bool,
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

/// Fast byte prefilter: JSON-RPC carries "method" or "result". A key can
/// be written with `\u` escapes (`"\u006dethod"` is `"method"` to every
/// JSON parser), so a line with an escape goes to the parser too; the
/// parsed values are unescaped, and every rule below reads those.
fn looks_like_json_rpc(line: &[u8]) -> bool {
    contains(line, b"\"method\"") || contains(line, b"\"result\"") || contains(line, b"\\u")
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

/// Hex digits, at least one, at most `max`.
fn is_hex_up_to(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `0x` then exactly `len` hex digits (EIP-1571 / ethproxy quantities and
/// hashes).
fn is_0x_hex(value: &Value, len: usize) -> bool {
    value
        .as_str()
        .and_then(|s| s.strip_prefix("0x"))
        .is_some_and(|h| is_hex(h, len))
}

/// Hex digits, with or without `0x` (stratum nonces and extranonces:
/// Bitcoin pools write them bare, KawPow pools with the prefix).
fn is_maybe_0x_hex(s: &str) -> bool {
    is_hex_up_to(s.strip_prefix("0x").unwrap_or(s), 256)
}

/// A short, non-empty name without control characters or spaces: a
/// login, worker, job id or algorithm as miners write them.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 512 && !s.chars().any(|c| c.is_control() || c == ' ')
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

/// The parameters as a list: absent means none; anything but an array
/// is not a stratum call.
fn params_list(object: &Map<String, Value>) -> Option<&[Value]> {
    match object.get("params") {
        None | Some(Value::Null) => Some(&[]),
        Some(Value::Array(list)) => Some(list.as_slice()),
        Some(_) => None,
    }
}

/// BIP 22/23 template-request capabilities that only a consumer of work
/// names: it will build on the template (coinbase, work ids, long polling)
/// or propose a block it made.
const GBT_WORK_CAPABILITIES: [&str; 7] = [
    "coinbasetxn",
    "coinbasevalue",
    "workid",
    "longpoll",
    "coinbase/append",
    "proposal",
    "serverlist",
];

/// Client → pool messages. Every decisive one checks its parameters'
/// shapes against the protocol's public description: a method name alone
/// is a word anyone can send.
fn client_message(object: &Map<String, Value>) -> Option<Message> {
    let method = object.get("method")?.as_str()?;
    if let Some(op) = method.strip_prefix("mining.") {
        return mining_call(method, op, params_list(object)?);
    }
    match method {
        "login" => cryptonote_login(object.get("params")?.as_object()?),
        "submit" => {
            // XMRig: {id, job_id, nonce (8 hex; 16 for some algorithms),
            // result (64 hex), algo?}.
            let p = object.get("params")?.as_object()?;
            let result = p.get("result")?.as_str()?;
            let nonce = p.get("nonce")?.as_str()?;
            let job = p.get("job_id")?.as_str()?;
            let id_ok = p
                .get("id")
                .is_none_or(|id| id.as_str().is_some_and(is_token));
            (is_hex(result, 64)
                && is_hex_up_to(nonce, 16)
                && nonce.len() >= 8
                && is_token(job)
                && id_ok)
                .then(|| message(Variant::CryptoNote, method, true))
        }
        "keepalived" => {
            let p = object.get("params")?.as_object()?;
            p.contains_key("id")
                .then(|| message(Variant::CryptoNote, method, false))
        }
        "eth_submitLogin" => {
            // [account(, password)]: an address or user.worker.
            let list = params_list(object)?;
            let login = list.first()?.as_str().filter(|s| is_token(s))?;
            if list.len() > 2 || !list.iter().all(Value::is_string) {
                return None;
            }
            let mut m = message(Variant::EthProxy, method, true);
            m.login = Some(login.to_owned());
            m.worker = str_of(object.get("worker")).filter(|s| !s.is_empty());
            Some(m)
        }
        // Standard Ethereum JSON-RPC (geth, pre-merge), and ethproxy's
        // work calls: asking for work takes no parameters; the rest carry
        // a solution's exact shapes (EIP-1571 and the execution-apis
        // spec: nonce 8 bytes, pow-hash and mix digest 32, hashrate a
        // quantity with a 32-byte client id).
        "eth_getWork" => (params_list(object)?.is_empty()).then(|| eth_work(object, method)),
        "eth_submitWork" => {
            let list = params_list(object)?;
            (list.len() == 3
                && is_0x_hex(&list[0], 16)
                && is_0x_hex(&list[1], 64)
                && is_0x_hex(&list[2], 64))
            .then(|| eth_work(object, method))
        }
        "eth_submitHashrate" => {
            let list = params_list(object)?;
            let rate = list.first()?.as_str()?.strip_prefix("0x")?;
            (list.len() == 2 && is_hex_up_to(rate, 64) && is_0x_hex(&list[1], 64))
                .then(|| eth_work(object, method))
        }
        "getblocktemplate" => getblocktemplate(params_list(object)?),
        "submitblock" => {
            // BIP 22: [block hex(, params)]: at least an 80-byte header.
            let list = params_list(object)?;
            let block = list.first()?.as_str()?;
            (list.len() <= 2
                && block.len() >= 160
                && block.len() % 2 == 0
                && block.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| message(Variant::Getwork, method, true))
        }
        "getwork" => {
            // Pre-BIP 22 getwork: no parameters asks for work, one
            // 128-byte block header (256 hex digits) submits it.
            let list = params_list(object)?;
            let shaped = match list {
                [] => true,
                [data] => data.as_str().is_some_and(|d| is_hex(d, 256)),
                _ => false,
            };
            shaped.then(|| message(Variant::Getwork, method, true))
        }
        _ => None,
    }
}

/// `mining.*` calls a miner makes (slush stratum docs, BIP 310, NiceHash's
/// EthereumStratum, AleoStratum).
fn mining_call(method: &str, op: &str, list: &[Value]) -> Option<Message> {
    let mut m = message(Variant::Bitcoin, method, true);
    let strings = || list.iter().filter_map(Value::as_str);
    match op {
        "subscribe" => {
            // [agent?, session id or protocol?, host?, port?]: strings,
            // nulls, a port number.
            let shaped = list.len() <= 4
                && list
                    .iter()
                    .all(|v| v.is_string() || v.is_null() || v.is_u64());
            if !shaped {
                return None;
            }
            if strings().any(|s| s.starts_with("EthereumStratum/")) {
                m.variant = Some(Variant::EthereumStratum);
            } else if strings().any(|s| s.starts_with("AleoStratum/")) {
                m.variant = Some(Variant::Aleo);
            }
            m.agent = str_of(list.first());
        }
        "extranonce.subscribe" => {
            if !list.is_empty() {
                return None;
            }
        }
        "configure" => {
            // [[extension names], {extension parameters}].
            let names = list.first()?.as_array()?;
            let shaped = !names.is_empty()
                && names.iter().all(|n| n.as_str().is_some_and(is_token))
                && list.len() <= 2
                && list.get(1).is_none_or(Value::is_object);
            if !shaped {
                return None;
            }
            m.variant = Some(Variant::Bip310);
        }
        "authorize" => {
            // [user(.worker), password?].
            let login = list.first()?.as_str().filter(|s| is_token(s))?;
            let shaped =
                list.len() <= 2 && list.iter().skip(1).all(|v| v.is_string() || v.is_null());
            if !shaped {
                return None;
            }
            let (user, worker) = split_worker(login);
            m.login = Some(user);
            m.worker = worker;
        }
        "submit" => {
            // [worker, job id, then hex: extranonce2, ntime, nonce(,
            // version bits)] (Bitcoin); [worker, job, nonce] (NiceHash);
            // [worker, job, 0x nonce, 0x header, 0x mix] (KawPow).
            let shaped = (3..=6).contains(&list.len())
                && list.iter().all(Value::is_string)
                && strings().take(2).all(is_token)
                && strings().skip(2).all(is_maybe_0x_hex);
            if !shaped {
                return None;
            }
            if list.len() == 5 && strings().skip(2).all(|s| s.starts_with("0x")) {
                m.variant = Some(Variant::KawPow);
            }
            let (user, worker) = split_worker(list.first()?.as_str()?);
            m.login = Some(user);
            m.worker = worker;
        }
        // Another `mining.*` word is not a call this classifier knows the
        // shape of: nothing.
        _ => return None,
    }
    Some(m)
}

/// CryptoNote miners (XMRig, xmr-stak): `{login, pass, agent, algo, rigid}`.
/// A generic API `login` has no algo/rigid, and rarely both pass and agent.
fn cryptonote_login(p: &Map<String, Value>) -> Option<Message> {
    let login = p.get("login")?.as_str().filter(|s| is_token(s))?;
    let miner_keys = p.contains_key("algo")
        || p.contains_key("rigid")
        || (p.contains_key("agent") && p.contains_key("pass"));
    let string_or_absent = |key: &str| p.get(key).is_none_or(Value::is_string);
    let algorithms = match p.get("algo") {
        None => Vec::new(),
        Some(Value::Array(list)) if !list.is_empty() => list
            .iter()
            .map(|a| a.as_str().filter(|s| is_token(s)).map(str::to_owned))
            .collect::<Option<Vec<_>>>()?,
        Some(_) => return None,
    };
    if !miner_keys || !["pass", "agent", "rigid"].into_iter().all(string_or_absent) {
        return None;
    }
    let mut m = message(Variant::CryptoNote, "login", true);
    m.login = Some(login.to_owned());
    m.agent = str_of(p.get("agent"));
    m.worker = str_of(p.get("rigid")).filter(|s| !s.is_empty());
    m.algorithms = algorithms;
    Some(m)
}

fn eth_work(object: &Map<String, Value>, method: &str) -> Message {
    let mut m = message(Variant::EthProxy, method, true);
    m.worker = str_of(object.get("worker")).filter(|s| !s.is_empty());
    m
}

/// `getblocktemplate` (BIP 22/23) asks a node for the block to mine on
/// next. Mining software (cgminer, bfgminer, ckpool, NOMP) asks with the
/// capabilities it will use to build on it (`coinbasetxn`, `workid`,
/// `longpoll`, `coinbase/append`, …) or proposes a block (`mode:
/// "proposal"`): decisive. A bare `{"rules":["segwit"]}` (which Bitcoin
/// Core requires of every caller) is also what template watchers send to
/// look at the next block without mining it (pool observers such as
/// miningpool-observer, fee and mempool dashboards): not recognised at all,
/// so that watching the chain never reads as mining.
fn getblocktemplate(list: &[Value]) -> Option<Message> {
    let [request] = list else {
        return None;
    };
    let request = request.as_object()?;
    let strings = |key: &str| -> Option<Vec<&str>> {
        match request.get(key) {
            None => Some(Vec::new()),
            Some(Value::Array(items)) => items.iter().map(Value::as_str).collect(),
            Some(_) => None,
        }
    };
    let capabilities = strings("capabilities")?;
    let _rules = strings("rules")?;
    let mode = match request.get("mode") {
        None => "template",
        Some(mode) => mode.as_str()?,
    };
    let proposes = mode == "proposal" && request.get("data").and_then(Value::as_str).is_some();
    let builds = capabilities
        .iter()
        .any(|c| GBT_WORK_CAPABILITIES.contains(c));
    (proposes || (mode == "template" && builds))
        .then(|| message(Variant::Getwork, "getblocktemplate", true))
}

/// Pool → client messages: notifications and replies that only a pool sends.
fn pool_message(object: &Map<String, Value>) -> Option<Message> {
    let from_pool = |mut m: Message| {
        m.from_pool = true;
        m
    };
    if let Some(method) = object.get("method").and_then(Value::as_str) {
        let params = object.get("params");
        return match method {
            "mining.notify"
            | "mining.set_difficulty"
            | "mining.set_target"
            | "mining.set_extranonce" => {
                let list = params.and_then(Value::as_array)?;
                (!list.is_empty()).then(|| from_pool(message(Variant::Bitcoin, method, true)))
            }
            "job" => {
                let p = params?.as_object()?;
                let hex = |key: &str| {
                    p.get(key)
                        .and_then(Value::as_str)
                        .is_some_and(|s| is_hex_up_to(s, 1 << 12))
                };
                (hex("blob") && p.contains_key("job_id") && hex("target"))
                    .then(|| from_pool(message(Variant::CryptoNote, method, true)))
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
        let mut m = from_pool(message(Variant::CryptoNote, "result", true));
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
    names_notify.then(|| from_pool(message(Variant::Bitcoin, "result", true)))
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
            r#"{"jsonrpc":"2.0","method":"notify","params":{"event":"mining.notify","channel":"mining.subscribe"}}"#,
            r#"{"jsonrpc":"2.0","method":"job","params":{"name":"backup","job_id":"7","target":"s3"}}"#,
            "GET / HTTP/1.1",
        ] {
            assert_eq!(client(line), None, "{line}");
            assert_eq!(pool(line), None, "{line}");
        }
    }

    #[test]
    fn pool_messages_say_they_come_from_the_pool() {
        let m = pool(r#"{"id":null,"method":"mining.set_difficulty","params":[2]}"#).unwrap();
        assert!(m.from_pool);
        let m = client(r#"{"id":1,"method":"mining.subscribe","params":[]}"#).unwrap();
        assert!(!m.from_pool);
        // A server sending a miner's call is still a miner's call, not a
        // pool push: what it means about whom is the evidence layer's.
        let m =
            pool(r#"{"id":1,"method":"mining.subscribe","params":["cgminer/4.11.1"]}"#).unwrap();
        assert!(!m.from_pool);
    }

    #[test]
    fn ethproxy_work_calls_are_decisive_only_with_their_shapes() {
        let nonce = "0x00000000deadbeef";
        let hash = format!("0x{}", "1f".repeat(32));
        let mix = format!("0x{}", "a0".repeat(32));
        for line in [
            r#"{"id":3,"jsonrpc":"2.0","method":"eth_getWork","params":[]}"#.to_owned(),
            r#"{"worker":"","jsonrpc":"2.0","params":[],"id":3,"method":"eth_getWork"}"#.to_owned(),
            format!(
                r#"{{"id":4,"jsonrpc":"2.0","method":"eth_submitWork","params":["{nonce}","{hash}","{mix}"]}}"#
            ),
            format!(
                r#"{{"id":5,"jsonrpc":"2.0","method":"eth_submitHashrate","params":["0x500000","{hash}"]}}"#
            ),
        ] {
            let m = client(&line).unwrap_or_else(|| panic!("{line}"));
            assert!(m.decisive && m.variant == Some(Variant::EthProxy), "{line}");
        }
        for line in [
            // Parameters an RPC client might pass, not a solution's.
            r#"{"id":3,"jsonrpc":"2.0","method":"eth_getWork","params":["latest"]}"#.to_owned(),
            r#"{"id":3,"jsonrpc":"2.0","method":"eth_getWork","params":{}}"#.to_owned(),
            r#"{"id":4,"jsonrpc":"2.0","method":"eth_submitWork","params":[]}"#.to_owned(),
            format!(r#"{{"id":4,"jsonrpc":"2.0","method":"eth_submitWork","params":["0x1","{hash}","{mix}"]}}"#),
            format!(r#"{{"id":4,"jsonrpc":"2.0","method":"eth_submitWork","params":["{nonce}","{hash}"]}}"#),
            format!(r#"{{"id":4,"jsonrpc":"2.0","method":"eth_submitWork","params":["{nonce}","{hash}","{mix}","x"]}}"#),
            format!(r#"{{"id":4,"jsonrpc":"2.0","method":"eth_submitWork","params":["00000000deadbeef","{hash}","{mix}"]}}"#),
            r#"{"id":5,"jsonrpc":"2.0","method":"eth_submitHashrate","params":["0x500000","node-7"]}"#.to_owned(),
            r#"{"id":5,"jsonrpc":"2.0","method":"eth_submitHashrate","params":[5242880]}"#.to_owned(),
            r#"{"id":6,"jsonrpc":"2.0","method":"eth_submitLogin","params":[]}"#.to_owned(),
            r#"{"id":6,"jsonrpc":"2.0","method":"eth_submitLogin","params":[{"user":"a"}]}"#.to_owned(),
        ] {
            assert_eq!(client(&line), None, "{line}");
        }
    }

    #[test]
    fn an_ethereum_rpc_client_is_not_a_miner() {
        for line in [
            r#"{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["latest",false]}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber","params":[]}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"eth_mining","params":[]}"#,
            r#"{"jsonrpc":"2.0","id":4,"method":"eth_hashrate","params":[]}"#,
            r#"{"jsonrpc":"2.0","id":5,"method":"eth_subscribe","params":["newHeads"]}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"number":"0x10d4f","hash":"0xabc"}}"#,
        ] {
            assert_eq!(client(line), None, "{line}");
            assert_eq!(pool(line), None, "{line}");
        }
    }

    #[test]
    fn mining_calls_are_decisive_only_with_a_miners_parameters() {
        for line in [
            r#"{"id":1,"method":"mining.subscribe","params":[]}"#,
            r#"{"id":1,"method":"mining.subscribe","params":["bfgminer/5.5.0","1a2b3c4d"]}"#,
            r#"{"id":1,"method":"mining.subscribe","params":["cpuminer/2.5",null,"pool.example",3333]}"#,
            r#"{"id":2,"method":"mining.authorize","params":["user.worker"]}"#,
            r#"{"id":2,"method":"mining.authorize","params":["user",null]}"#,
            r#"{"id":3,"method":"mining.submit","params":["user.w","bf","00000001","504e86ed","b2957c02"]}"#,
            r#"{"id":3,"method":"mining.submit","params":["user.w","bf","00000001","504e86ed","b2957c02","1fffe000"]}"#,
            r#"{"id":3,"method":"mining.submit","params":["0xabc.w","1a","b2957c02cafe0001"]}"#,
            r#"{"id":1,"method":"mining.extranonce.subscribe","params":[]}"#,
            r#"{"id":1,"method":"mining.configure","params":[["version-rolling","minimum-difficulty"],{"version-rolling.mask":"1fffe000","minimum-difficulty.value":2048}]}"#,
        ] {
            let m = client(line).unwrap_or_else(|| panic!("{line}"));
            assert!(m.decisive, "{line}");
        }
        for line in [
            r#"{"id":1,"method":"mining.subscribe","params":{"topic":"blocks"}}"#,
            r#"{"id":1,"method":"mining.subscribe","params":[{"a":1}]}"#,
            r#"{"id":1,"method":"mining.subscribe","params":["a","b","c","d","e"]}"#,
            r#"{"id":2,"method":"mining.authorize","params":[]}"#,
            r#"{"id":2,"method":"mining.authorize","params":[42,"x"]}"#,
            r#"{"id":2,"method":"mining.authorize","params":["john smith","x"]}"#,
            r#"{"id":3,"method":"mining.submit","params":["user","job"]}"#,
            r#"{"id":3,"method":"mining.submit","params":["user","job","not hex","504e86ed","b2957c02"]}"#,
            r#"{"id":3,"method":"mining.submit","params":["user","job",1,2,3]}"#,
            r#"{"id":1,"method":"mining.configure","params":[]}"#,
            r#"{"id":1,"method":"mining.configure","params":["version-rolling"]}"#,
            r#"{"id":1,"method":"mining.extranonce.subscribe","params":["x"]}"#,
            r#"{"id":1,"method":"mining.status","params":[]}"#,
        ] {
            assert_eq!(client(line), None, "{line}");
        }
    }

    #[test]
    fn cryptonote_calls_check_their_parameter_shapes() {
        let result = "a1".repeat(32);
        let submit = |nonce: &str, result: &str| {
            format!(
                r#"{{"id":4,"jsonrpc":"2.0","method":"submit","params":{{"id":"8e3c5d2a","job_id":"Z2Ft","nonce":"{nonce}","result":"{result}"}}}}"#
            )
        };
        assert!(client(&submit("1f00000b", &result)).unwrap().decisive);
        for line in [
            submit("", &result),
            submit("1f", &result),
            submit("1f00000b", "a1"),
            submit("1f00000x", &result),
            r#"{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"alice","pass":"pw","algo":"rx/0"}}"#.to_owned(),
            r#"{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"alice","pass":"pw","algo":[1,2]}}"#.to_owned(),
            r#"{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"alice","pass":{"hash":"x"},"rigid":"r"}}"#.to_owned(),
            r#"{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"","pass":"x","algo":["rx/0"]}}"#.to_owned(),
        ] {
            assert_eq!(client(&line), None, "{line}");
        }
    }

    #[test]
    fn getblocktemplate_is_decisive_when_it_asks_for_work_not_to_look() {
        for line in [
            // ckpool, cgminer, NOMP.
            r#"{"id":0,"method":"getblocktemplate","params":[{"capabilities":["coinbasetxn","workid","coinbase/append"],"rules":["segwit"]}]}"#,
            r#"{"id":0,"method":"getblocktemplate","params":[{"mode":"proposal","data":"0000002001"}]}"#,
        ] {
            let m = client(line).unwrap_or_else(|| panic!("{line}"));
            assert!(m.decisive && m.variant == Some(Variant::Getwork), "{line}");
        }
        let block = "00".repeat(80);
        let header = "00".repeat(128);
        assert!(
            client(&format!(
                r#"{{"id":1,"method":"submitblock","params":["{block}"]}}"#
            ))
            .unwrap()
            .decisive
        );
        assert!(
            client(r#"{"id":1,"method":"getwork","params":[]}"#)
                .unwrap()
                .decisive
        );
        assert!(
            client(&format!(
                r#"{{"id":1,"method":"getwork","params":["{header}"]}}"#
            ))
            .unwrap()
            .decisive
        );
        for line in [
            // What a template watcher or a dashboard sends.
            r#"{"id":0,"method":"getblocktemplate","params":[{"rules":["segwit"]}]}"#.to_owned(),
            r#"{"id":0,"method":"getblocktemplate","params":[]}"#.to_owned(),
            r#"{"id":0,"method":"getblocktemplate","params":[{"capabilities":"coinbasetxn","rules":["segwit"]}]}"#.to_owned(),
            r#"{"id":1,"method":"submitblock","params":["00"]}"#.to_owned(),
            r#"{"id":1,"method":"submitblock","params":[]}"#.to_owned(),
            r#"{"id":1,"method":"getwork","params":["not a header"]}"#.to_owned(),
            r#"{"id":1,"method":"getwork","params":{"a":1}}"#.to_owned(),
        ] {
            assert_eq!(client(&line), None, "{line}");
        }
    }

    #[test]
    fn escapes_in_keys_and_values_are_read_as_the_parser_reads_them() {
        // `\u006d` is `m`, `\u002e` is `.`: the same message to any JSON
        // parser, so the same message here.
        let line = r#"{"id":1,"jsonrpc":"2.0","\u006dethod":"login","params":{"login":"44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A","pass":"x","agent":"XMRig/6.21.0","algo":["rx/0"]}}"#;
        let m = client(line).unwrap();
        assert!(m.decisive && m.variant == Some(Variant::CryptoNote));
        let line = r#"{"id":1,"\u006d\u0065\u0074\u0068\u006f\u0064":"mining\u002esubscribe","params":["cgminer/4.11.1"]}"#;
        assert!(client(line).unwrap().decisive);
        let line = r#"{"id":1,"method":"\u006cogin","params":{"\u006cogin":"wallet","pass":"x","algo":["rx/0"]}}"#;
        assert_eq!(client(line).unwrap().login.as_deref(), Some("wallet"));
        let line =
            r#"{"id":1,"re\u0073ult":{"id":"x","job":{"blob":"0707","job_id":"1","target":"ff"}}}"#;
        assert!(pool(line).unwrap().from_pool);
        // Escapes do not make a benign line stratum.
        for line in [
            r#"{"\u006dethod":"getinfo","params":[]}"#,
            r#"{"event":"mining\u002enotify"}"#,
            r#"{"note":"caf\u00e9"}"#,
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
