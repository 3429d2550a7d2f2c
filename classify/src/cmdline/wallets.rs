//! Coin addresses, counted only once their checksum verifies: Monero's
//! Keccak-256, Base58Check's double SHA-256, Bech32/Bech32m, Kaspa's
//! CashAddr polymod, EIP-55 where the case is mixed. Random base58 or hex
//! never passes, which is what makes an address a hint.

use sha2::{Digest, Sha256};
use sha3::Keccak256;

use super::hint::Coin;
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

pub(super) const BASE58: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
pub(super) const BECH32: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

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
pub(super) fn monero(text: &str) -> bool {
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
pub(super) fn base58check(text: &str) -> Option<Coin> {
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
pub(super) fn segwit(text: &str) -> Option<Coin> {
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
pub(super) fn kaspa(text: &str) -> bool {
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

pub(super) fn kaspa_polymod(values: impl Iterator<Item = u8>) -> u64 {
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
pub(super) fn ethereum(text: &str) -> bool {
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
