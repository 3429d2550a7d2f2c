//! Command-line and config-file heuristics (issue #5): stratum pool URLs,
//! miner-only options, proof-of-work algorithm names and coin addresses in a
//! process's argv, or in the config file its argv names.
//!
//! Weak evidence only, never decisive. Argv and config files are written by
//! whoever starts the process: a miner drops or renames every option for free
//! (XMRig reads all of it from a `config.json` that can be anywhere), and
//! benign tools take the same words (a wallet address in a payment script,
//! `-a scrypt` to a KDF benchmark, a URL in `grep stratum+tcp://pool`). So a
//! hint corroborates what the network and CPU sensors see but never reaches a
//! verdict alone: [`combined_strength`] stops at [`MAX_COMBINED`] (0.5), below
//! the correlator's `suspected` threshold (0.6), so hints on their own leave a
//! workload `observed`.
//!
//! Cheap validation keeps look-alikes out: an address counts only once its
//! checksum verifies (Monero's Keccak-256, Base58Check's double SHA-256,
//! Bech32/Bech32m, Kaspa's CashAddr polymod, EIP-55 where the case is mixed),
//! an algorithm option only with a known PoW algorithm, a bare `host:port`
//! only next to another miner hint.
//!
//! Pure and bounded: the caller reads `/proc/<pid>/cmdline` and the config
//! file (its path from [`config_paths`], resolved against the process's cwd);
//! at most [`MAX_ARGS`] arguments, [`MAX_TOKENS`] words and [`MAX_CONFIG`]
//! config bytes are examined.

use std::path::PathBuf;

use serde_json::Value;
use sha2::{Digest, Sha256};
use sha3::Keccak256;

/// Arguments examined; later ones are ignored.
pub const MAX_ARGS: usize = 64;
/// Bytes of one argument examined (`/proc` argv can be longer than the
/// eBPF sensor's 512 bytes).
pub const MAX_ARG_LEN: usize = 4096;
/// Whitespace-separated words examined over all arguments and over a config
/// file that is not JSON (`sh -c "…"` hides a command line in one argument).
pub const MAX_TOKENS: usize = 256;
/// Bytes of a config file examined.
pub const MAX_CONFIG: usize = 64 * 1024;
/// JSON values or config words examined.
const MAX_CONFIG_ITEMS: usize = 8192;
/// Hints returned by one call.
pub const MAX_HINTS: usize = 16;
/// Characters of matched text kept in a hint; longer text ends with `…`.
pub const MAX_TEXT: usize = 120;
/// Config paths returned by [`config_paths`].
pub const MAX_CONFIG_PATHS: usize = 4;

/// A stratum URL scheme: only mining speaks stratum.
pub const POOL_URL_STRENGTH: f32 = 0.3;
/// A bare `host:port` given as a pool, counted only next to another hint.
pub const POOL_ENDPOINT_STRENGTH: f32 = 0.15;
/// An option or config key only miners take (`--donate-level`, `randomx`).
pub const MINER_OPTION_STRENGTH: f32 = 0.2;
/// An algorithm option naming a proof-of-work algorithm (`-a kawpow`).
pub const POW_ALGORITHM_STRENGTH: f32 = 0.2;
/// A coin address whose checksum verifies.
pub const WALLET_STRENGTH: f32 = 0.3;
/// An Ethereum-style address given as a user: many non-mining tools take one.
pub const ETHEREUM_ADDRESS_STRENGTH: f32 = 0.1;
/// The most all hints of one process add up to: below the correlator's
/// `suspected` threshold (0.6), so that they never decide alone.
pub const MAX_COMBINED: f32 = 0.5;

/// The coin an address belongs to, from its prefix and checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Coin {
    /// Standard (`4…`, 95), integrated (`4…`, 106) or sub-address (`8…`, 95).
    Monero,
    /// Base58Check P2PKH/P2SH (`1…`, `3…`) or Bech32/Bech32m (`bc1…`).
    Bitcoin,
    /// Base58Check (`L…`, `M…`) or Bech32 (`ltc1…`).
    Litecoin,
    /// Base58Check (`D…`, `A…`, `9…`).
    Dogecoin,
    /// Base58Check (`R…`, `r…`).
    Ravencoin,
    /// Transparent Base58Check (`t1…`, `t3…`).
    Zcash,
    /// `kaspa:` and CashAddr-style Bech32.
    Kaspa,
    /// `0x` and 40 hex digits, EIP-55 checked when the case is mixed.
    Ethereum,
}

impl Coin {
    pub fn name(self) -> &'static str {
        match self {
            Self::Monero => "Monero",
            Self::Bitcoin => "Bitcoin",
            Self::Litecoin => "Litecoin",
            Self::Dogecoin => "Dogecoin",
            Self::Ravencoin => "Ravencoin",
            Self::Zcash => "Zcash",
            Self::Kaspa => "Kaspa",
            Self::Ethereum => "Ethereum-style",
        }
    }
}

/// What a hint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HintKind {
    /// `stratum+tcp://`, `stratum+ssl://`, `stratum2+tcp://`, …
    PoolUrl,
    /// `-o host:port`, `"url": "host:port"`, next to another miner hint.
    PoolEndpoint,
    /// `--donate-level`, `--randomx-*`, `--cpu-priority`, `--coin XMR`,
    /// XMRig's `donate-level` and `randomx` config keys, …
    MinerOption,
    /// `-a`/`--algo`/`"algo"` with a proof-of-work algorithm.
    PowAlgorithm,
    /// A coin address whose checksum verifies.
    Wallet(Coin),
}

/// Where a hint was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    CommandLine,
    ConfigFile,
}

/// One piece of weak evidence, with the text that matched (at most
/// [`MAX_TEXT`] characters).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hint {
    pub kind: HintKind,
    pub source: Source,
    pub text: String,
}

impl Hint {
    /// The hint's fixed strength: see the `*_STRENGTH` constants.
    pub fn strength(&self) -> f32 {
        match self.kind {
            HintKind::PoolUrl => POOL_URL_STRENGTH,
            HintKind::PoolEndpoint => POOL_ENDPOINT_STRENGTH,
            HintKind::MinerOption => MINER_OPTION_STRENGTH,
            HintKind::PowAlgorithm => POW_ALGORITHM_STRENGTH,
            HintKind::Wallet(Coin::Ethereum) => ETHEREUM_ADDRESS_STRENGTH,
            HintKind::Wallet(_) => WALLET_STRENGTH,
        }
    }

    /// The hint in plain words, for an evidence summary.
    pub fn describe(&self) -> String {
        let place = match self.source {
            Source::CommandLine => "on its command line",
            Source::ConfigFile => "in its config file",
        };
        let text = &self.text;
        match self.kind {
            HintKind::PoolUrl => format!("a stratum pool URL `{text}` {place}"),
            HintKind::PoolEndpoint => {
                format!("a pool address `{text}` next to miner settings {place}")
            }
            HintKind::MinerOption => format!("the miner-only setting `{text}` {place}"),
            HintKind::PowAlgorithm => format!("the proof-of-work algorithm `{text}` {place}"),
            HintKind::Wallet(coin) => {
                let article = if coin == Coin::Ethereum { "an" } else { "a" };
                format!("{article} {} address `{text}` {place}", coin.name())
            }
        }
    }
}

/// Hints in a command line (argv as `/proc/<pid>/cmdline` splits it; a
/// truncated last argument is fine).
pub fn argv_hints(argv: &[String]) -> Vec<Hint> {
    let mut hints = Collector::new(Source::CommandLine);
    // The option whose value the next word may be.
    let mut pending: Option<(String, &str)> = None;
    for word in argv_words(argv) {
        if let Some((label, inline)) = split_option(word) {
            let key = normalize(label);
            hints.option(&key, word);
            match inline {
                Some(value) => {
                    hints.value(Some(&key), label, value);
                    pending = None;
                }
                None => pending = Some((key, label)),
            }
        } else {
            match assignment(word) {
                // `docker run -e WALLET=…`, `env ALGO=… ./miner`.
                Some((name, value)) => hints.value(Some(&normalize(name)), name, value),
                None => match pending.take() {
                    Some((key, label)) => hints.value(Some(&key), label, word),
                    None => hints.value(None, "", word),
                },
            }
            pending = None;
        }
    }
    hints.finish()
}

/// Hints in the first [`MAX_CONFIG`] bytes of a config file: parsed as JSON
/// (XMRig's `"pools": [{"url": …, "user": …}]`, `"donate-level"`,
/// `"randomx"`) when it parses, scanned word by word otherwise (a cut or
/// commented JSON file, INI, YAML, a shell script).
pub fn config_hints(bytes: &[u8]) -> Vec<Hint> {
    let bytes = &bytes[..bytes.len().min(MAX_CONFIG)];
    let mut hints = Collector::new(Source::ConfigFile);
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => walk_json(&value, &mut hints),
        Err(_) => scan_words(&String::from_utf8_lossy(bytes), &mut hints),
    }
    hints.finish()
}

/// The config files a command line names, as written (relative paths are
/// relative to the process's cwd): the value of `--config`, `--config-file`
/// or `--cfg`; of `-c` when it ends like a config file (`gcc -c main.c`,
/// `bash -c "…"` do not); a bare argument ending in `.json`, `.ini`, `.conf`,
/// `.cfg` or `.toml` (nanominer takes its `config.ini` so).
pub fn config_paths(argv: &[String]) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut pending: Option<bool> = None;
    for arg in argv.iter().take(MAX_ARGS).skip(1) {
        let arg = arg.as_str();
        let candidate = if let Some(any_name) = pending.take() {
            Some(arg).filter(|a| any_name || has_config_extension(a, true))
        } else if let Some((flag, value)) = arg.split_once('=') {
            Some(value).filter(|_| is_config_flag(flag))
        } else if is_config_flag(arg) {
            pending = Some(true);
            None
        } else if arg == "-c" {
            pending = Some(false);
            None
        } else {
            Some(arg).filter(|a| !a.starts_with('-') && has_config_extension(a, false))
        };
        let Some(path) = candidate.filter(|p| {
            !p.is_empty()
                && p.len() <= MAX_ARG_LEN
                && !p.starts_with('-')
                && !p.contains(char::is_whitespace)
        }) else {
            continue;
        };
        let path = PathBuf::from(path);
        if !paths.contains(&path) {
            paths.push(path);
            if paths.len() == MAX_CONFIG_PATHS {
                break;
            }
        }
    }
    paths
}

/// How strong the hints are together: the strongest of each kind, added up as
/// the correlator adds evidence (`1 - Π(1 - s)`), capped at [`MAX_COMBINED`].
/// Repeating one kind (five addresses, three options) adds nothing.
pub fn combined_strength(hints: &[Hint]) -> f32 {
    let mut best = [0.0f32; 5];
    for hint in hints {
        let slot = match hint.kind {
            HintKind::PoolUrl => 0,
            HintKind::PoolEndpoint => 1,
            HintKind::MinerOption => 2,
            HintKind::PowAlgorithm => 3,
            HintKind::Wallet(_) => 4,
        };
        best[slot] = best[slot].max(hint.strength());
    }
    let score = 1.0 - best.iter().fold(1.0, |acc, s| acc * (1.0 - s));
    score.min(MAX_COMBINED)
}

/// The coin of one address (`4…`, `bc1…`, `kaspa:…`, `0x…`), if its checksum
/// verifies; `None` for anything else.
pub fn wallet_coin(address: &str) -> Option<Coin> {
    if address.starts_with("kaspa:") {
        return kaspa(address).then_some(Coin::Kaspa);
    }
    match address.len() {
        95 | 106 => monero(address).then_some(Coin::Monero),
        42 if address.starts_with("0x") || address.starts_with("0X") => {
            ethereum(address).then_some(Coin::Ethereum)
        }
        _ => base58check(address).or_else(|| segwit(address)),
    }
}

// --- Collecting ---

struct Collector {
    source: Source,
    hints: Vec<Hint>,
    /// `host:port` pool candidates, kept only if another hint turns up.
    endpoints: Vec<String>,
}

impl Collector {
    fn new(source: Source) -> Self {
        Self {
            source,
            hints: Vec::new(),
            endpoints: Vec::new(),
        }
    }

    fn push(&mut self, kind: HintKind, text: &str) {
        let text = clip(text);
        if self.hints.len() < MAX_HINTS
            && !self.hints.iter().any(|h| h.kind == kind && h.text == text)
        {
            self.hints.push(Hint {
                kind,
                source: self.source,
                text,
            });
        }
    }

    /// An option name or config key, normalized: a miner-only one is a hint.
    fn option(&mut self, key: &str, text: &str) {
        if is_miner_option(key) {
            self.push(HintKind::MinerOption, text);
        }
    }

    /// A value, and the normalized option or key it was given to.
    fn value(&mut self, key: Option<&str>, label: &str, value: &str) {
        let value = value.trim_matches(|c| matches!(c, '"' | '\''));
        if value.is_empty() {
            return;
        }
        match key {
            Some("a" | "algo" | "algorithm" | "algo1" | "pow") if is_pow_algorithm(value) => {
                self.push(HintKind::PowAlgorithm, &labelled(label, value));
            }
            Some("coin") if is_mineable_coin(value) => {
                self.push(HintKind::MinerOption, &labelled(label, value));
            }
            Some("o" | "url" | "pool" | "pool1" | "pool2" | "server")
                if is_host_port(value)
                    && self.endpoints.len() < MAX_HINTS
                    && !self.endpoints.iter().any(|e| e == value) =>
            {
                self.endpoints.push(value.to_owned());
            }
            _ => {}
        }
        let url = stratum_url(value);
        if let Some(url) = url {
            self.push(HintKind::PoolUrl, url);
        }
        let as_user = url.is_some()
            || matches!(
                key,
                Some("u" | "user" | "username" | "wallet" | "address" | "login" | "wal" | "ewal")
            );
        for piece in value.split(|c: char| !(c.is_ascii_alphanumeric() || c == ':')) {
            self.wallet(piece, as_user);
        }
    }

    /// `piece` is alphanumeric with colons: `kaspa:q…`, or `:`-separated
    /// candidates (`user:pass`, `stratum+tcp://ADDR@host:port` pieces).
    fn wallet(&mut self, piece: &str, as_user: bool) {
        if piece.starts_with("kaspa:") {
            if kaspa(piece) {
                self.push(HintKind::Wallet(Coin::Kaspa), piece);
            }
            return;
        }
        for candidate in piece.split(':') {
            let coin = match candidate.len() {
                95 | 106 => monero(candidate).then_some(Coin::Monero),
                42 if as_user && (candidate.starts_with("0x") || candidate.starts_with("0X")) => {
                    ethereum(candidate).then_some(Coin::Ethereum)
                }
                14..=90 => base58check(candidate).or_else(|| segwit(candidate)),
                _ => None,
            };
            if let Some(coin) = coin {
                self.push(HintKind::Wallet(coin), candidate);
            }
        }
    }

    fn finish(mut self) -> Vec<Hint> {
        if !self.hints.is_empty() {
            for endpoint in std::mem::take(&mut self.endpoints) {
                self.push(HintKind::PoolEndpoint, &endpoint);
            }
        }
        self.hints
    }
}

/// The words of a command line: arguments split on whitespace (`sh -c "…"`)
/// and stripped of shell quotes, bounded.
fn argv_words(argv: &[String]) -> impl Iterator<Item = &str> {
    argv.iter()
        .take(MAX_ARGS)
        .flat_map(|arg| prefix(arg, MAX_ARG_LEN).split_whitespace())
        .map(|word| word.trim_matches(|c| matches!(c, '"' | '\'')))
        .filter(|word| !word.is_empty())
        .take(MAX_TOKENS)
}

/// `--name=value`, `--name`, `-n`: the name (dashes included) and any inline
/// value. Negative numbers and a lone `-` are not options.
fn split_option(word: &str) -> Option<(&str, Option<&str>)> {
    let rest = word.strip_prefix('-')?;
    if rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    Some(match word.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (word, None),
    })
}

/// `NAME=value` with an identifier for a name.
fn assignment(word: &str) -> Option<(&str, &str)> {
    let (name, value) = word.split_once('=')?;
    let is_name = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    is_name.then_some((name, value))
}

/// An option or key without its dashes; lowercased unless one character
/// (`-O` is not `-o`).
fn normalize(name: &str) -> String {
    let name = name.trim_start_matches('-');
    if name.len() > 1 {
        name.to_ascii_lowercase()
    } else {
        name.to_owned()
    }
}

fn labelled(label: &str, value: &str) -> String {
    if label.is_empty() {
        value.to_owned()
    } else {
        format!("{label} {value}")
    }
}

/// The longest prefix of `text` of at most `max` bytes on a char boundary.
fn prefix(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_TEXT) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

// --- Config files ---

fn walk_json(root: &Value, hints: &mut Collector) {
    let mut stack: Vec<(Option<&str>, &Value)> = vec![(None, root)];
    let mut seen = 0;
    while let Some((key, value)) = stack.pop() {
        seen += 1;
        if seen > MAX_CONFIG_ITEMS {
            break;
        }
        match value {
            Value::Object(map) => {
                for (name, child) in map.iter().rev() {
                    let normalized = normalize(name);
                    hints.option(&normalized, name);
                    stack.push((Some(name.as_str()), child));
                }
            }
            // Elements inherit the array's key: `"algo": ["rx/0", …]`.
            Value::Array(items) => stack.extend(items.iter().rev().map(|item| (key, item))),
            Value::String(text) => {
                let normalized = key.map(normalize);
                hints.value(normalized.as_deref(), key.unwrap_or(""), text);
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

/// Anything that is not JSON: words between whitespace and punctuation, a
/// word taken as the key of the next (`url: …`, `wallet = …`, `"user": …`).
fn scan_words(text: &str, hints: &mut Collector) {
    let words = text
        .split(|c: char| {
            c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | '=' | '{' | '}' | '[' | ']')
        })
        .map(|word| word.strip_suffix(':').unwrap_or(word))
        .filter(|word| !word.is_empty())
        .take(MAX_CONFIG_ITEMS);
    let mut key: Option<(String, &str)> = None;
    for word in words {
        let normalized = normalize(word);
        hints.option(&normalized, word);
        match &key {
            Some((key, label)) => hints.value(Some(key), label, word),
            None => hints.value(None, "", word),
        }
        // A one-letter key must be an option (`-a`, `-o`, `-u` in a script):
        // in free text it is a word ("a scrypt KDF").
        key = (normalized.len() > 1 || word.starts_with('-')).then_some((normalized, word));
    }
}

fn is_config_flag(flag: &str) -> bool {
    matches!(
        flag,
        "--config" | "--config-file" | "--config_file" | "--configfile" | "--cfg"
    )
}

fn has_config_extension(path: &str, loose: bool) -> bool {
    let Some((_, extension)) = path.rsplit_once('.') else {
        return false;
    };
    let extension = extension.to_ascii_lowercase();
    matches!(extension.as_str(), "json" | "ini" | "conf" | "cfg" | "toml")
        || (loose && matches!(extension.as_str(), "txt" | "yaml" | "yml"))
}

// --- Words ---

fn is_miner_option(key: &str) -> bool {
    // XMRig's options and config keys (`randomx` is its config section).
    const OPTIONS: &str = "donate-level donate-over-proxy cpu-priority cpu-max-threads-hint \
        cpu-no-yield rig-id nicehash randomx huge-pages-jit argon2-impl astrobwt-max-size \
        astrobwt-avx2";
    key.starts_with("randomx-") || OPTIONS.split_ascii_whitespace().any(|o| o == key)
}

/// Proof-of-work algorithm names as miners spell them (XMRig, T-Rex,
/// lolMiner, GMiner, SRBMiner, cpuminer), compared case-insensitively.
fn is_pow_algorithm(value: &str) -> bool {
    const FAMILIES: &str = "rx/ cn/ cn- cryptonight argon2/ equihash equi1 equi2 progpow \
        cuckoo cuckatoo beamhash beam- yescrypt yespower astrobwt autolykos x16r lyra2";
    const NAMES: &str = "randomx randomxmonero randomarq randomwow ghostrider kawpow ethash \
        etchash ethashb3 kheavyhash heavyhash kaspa karlsenhash pyrinhash octopus firopow \
        meowpow evrprogpow sha256d sha512256d sha3x scrypt neoscrypt x11 x25x blake3 zelhash \
        zhash verushash fishhash nexapow dynexsolve xelishash xelishashv2 c29ae cr29";
    if value.len() > 32 {
        return false;
    }
    let value = value.to_ascii_lowercase();
    NAMES.split_ascii_whitespace().any(|n| n == value)
        || FAMILIES
            .split_ascii_whitespace()
            .any(|f| value.starts_with(f))
}

/// Coins `--coin` takes in miners, by ticker or name.
fn is_mineable_coin(value: &str) -> bool {
    const COINS: &str = "xmr monero wow wownero zeph zephyr rvn ravencoin etc erg ergo kas \
        kaspa kls karlsen zec zcash firo flux beam btc bitcoin ltc litecoin doge dogecoin dero \
        nexa clore neox alph rxd xel qubic dnx dynex grin cfx vrsc xna";
    value.len() <= 16
        && COINS
            .split_ascii_whitespace()
            .any(|c| c.eq_ignore_ascii_case(value))
}

/// `host:port` without a scheme: a DNS name or IPv4 address with a dot, and a
/// port 1–65535.
fn is_host_port(value: &str) -> bool {
    let Some((host, port)) = value.rsplit_once(':') else {
        return false;
    };
    let port_ok = !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
    let host_ok = host.len() <= 253
        && host.contains('.')
        && !host.starts_with('.')
        && !host.ends_with('.')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    port_ok && host_ok
}

/// The first stratum URL in `text`: `stratum`, at most a few scheme
/// characters (`+tcp`, `2+ssl`, `1+tcp`), `://` and a host.
fn stratum_url(text: &str) -> Option<&str> {
    const SCHEME: &[u8] = b"stratum";
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(at) = bytes[from..]
        .windows(SCHEME.len())
        .position(|w| w.eq_ignore_ascii_case(SCHEME))
    {
        let start = from + at;
        let rest = &bytes[start + SCHEME.len()..];
        let scheme_len = rest
            .iter()
            .take(8)
            .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'+')
            .count();
        let after = &rest[scheme_len..];
        if after.starts_with(b"://")
            && after
                .get(3)
                .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'[')
        {
            let url = &text[start..];
            let end = url
                .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';'))
                .unwrap_or(url.len());
            return Some(&url[..end]);
        }
        from = start + 1;
    }
    None
}

// --- Addresses ---

const BASE58: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const BECH32: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

fn base58_digit(c: u8) -> Option<u64> {
    BASE58.iter().position(|&d| d == c).map(|d| d as u64)
}

fn bech32_value(c: u8) -> Option<u8> {
    BECH32.iter().position(|&d| d == c).map(|d| d as u8)
}

/// Monero's base58: 8-byte blocks as 11 characters, the last block shorter.
fn monero_base58(text: &str) -> Option<Vec<u8>> {
    // Characters of a block of `n` bytes, n = 0..=8.
    const BLOCK_CHARS: [usize; 9] = [0, 2, 3, 5, 6, 7, 9, 10, 11];
    let mut out = Vec::with_capacity(text.len() * 8 / 11 + 8);
    for block in text.as_bytes().chunks(11) {
        let size = BLOCK_CHARS.iter().position(|&n| n == block.len())?;
        let mut value: u128 = 0;
        for &c in block {
            value = value * 58 + u128::from(base58_digit(c)?);
        }
        if value >> (8 * size) != 0 {
            return None;
        }
        out.extend_from_slice(&value.to_be_bytes()[16 - size..]);
    }
    Some(out)
}

/// A Monero mainnet address: network byte 18 (standard), 19 (integrated) or
/// 42 (sub-address), two 32-byte keys (and an 8-byte payment id), and the
/// first 4 bytes of the Keccak-256 of all that.
fn monero(text: &str) -> bool {
    let Some(bytes) = monero_base58(text) else {
        return false;
    };
    let shape_ok = matches!(
        (bytes.first(), bytes.len()),
        (Some(0x12 | 0x2a), 69) | (Some(0x13), 77)
    );
    if !shape_ok {
        return false;
    }
    let (body, checksum) = bytes.split_at(bytes.len() - 4);
    Keccak256::digest(body)[..4] == *checksum
}

/// Bitcoin-style base58 (a big number, leading `1`s as zero bytes).
fn base58(text: &str) -> Option<Vec<u8>> {
    let mut number: Vec<u8> = Vec::with_capacity(text.len());
    for c in text.bytes() {
        let mut carry = base58_digit(c)?;
        for byte in number.iter_mut() {
            carry += u64::from(*byte) * 58;
            *byte = carry as u8;
            carry >>= 8;
        }
        while carry > 0 {
            number.push(carry as u8);
            carry >>= 8;
        }
    }
    let zeros = text.bytes().take_while(|&c| c == b'1').count();
    number.extend(std::iter::repeat_n(0, zeros));
    number.reverse();
    Some(number)
}

/// Base58Check with a known version prefix and a 20-byte hash.
fn base58check(text: &str) -> Option<Coin> {
    if !(25..=35).contains(&text.len()) {
        return None;
    }
    let bytes = base58(text)?;
    let (body, checksum) = bytes.split_at(bytes.len().checked_sub(4)?);
    let coin = match body {
        [0x00 | 0x05, hash @ ..] if hash.len() == 20 => Coin::Bitcoin,
        [0x30 | 0x32, hash @ ..] if hash.len() == 20 => Coin::Litecoin,
        [0x1e | 0x16, hash @ ..] if hash.len() == 20 => Coin::Dogecoin,
        [0x3c | 0x7a, hash @ ..] if hash.len() == 20 => Coin::Ravencoin,
        [0x1c, 0xb8 | 0xbd, hash @ ..] if hash.len() == 20 => Coin::Zcash,
        _ => return None,
    };
    (Sha256::digest(Sha256::digest(body))[..4] == *checksum).then_some(coin)
}

fn bech32_polymod(values: impl Iterator<Item = u8>) -> u32 {
    const GENERATOR: [u32; 5] = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
    let mut check = 1u32;
    for value in values {
        let top = check >> 25;
        check = ((check & 0x1ff_ffff) << 5) ^ u32::from(value);
        for (i, g) in GENERATOR.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                check ^= g;
            }
        }
    }
    check
}

/// A segwit address (BIP173 Bech32 for version 0, BIP350 Bech32m after).
fn segwit(text: &str) -> Option<Coin> {
    const BECH32_CONST: u32 = 1;
    const BECH32M_CONST: u32 = 0x2bc8_30a3;
    if !(14..=90).contains(&text.len()) {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    if text != lower && text != text.to_ascii_uppercase() {
        return None;
    }
    let (hrp, data) = lower.rsplit_once('1')?;
    let coin = match hrp {
        "bc" => Coin::Bitcoin,
        "ltc" => Coin::Litecoin,
        _ => return None,
    };
    let values: Vec<u8> = data.bytes().map(bech32_value).collect::<Option<_>>()?;
    if values.len() < 1 + 6 {
        return None;
    }
    let expanded = hrp
        .bytes()
        .map(|c| c >> 5)
        .chain([0])
        .chain(hrp.bytes().map(|c| c & 31));
    let check = bech32_polymod(expanded.chain(values.iter().copied()));
    let version = values[0];
    let constant_ok = match version {
        0 => check == BECH32_CONST,
        1..=16 => check == BECH32M_CONST,
        _ => false,
    };
    let program = regroup(&values[1..values.len() - 6], 5, 8)?;
    let length_ok = match version {
        0 => matches!(program.len(), 20 | 32),
        _ => (2..=40).contains(&program.len()),
    };
    (constant_ok && length_ok).then_some(coin)
}

/// Regroups `from`-bit values into `to`-bit ones, rejecting non-zero padding.
fn regroup(values: &[u8], from: u32, to: u32) -> Option<Vec<u8>> {
    let mut acc = 0u32;
    let mut bits = 0u32;
    let mut out = Vec::with_capacity(values.len() * from as usize / to as usize);
    for &value in values {
        acc = ((acc << from) | u32::from(value)) & 0xffff;
        bits += from;
        while bits >= to {
            bits -= to;
            out.push(((acc >> bits) & ((1 << to) - 1)) as u8);
        }
    }
    (bits < from && (acc << (to - bits)) & ((1 << to) - 1) == 0).then_some(out)
}

/// Kaspa: `kaspa:`, then CashAddr-style Bech32 with a 40-bit checksum over
/// the prefix; version 0 (Schnorr, 32 bytes), 1 (ECDSA, 33) or 8 (P2SH, 32).
fn kaspa(text: &str) -> bool {
    const PREFIX: &str = "kaspa";
    let Some(payload) = text
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_prefix(':'))
    else {
        return false;
    };
    if !matches!(payload.len(), 61 | 63) {
        return false;
    }
    let Some(values) = payload
        .bytes()
        .map(bech32_value)
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let checked = PREFIX
        .bytes()
        .map(|c| c & 0x1f)
        .chain([0])
        .chain(values.iter().copied());
    if kaspa_polymod(checked) != 0 {
        return false;
    }
    let Some(data) = regroup(&values[..values.len() - 8], 5, 8) else {
        return false;
    };
    matches!(
        (data.first(), data.len()),
        (Some(0 | 8), 33) | (Some(1), 34)
    )
}

fn kaspa_polymod(values: impl Iterator<Item = u8>) -> u64 {
    const GENERATOR: [u64; 5] = [
        0x98_f2bc_8e61,
        0x79_b76d_99e2,
        0xf3_3e5f_b3c4,
        0xae_2eab_e2a8,
        0x1e_4f43_e470,
    ];
    let mut check = 1u64;
    for value in values {
        let top = check >> 35;
        check = ((check & 0x07_ffff_ffff) << 5) ^ u64::from(value);
        for (i, g) in GENERATOR.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                check ^= g;
            }
        }
    }
    check ^ 1
}

/// `0x` and 40 hex digits, not all zero; EIP-55's checksum when the case is
/// mixed (a digit's case is upper where the Keccak-256 of the lowercase hex
/// has a nibble of 8 or more).
fn ethereum(text: &str) -> bool {
    let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) else {
        return false;
    };
    if hex.len() != 40
        || !hex.bytes().all(|b| b.is_ascii_hexdigit())
        || hex.bytes().all(|b| b == b'0')
    {
        return false;
    }
    let has_upper = hex.bytes().any(|b| b.is_ascii_uppercase());
    let has_lower = hex.bytes().any(|b| b.is_ascii_lowercase());
    if !(has_upper && has_lower) {
        return true;
    }
    let hash = Keccak256::digest(hex.to_ascii_lowercase().as_bytes());
    hex.bytes().enumerate().all(|(i, b)| {
        let nibble = (hash[i / 2] >> if i % 2 == 0 { 4 } else { 0 }) & 0xf;
        !b.is_ascii_alphabetic() || b.is_ascii_uppercase() == (nibble >= 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_owned).collect()
    }

    fn kinds(hints: &[Hint]) -> Vec<HintKind> {
        hints.iter().map(|h| h.kind).collect()
    }

    fn has(hints: &[Hint], kind: HintKind, text: &str) -> bool {
        hints.iter().any(|h| h.kind == kind && h.text == text)
    }

    // --- Test encoders: addresses are built here, byte by byte ---

    fn base58_encode(bytes: &[u8]) -> String {
        let mut digits: Vec<u8> = Vec::new(); // little-endian, base 58
        for &byte in bytes {
            let mut carry = u32::from(byte);
            for digit in digits.iter_mut() {
                carry += u32::from(*digit) << 8;
                *digit = (carry % 58) as u8;
                carry /= 58;
            }
            while carry > 0 {
                digits.push((carry % 58) as u8);
                carry /= 58;
            }
        }
        let zeros = bytes.iter().take_while(|&&b| b == 0).count();
        std::iter::repeat_n(b'1', zeros)
            .chain(digits.iter().rev().map(|&d| BASE58[usize::from(d)]))
            .map(char::from)
            .collect()
    }

    fn base58check_encode(version: &[u8], hash: &[u8; 20]) -> String {
        let mut body = [version, hash].concat();
        let checksum = Sha256::digest(Sha256::digest(&body));
        body.extend_from_slice(&checksum[..4]);
        base58_encode(&body)
    }

    fn monero_base58_encode(bytes: &[u8]) -> String {
        const BLOCK_CHARS: [usize; 9] = [0, 2, 3, 5, 6, 7, 9, 10, 11];
        let mut out = String::new();
        for block in bytes.chunks(8) {
            let mut value = block.iter().fold(0u128, |v, &b| (v << 8) | u128::from(b));
            let mut chars = vec![b'1'; BLOCK_CHARS[block.len()]];
            for c in chars.iter_mut().rev() {
                *c = BASE58[(value % 58) as usize];
                value /= 58;
            }
            out.extend(chars.into_iter().map(char::from));
        }
        out
    }

    /// A Monero address: network byte, keys (and payment id), Keccak checksum.
    fn monero_address(network: u8, seed: u8, payment_id: bool) -> String {
        let mut body = vec![network];
        body.extend((0..64u8).map(|i| i.wrapping_mul(7).wrapping_add(seed)));
        if payment_id {
            body.extend([0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]);
        }
        let checksum = Keccak256::digest(&body);
        body.extend_from_slice(&checksum[..4]);
        monero_base58_encode(&body)
    }

    fn kaspa_address(version: u8, key: &[u8]) -> String {
        let data = [&[version], key].concat();
        let mut values = Vec::new();
        let (mut acc, mut bits) = (0u32, 0u32);
        for &byte in &data {
            acc = (acc << 8) | u32::from(byte);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                values.push(((acc >> bits) & 31) as u8);
            }
        }
        if bits > 0 {
            values.push(((acc << (5 - bits)) & 31) as u8);
        }
        let checksum = kaspa_polymod(
            "kaspa"
                .bytes()
                .map(|c| c & 0x1f)
                .chain([0])
                .chain(values.iter().copied())
                .chain([0; 8]),
        );
        values.extend((0..8).rev().map(|i| ((checksum >> (5 * i)) & 31) as u8));
        let payload: String = values
            .iter()
            .map(|&v| char::from(BECH32[usize::from(v)]))
            .collect();
        format!("kaspa:{payload}")
    }

    fn xmr() -> String {
        monero_address(0x12, 3, false)
    }

    // Published addresses: the Monero General Fund, Bitcoin's genesis
    // coinbase, BIP13/BIP173/BIP350 examples, EIP-55's examples.
    const MONERO_GENERAL_FUND: &str = "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A";
    const BTC_GENESIS: &str = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa";
    const BTC_P2SH: &str = "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy";
    const BTC_BECH32: &str = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
    const BTC_BECH32M: &str = "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0";
    const LTC_BECH32: &str = "ltc1qw508d6qejxtdg4y5r3zarvary0c5xw7kgmn4n9";
    const EIP55: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

    #[test]
    fn published_addresses_validate_and_tampered_ones_do_not() {
        assert_eq!(wallet_coin(MONERO_GENERAL_FUND), Some(Coin::Monero));
        assert_eq!(wallet_coin(BTC_GENESIS), Some(Coin::Bitcoin));
        assert_eq!(wallet_coin(BTC_P2SH), Some(Coin::Bitcoin));
        assert_eq!(wallet_coin(BTC_BECH32), Some(Coin::Bitcoin));
        assert_eq!(
            wallet_coin(&BTC_BECH32.to_ascii_uppercase()),
            Some(Coin::Bitcoin)
        );
        assert_eq!(wallet_coin(BTC_BECH32M), Some(Coin::Bitcoin));
        assert_eq!(wallet_coin(LTC_BECH32), Some(Coin::Litecoin));
        assert_eq!(wallet_coin(EIP55), Some(Coin::Ethereum));
        assert_eq!(
            wallet_coin(&EIP55.to_ascii_lowercase()),
            Some(Coin::Ethereum)
        );

        let tampered = |s: &str| {
            let mut s = s.to_owned();
            let last = s.pop().unwrap();
            s.push(if last == 'a' || last == 'A' { 'b' } else { 'a' });
            s
        };
        for address in [
            MONERO_GENERAL_FUND,
            BTC_GENESIS,
            BTC_P2SH,
            BTC_BECH32,
            BTC_BECH32M,
            LTC_BECH32,
        ] {
            assert_eq!(wallet_coin(&tampered(address)), None, "{address}");
        }
        // EIP-55: one letter's case flipped.
        assert_eq!(
            wallet_coin("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"),
            None
        );
        // Mixed case is not Bech32; a Bech32 checksum under Bech32m is not valid.
        assert_eq!(
            wallet_coin("bc1qW508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
            None
        );
    }

    #[test]
    fn built_addresses_validate() {
        let standard = monero_address(0x12, 1, false);
        let sub = monero_address(0x2a, 2, false);
        let integrated = monero_address(0x13, 3, true);
        assert_eq!((standard.len(), &standard[..1]), (95, "4"));
        assert_eq!((sub.len(), &sub[..1]), (95, "8"));
        assert_eq!((integrated.len(), &integrated[..1]), (106, "4"));
        for address in [&standard, &sub, &integrated] {
            assert_eq!(wallet_coin(address), Some(Coin::Monero), "{address}");
        }
        // Another network byte (Wownero's 4146 is two varint bytes; a
        // testnet's 53 is one): a valid checksum is not enough.
        assert_eq!(wallet_coin(&monero_address(53, 1, false)), None);

        let rvn = base58check_encode(&[0x3c], &[9; 20]);
        assert!(rvn.starts_with('R'), "{rvn}");
        assert_eq!(wallet_coin(&rvn), Some(Coin::Ravencoin));
        let zec = base58check_encode(&[0x1c, 0xb8], &[7; 20]);
        assert!(zec.starts_with("t1"), "{zec}");
        assert_eq!(wallet_coin(&zec), Some(Coin::Zcash));
        assert_eq!(
            wallet_coin(&base58check_encode(&[0x30], &[1; 20])),
            Some(Coin::Litecoin)
        );
        // Testnet and unknown versions are not counted.
        assert_eq!(wallet_coin(&base58check_encode(&[0x6f], &[1; 20])), None);

        let schnorr = kaspa_address(0, &[0x42; 32]);
        let ecdsa = kaspa_address(1, &[0x43; 33]);
        assert_eq!(schnorr.len(), "kaspa:".len() + 61);
        assert_eq!(wallet_coin(&schnorr), Some(Coin::Kaspa));
        assert_eq!(wallet_coin(&ecdsa), Some(Coin::Kaspa));
        assert_eq!(wallet_coin(&kaspa_address(5, &[0x42; 32])), None);
    }

    #[test]
    fn published_kaspa_addresses_validate() {
        // Addresses quoted in public Kaspa tooling (a Schnorr and an ECDSA one).
        for address in [
            "kaspa:qpzpfwcsqsxhxwup26r55fd0ghqlhyugz8cp6y3wxuddc02vcxtjg75pspnwz",
            "kaspa:qypyrhxkfd055qulcvu6zccq4qe63qajrzgf7t4u4uusveguw6zzc3grrceeuex",
        ] {
            assert_eq!(wallet_coin(address), Some(Coin::Kaspa), "{address}");
            let tampered = address.replacen("kaspa:q", "kaspa:p", 1);
            assert_eq!(wallet_coin(&tampered), None);
        }
    }

    #[test]
    fn random_base58_and_hex_are_not_wallets() {
        for text in [
            "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3x",
            "3FZbgi29cpjq2GjdwV8eyHuJJnkLtktZc6",
            "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",
            "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrpZ",
            "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb99uNbr2VBBEt7f2wfn3RVGQBEP3A",
            "0x0000000000000000000000000000000000000000",
            "3a1f9c0e4b7d2a6f8c5e1b3d9a7f0c2e4b6d8a1f",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ] {
            assert_eq!(wallet_coin(text), None, "{text}");
            assert!(
                argv_hints(&argv(&format!("tool {text}"))).is_empty(),
                "{text}"
            );
        }
    }

    // --- Command lines ---

    #[test]
    fn an_xmrig_command_line_gives_a_wallet_an_option_and_its_pool() {
        let line = format!(
            "xmrig -o pool.supportxmr.com:443 -u {} --tls -k --donate-level 1",
            xmr()
        );
        let hints = argv_hints(&argv(&line));
        assert!(
            has(&hints, HintKind::Wallet(Coin::Monero), &xmr()),
            "{hints:?}"
        );
        assert!(
            has(&hints, HintKind::MinerOption, "--donate-level"),
            "{hints:?}"
        );
        assert!(
            has(&hints, HintKind::PoolEndpoint, "pool.supportxmr.com:443"),
            "{hints:?}"
        );
        assert_eq!(hints.len(), 3, "{hints:?}");
        assert!(hints.iter().all(|h| h.source == Source::CommandLine));
        assert_eq!(combined_strength(&hints), MAX_COMBINED);
    }

    #[test]
    fn gpu_and_cpu_miner_command_lines_give_their_algorithm_pool_and_wallet() {
        let rvn = base58check_encode(&[0x3c], &[0x5a; 20]);
        let hints = argv_hints(&argv(&format!(
            "t-rex -a kawpow -o stratum+tcp://rvn.2miners.com:6060 -u {rvn}.rig0 -p x"
        )));
        assert!(
            has(&hints, HintKind::PowAlgorithm, "-a kawpow"),
            "{hints:?}"
        );
        assert!(has(
            &hints,
            HintKind::PoolUrl,
            "stratum+tcp://rvn.2miners.com:6060"
        ));
        assert!(
            has(&hints, HintKind::Wallet(Coin::Ravencoin), &rvn),
            "{hints:?}"
        );

        let kas = kaspa_address(0, &[0x11; 32]);
        let hints = argv_hints(&argv(&format!(
            "./lolMiner --algo KASPA --pool kaspa.herominers.com:1206 --user {kas}.rig1#unm"
        )));
        assert!(
            has(&hints, HintKind::PowAlgorithm, "--algo KASPA"),
            "{hints:?}"
        );
        assert!(
            has(&hints, HintKind::Wallet(Coin::Kaspa), &kas),
            "{hints:?}"
        );
        assert!(has(
            &hints,
            HintKind::PoolEndpoint,
            "kaspa.herominers.com:1206"
        ));

        let hints = argv_hints(&argv(&format!(
            "cpuminer -a sha256d -o stratum+tcp://solo.ckpool.org:3333 -u {BTC_BECH32}.rig -p x"
        )));
        assert_eq!(
            kinds(&hints),
            [
                HintKind::PowAlgorithm,
                HintKind::PoolUrl,
                HintKind::Wallet(Coin::Bitcoin)
            ],
            "{hints:?}"
        );

        let hints = argv_hints(&argv(&format!(
            "ethminer -P stratum1+tcp://{EIP55}.rig@eth.example.org:4444"
        )));
        assert!(has(
            &hints,
            HintKind::PoolUrl,
            &format!("stratum1+tcp://{EIP55}.rig@eth.example.org:4444")
        ));
        assert!(
            has(&hints, HintKind::Wallet(Coin::Ethereum), EIP55),
            "{hints:?}"
        );
    }

    #[test]
    fn a_miner_inside_sh_c_or_behind_docker_env_is_still_read() {
        let hints = argv_hints(&[
            "sh".into(),
            "-c".into(),
            "exec ./kworker --donate-level=0 --randomx-1gb-pages -o 'stratum+ssl://p.example.net:443'"
                .into(),
        ]);
        assert!(
            has(&hints, HintKind::MinerOption, "--donate-level=0"),
            "{hints:?}"
        );
        assert!(has(&hints, HintKind::MinerOption, "--randomx-1gb-pages"));
        assert!(has(
            &hints,
            HintKind::PoolUrl,
            "stratum+ssl://p.example.net:443"
        ));

        let hints = argv_hints(&argv(&format!(
            "docker run -e WALLET={} -e POOL=gulf.moneroocean.stream:10128 img",
            xmr()
        )));
        assert!(
            has(&hints, HintKind::Wallet(Coin::Monero), &xmr()),
            "{hints:?}"
        );
        assert!(has(
            &hints,
            HintKind::PoolEndpoint,
            "gulf.moneroocean.stream:10128"
        ));

        // An Ethereum address counts only as a user or wallet.
        let hints = argv_hints(&argv(&format!("docker run -e WALLET={EIP55} img")));
        assert_eq!(kinds(&hints), [HintKind::Wallet(Coin::Ethereum)]);
        assert!(argv_hints(&argv(&format!("cast balance {EIP55}"))).is_empty());
    }

    #[test]
    fn benign_look_alikes_give_nothing() {
        for line in [
            "python train.py --lr 0.1 -a adam",
            "curl -o out.tar https://x",
            "curl -u user:secret -o out.tar https://example.com:8443/a.tar",
            "ssh -o StrictHostKeyChecking=no host",
            "ssh -o ProxyJump=bastion.example.com:22 db.internal",
            "gcc -o main main.c",
            "git log --format=%H",
            "git checkout 3a1f9c0e4b7d2a6f8c5e1b3d9a7f0c2e4b6d8a1f",
            "sha256sum -c 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "ffmpeg -i in.mov -c:v libx264 -a:b 128k out.mp4",
            "java -cp lib/a.jar:lib/b.jar com.example.Main",
            "node server.js --port 3000",
            "redis-server --port 6379 --bind 10.0.0.1:6379",
            "shasum -a 256 file",
            "tar -x -a -f archive.tar.gz",
            "grep -r stratum+tcp:// /var/log",
            "psql -h db.example.com -p 5432 -U app",
            "nginx -c /etc/nginx/nginx.conf -g daemon off;",
            "- -- --- -1 --=",
            "",
        ] {
            let hints = argv_hints(&argv(line));
            assert!(hints.is_empty(), "{line}: {hints:?}");
            assert_eq!(combined_strength(&hints), 0.0);
        }
    }

    #[test]
    fn an_algorithm_flag_counts_only_with_a_proof_of_work_algorithm() {
        for (algo, hit) in [
            ("rx/0", true),
            ("cn/r", true),
            ("cn-heavy/xhv", true),
            ("RandomX", true),
            ("ethash", true),
            ("etchash", true),
            ("autolykos2", true),
            ("kheavyhash", true),
            ("equihash144_5", true),
            ("octopus", true),
            ("firopow", true),
            ("scrypt", true),
            ("x11", true),
            ("adam", false),
            ("256", false),
            ("sha256", false),
            ("md5", false),
            ("", false),
        ] {
            let hints = argv_hints(&argv(&format!("miner --algo {algo}")));
            assert_eq!(!hints.is_empty(), hit, "{algo}: {hints:?}");
        }
        assert!(argv_hints(&argv("bot --coin XMR")).len() == 1);
        assert!(argv_hints(&argv("bot --coin usd")).is_empty());
    }

    #[test]
    fn a_pool_endpoint_alone_is_nothing() {
        assert!(argv_hints(&argv("nc -o pool.supportxmr.com:443")).is_empty());
        assert!(config_hints(br#"{"pools":[{"url":"db.example.com:5432"}]}"#).is_empty());
    }

    // --- Config files ---

    #[test]
    fn a_renamed_xmrig_with_its_pool_in_config_json_is_read_from_the_config() {
        let config = format!(
            r#"{{
    "api": {{"id": null, "worker-id": null}},
    "autosave": true,
    "background": false,
    "randomx": {{"init": -1, "mode": "auto", "1gb-pages": false}},
    "cpu": {{"enabled": true, "huge-pages": true, "priority": null, "rx": [0, 1]}},
    "donate-level": 1,
    "pools": [
        {{
            "algo": "rx/0",
            "coin": null,
            "url": "pool.supportxmr.com:443",
            "user": "{}",
            "pass": "x",
            "keepalive": true,
            "tls": true
        }}
    ]
}}"#,
            xmr()
        );
        let hints = config_hints(config.as_bytes());
        assert!(
            has(&hints, HintKind::MinerOption, "donate-level"),
            "{hints:?}"
        );
        assert!(has(&hints, HintKind::MinerOption, "randomx"), "{hints:?}");
        assert!(
            has(&hints, HintKind::PowAlgorithm, "algo rx/0"),
            "{hints:?}"
        );
        assert!(
            has(&hints, HintKind::Wallet(Coin::Monero), &xmr()),
            "{hints:?}"
        );
        assert!(has(
            &hints,
            HintKind::PoolEndpoint,
            "pool.supportxmr.com:443"
        ));
        assert!(hints.iter().all(|h| h.source == Source::ConfigFile));
        assert_eq!(combined_strength(&hints), MAX_COMBINED);

        // Cut at the read bound, or with comments: no longer JSON, still read.
        let cut = &config.as_bytes()[..config.find("\"pass\"").unwrap()];
        let hints = config_hints(cut);
        assert!(
            has(&hints, HintKind::MinerOption, "donate-level"),
            "{hints:?}"
        );
        assert!(
            has(&hints, HintKind::Wallet(Coin::Monero), &xmr()),
            "{hints:?}"
        );
        assert!(has(
            &hints,
            HintKind::PoolEndpoint,
            "pool.supportxmr.com:443"
        ));
    }

    #[test]
    fn ini_yaml_and_shell_configs_are_read_word_by_word() {
        let ini = format!(
            "[RandomX]\nwallet = {}\nrigName = rig1\npool1 = xmr-eu1.nanopool.org:14433\n",
            monero_address(0x2a, 9, false)
        );
        let hints = config_hints(ini.as_bytes());
        assert_eq!(
            kinds(&hints),
            [
                // nanominer's section name.
                HintKind::MinerOption,
                HintKind::Wallet(Coin::Monero),
                HintKind::PoolEndpoint
            ],
            "{hints:?}"
        );

        let kas = kaspa_address(0, &[0x77; 32]);
        let script = format!(
            "#!/bin/bash\nPOOL=\"stratum+tcp://kheavyhash.auto.unmineable.com:3333\"\nWALLET=\"{kas}\"\n./lolMiner -a kheavyhash --pool $POOL --user $WALLET.$WORKER#unm\n"
        );
        let hints = config_hints(script.as_bytes());
        assert!(has(
            &hints,
            HintKind::PoolUrl,
            "stratum+tcp://kheavyhash.auto.unmineable.com:3333"
        ));
        assert!(
            has(&hints, HintKind::Wallet(Coin::Kaspa), &kas),
            "{hints:?}"
        );
        assert!(
            has(&hints, HintKind::PowAlgorithm, "-a kheavyhash"),
            "{hints:?}"
        );

        let yaml = format!("user: {EIP55}\nurl: eth.example.org:4444\n");
        let hints = config_hints(yaml.as_bytes());
        assert!(
            has(&hints, HintKind::Wallet(Coin::Ethereum), EIP55),
            "{hints:?}"
        );
    }

    #[test]
    fn benign_configs_give_nothing() {
        for config in [
            &br#"{"name": "app", "port": 3000, "db": {"url": "db.example.com:5432", "user": "app"}, "commit": "3a1f9c0e4b7d2a6f8c5e1b3d9a7f0c2e4b6d8a1f"}"#[..],
            b"[server]\nhost = 0.0.0.0\nport = 8080\nupstream = api.example.com:443\n",
            b"# a scrypt KDF and an x11 server\nkdf: a scrypt\n",
            b"\x00\xff\xfe binary \x80",
            b"",
        ] {
            let hints = config_hints(config);
            assert!(hints.is_empty(), "{:?}: {hints:?}", String::from_utf8_lossy(config));
        }
    }

    #[test]
    fn config_paths_are_the_files_a_miner_would_read() {
        let paths = |line: &str| config_paths(&argv(line));
        assert_eq!(
            paths("xmrig -c config.json"),
            [PathBuf::from("config.json")]
        );
        assert_eq!(
            paths("kworker --config=/etc/kw.json --config run/x.cfg"),
            [PathBuf::from("/etc/kw.json"), PathBuf::from("run/x.cfg")]
        );
        assert_eq!(paths("nanominer config.ini"), [PathBuf::from("config.ini")]);
        assert_eq!(
            paths("srb --config-file pools.txt"),
            [PathBuf::from("pools.txt")]
        );
        for line in [
            "gcc -c main.c",
            "ffmpeg -c:v libx264 out.mp4",
            "node server.js --port 3000",
            "python -c print(1)",
            "xmrig --config",
            "xmrig",
        ] {
            assert!(paths(line).is_empty(), "{line}");
        }
        assert!(config_paths(&["bash".into(), "-c".into(), "echo a.json".into()]).is_empty());
        let many: Vec<String> = (0..100).map(|i| format!("c{i}.json")).collect();
        assert_eq!(config_paths(&many).len(), MAX_CONFIG_PATHS);
    }

    // --- Strength, bounds, words ---

    #[test]
    fn hints_never_add_up_to_a_suspicion_alone() {
        // correlate.rs: SUSPECTED_AT = 0.6.
        const _: () = assert!(MAX_COMBINED < 0.6);
        let line = format!(
            "m -a rx/0 -o stratum+tcp://p.example:3333 -u {} --donate-level 0 --cpu-priority 5 --coin XMR -o p.example:3333 -u {BTC_GENESIS}",
            xmr()
        );
        let hints = argv_hints(&argv(&line));
        assert!(hints.len() >= 6, "{hints:?}");
        assert_eq!(combined_strength(&hints), MAX_COMBINED);
        for hint in &hints {
            let one = combined_strength(std::slice::from_ref(hint));
            assert!(one > 0.0 && one < MAX_COMBINED, "{hint:?}");
        }
        assert_eq!(combined_strength(&[]), 0.0);
    }

    #[test]
    fn work_and_output_are_bounded() {
        let many: Vec<String> = (0..10_000).map(|i| format!("--randomx-{i}")).collect();
        let hints = argv_hints(&many);
        assert_eq!(hints.len(), MAX_HINTS);

        let long = format!("stratum+tcp://{}.example:1", "a".repeat(10_000));
        let hints = argv_hints(&[long]);
        assert_eq!(hints.len(), 1);
        assert_eq!(hints[0].text.chars().count(), MAX_TEXT + 1);
        assert!(hints[0].text.ends_with('…'));

        // Past MAX_CONFIG bytes, nothing is read.
        let mut config = vec![b' '; MAX_CONFIG];
        config.extend_from_slice(b"stratum+tcp://p.example:3333");
        assert!(config_hints(&config).is_empty());
    }

    #[test]
    fn hints_describe_themselves_in_plain_words() {
        let hints = argv_hints(&argv("x -o stratum+tcp://p.example:3333"));
        assert_eq!(
            hints[0].describe(),
            "a stratum pool URL `stratum+tcp://p.example:3333` on its command line"
        );
        let hints = config_hints(format!(r#"{{"user":"{EIP55}"}}"#).as_bytes());
        assert_eq!(
            hints[0].describe(),
            format!("an Ethereum-style address `{EIP55}` in its config file")
        );
        let hints = config_hints(br#"{"donate-level": 1}"#);
        assert_eq!(
            hints[0].describe(),
            "the miner-only setting `donate-level` in its config file"
        );
    }

    #[test]
    fn stratum_schemes() {
        for url in [
            "stratum+tcp://a.b:1",
            "stratum+ssl://a.b:1",
            "stratum+tls://a.b:1",
            "stratum2+tcp://a.b:1",
            "stratum1+tcp://a.b:1",
            "STRATUM+TCP://a.b:1",
            "stratum://a.b:1",
        ] {
            assert_eq!(stratum_url(&format!("--url={url}")), Some(url), "{url}");
        }
        for text in [
            "stratum+tcp://",
            "stratum+tcp:/a",
            "stratum",
            "stratumtcpfoobarbaz://a",
        ] {
            assert_eq!(stratum_url(text), None, "{text}");
        }
    }
}
