//! The configuration file (`--config FILE`): the same options as the
//! command line, as TOML keys (`output-file = "/var/log/assay.jsonl"` or
//! `output_file`), so that a deployment keeps them in one place. Command
//! line options given as well override the file's; secrets (NATS
//! credentials) come from the environment only, never from here.
//!
//! A key that is not an option is refused with its line and the nearest
//! option's name; a value of the wrong kind (a list for a single option, a
//! number for a flag) too. Values are then checked by the command line's
//! own parser, so the rules are the same in both places.

use thiserror::Error;

/// What the file says, as command-line arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigArgs {
    pub args: Vec<String>,
    /// (option, line) for every key, to place later errors.
    pub lines: Vec<(String, usize)>,
}

/// One option the command line knows.
#[derive(Debug, Clone)]
pub struct KnownOption {
    pub long: String,
    /// Takes a value (else it is a flag).
    pub takes_value: bool,
    /// May be given more than once.
    pub repeatable: bool,
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("config {origin}, line {line}: {reason}")]
pub struct ConfigError {
    pub origin: String,
    pub line: usize,
    pub reason: String,
}

pub fn to_args(text: &str, origin: &str, known: &[KnownOption]) -> Result<ConfigArgs, ConfigError> {
    let error = |line: usize, reason: String| ConfigError {
        origin: origin.to_owned(),
        line,
        reason,
    };
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(1);
        error(line, e.message().trim().to_owned())
    })?;
    let mut out = ConfigArgs {
        args: Vec::new(),
        lines: Vec::new(),
    };
    for (key, value) in &table {
        let line = line_of_key(text, key);
        let long = key.replace('_', "-");
        let Some(option) = known.iter().find(|o| o.long == long) else {
            let nearest = known
                .iter()
                .map(|o| (distance(&o.long, &long), &o.long))
                .min()
                .filter(|(d, _)| *d <= 3)
                .map(|(_, name)| format!("; did you mean `{name}`?"))
                .unwrap_or_default();
            return Err(error(line, format!("unknown option `{key}`{nearest}")));
        };
        let scalar = |v: &toml::Value| -> Option<String> {
            match v {
                toml::Value::String(s) => Some(s.clone()),
                toml::Value::Integer(i) => Some(i.to_string()),
                toml::Value::Float(f) => Some(f.to_string()),
                _ => None,
            }
        };
        match (value, option.takes_value) {
            (toml::Value::Boolean(on), false) => {
                if *on {
                    out.args.push(format!("--{long}"));
                }
            }
            (_, false) => {
                return Err(error(
                    line,
                    format!("`{key}` is a flag: write `{key} = true`"),
                ));
            }
            (toml::Value::Array(items), true) if option.repeatable => {
                for item in items {
                    let Some(v) = scalar(item) else {
                        return Err(error(
                            line,
                            format!("`{key}` takes a list of strings or numbers"),
                        ));
                    };
                    out.args.push(format!("--{long}={v}"));
                }
            }
            (toml::Value::Array(_), true) => {
                return Err(error(line, format!("`{key}` takes one value, not a list")));
            }
            (v, true) => {
                let Some(v) = scalar(v) else {
                    return Err(error(line, format!("`{key}` takes a string or a number")));
                };
                out.args.push(format!("--{long}={v}"));
            }
        }
        out.lines.push((long, line));
    }
    Ok(out)
}

/// The line a top-level key is set on (1 when not found).
fn line_of_key(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key)
                .or_else(|| l.strip_prefix(&format!("\"{key}\"")))
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
        .unwrap_or(1)
}

/// Levenshtein distance (short option names only).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<KnownOption> {
        let option = |long: &str, takes_value, repeatable| KnownOption {
            long: long.into(),
            takes_value,
            repeatable,
        };
        vec![
            option("output-file", true, false),
            option("sample-segments", true, false),
            option("no-hygiene", false, false),
            option("cuda-library", true, true),
        ]
    }

    #[test]
    fn keys_become_arguments() {
        let text = "output_file = \"/var/log/a.jsonl\"\nsample-segments = 6\nno-hygiene = true\n\
                    cuda-library = [\"/opt/a/libcuda.so.1\", \"/opt/b/libcuda.so.1\"]\n";
        let args = to_args(text, "c.toml", &known()).unwrap();
        let mut sorted = args.args.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            [
                "--cuda-library=/opt/a/libcuda.so.1",
                "--cuda-library=/opt/b/libcuda.so.1",
                "--no-hygiene",
                "--output-file=/var/log/a.jsonl",
                "--sample-segments=6",
            ]
        );
        assert!(args.lines.contains(&("sample-segments".into(), 2)));
    }

    #[test]
    fn mistakes_name_their_line_and_a_suggestion() {
        let cases = [
            (
                "\n\noutput_fil = \"x\"\n",
                3,
                "unknown option `output_fil`; did you mean `output-file`?",
            ),
            ("no-hygiene = 1\n", 1, "is a flag"),
            ("output-file = [\"a\", \"b\"]\n", 1, "one value, not a list"),
            ("sample-segments = \n", 1, ""),
            ("colour = \"red\"\n", 1, "unknown option `colour`"),
        ];
        for (text, line, reason) in cases {
            let err = to_args(text, "c.toml", &known()).unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err}");
            assert!(err.reason.contains(reason), "{text:?}: {err}");
        }
        assert_eq!(distance("output-fil", "output-file"), 1);
    }
}
