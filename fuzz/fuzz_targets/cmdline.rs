//! Arbitrary bytes as a command line (split on NUL, as `/proc/<pid>/cmdline`
//! is) and as a config file, to the command-line and config heuristics.
//!
//! Invariants: no panic; at most `MAX_HINTS` hints, each with non-empty text
//! of at most `MAX_TEXT` characters (and the `…` that marks a cut); a wallet
//! hint names an address that validates alone as the same coin; the combined
//! strength stays within `0..=MAX_COMBINED`; at most `MAX_CONFIG_PATHS`
//! distinct config paths, none empty or starting with `-`.

#![no_main]

use assay_classify::cmdline::{
    self, Hint, HintKind, MAX_COMBINED, MAX_CONFIG_PATHS, MAX_HINTS, MAX_TEXT,
};
use libfuzzer_sys::fuzz_target;

fn check(hints: &[Hint]) {
    assert!(hints.len() <= MAX_HINTS, "{hints:?}");
    for hint in hints {
        assert!(!hint.text.is_empty(), "{hint:?}");
        assert!(hint.text.chars().count() <= MAX_TEXT + 1, "{hint:?}");
        if let HintKind::Wallet(coin) = hint.kind {
            assert_eq!(cmdline::wallet_coin(&hint.text), Some(coin), "{hint:?}");
        }
        let _ = hint.describe();
    }
    let strength = cmdline::combined_strength(hints);
    assert!((0.0..=MAX_COMBINED).contains(&strength), "{strength}");
}

fuzz_target!(|data: &[u8]| {
    let argv: Vec<String> = data
        .split(|&b| b == 0)
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect();
    check(&cmdline::argv_hints(&argv));
    check(&cmdline::config_hints(data));

    let paths = cmdline::config_paths(&argv);
    assert!(paths.len() <= MAX_CONFIG_PATHS, "{paths:?}");
    for (i, path) in paths.iter().enumerate() {
        let text = path.to_string_lossy();
        assert!(!text.is_empty() && !text.starts_with('-'), "{path:?}");
        assert!(!paths[..i].contains(path), "{paths:?}");
    }
});
