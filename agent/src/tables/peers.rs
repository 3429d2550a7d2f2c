//! The peers each process holds: what gossip fan-out is counted from.
//!
//! Two books, both per process and bounded:
//! - libp2p peers: every distinct remote a process opened a libp2p
//!   multistream with;
//! - random-binary peers: remotes of long-lived flows whose openings were
//!   random-looking binary both ways (encrypted p2p transports), each with
//!   the flow that reached it. A peer counts only while its flow is still
//!   in the flow table: fan-out means peers held at the same time, not a
//!   history of sequential connections.

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
};

/// Distinct peers remembered per process.
pub const MAX_PEERS_PER_PROCESS: usize = 256;

#[derive(Debug, Default)]
pub struct PeerBook {
    libp2p: HashMap<u32, HashSet<SocketAddr>>,
    binary: HashMap<u32, HashMap<SocketAddr, u64>>,
}

impl PeerBook {
    /// One more libp2p peer of `tgid`.
    pub fn add_libp2p(&mut self, tgid: u32, remote: SocketAddr) {
        let peers = self.libp2p.entry(tgid).or_default();
        if peers.len() < MAX_PEERS_PER_PROCESS {
            peers.insert(remote);
        }
    }

    /// The libp2p peers of `tgid` (empty when none).
    pub fn libp2p(&self, tgid: u32) -> &HashSet<SocketAddr> {
        static NONE: std::sync::OnceLock<HashSet<SocketAddr>> = std::sync::OnceLock::new();
        self.libp2p
            .get(&tgid)
            .unwrap_or_else(|| NONE.get_or_init(HashSet::new))
    }

    /// Adds `remote`, reached by the flow `key`, to the random-binary peers
    /// of `tgid`, after dropping those whose flows `alive` no longer knows.
    /// Returns how many distinct peers `tgid` now holds when this one is
    /// new, `None` when it was already known or the book is full.
    pub fn add_binary(
        &mut self,
        tgid: u32,
        remote: SocketAddr,
        key: u64,
        alive: impl Fn(u64) -> bool,
    ) -> Option<usize> {
        let peers = self.binary.entry(tgid).or_default();
        peers.retain(|_, held| alive(*held));
        if peers.len() >= MAX_PEERS_PER_PROCESS || peers.contains_key(&remote) {
            return None;
        }
        peers.insert(remote, key);
        Some(peers.len())
    }

    pub fn forget(&mut self, tgid: u32) {
        self.libp2p.remove(&tgid);
        self.binary.remove(&tgid);
    }

    /// Processes with any peer (for the cleanup check).
    pub fn processes(&self) -> usize {
        self.libp2p.len() + self.binary.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    #[test]
    fn binary_fan_out_counts_peers_held_at_once_not_a_history() {
        let mut book = PeerBook::default();
        let mut live = HashSet::from([1u64]);
        assert_eq!(
            book.add_binary(7, addr(1), 1, |k| live.contains(&k)),
            Some(1)
        );
        // The same peer again is no news.
        assert_eq!(book.add_binary(7, addr(1), 1, |k| live.contains(&k)), None);
        // The first flow closed before the second opened: still one peer.
        live = HashSet::from([2]);
        assert_eq!(
            book.add_binary(7, addr(2), 2, |k| live.contains(&k)),
            Some(1)
        );
        live.insert(3);
        assert_eq!(
            book.add_binary(7, addr(3), 3, |k| live.contains(&k)),
            Some(2)
        );
    }

    #[test]
    fn a_process_peers_are_bounded_and_forgotten_with_it() {
        let mut book = PeerBook::default();
        for port in 0..1000 {
            book.add_libp2p(9, addr(port));
            let _ = book.add_binary(9, addr(port), u64::from(port), |_| true);
        }
        assert_eq!(book.libp2p(9).len(), MAX_PEERS_PER_PROCESS);
        assert!(book.libp2p(8).is_empty());
        book.forget(9);
        assert_eq!(book.processes(), 0);
    }
}
