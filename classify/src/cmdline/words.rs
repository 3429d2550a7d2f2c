//! What one word means to a miner: a miner-only option, a proof-of-work
//! algorithm, a mineable coin, a pool's `host:port`, a stratum URL. The
//! word lists are what keeps look-alikes (`-a adam`, `curl -o`) out.

pub(super) fn is_miner_option(key: &str) -> bool {
    // XMRig's options and config keys (`randomx` is its config section).
    const OPTIONS: &str = "donate-level donate-over-proxy cpu-priority cpu-max-threads-hint \
        cpu-no-yield rig-id nicehash randomx huge-pages-jit argon2-impl astrobwt-max-size \
        astrobwt-avx2";
    key.starts_with("randomx-") || OPTIONS.split_ascii_whitespace().any(|o| o == key)
}

/// Proof-of-work algorithm names as miners spell them (XMRig, T-Rex,
/// lolMiner, GMiner, SRBMiner, cpuminer), compared case-insensitively.
pub(super) fn is_pow_algorithm(value: &str) -> bool {
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
pub(super) fn is_mineable_coin(value: &str) -> bool {
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
pub(super) fn is_host_port(value: &str) -> bool {
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
pub(super) fn stratum_url(text: &str) -> Option<&str> {
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
