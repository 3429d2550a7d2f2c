//! Local DNS resolvers, so that their work for others is not taken for
//! their own lookups.
//!
//! A process that received a DNS query (systemd-resolved, dnsmasq, CoreDNS)
//! answers for other processes: the names it then asks upstream and the
//! answers it gets are theirs, not its own. Two books:
//! - the names local servers were asked for lately (with every parent name:
//!   a resolver minimising its queries, RFC 9156, asks upstream for
//!   `minexmr.com` before `pool.minexmr.com`), for [`SERVED_NAME_TTL`];
//! - the processes that earned being taken for resolvers: they answered
//!   queries of [`CLIENTS_TO_EARN`] distinct others (processes of other
//!   workloads, or other hosts). Receiving a datagram is not enough: one
//!   query sent to a miner's second socket would otherwise exempt its own
//!   pool lookups for good.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    net::SocketAddr,
    time::Duration,
};

/// How long a name asked of a local DNS server marks its forwarding.
pub const SERVED_NAME_TTL: Duration = Duration::from_secs(10);
/// Names remembered for that, at most.
pub const MAX_SERVED_NAMES: usize = 4096;
/// Local resolvers remembered, at most.
pub const MAX_RESOLVERS: usize = 1024;
/// Distinct clients (other workloads, other hosts) a process must have
/// answered before its lookups are taken for forwarding.
pub const CLIENTS_TO_EARN: usize = 2;
/// Queries remembered per candidate, awaiting their answer.
const OPEN_QUERIES: usize = 32;
/// Candidates (processes that received queries) remembered, at most.
const MAX_CANDIDATES: usize = 1024;
/// Questions and parent labels taken from one query.
const MAX_QUESTIONS: usize = 8;
const MAX_PARENTS: usize = 8;

#[derive(Debug, Default)]
pub struct ResolverBook {
    served_names: HashMap<String, u64>,
    candidates: HashMap<u32, Candidate>,
    resolvers: HashSet<u32>,
}

/// A process that received DNS queries, on its way to being a resolver.
#[derive(Debug, Default)]
struct Candidate {
    /// Queries received, not answered yet: who asked, and the query id.
    open: VecDeque<(SocketAddr, u16)>,
    /// The distinct clients it answered.
    answered: HashSet<String>,
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

    /// `tgid` received query `id` from `client`.
    pub fn query_received_by(&mut self, tgid: u32, client: SocketAddr, id: u16) {
        if self.resolvers.contains(&tgid)
            || (self.candidates.len() >= MAX_CANDIDATES && !self.candidates.contains_key(&tgid))
        {
            return;
        }
        let candidate = self.candidates.entry(tgid).or_default();
        if candidate.open.len() >= OPEN_QUERIES {
            candidate.open.pop_front();
        }
        candidate.open.push_back((client, id));
    }

    /// `tgid` sent response `id` to `client`: true when that answers a query
    /// it received from there (the caller then says who the client is,
    /// [`Self::credit`]).
    pub fn answered(&mut self, tgid: u32, client: SocketAddr, id: u16) -> bool {
        let Some(candidate) = self.candidates.get_mut(&tgid) else {
            return false;
        };
        match candidate.open.iter().position(|&q| q == (client, id)) {
            Some(at) => {
                candidate.open.remove(at);
                true
            }
            None => false,
        }
    }

    /// `tgid` answered `client` (an identity: another workload, another
    /// host). With [`CLIENTS_TO_EARN`] distinct ones it is a resolver.
    pub fn credit(&mut self, tgid: u32, client: String) {
        let Some(candidate) = self.candidates.get_mut(&tgid) else {
            return;
        };
        candidate.answered.insert(client);
        if candidate.answered.len() >= CLIENTS_TO_EARN && self.resolvers.len() < MAX_RESOLVERS {
            self.resolvers.insert(tgid);
            self.candidates.remove(&tgid);
        }
    }

    /// Whether `tgid` earned being taken for a resolver.
    pub fn is_resolver(&self, tgid: u32) -> bool {
        self.resolvers.contains(&tgid)
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
        self.candidates.remove(&tgid);
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

    fn at(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// `tgid` receives query `id` from `port` and answers it, for `client`.
    fn serve(book: &mut ResolverBook, tgid: u32, port: u16, id: u16, client: &str) {
        book.query_received_by(tgid, at(port), id);
        assert!(book.answered(tgid, at(port), id));
        book.credit(tgid, client.into());
    }

    #[test]
    fn receiving_a_query_earns_nothing_answering_distinct_others_does() {
        let mut book = ResolverBook::default();
        // One datagram received on a second socket: not a resolver.
        book.query_received_by(7, at(40000), 1);
        assert!(!book.is_forwarding(7, std::iter::empty()));
        // Answers nobody asked for are not answers.
        assert!(!book.answered(7, at(40001), 1));
        assert!(!book.answered(7, at(40000), 2));
        // Answering the same client again and again: still one client.
        serve(&mut book, 7, 40000, 1, "workload a");
        serve(&mut book, 7, 40002, 3, "workload a");
        assert!(!book.is_resolver(7));
        // A second, distinct one: earned.
        serve(&mut book, 7, 40003, 4, "host 192.0.2.9");
        assert!(book.is_resolver(7));
        assert!(book.is_forwarding(7, std::iter::empty()));
    }

    #[test]
    fn a_resolver_is_forgotten_when_it_exits() {
        let mut book = ResolverBook::default();
        serve(&mut book, 53, 1000, 1, "a");
        serve(&mut book, 53, 1001, 2, "b");
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
            for q in 0..40 {
                book.query_received_by(i, at(q), q);
            }
            book.answered(i, at(39), 39);
            book.credit(i, "a".into());
            book.credit(i, "b".into());
        }
        assert!(book.served_names.len() <= MAX_SERVED_NAMES);
        assert_eq!(book.resolvers(), MAX_RESOLVERS);
        assert!(book.candidates.len() <= MAX_CANDIDATES);
        assert!(
            book.candidates
                .values()
                .all(|c| c.open.len() <= OPEN_QUERIES)
        );
    }
}
