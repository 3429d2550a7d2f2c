//! Who owns a socket, found from procfs: for flows the kernel adopted
//! without a connect record (accepted by a local server, or opened before
//! the agent started).
//!
//! The socket tables (`/proc/<pid>/net/{tcp,tcp6,udp,udp6}`) are per network
//! namespace, so each namespace is read once through one of its processes;
//! the socket's inode then leads to the process holding it
//! (`/proc/<pid>/fd/* -> socket:[inode]`). This walks /proc and is done only
//! when a flow's samples say something worth attributing.

use std::{
    collections::HashSet,
    fs,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::Path,
};

pub use crate::flows::Role;
use crate::flows::Transport;

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

/// Finds the process holding the socket `local` ↔ `remote`.
pub fn find_owner(
    transport: Transport,
    local: SocketAddr,
    remote: SocketAddr,
) -> Option<SocketOwner> {
    find_owner_in(Path::new("/proc"), transport, local, remote)
}

fn find_owner_in(
    proc: &Path,
    transport: Transport,
    local: SocketAddr,
    remote: SocketAddr,
) -> Option<SocketOwner> {
    let tables: &[&str] = match transport {
        Transport::Tcp => &["tcp", "tcp6"],
        Transport::Udp => &["udp", "udp6"],
    };
    for (ns_pid, members) in namespaces(proc) {
        let rows: Vec<Row> = tables
            .iter()
            .filter_map(|t| {
                fs::read_to_string(proc.join(ns_pid.to_string()).join("net").join(t)).ok()
            })
            .flat_map(|text| parse_table(&text))
            .collect();
        let Some(row) = find_row(&rows, transport, local, remote) else {
            continue;
        };
        if row.inode == 0 {
            continue;
        }
        let role = if transport == Transport::Tcp && listens_on(&rows, local) {
            Role::Server
        } else {
            Role::Client
        };
        let tgid = holder_of(proc, &members, row.inode)?;
        return Some(SocketOwner { tgid, role });
    }
    None
}

/// Processes grouped by network namespace: one representative pid and all
/// members of each.
fn namespaces(proc: &Path) -> Vec<(u32, Vec<u32>)> {
    let mut seen: Vec<(String, u32, Vec<u32>)> = Vec::new();
    let Ok(dir) = fs::read_dir(proc) else {
        return Vec::new();
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(ns) = fs::read_link(entry.path().join("ns/net")) else {
            continue;
        };
        let ns = ns.to_string_lossy().into_owned();
        match seen.iter_mut().find(|(n, _, _)| *n == ns) {
            Some((_, _, members)) => members.push(pid),
            None => seen.push((ns, pid, vec![pid])),
        }
    }
    seen.into_iter()
        .map(|(_, rep, members)| (rep, members))
        .collect()
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

fn holder_of(proc: &Path, pids: &[u32], inode: u64) -> Option<u32> {
    let wanted = format!("socket:[{inode}]");
    let mut checked = HashSet::new();
    pids.iter().copied().find(|pid| {
        checked.insert(*pid)
            && fs::read_dir(proc.join(pid.to_string()).join("fd"))
                .into_iter()
                .flatten()
                .flatten()
                .any(|fd| fs::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == wanted.as_str()))
    })
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
