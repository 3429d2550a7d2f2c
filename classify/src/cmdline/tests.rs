//! Tests of the command-line and config-file hints: addresses built byte by
//! byte and published ones, miners' command lines and configs, and benign
//! look-alikes that must give nothing.

use std::path::PathBuf;

use sha2::{Digest, Sha256};
use sha3::Keccak256;

use super::*;
use super::{
    wallets::{BASE58, BECH32, kaspa_polymod},
    words::stratum_url,
};

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
