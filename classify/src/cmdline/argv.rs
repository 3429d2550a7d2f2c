//! Command lines: the hints in argv, option by option (a value goes with
//! the option before it), and the config files argv names, for the caller
//! to read and hand to `config_hints`.

use std::path::PathBuf;

use super::{
    MAX_ARG_LEN, MAX_ARGS, MAX_CONFIG_PATHS, MAX_TOKENS, Source,
    collector::{Collector, normalize, prefix},
    hint::Hint,
};
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
