//! What a hint is (its kind, the coin of an address, where it was found,
//! the text that matched) and how strong hints are, alone and together.
//! Every strength is fixed here, so that no hint can weigh more than its
//! constant says.

use super::{
    ETHEREUM_ADDRESS_STRENGTH, MAX_COMBINED, MINER_OPTION_STRENGTH, POOL_ENDPOINT_STRENGTH,
    POOL_URL_STRENGTH, POW_ALGORITHM_STRENGTH, WALLET_STRENGTH,
};
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
/// [`MAX_TEXT`](super::MAX_TEXT) characters).
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
