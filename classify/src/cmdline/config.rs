//! Config files: parsed as JSON when they parse, read word by word
//! otherwise (INI, YAML, a shell script, cut or commented JSON), with every
//! key and value handed to the collector as argv's options are.

use serde_json::Value;

use super::{
    MAX_CONFIG, MAX_CONFIG_ITEMS, Source,
    collector::{Collector, normalize},
    hint::Hint,
};
/// Hints in the first [`MAX_CONFIG`] bytes of a config file: parsed as JSON
/// (XMRig's `"pools": [{"url": …, "user": …}]`, `"donate-level"`,
/// `"randomx"`) when it parses, scanned word by word otherwise (a cut or
/// commented JSON file, INI, YAML, a shell script).
pub fn config_hints(bytes: &[u8]) -> Vec<Hint> {
    let bytes = &bytes[..bytes.len().min(MAX_CONFIG)];
    let mut hints = Collector::new(Source::ConfigFile);
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => walk_json(&value, &mut hints),
        Err(_) => scan_words(&String::from_utf8_lossy(bytes), &mut hints),
    }
    hints.finish()
}

fn walk_json(root: &Value, hints: &mut Collector) {
    let mut stack: Vec<(Option<&str>, &Value)> = vec![(None, root)];
    let mut seen = 0;
    while let Some((key, value)) = stack.pop() {
        seen += 1;
        if seen > MAX_CONFIG_ITEMS {
            break;
        }
        match value {
            Value::Object(map) => {
                for (name, child) in map.iter().rev() {
                    let normalized = normalize(name);
                    hints.option(&normalized, name);
                    stack.push((Some(name.as_str()), child));
                }
            }
            // Elements inherit the array's key: `"algo": ["rx/0", …]`.
            Value::Array(items) => stack.extend(items.iter().rev().map(|item| (key, item))),
            Value::String(text) => {
                let normalized = key.map(normalize);
                hints.value(normalized.as_deref(), key.unwrap_or(""), text);
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

/// Anything that is not JSON: words between whitespace and punctuation, a
/// word taken as the key of the next (`url: …`, `wallet = …`, `"user": …`).
fn scan_words(text: &str, hints: &mut Collector) {
    let words = text
        .split(|c: char| {
            c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | '=' | '{' | '}' | '[' | ']')
        })
        .map(|word| word.strip_suffix(':').unwrap_or(word))
        .filter(|word| !word.is_empty())
        .take(MAX_CONFIG_ITEMS);
    let mut key: Option<(String, &str)> = None;
    for word in words {
        let normalized = normalize(word);
        hints.option(&normalized, word);
        match &key {
            Some((key, label)) => hints.value(Some(key), label, word),
            None => hints.value(None, "", word),
        }
        // A one-letter key must be an option (`-a`, `-o`, `-u` in a script):
        // in free text it is a word ("a scrypt KDF").
        key = (normalized.len() > 1 || word.starts_with('-')).then_some((normalized, word));
    }
}
