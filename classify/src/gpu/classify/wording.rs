//! How numbers and kernel names read in a reason: `48 000`, `99 %`,
//! `2.5 s`, `5.2 GB`, quoted and shortened kernel names. Reasons are read
//! by people, so the rounding here never overstates (99.6 % is not "all").

/// `48 000`
pub(super) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// `99 %` (rounded down, so that 99.6 % of launches does not read "all").
pub(super) fn pct(share: f64) -> String {
    let p = share * 100.0;
    if !p.is_finite() || p <= 0.0 {
        "0 %".to_owned()
    } else if p >= 100.0 {
        "100 %".to_owned()
    } else if p < 1.0 {
        "under 1 %".to_owned()
    } else {
        format!("{} %", p.floor())
    }
}

pub(super) fn secs(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        "an unknown time".to_owned()
    } else if s >= 10.0 || s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

pub(super) fn in_window(s: f64) -> String {
    if s.is_finite() && s > 0.0 {
        format!(" in {}", secs(s))
    } else {
        String::new()
    }
}

pub(super) fn bytes(b: f64) -> String {
    match b {
        b if b >= 1e9 => format!("{:.1} GB", b / 1e9),
        b if b >= 1e6 => format!("{:.0} MB", b / 1e6),
        b if b >= 1e3 => format!("{:.0} kB", b / 1e3),
        b => format!("{b:.0} B"),
    }
}

/// A rate given in kilobytes per second.
pub(super) fn rate(kbps: f64) -> String {
    match kbps {
        k if k >= 1e6 => format!("{:.1} GB/s", k / 1e6),
        k if k >= 1e3 => format!("{:.0} MB/s", k / 1e3),
        k => format!("{k:.0} kB/s"),
    }
}

/// Longest kernel name quoted in a reason (C++ template names run to
/// hundreds of characters; their start says enough).
const NAME_CHARS: usize = 60;

pub(super) fn code(name: &str) -> String {
    if name.is_empty() {
        return "an unnamed kernel".to_owned();
    }
    let mut short: String = name.chars().take(NAME_CHARS).collect();
    if short.len() < name.len() {
        short.push('…');
    }
    format!("`{short}`")
}

/// Up to three names, quoted.
pub(super) fn list(names: &[String]) -> String {
    let mut out: Vec<String> = names.iter().take(3).map(|n| code(n)).collect();
    if names.len() > 3 {
        out.push("…".to_owned());
    }
    out.join(", ")
}

pub(super) fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

pub(super) fn is_are(n: usize) -> &'static str {
    if n == 1 { "is" } else { "are" }
}
