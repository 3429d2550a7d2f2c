//! Local DNS resolvers, so that their work for others is not taken for
//! their own lookups.
//!
//! A process that received a DNS query (systemd-resolved, dnsmasq, CoreDNS)
//! answers for other processes: the names it then asks upstream and the
//! answers it gets are theirs, not its own. Two books:
//! - the names local servers were asked for lately (with every parent name:
//!   a resolver minimising its queries, RFC 9156, asks upstream for
//!   `minexmr.com` before `pool.minexmr.com`), for [`SERVED_NAME_TTL`];
//! - the processes that received queries.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

/// How long a name asked of a local DNS server marks its forwarding.
pub const SERVED_NAME_TTL: Duration = Duration::from_secs(10);
/// Names remembered for that, at most.
pub const MAX_SERVED_NAMES: usize = 4096;
/// Local resolvers remembered, at most.
pub const MAX_RESOLVERS: usize = 1024;
/// Questions and parent labels taken from one query.
const MAX_QUESTIONS: usize = 8;
const MAX_PARENTS: usize = 8;

#[derive(Debug, Default)]
pub struct ResolverBook {
    served_names: HashMap<String, u64>,
    resolvers: HashSet<u32>,
}

impl ResolverBook {
    /// A query a local server received at `now_ns`: if the same names leave
    /// the host next, that is the server forwarding them.
    pub fn query_received<'a>(&mut self, names: impl IntoIterator<Item = &'a str>, now_ns: u64) {
        for question in names.into_iter().take(MAX_QUESTIONS) {
            let mut name = question;
            for _ in 0..MAX_PARENTS {
                if self.served_names.len() >= MAX_SERVED_NAMES {
                    return;
                }
                self.served_names.insert(name.to_owned(), now_ns);
                match name.split_once('.') {
                    Some((_, parent)) if !parent.is_empty() => name = parent,
                    _ => break,
                }
            }
        }
    }

    /// `tgid` received a DNS query: it resolves for others.
    pub fn add_resolver(&mut self, tgid: u32) {
        if self.resolvers.len() < MAX_RESOLVERS {
            self.resolvers.insert(tgid);
        }
    }

    /// Whether a lookup of `names` by `tgid` is a resolver's forwarding.
    pub fn is_forwarding<'a>(&self, tgid: u32, mut names: impl Iterator<Item = &'a str>) -> bool {
        self.resolvers.contains(&tgid) || names.any(|name| self.served_names.contains_key(name))
    }

    /// Forgets served names older than [`SERVED_NAME_TTL`].
    pub fn expire(&mut self, now_ns: u64) {
        let ttl = SERVED_NAME_TTL.as_nanos() as u64;
        self.served_names
            .retain(|_, at| now_ns.saturating_sub(*at) < ttl);
    }

    pub fn forget(&mut self, tgid: u32) {
        self.resolvers.remove(&tgid);
    }

    pub fn resolvers(&self) -> usize {
        self.resolvers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_name_a_local_server_was_asked_marks_its_forwarding_and_parents_for_a_while() {
        let mut book = ResolverBook::default();
        book.query_received(["pool.minexmr.com"], 0);
        assert!(book.is_forwarding(5, ["minexmr.com"].into_iter()));
        assert!(book.is_forwarding(5, ["pool.minexmr.com"].into_iter()));
        assert!(!book.is_forwarding(5, ["example.org"].into_iter()));
        book.expire(11 * S);
        assert!(!book.is_forwarding(5, ["pool.minexmr.com"].into_iter()));
    }

    #[test]
    fn a_resolver_is_forgotten_when_it_exits() {
        let mut book = ResolverBook::default();
        book.add_resolver(53);
        assert!(book.is_forwarding(53, std::iter::empty()));
        book.forget(53);
        assert!(!book.is_forwarding(53, std::iter::empty()));
        assert_eq!(book.resolvers(), 0);
    }

    #[test]
    fn the_books_are_bounded() {
        let mut book = ResolverBook::default();
        for i in 0..10_000 {
            book.query_received([format!("n{i}.example").as_str()], 0);
            book.add_resolver(i);
        }
        assert!(book.served_names.len() <= MAX_SERVED_NAMES);
        assert_eq!(book.resolvers(), MAX_RESOLVERS);
    }
}
