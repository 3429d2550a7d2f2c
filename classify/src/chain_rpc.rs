//! Chain JSON-RPC: a request a process sends to use a chain without being a
//! node of it (docs/grey-zone.md, "Chain clients"), or to drive one as a
//! consensus client (the Engine API).
//!
//! Recognised by structure, never by a method name alone: the body must be
//! a JSON-RPC request object (or a batch of them) whose `method` belongs to
//! a chain's published API and whose parameters have that chain's shapes
//! (0x-hex quantities, 20-byte addresses and 32-byte hashes for Ethereum;
//! hex storage keys and runtime-API names for Substrate; 64-hex block and
//! transaction ids for Bitcoin Core; base58 keys and base58/base64
//! transactions for Solana; script hashes and protocol versions for
//! Electrum). A word such as `eth_call` inside some other JSON, a method of
//! another service's JSON-RPC (a language server's `textDocument/hover`),
//! or a chain-looking name with parameters of the wrong kind is nothing.
//!
//! Mining calls (`getblocktemplate`, `submitblock`, `getwork`,
//! `eth_getWork`, `eth_submitWork`, `eth_submitHashrate`,
//! `eth_submitLogin`) are never a chain client: they belong to
//! [`crate::stratum`], which judges them by their own rules.

use serde_json::{Map, Value};

/// Longest body parsed; longer ones are not chain-client evidence (a
/// transaction submission is a few KiB, a block far more, but the flow
/// model keeps [`crate::flow::STREAM_LIMIT`] bytes anyway).
pub const MAX_BODY: usize = 64 * 1024;
/// Requests of a batch looked at, at most.
const MAX_BATCH: usize = 64;

/// Which chain's API a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Ethereum execution JSON-RPC (`eth_*`, `net_*`, `web3_*`).
    Ethereum,
    /// The Engine API between a consensus and an execution client
    /// (`engine_*`), JWT-authenticated over HTTP.
    EngineApi,
    /// Substrate node RPC (`author_*`, `chain_*`, `state_*`, …).
    Substrate,
    /// Bitcoin Core's RPC.
    Bitcoin,
    /// Solana's JSON-RPC.
    Solana,
    /// The Electrum protocol (newline-delimited JSON-RPC).
    Electrum,
}

impl Family {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Ethereum => "Ethereum JSON-RPC",
            Self::EngineApi => "Ethereum Engine API",
            Self::Substrate => "Substrate RPC",
            Self::Bitcoin => "Bitcoin Core RPC",
            Self::Solana => "Solana JSON-RPC",
            Self::Electrum => "Electrum protocol",
        }
    }
}

/// A request recognised as a chain's JSON-RPC.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Call {
    pub family: Family,
    /// The first recognised method (of a batch, the first of its family).
    pub method: String,
    /// Requests in the body that were recognised (1 unless a batch).
    pub requests: usize,
}

/// Mining calls: [`crate::stratum`]'s, never a chain client's.
const MINING: [&str; 8] = [
    "getblocktemplate",
    "submitblock",
    "getwork",
    "eth_getWork",
    "eth_submitWork",
    "eth_submitHashrate",
    "eth_submitLogin",
    "generatetoaddress",
];

/// A request body (HTTP body, websocket text frame, JSON line): the chain
/// call it is, if any. Requests of a batch must all be well-formed; the
/// first recognised family wins.
pub fn identify(body: &[u8]) -> Option<Call> {
    let body = body.trim_ascii();
    if body.len() > MAX_BODY || !matches!(body.first(), Some(b'{' | b'[')) {
        return None;
    }
    let value: Value = serde_json::from_slice(body).ok()?;
    let requests: Vec<&Map<String, Value>> = match &value {
        Value::Object(object) => vec![object],
        Value::Array(items) if !items.is_empty() && items.len() <= MAX_BATCH => items
            .iter()
            .map(Value::as_object)
            .collect::<Option<Vec<_>>>()?,
        _ => return None,
    };
    let mut found: Option<Call> = None;
    for request in requests {
        let (family, method) = request_family(request)?;
        let Some(family) = family else { continue };
        match &mut found {
            Some(call) if call.family == family => call.requests += 1,
            Some(_) => {}
            None => {
                found = Some(Call {
                    family,
                    method: method.to_owned(),
                    requests: 1,
                })
            }
        }
    }
    found
}

/// One JSON-RPC request: `None` when it is not a well-formed request at
/// all (which spoils a batch), `Some((None, _))` for a request of no
/// chain's API.
fn request_family(request: &Map<String, Value>) -> Option<(Option<Family>, &str)> {
    let method = request.get("method")?.as_str()?;
    // A request has an id (a notification has none, but then it is 2.0).
    let version = request.get("jsonrpc").and_then(Value::as_str);
    if !request.contains_key("id") && version != Some("2.0") {
        return None;
    }
    if !matches!(version, None | Some("1.0" | "2.0")) {
        return None;
    }
    let params = match request.get("params") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(items)) => items.as_slice(),
        // Named parameters: no chain API here takes them.
        Some(_) => return Some((None, method)),
    };
    if MINING.contains(&method) {
        return Some((None, method));
    }
    let family = if version == Some("2.0") && ethereum(method, params) {
        Some(Family::Ethereum)
    } else if version == Some("2.0") && engine(method, params) {
        Some(Family::EngineApi)
    } else if version == Some("2.0") && substrate(method, params) {
        Some(Family::Substrate)
    } else if version == Some("2.0") && solana(method, params) {
        Some(Family::Solana)
    } else if electrum(method, params) {
        Some(Family::Electrum)
    } else if bitcoin(method, params) {
        Some(Family::Bitcoin)
    } else {
        None
    };
    Some((family, method))
}

/// `0x` followed by hex digits (at least one), optionally of `bytes` bytes.
fn is_0x_hex(s: &str, bytes: Option<usize>) -> bool {
    let Some(digits) = s.strip_prefix("0x") else {
        return false;
    };
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_hexdigit())
        && bytes.is_none_or(|n| digits.len() == 2 * n)
}

fn is_hex_of(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

const BLOCK_TAGS: [&str; 5] = ["latest", "earliest", "pending", "safe", "finalized"];

/// Every string inside `value` satisfies `ok`; numbers, booleans and nulls
/// pass; object keys are not checked.
fn strings_all(value: &Value, ok: &dyn Fn(&str) -> bool) -> bool {
    match value {
        Value::String(s) => ok(s),
        Value::Array(items) => items.iter().all(|v| strings_all(v, ok)),
        Value::Object(map) => map.values().all(|v| strings_all(v, ok)),
        _ => true,
    }
}

/// Ethereum execution API (ethereum/execution-apis): methods that take no
/// parameters, and methods whose parameters are all 0x-hex, block tags,
/// booleans or transaction/filter objects of those, with the address or
/// hash their first parameter must be.
fn ethereum(method: &str, params: &[Value]) -> bool {
    const NO_PARAMS: [&str; 14] = [
        "eth_blockNumber",
        "eth_chainId",
        "eth_gasPrice",
        "eth_maxPriorityFeePerGas",
        "eth_blobBaseFee",
        "eth_accounts",
        "eth_syncing",
        "eth_protocolVersion",
        "eth_newBlockFilter",
        "eth_newPendingTransactionFilter",
        "net_version",
        "net_listening",
        "net_peerCount",
        "web3_clientVersion",
    ];
    // Method, and the byte length its first parameter must have (an
    // address 20, a hash 32; 0 for any 0x data or quantity; None for an
    // object or anything hex-shaped).
    const WITH_PARAMS: [(&str, Option<usize>); 24] = [
        ("eth_getBalance", Some(20)),
        ("eth_getCode", Some(20)),
        ("eth_getTransactionCount", Some(20)),
        ("eth_getStorageAt", Some(20)),
        ("eth_getProof", Some(20)),
        ("eth_getBlockByHash", Some(32)),
        ("eth_getTransactionByHash", Some(32)),
        ("eth_getTransactionReceipt", Some(32)),
        ("eth_getBlockTransactionCountByHash", Some(32)),
        ("eth_getTransactionByBlockHashAndIndex", Some(32)),
        ("eth_sendRawTransaction", Some(0)),
        ("web3_sha3", Some(0)),
        ("eth_getBlockByNumber", None),
        ("eth_getBlockReceipts", None),
        ("eth_getBlockTransactionCountByNumber", None),
        ("eth_getTransactionByBlockNumberAndIndex", None),
        ("eth_feeHistory", None),
        ("eth_call", None),
        ("eth_estimateGas", None),
        ("eth_createAccessList", None),
        ("eth_sendTransaction", None),
        ("eth_getLogs", None),
        ("eth_newFilter", None),
        ("eth_getFilterChanges", None),
    ];
    if NO_PARAMS.contains(&method) {
        return params.is_empty();
    }
    let chain_string = |s: &str| is_0x_hex(s, None) || BLOCK_TAGS.contains(&s);
    if method == "eth_subscribe" {
        const TOPICS: [&str; 4] = ["newHeads", "logs", "newPendingTransactions", "syncing"];
        return params
            .first()
            .and_then(Value::as_str)
            .is_some_and(|t| TOPICS.contains(&t))
            && params[1..].iter().all(|p| strings_all(p, &chain_string));
    }
    if method == "eth_unsubscribe" || method == "eth_uninstallFilter" {
        return matches!(params, [Value::String(id)] if is_0x_hex(id, None));
    }
    let Some((_, first)) = WITH_PARAMS.iter().find(|(name, _)| *name == method) else {
        return false;
    };
    let Some(head) = params.first() else {
        return false;
    };
    let head_ok = match (first, head) {
        (Some(0), Value::String(s)) => is_0x_hex(s, None),
        (Some(n), Value::String(s)) => is_0x_hex(s, Some(*n)),
        (Some(_), _) => false,
        // A transaction or filter object names an address or carries data.
        (None, Value::Object(map)) => ["to", "from", "address", "data", "input", "topics"]
            .iter()
            .any(|k| map.contains_key(*k)),
        (None, Value::String(s)) => chain_string(s),
        // eth_feeHistory's block count may be a plain number.
        (None, Value::Number(_)) => method == "eth_feeHistory",
        (None, _) => false,
    };
    head_ok && params.iter().all(|p| strings_all(p, &chain_string))
}

/// The Engine API (ethereum/execution-apis src/engine): `engine_*` calls
/// whose parameters are hex-shaped payloads, fork-choice states and
/// attribute objects, or the method list of `engine_exchangeCapabilities`.
fn engine(method: &str, params: &[Value]) -> bool {
    let Some(rest) = method.strip_prefix("engine_") else {
        return false;
    };
    if rest == "exchangeCapabilities" {
        return matches!(params, [Value::Array(names)] if !names.is_empty()
            && names.iter().all(|n| n.as_str().is_some_and(|n| n.starts_with("engine_"))));
    }
    const CALLS: [&str; 6] = [
        "newPayload",
        "forkchoiceUpdated",
        "getPayload",
        "getPayloadBodiesByHash",
        "getPayloadBodiesByRange",
        "getBlobs",
    ];
    let versioned = CALLS.iter().any(|c| {
        rest.strip_prefix(c)
            .and_then(|v| v.strip_prefix('V'))
            .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
    });
    // Empty byte strings (`extraData`) are `0x`.
    versioned
        && !params.is_empty()
        && params
            .iter()
            .all(|p| strings_all(p, &|s| s == "0x" || is_0x_hex(s, None)))
}

/// Substrate node RPC (paritytech/substrate client/rpc-api; the new
/// JSON-RPC spec's `chainHead_v1_*`, `transaction_v1_*`): its namespaces,
/// with hex, runtime-API names (`state_call`), numbers and booleans.
fn substrate(method: &str, params: &[Value]) -> bool {
    let Some((namespace, name)) = method.split_once('_') else {
        return false;
    };
    const NAMESPACES: [&str; 7] = [
        "author",
        "chain",
        "state",
        "chainHead",
        "transaction",
        "transactionWatch",
        "chainSpec",
    ];
    if !NAMESPACES.contains(&namespace)
        || name.is_empty()
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        || !name.starts_with(|c: char| c.is_ascii_lowercase() || c == 'v')
    {
        return false;
    }
    let runtime_api_name = |s: &str| {
        !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    match (method, params) {
        // An extrinsic is SCALE bytes, hex-encoded.
        ("author_submitExtrinsic" | "author_submitAndWatchExtrinsic", [Value::String(x)]) => {
            is_0x_hex(x, None)
        }
        ("author_submitExtrinsic" | "author_submitAndWatchExtrinsic", _) => false,
        ("state_call", [Value::String(api), rest @ ..]) if runtime_api_name(api) => {
            rest.iter().all(|p| strings_all(p, &|s| is_0x_hex(s, None)))
        }
        ("state_call", _) => false,
        _ => params
            .iter()
            .all(|p| strings_all(p, &|s| is_0x_hex(s, None))),
    }
}

/// Base58 (Bitcoin alphabet) of `min..=max` characters: Solana keys are
/// 32-44, signatures 64-88.
fn is_base58(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() && !matches!(b, b'0' | b'O' | b'I' | b'l'))
}

fn is_base64(s: &str) -> bool {
    s.len() >= 16
        && s.len().is_multiple_of(4)
        && s.trim_end_matches('=')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// Solana's JSON-RPC (docs.solana.com/api/http): its distinctive method
/// names, with base58 keys and signatures, base58/base64 transactions and
/// configuration objects of known words.
fn solana(method: &str, params: &[Value]) -> bool {
    const NO_KEY: [&str; 9] = [
        "getLatestBlockhash",
        "getRecentBlockhash",
        "getSlot",
        "getBlockHeight",
        "getEpochInfo",
        "getMinimumBalanceForRentExemption",
        "getRecentPrioritizationFees",
        "getFeeForMessage",
        "slotSubscribe",
    ];
    const KEYED: [&str; 11] = [
        "getAccountInfo",
        "getBalance",
        "getMultipleAccounts",
        "getProgramAccounts",
        "getTokenAccountsByOwner",
        "getSignaturesForAddress",
        "getSignatureStatuses",
        "getTransaction",
        "requestAirdrop",
        "accountSubscribe",
        "signatureSubscribe",
    ];
    const WORDS: [&str; 11] = [
        "processed",
        "confirmed",
        "finalized",
        "base58",
        "base64",
        "base64+zstd",
        "jsonParsed",
        "json",
        "binary",
        "full",
        "signatures",
    ];
    let key = |s: &str| is_base58(s, 32, 44) || is_base58(s, 64, 88);
    let fine = |s: &str| key(s) || WORDS.contains(&s) || is_base64(s);
    let all_fine = || params.iter().all(|p| strings_all(p, &fine));
    match method {
        "sendTransaction" | "simulateTransaction" => {
            matches!(params.first(),
            Some(Value::String(tx)) if is_base58(tx, 64, 4096) || is_base64(tx))
                && all_fine()
        }
        _ if NO_KEY.contains(&method) => all_fine(),
        _ if KEYED.contains(&method) => {
            let head = match params.first() {
                Some(Value::String(s)) => key(s),
                Some(Value::Array(keys)) => {
                    !keys.is_empty() && keys.iter().all(|k| k.as_str().is_some_and(key))
                }
                _ => false,
            };
            head && all_fine()
        }
        _ => false,
    }
}

/// The Electrum protocol (spesmilo/electrumx docs/protocol-methods.rst):
/// `blockchain.*` calls with script hashes, transaction ids or raw
/// transactions in hex, and the `server.version` handshake with its
/// client name and protocol version (`"1.4"` or `["1.4", "1.4.2"]`).
fn electrum(method: &str, params: &[Value]) -> bool {
    let version = |v: &Value| {
        let ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 8
                && s.split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        };
        match v {
            Value::String(s) => ok(s),
            Value::Array(range) => {
                !range.is_empty() && range.iter().all(|r| r.as_str().is_some_and(ok))
            }
            _ => false,
        }
    };
    if method == "server.version" {
        return matches!(params, [Value::String(_), v] if version(v));
    }
    let Some(call) = method.strip_prefix("blockchain.") else {
        return false;
    };
    const CALLS: [&str; 14] = [
        "headers.subscribe",
        "scripthash.subscribe",
        "scripthash.unsubscribe",
        "scripthash.get_history",
        "scripthash.get_balance",
        "scripthash.get_mempool",
        "scripthash.listunspent",
        "transaction.broadcast",
        "transaction.get",
        "transaction.get_merkle",
        "block.header",
        "block.headers",
        "estimatefee",
        "relayfee",
    ];
    if !CALLS.contains(&call) {
        return false;
    }
    let hex = |s: &str| !s.is_empty() && s.len().is_multiple_of(2) && is_hex_of(s, s.len());
    match (call, params.first()) {
        (c, Some(Value::String(h))) if c.starts_with("scripthash.") => is_hex_of(h, 64),
        (c, _) if c.starts_with("scripthash.") => false,
        ("transaction.broadcast", Some(Value::String(tx))) => hex(tx),
        ("transaction.get" | "transaction.get_merkle", Some(Value::String(id))) => {
            is_hex_of(id, 64)
        }
        ("transaction.broadcast" | "transaction.get" | "transaction.get_merkle", _) => false,
        _ => params
            .iter()
            .all(|p| matches!(p, Value::Number(_) | Value::Bool(_))),
    }
}

/// Bitcoin Core's RPC (bitcoin/bitcoin src/rpc): its distinctive method
/// names, with 64-hex block hashes and transaction ids, raw transactions
/// in hex, heights, verbosity and fee targets. The mining calls are not
/// here ([`MINING`]).
fn bitcoin(method: &str, params: &[Value]) -> bool {
    // Method, and the shape of its first parameter.
    #[derive(Clone, Copy)]
    enum First {
        Nothing,
        Hash,
        RawTx,
        Number,
        Any,
    }
    const CALLS: [(&str, First); 18] = [
        ("getblockchaininfo", First::Nothing),
        ("getblockcount", First::Nothing),
        ("getbestblockhash", First::Nothing),
        ("getnetworkinfo", First::Nothing),
        ("getmempoolinfo", First::Nothing),
        ("getchaintips", First::Nothing),
        ("getwalletinfo", First::Nothing),
        ("getrawmempool", First::Any),
        ("getblockhash", First::Number),
        ("estimatesmartfee", First::Number),
        ("getblock", First::Hash),
        ("getblockheader", First::Hash),
        ("getrawtransaction", First::Hash),
        ("gettxout", First::Hash),
        ("getmempoolentry", First::Hash),
        ("sendrawtransaction", First::RawTx),
        ("decoderawtransaction", First::RawTx),
        ("testmempoolaccept", First::Any),
    ];
    let Some((_, first)) = CALLS.iter().find(|(name, _)| *name == method) else {
        return false;
    };
    let raw_tx = |s: &str| s.len() >= 20 && s.len().is_multiple_of(2) && is_hex_of(s, s.len());
    let head = params.first();
    let head_ok = match (first, head) {
        (First::Nothing, None) => true,
        (First::Nothing, Some(_)) => false,
        (First::Hash, Some(Value::String(h))) => is_hex_of(h, 64),
        (First::RawTx, Some(Value::String(tx))) => raw_tx(tx),
        (First::Number, Some(Value::Number(_))) => true,
        (First::Any, Some(Value::Array(txs))) => txs.iter().all(|t| t.as_str().is_some_and(raw_tx)),
        (First::Any, None | Some(Value::Bool(_))) => true,
        _ => false,
    };
    head_ok
        && params.iter().skip(1).all(|p| {
            matches!(p, Value::Number(_) | Value::Bool(_) | Value::Null)
                || p.as_str().is_some_and(|s| {
                    is_hex_of(s, 64) || matches!(s, "economical" | "conservative" | "unset")
                })
        })
}

#[cfg(test)]
mod tests;
