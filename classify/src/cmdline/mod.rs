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
//!
//! The parts: `hint` says what a hint is and how strong hints are
//! together; `argv` reads a command line (and the config paths it names),
//! `config` a config file; both hand every option and value to the
//! `collector`, which asks `words` what a word means and `wallets` whether
//! an address's checksum verifies.

mod argv;
mod collector;
mod config;
mod hint;
#[cfg(test)]
mod tests;
mod wallets;
mod words;

pub use argv::{argv_hints, config_paths};
pub use config::config_hints;
pub use hint::{Coin, Hint, HintKind, Source, combined_strength};
pub use wallets::wallet_coin;

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
