//! Arbitrary bytes as a UDP datagram and as a DNS-over-TCP stream, to the
//! DNS parser; and as text, to the pool-domain list parser and matcher.
//!
//! Invariants: no panic, no endless pointer chase; a parsed message has
//! 1–8 questions, at most `MAX_KEPT_ANSWERS` answers, and lowercase names
//! without a trailing dot that fit in 253 characters; `parse_tcp` never
//! consumes more than it was given; a pool match is a suffix of the name on
//! a label boundary.

#![no_main]

use assay_classify::dns::{self, MAX_KEPT_ANSWERS, MAX_QUESTIONS, Message, PoolDomains};
use libfuzzer_sys::fuzz_target;

fn check_name(name: &str) {
    assert!(name.len() <= 253, "{name:?}");
    assert!(name == "." || !name.ends_with('.'), "{name:?}");
    assert!(!name.bytes().any(|b| b.is_ascii_uppercase()), "{name:?}");
    if let Some(entry) = PoolDomains::builtin().matches(name) {
        assert!(
            name == entry || name.ends_with(&format!(".{entry}")),
            "{name:?} ~ {entry}"
        );
    }
}

fn check(message: &Message) {
    assert!((1..=usize::from(MAX_QUESTIONS)).contains(&message.questions.len()));
    assert!(message.answers.len() <= MAX_KEPT_ANSWERS);
    message.questions.iter().for_each(|q| check_name(&q.name));
    for answer in &message.answers {
        check_name(&answer.name);
        if let dns::RecordData::Cname(target) = &answer.data {
            check_name(target);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = dns::parse(data) {
        check(&message);
    }
    if let Ok((message, used)) = dns::parse_tcp(data) {
        assert!(used <= data.len(), "consumed {used} of {}", data.len());
        check(&message);
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(list) = PoolDomains::parse(&text) {
        for line in text.lines() {
            let _ = list.matches(line.trim());
        }
    }
    let _ = PoolDomains::builtin().matches(&text);
});
