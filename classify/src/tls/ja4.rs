//! JA4 (FoxIO-LLC/ja4, technical_details/JA4.md): a ClientHello summed up
//! as one string that tells TLS stacks apart (XMRig's OpenSSL, Go's
//! crypto/tls, a browser) while ignoring GREASE and extension order.

use sha2::{Digest, Sha256};

use super::{ClientHello, EXT_ALPN, EXT_SERVER_NAME, client_hello::Seen};
/// JA4 (FoxIO): `t` + version + `d`/`i` + cipher count + extension count +
/// ALPN first/last character, `_` + cipher hash, `_` + extension hash.
pub(super) fn ja4(hello: &ClientHello, seen: &Seen<'_>) -> String {
    let version = hello
        .supported_versions
        .iter()
        .copied()
        .max()
        .unwrap_or(hello.legacy_version);
    let mut out = String::with_capacity(36);
    out.push('t');
    out.push_str(ja4_version(version));
    out.push(if seen.sni_extension { 'd' } else { 'i' });
    push_count(&mut out, hello.cipher_suites.len());
    push_count(&mut out, hello.extensions.len());
    push_alpn(&mut out, seen.first_alpn);
    out.push('_');

    let mut ciphers = hello.cipher_suites.clone();
    ciphers.sort_unstable();
    push_truncated_hash(&mut out, &ciphers, &[]);
    out.push('_');

    let mut extensions: Vec<u16> = hello
        .extensions
        .iter()
        .copied()
        .filter(|&e| e != EXT_SERVER_NAME && e != EXT_ALPN)
        .collect();
    extensions.sort_unstable();
    push_truncated_hash(&mut out, &extensions, &hello.signature_algorithms);
    out
}

fn ja4_version(version: u16) -> &'static str {
    match version {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// Two decimal digits, capped at 99.
fn push_count(out: &mut String, count: usize) {
    let count = count.min(99) as u8;
    out.push(char::from(b'0' + count / 10));
    out.push(char::from(b'0' + count % 10));
}

/// First and last character of the first ALPN value; their hex digits when
/// either is not alphanumeric; `00` when there is none.
pub(super) fn push_alpn(out: &mut String, alpn: Option<&[u8]>) {
    match alpn.and_then(|a| Some((*a.first()?, *a.last()?))) {
        Some((first, last)) if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() => {
            out.push(char::from(first));
            out.push(char::from(last));
        }
        Some((first, last)) => {
            out.push(char::from(HEX[usize::from(first >> 4)]));
            out.push(char::from(HEX[usize::from(last & 0xf)]));
        }
        None => out.push_str("00"),
    }
}

pub(super) const HEX: &[u8; 16] = b"0123456789abcdef";

/// First 12 hex digits of SHA-256 over `a,b,c` (then `_x,y` when `tail` is
/// not empty); twelve zeros when `list` is empty.
fn push_truncated_hash(out: &mut String, list: &[u16], tail: &[u16]) {
    if list.is_empty() {
        out.push_str("000000000000");
        return;
    }
    let mut hasher = Sha256::new();
    hash_hex_list(&mut hasher, list);
    if !tail.is_empty() {
        hasher.update(b"_");
        hash_hex_list(&mut hasher, tail);
    }
    for byte in &hasher.finalize()[..6] {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
}

fn hash_hex_list(hasher: &mut Sha256, list: &[u16]) {
    for (i, value) in list.iter().enumerate() {
        let digits = [12, 8, 4, 0].map(|shift| HEX[usize::from((value >> shift) & 0xf)]);
        if i > 0 {
            hasher.update(b",");
        }
        hasher.update(digits);
    }
}
