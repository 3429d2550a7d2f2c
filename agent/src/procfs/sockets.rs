//! Who owns a socket, found from procfs: for flows the kernel adopted
//! without a connect record (accepted by a local server, or opened before
//! the agent started).
//!
//! The socket tables (`/proc/<pid>/net/{tcp,tcp6,udp,udp6}`) are per network
//! namespace, so each namespace is read once through one of its processes;
//! the socket's inode then leads to the process holding it
//! (`/proc/<pid>/fd/* -> socket:[inode]`). This walks /proc: the agent takes
//! one [`Snapshot`] per tick at most, only while some flow's samples said
//! something worth attributing and its owner is still unknown.

use std::{
    collections::HashMap,
    fs,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::Path,
};

pub use assay_classify::flow::Role;
use assay_classify::flow::Transport;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOwner {
    pub tgid: u32,
    pub role: Role,
}

/// One row of a procfs socket table.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    local: SocketAddr,
    remote: SocketAddr,
    state: u8,
    inode: u64,
}

const TCP_LISTEN: u8 = 0x0a;

/// The socket tables of every network namespace and which process holds
/// each socket inode, read at one moment. Taking one walks /proc (every
/// process's `ns/net` and `fd/*`): done at most once a tick, and only when
/// some flow waits for its owner.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// TCP and UDP rows, one list per network namespace.
    tcp: Vec<Vec<Row>>,
    udp: Vec<Vec<Row>>,
    /// Socket inode → the first process found holding it.
    holders: HashMap<u64, u32>,
}

impl Snapshot {
    pub fn take() -> Self {
        Self::take_in(Path::new("/proc"))
    }

    fn take_in(proc: &Path) -> Self {
        let mut snapshot = Self::default();
        let mut namespaces: Vec<String> = Vec::new();
        let Ok(dir) = fs::read_dir(proc) else {
            return snapshot;
        };
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let base = entry.path();
            if let Ok(ns) = fs::read_link(base.join("ns/net")) {
                let ns = ns.to_string_lossy().into_owned();
                if !namespaces.contains(&ns) {
                    let read = |tables: [&str; 2]| -> Vec<Row> {
                        tables
                            .iter()
                            .filter_map(|t| fs::read_to_string(base.join("net").join(t)).ok())
                            .flat_map(|text| parse_table(&text))
                            .collect()
                    };
                    snapshot.tcp.push(read(["tcp", "tcp6"]));
                    snapshot.udp.push(read(["udp", "udp6"]));
                    namespaces.push(ns);
                }
            }
            let Ok(fds) = fs::read_dir(base.join("fd")) else {
                continue;
            };
            for fd in fds.flatten() {
                let Ok(target) = fs::read_link(fd.path()) else {
                    continue;
                };
                if let Some(inode) = target
                    .to_str()
                    .and_then(|t| t.strip_prefix("socket:["))
                    .and_then(|t| t.strip_suffix(']'))
                    .and_then(|t| t.parse::<u64>().ok())
                {
                    snapshot.holders.entry(inode).or_insert(pid);
                }
            }
        }
        snapshot
    }

    /// The process holding the socket `local` ↔ `remote`, and which end
    /// it is.
    pub fn owner(
        &self,
        transport: Transport,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Option<SocketOwner> {
        let namespaces = match transport {
            Transport::Tcp => &self.tcp,
            Transport::Udp => &self.udp,
        };
        for rows in namespaces {
            let Some(row) = find_row(rows, transport, local, remote) else {
                continue;
            };
            // Inode 0: still in its listener's accept queue, no file yet.
            let Some(&tgid) = self.holders.get(&row.inode).filter(|_| row.inode != 0) else {
                continue;
            };
            let role = if transport == Transport::Tcp && listens_on(rows, local) {
                Role::Server
            } else {
                Role::Client
            };
            return Some(SocketOwner { tgid, role });
        }
        None
    }
}

/// Finds the process holding the socket `local` ↔ `remote` (one snapshot).
pub fn find_owner(
    transport: Transport,
    local: SocketAddr,
    remote: SocketAddr,
) -> Option<SocketOwner> {
    Snapshot::take().owner(transport, local, remote)
}

fn find_row(
    rows: &[Row],
    transport: Transport,
    local: SocketAddr,
    remote: SocketAddr,
) -> Option<&Row> {
    let same = |a: SocketAddr, b: SocketAddr| normalise(a) == normalise(b);
    rows.iter()
        .find(|r| same(r.local, local) && same(r.remote, remote))
        .or_else(|| {
            // Unconnected UDP: the table has no peer, and may be bound to
            // the wildcard address.
            (transport == Transport::Udp).then(|| {
                rows.iter().find(|r| {
                    r.remote.port() == 0
                        && r.local.port() == local.port()
                        && (r.local.ip().is_unspecified() || same(r.local, local))
                })
            })?
        })
}

fn listens_on(rows: &[Row], local: SocketAddr) -> bool {
    rows.iter().any(|r| {
        r.state == TCP_LISTEN
            && r.local.port() == local.port()
            && (r.local.ip().is_unspecified() || normalise(r.local).ip() == normalise(local).ip())
    })
}

/// IPv4-mapped IPv6 addresses compare as IPv4.
fn normalise(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

/// Parses a `/proc/net/{tcp,udp}{,6}` table; malformed rows are skipped.
fn parse_table(text: &str) -> Vec<Row> {
    text.lines().skip(1).filter_map(parse_row).collect()
}

fn parse_row(line: &str) -> Option<Row> {
    let mut fields = line.split_whitespace();
    let _slot = fields.next()?;
    let local = parse_endpoint(fields.next()?)?;
    let remote = parse_endpoint(fields.next()?)?;
    let state = u8::from_str_radix(fields.next()?, 16).ok()?;
    // tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    let inode = fields.nth(5)?.parse().ok()?;
    Some(Row {
        local,
        remote,
        state,
        inode,
    })
}

/// `0100007F:0D3D` or a 32-hex-digit IPv6 address: each 32-bit word in host
/// (little-endian) byte order, the port in plain hex.
fn parse_endpoint(text: &str) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..addr.len() / 8)
        .map(|i| {
            addr.get(i * 8..i * 8 + 8)
                .and_then(|w| u32::from_str_radix(w, 16).ok())
        })
        .collect::<Option<_>>()?;
    let ip = match (addr.len(), words.as_slice()) {
        (8, [w]) => IpAddr::V4(Ipv4Addr::from(w.to_le_bytes())),
        (32, [a, b, c, d]) => {
            let mut bytes = [0u8; 16];
            for (i, w) in [a, b, c, d].into_iter().enumerate() {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0D3D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0D3D 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2222 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:9C40 0100007F:0D3D 01 00000000:00000000 00:00000000 00000000     0        0 3333 1 0000000000000000 20 4 30 10 -1
   3: garbage
";

    #[test]
    fn rows_parse_with_little_endian_words() {
        let rows = parse_table(TCP);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].local, "127.0.0.1:3389".parse().unwrap());
        assert_eq!(rows[1].remote, "127.0.0.1:40000".parse().unwrap());
        assert_eq!(rows[1].inode, 2222);
        assert_eq!(rows[0].state, TCP_LISTEN);
    }

    #[test]
    fn ipv6_rows_parse() {
        let row = parse_row("   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1").unwrap();
        assert_eq!(row.local, "[::1]:8080".parse().unwrap());
        assert_eq!(row.inode, 77);
    }

    #[test]
    fn the_accepting_side_is_the_server_and_the_connecting_side_the_client() {
        let rows = parse_table(TCP);
        let server_local: SocketAddr = "127.0.0.1:3389".parse().unwrap();
        let client_local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let server = find_row(&rows, Transport::Tcp, server_local, client_local).unwrap();
        assert_eq!(server.inode, 2222);
        assert!(listens_on(&rows, server_local));
        let client = find_row(&rows, Transport::Tcp, client_local, server_local).unwrap();
        assert_eq!(client.inode, 3333);
        assert!(!listens_on(&rows, client_local));
    }

    #[test]
    fn the_own_process_socket_is_found_in_real_procfs() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_accepted, _) = listener.accept().unwrap();
        let owner = find_owner(
            Transport::Tcp,
            client.local_addr().unwrap(),
            client.peer_addr().unwrap(),
        )
        .unwrap();
        assert_eq!(owner.tgid, std::process::id());
        assert_eq!(owner.role, Role::Client);
        let server = find_owner(
            Transport::Tcp,
            client.peer_addr().unwrap(),
            client.local_addr().unwrap(),
        )
        .unwrap();
        assert_eq!(server.role, Role::Server);
    }
}
