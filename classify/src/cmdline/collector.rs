//! The collector both readers feed: it turns options and values into
//! hints, keeps a bare `host:port` only once another hint turns up, and
//! bounds how many hints there are and how long their text is.

use super::{
    MAX_HINTS, MAX_TEXT,
    hint::{Coin, Hint, HintKind, Source},
    wallets::{base58check, ethereum, kaspa, monero, segwit},
    words::{is_host_port, is_mineable_coin, is_miner_option, is_pow_algorithm, stratum_url},
};
pub(super) struct Collector {
    source: Source,
    hints: Vec<Hint>,
    /// `host:port` pool candidates, kept only if another hint turns up.
    endpoints: Vec<String>,
}

impl Collector {
    pub(super) fn new(source: Source) -> Self {
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
    pub(super) fn option(&mut self, key: &str, text: &str) {
        if is_miner_option(key) {
            self.push(HintKind::MinerOption, text);
        }
    }

    /// A value, and the normalized option or key it was given to.
    pub(super) fn value(&mut self, key: Option<&str>, label: &str, value: &str) {
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

    pub(super) fn finish(mut self) -> Vec<Hint> {
        if !self.hints.is_empty() {
            for endpoint in std::mem::take(&mut self.endpoints) {
                self.push(HintKind::PoolEndpoint, &endpoint);
            }
        }
        self.hints
    }
}

/// An option or key without its dashes; lowercased unless one character
/// (`-O` is not `-o`).
pub(super) fn normalize(name: &str) -> String {
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
pub(super) fn prefix(text: &str, max: usize) -> &str {
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
