//! Emulators for the framing and adversarial suites: a hostile server that
//! sends pool-shaped lines to whoever connects, JSON-lines clients that are
//! not miners (a wallet, an Ethereum RPC client), and a miner that hides
//! its login from a naive sampler (escaped keys, blank writes first, one
//! write of several KiB).
//!
//! Messages follow the public descriptions (docs/signatures.md): the
//! hostile server's lines are real stratum v1 and CryptoNote pushes, the
//! wallet speaks monero-wallet-rpc's methods, the RPC client the Ethereum
//! execution API's. Sizes and timings vary from run to run.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};

/// A few random bytes from the kernel (no RNG crate needed).
fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    if let Ok(mut urandom) = std::fs::File::open("/dev/urandom") {
        let _ = urandom.read_exact(&mut bytes);
    }
    u32::from_le_bytes(bytes)
}

/// A random number in `range`.
fn between(range: std::ops::Range<u32>) -> u32 {
    range.start + random_u32() % (range.end - range.start)
}

fn write_line(stream: &mut TcpStream, line: &str) -> Result<()> {
    // One write, newline included, as line-oriented clients do.
    stream.write_all(format!("{line}\n").as_bytes())?;
    Ok(())
}

const NOTIFY: &str = r#"{"params":["bf","4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000","01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008","072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000",[],"00000002","1c2ac4af","504e86b9",false],"id":null,"method":"mining.notify"}"#;
const SET_DIFFICULTY: &str = r#"{"id":null,"method":"mining.set_difficulty","params":[16]}"#;
const JOB: &str = r#"{"jsonrpc":"2.0","method":"job","params":{"blob":"0e0ed9e5fbb2068fc9a9ebd4d34d8b8c44fd4bd2b2f2f1c0c6a0e1f3a9c0b7b6a1f6d8e4c3b2a10000000008c4a7e1a0e6ff5c","job_id":"406425533","target":"b88d0600","algo":"rx/0","height":2800001,"seed_hash":"3e4a8f1c2b5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7"}}"#;

/// Pushes pool lines at whoever connects, first and between answers, and
/// answers every line with a job-shaped result (a CryptoNote login reply
/// or a mining.subscribe reply, alternately): what a hostile or
/// misconfigured server can send any JSON-lines client.
pub(crate) fn hostile_session(stream: TcpStream) -> Result<()> {
    let mut out = stream.try_clone()?;
    for push in [SET_DIFFICULTY, NOTIFY, JOB] {
        write_line(&mut out, push)?;
    }
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let mut answered = 0u32;
    while reader.read_line(&mut line)? > 0 {
        let id = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v.get("id").cloned())
            .unwrap_or(serde_json::Value::from(1));
        line.clear();
        answered += 1;
        let reply = if !answered.is_multiple_of(2) {
            format!(
                r#"{{"id":{id},"jsonrpc":"2.0","error":null,"result":{{"id":"79b4b4d4","job":{{"blob":"0e0ed9e5fbb2068fc9a9","job_id":"406425532","target":"b88d0600","algo":"rx/0","seed_hash":"3e4a8f1c2b5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7"}},"status":"OK"}}}}"#
            )
        } else {
            format!(
                r#"{{"id":{id},"result":[[["mining.set_difficulty","b4b6693b"],["mining.notify","ae6812eb"]],"08000002",4],"error":null}}"#
            )
        };
        write_line(&mut out, &reply)?;
        write_line(
            &mut out,
            if answered.is_multiple_of(2) {
                JOB
            } else {
                NOTIFY
            },
        )?;
    }
    Ok(())
}

/// Sends each request and reads lines for a moment (the server may push
/// any number), then waits a varied pause.
fn converse(addr: &str, requests: &[String], hold: Duration) -> Result<()> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    let mut drain = |reader: &mut BufReader<TcpStream>| {
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            line.clear();
        }
        line.clear();
    };
    for request in requests {
        write_line(&mut stream, request)?;
        drain(&mut reader);
        thread::sleep(Duration::from_millis(u64::from(between(10..60))));
    }
    let until = Instant::now() + hold;
    while Instant::now() < until {
        drain(&mut reader);
    }
    Ok(())
}

/// A wallet talking newline-delimited JSON-RPC to its daemon: balances,
/// addresses, a transfer, a refresh (monero-wallet-rpc's method names).
pub(crate) fn wallet_client(addr: &str, hold: Duration) -> Result<()> {
    let mut requests = vec![
        r#"{"jsonrpc":"2.0","id":"0","method":"get_version"}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":"1","method":"get_balance","params":{"account_index":0,"address_indices":[0,1]}}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":"2","method":"get_address","params":{"account_index":0}}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":"3","method":"get_height"}"#.to_owned(),
        format!(
            r#"{{"jsonrpc":"2.0","id":"4","method":"transfer","params":{{"destinations":[{{"amount":{},"address":"44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A"}}],"account_index":0,"priority":0,"get_tx_key":true}}}}"#,
            between(1_000_000..900_000_000)
        ),
        r#"{"jsonrpc":"2.0","id":"5","method":"refresh","params":{"start_height":2800000}}"#.to_owned(),
    ];
    // Some wallets log in to their daemon first; this one with a plain
    // user and password.
    if random_u32().is_multiple_of(2) {
        requests.insert(
            0,
            r#"{"jsonrpc":"2.0","id":"l","method":"login","params":{"login":"wallet","pass":"hunter2"}}"#.to_owned(),
        );
    }
    converse(addr, &requests, hold)
}

/// An Ethereum execution-API client on a line-delimited connection: chain
/// id, block number, the latest block, a balance, a subscription.
pub(crate) fn eth_rpc_client(addr: &str, hold: Duration) -> Result<()> {
    let requests = [
        r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber","params":[]}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"eth_getBlockByNumber","params":["latest",false]}"#,
        r#"{"jsonrpc":"2.0","id":4,"method":"eth_getBalance","params":["0x5a0b54d5dc17e0aadc383d2db43b0a0d3e029c4c","latest"]}"#,
        r#"{"jsonrpc":"2.0","id":5,"method":"eth_mining","params":[]}"#,
        r#"{"jsonrpc":"2.0","id":6,"method":"eth_subscribe","params":["newHeads"]}"#,
    ]
    .map(str::to_owned);
    converse(addr, &requests, hold)
}

/// How a miner hides its login from a sampler.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Evasion {
    /// Keys written with `\u` escapes.
    EscapedKeys,
    /// Whitespace-only writes before the login, each its own segment.
    BlankWrites,
    /// The login padded past one sample, written in one write.
    LongLogin,
}

/// An XMRig-style login hidden one way, then the pool's answer, then the
/// connection held.
pub(crate) fn evasive_miner(addr: &str, evasion: Evasion, hold: Duration) -> Result<()> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let wallet = "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A";
    let agent = "XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0";
    let login = match evasion {
        Evasion::EscapedKeys => format!(
            r#"{{"id":1,"jsonrpc":"2.0","\u006d\u0065thod":"\u006cogin","par\u0061ms":{{"\u006cogin":"{wallet}","pass":"x","agent":"{agent}","algo":["rx/0","cn/r","cn/2"]}}}}"#
        ),
        Evasion::BlankWrites => {
            let blanks = [" ", "\n", "\r\n", "\t", "  \n", "\n\n"];
            for _ in 0..between(8..40) {
                let blank = blanks[random_u32() as usize % blanks.len()];
                stream.write_all(blank.as_bytes())?;
                let pause = between(0..4);
                if pause > 0 {
                    thread::sleep(Duration::from_millis(u64::from(pause)));
                }
            }
            format!(
                r#"{{"id":1,"jsonrpc":"2.0","method":"login","params":{{"login":"{wallet}","pass":"x","agent":"{agent}","algo":["rx/0"]}}}}"#
            )
        }
        Evasion::LongLogin => {
            // Some pools take their settings in the password: a long one.
            let pass: String = (0..between(2_500..7_000))
                .map(|i| char::from(b'a' + ((random_u32() ^ i) % 26) as u8))
                .collect();
            format!(
                r#"{{"id":1,"jsonrpc":"2.0","method":"login","params":{{"login":"{wallet}","pass":"{pass}","agent":"{agent}","algo":["rx/0","rx/wow"]}}}}"#
            )
        }
    };
    write_line(&mut stream, &login)?;
    let mut reply = String::new();
    reader.read_line(&mut reply)?;
    println!("opened");
    std::io::stdout().flush()?;
    thread::sleep(hold);
    Ok(())
}
