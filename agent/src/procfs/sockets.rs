//! Who owns a socket: for flows the kernel adopted without a connect
//! (accepted by a local server, or opened before the agent started).
//!
//! The kernel's sock_diag netlink interface finds a socket by its
//! addresses and tells its inode and owner uid (`ss` asks it the same way).
//! It answers for the network namespace its netlink socket was opened in:
//! the agent asks in its own first, then, for what is still missing, in
//! each other namespace, entered on a short-lived thread through one of its
//! processes. The inode then leads to the process holding the socket
//! (`/proc/<pid>/fd/* -> socket:[inode]`): one walk of /proc, for the
//! inodes wanted only, that stops once it has found them all. The agent
//! takes one [`Snapshot`] per tick at most, on a worker, only while some
//! flow's samples said something worth attributing and its owner is still
//! unknown.

use std::{
    collections::{HashMap, HashSet},
    fs, io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::PathBuf,
    str::FromStr as _,
};

pub use assay_classify::flow::Role;
use assay_classify::flow::Transport;
use netlink_packet_core::{NLM_F_DUMP, NLM_F_MULTIPART, NetlinkMessage, NetlinkPayload};
use netlink_packet_sock_diag::{
    AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP, SockDiagMessage,
    inet::{InetResponseHeader, SocketId},
};
use procfs::process::FDTarget;

use super::diag::{DiagSocket, inet_request};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOwner {
    pub tgid: u32,
    pub role: Role,
    /// The socket's uid as the kernel keeps it: its creator's (an accepted
    /// connection has its listener's), not necessarily the holder's.
    pub uid: u32,
}

/// One socket, as sock_diag describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    local: SocketAddr,
    remote: SocketAddr,
    state: u8,
    uid: u32,
    inode: u64,
}

const TCP_LISTEN: u8 = netlink_packet_sock_diag::TCP_LISTEN;

/// A flow whose owner is wanted: transport, local and remote address.
pub type Wanted = (Transport, SocketAddr, SocketAddr);

/// Sockets, one list per network namespace, and which process holds each
/// socket inode, read at one moment. Taking one asks the kernel
/// (sock_diag) and walks /proc for the holders: done on a worker, at most
/// once a tick, and only when some flow waits for its owner.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// TCP and UDP sockets, one list per network namespace.
    tcp: Vec<Vec<Row>>,
    udp: Vec<Vec<Row>>,
    /// Socket inode → the first process found holding it.
    holders: HashMap<u64, u32>,
}

impl Snapshot {
    /// Every TCP and UDP socket of every network namespace, and the holder
    /// of each: the whole picture, at the cost of a walk through nearly
    /// every process's fds. [`Self::take_for`] asks for what it needs only.
    pub fn take() -> Self {
        let mut snapshot = Self::default();
        let dump = |diag: &mut Diag| {
            let mut tcp = diag.dump(IPPROTO_TCP, AF_INET);
            tcp.extend(diag.dump(IPPROTO_TCP, AF_INET6));
            let mut udp = diag.dump(IPPROTO_UDP, AF_INET);
            udp.extend(diag.dump(IPPROTO_UDP, AF_INET6));
            (tcp, udp)
        };
        let namespaces = Diag::open().into_iter().chain(
            other_namespaces()
                .into_iter()
                .filter_map(|ns| Diag::open_in(ns).ok()),
        );
        for mut diag in namespaces {
            let (tcp, udp) = dump(&mut diag);
            snapshot.tcp.push(tcp);
            snapshot.udp.push(udp);
        }
        let inodes: HashSet<u64> = snapshot
            .tcp
            .iter()
            .chain(&snapshot.udp)
            .flatten()
            .map(|row| row.inode)
            .filter(|&inode| inode != 0)
            .collect();
        snapshot.holders = holders(&inodes);
        snapshot
    }

    /// The sockets of the `wanted` flows (and, for TCP, the listener on
    /// their local port, which tells a server from a client), looked up by
    /// their addresses in the agent's network namespace, then in each other
    /// one while some are still missing; and the processes holding them.
    pub fn take_for(wanted: &[Wanted]) -> Self {
        let mut snapshot = Self::default();
        let mut missing: Vec<Wanted> = Vec::with_capacity(wanted.len());
        for flow in wanted {
            if !missing.contains(flow) {
                missing.push(*flow);
            }
        }
        if missing.is_empty() {
            return snapshot;
        }
        let mut inodes = HashSet::new();
        if let Ok(mut diag) = Diag::open() {
            snapshot.look_up(&mut diag, &mut missing, &mut inodes);
        }
        if !missing.is_empty() {
            for ns in other_namespaces() {
                let Ok(mut diag) = Diag::open_in(ns) else {
                    continue;
                };
                snapshot.look_up(&mut diag, &mut missing, &mut inodes);
                if missing.is_empty() {
                    break;
                }
            }
        }
        snapshot.holders = holders(&inodes);
        snapshot
    }

    /// Looks up each missing flow in one namespace; a flow found there
    /// with its file (a non-zero inode) is missing no more.
    fn look_up(&mut self, diag: &mut Diag, missing: &mut Vec<Wanted>, inodes: &mut HashSet<u64>) {
        let (mut tcp, mut udp) = (Vec::new(), Vec::new());
        missing.retain(|&(transport, local, remote)| {
            let rows = match transport {
                Transport::Tcp => &mut tcp,
                Transport::Udp => &mut udp,
            };
            rows.extend(diag.lookup(transport, local, remote));
            let Some(inode) = find_row(rows, transport, local, remote)
                .map(|row| row.inode)
                .filter(|&inode| inode != 0)
            else {
                return true;
            };
            inodes.insert(inode);
            if transport == Transport::Tcp && !listens_on(rows, local) {
                let any = SocketAddr::new(unspecified(normalise(local).ip()), 0);
                rows.extend(
                    diag.lookup(Transport::Tcp, local, any)
                        .into_iter()
                        .filter(|row| row.state == TCP_LISTEN),
                );
            }
            false
        });
        if !tcp.is_empty() || !udp.is_empty() {
            self.tcp.push(tcp);
            self.udp.push(udp);
        }
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
            return Some(SocketOwner {
                tgid,
                role,
                uid: row.uid,
            });
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
    Snapshot::take_for(&[(transport, local, remote)]).owner(transport, local, remote)
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
            // Unconnected UDP: the socket has no peer, and may be bound to
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

fn unspecified(like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// A sock_diag netlink socket, in the network namespace it was opened in.
struct Diag(DiagSocket);

/// "Any socket with these addresses", as the kernel's INET_DIAG_NOCOOKIE.
const NO_COOKIE: [u8; 8] = [0xff; 8];

impl Diag {
    /// Opened in the calling thread's network namespace.
    fn open() -> io::Result<Self> {
        DiagSocket::open().map(Self)
    }

    /// Opened in the network namespace `ns` (a `/proc/<pid>/ns/net`).
    fn open_in(ns: PathBuf) -> io::Result<Self> {
        DiagSocket::open_in(&ns).map(Self)
    }

    /// Every socket of one protocol and address family.
    fn dump(&mut self, protocol: u8, family: u8) -> Vec<Row> {
        let socket_id = if family == AF_INET {
            SocketId::new_v4()
        } else {
            SocketId::new_v6()
        };
        self.request(protocol, family, socket_id, NLM_F_DUMP)
    }

    /// The socket with these addresses (for UDP, also an unconnected one
    /// bound to the local port), if any. For TCP the kernel answers with
    /// the listener on the local port when no connection matches.
    fn lookup(&mut self, transport: Transport, local: SocketAddr, remote: SocketAddr) -> Vec<Row> {
        let (local, remote) = (normalise(local), normalise(remote));
        let (family, local_ip, remote_ip) = match (local.ip(), remote.ip()) {
            (IpAddr::V4(l), IpAddr::V4(r)) => (AF_INET, IpAddr::V4(l), IpAddr::V4(r)),
            (l, r) => (AF_INET6, IpAddr::V6(v6(l)), IpAddr::V6(v6(r))),
        };
        let (protocol, source, destination) = match transport {
            Transport::Tcp => (
                IPPROTO_TCP,
                (local_ip, local.port()),
                (remote_ip, remote.port()),
            ),
            // udp_diag looks a socket up as a datagram from `source` to
            // `destination` would be: the other way round from TCP's.
            Transport::Udp => (
                IPPROTO_UDP,
                (remote_ip, remote.port()),
                (local_ip, local.port()),
            ),
        };
        let socket_id = SocketId {
            source_address: source.0,
            source_port: source.1,
            destination_address: destination.0,
            destination_port: destination.1,
            interface_id: 0,
            cookie: NO_COOKIE,
        };
        self.request(protocol, family, socket_id, 0)
    }

    fn request(&mut self, protocol: u8, family: u8, socket_id: SocketId, flags: u16) -> Vec<Row> {
        let request = SockDiagMessage::InetRequest(inet_request(family, protocol, socket_id));
        if self.0.send(flags, request.into()).is_err() {
            return Vec::new();
        }
        let mut rows = Vec::new();
        loop {
            let Ok(size) = self.0.recv() else {
                // A timeout, or the kernel's error: what came is all.
                return rows;
            };
            let Some(size) = Some(size).filter(|&s| s > 0 && s <= self.0.buffer.len()) else {
                return rows;
            };
            if read_replies(&self.0.buffer[..size], self.0.sequence, &mut rows) {
                return rows;
            }
        }
    }
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// Adds the sockets described in one datagram of replies to request
/// `sequence` to `rows`; true when the replies are complete (the end of a
/// dump, the one answer to a lookup, or an error such as "no such socket").
fn read_replies(mut datagram: &[u8], sequence: u32, rows: &mut Vec<Row>) -> bool {
    while !datagram.is_empty() {
        let Ok(message) = NetlinkMessage::<SockDiagMessage>::deserialize(datagram) else {
            return true;
        };
        // Messages are padded to 4 bytes.
        let length = (message.header.length as usize).next_multiple_of(4);
        if length == 0 {
            return true;
        }
        datagram = datagram.get(length..).unwrap_or_default();
        if message.header.sequence_number != sequence {
            // A late answer to an earlier request that timed out.
            continue;
        }
        match message.payload {
            NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) => {
                rows.push(row_of(&response.header));
                if message.header.flags & NLM_F_MULTIPART == 0 {
                    return true;
                }
            }
            NetlinkPayload::Done(_) | NetlinkPayload::Error(_) => return true,
            _ => {}
        }
    }
    false
}

fn row_of(header: &InetResponseHeader) -> Row {
    let id = &header.socket_id;
    Row {
        local: SocketAddr::new(id.source_address, id.source_port),
        remote: SocketAddr::new(id.destination_address, id.destination_port),
        state: header.state,
        uid: header.uid,
        inode: u64::from(header.inode),
    }
}

/// One `/proc/<pid>/ns/net` per network namespace other than the calling
/// thread's.
fn other_namespaces() -> Vec<PathBuf> {
    let own = fs::read_link("/proc/thread-self/ns/net").ok();
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        if !entry.file_name().to_str().is_some_and(is_pid) {
            continue;
        }
        let path = entry.path().join("ns/net");
        let Ok(ns) = fs::read_link(&path) else {
            continue;
        };
        if Some(&ns) != own.as_ref() && seen.insert(ns) {
            found.push(path);
        }
    }
    found
}

fn is_pid(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit())
}

/// Which process holds each of `inodes`: one walk of `/proc/*/fd`, over
/// once all are found.
fn holders(inodes: &HashSet<u64>) -> HashMap<u64, u32> {
    let mut found = HashMap::new();
    if inodes.is_empty() {
        return found;
    }
    let Ok(dir) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .filter(|name| is_pid(name))
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            if let Some(FDTarget::Socket(inode)) =
                target.to_str().and_then(|t| FDTarget::from_str(t).ok())
                && inodes.contains(&inode)
            {
                found.entry(inode).or_insert(pid);
                if found.len() == inodes.len() {
                    return found;
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;

    use super::*;

    fn row(local: &str, remote: &str, state: u8, inode: u64) -> Row {
        Row {
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
            state,
            uid: 0,
            inode,
        }
    }

    /// A listener on 127.0.0.1:3389 and both ends of a connection to it.
    fn tcp_rows() -> Vec<Row> {
        vec![
            row("127.0.0.1:3389", "0.0.0.0:0", TCP_LISTEN, 1111),
            row("127.0.0.1:3389", "127.0.0.1:40000", 1, 2222),
            row("127.0.0.1:40000", "127.0.0.1:3389", 1, 3333),
        ]
    }

    /// One reply of the kernel's, byte for byte: `struct nlmsghdr` then
    /// `struct inet_diag_msg` (linux/inet_diag.h), ports and addresses in
    /// network byte order, the rest in the host's.
    fn inet_diag_msg(family: u8, socket: &Row, flags: u16, sequence: u32) -> Vec<u8> {
        let address = |addr: SocketAddr| -> [u8; 16] {
            let mut bytes = [0u8; 16];
            match addr.ip() {
                IpAddr::V4(v4) => bytes[..4].copy_from_slice(&v4.octets()),
                IpAddr::V6(v6) => bytes = v6.octets(),
            }
            bytes
        };
        let mut msg = Vec::new();
        msg.extend([family, socket.state, 0, 0]);
        msg.extend(socket.local.port().to_be_bytes());
        msg.extend(socket.remote.port().to_be_bytes());
        msg.extend(address(socket.local));
        msg.extend(address(socket.remote));
        msg.extend(0u32.to_ne_bytes()); // interface
        msg.extend([0x11; 8]); // cookie
        msg.extend(0u32.to_ne_bytes()); // expires
        msg.extend(0u32.to_ne_bytes()); // rqueue
        msg.extend(0u32.to_ne_bytes()); // wqueue
        msg.extend(socket.uid.to_ne_bytes());
        msg.extend((socket.inode as u32).to_ne_bytes());
        let mut out = Vec::new();
        out.extend((16 + msg.len() as u32).to_ne_bytes());
        out.extend(20u16.to_ne_bytes()); // SOCK_DIAG_BY_FAMILY
        out.extend(flags.to_ne_bytes());
        out.extend(sequence.to_ne_bytes());
        out.extend(0u32.to_ne_bytes());
        out.extend(msg);
        out
    }

    #[test]
    fn kernel_replies_decode_to_addresses_ports_and_inodes() {
        let multi = NLM_F_MULTIPART;
        let connection = Row {
            uid: 1000,
            ..row("127.0.0.1:3389", "127.0.0.1:40000", 1, 2222)
        };
        let listener = row("[::1]:8080", "[::]:0", TCP_LISTEN, 77);
        let mut datagram = inet_diag_msg(AF_INET, &connection, multi, 7);
        datagram.extend(inet_diag_msg(AF_INET6, &listener, multi, 7));
        // A late reply to an earlier request: not ours.
        let late = row("10.0.0.1:1", "10.0.0.2:2", 1, 99);
        datagram.extend(inet_diag_msg(AF_INET, &late, multi, 6));
        let mut rows = Vec::new();
        // No end of dump yet: more to come.
        assert!(!read_replies(&datagram, 7, &mut rows));
        assert_eq!(rows, [connection, listener]);
        // The one answer to a lookup (no multipart flag) completes it.
        let single = row("127.0.0.1:1", "127.0.0.1:2", 1, 5);
        assert!(read_replies(
            &inet_diag_msg(AF_INET, &single, 0, 8),
            8,
            &mut rows
        ));
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2], single);
        // Garbage ends the replies rather than looping.
        assert!(read_replies(&[1, 2, 3], 8, &mut rows));
        assert_eq!(rows.len(), 3);
    }

    #[test]
    fn the_accepting_side_is_the_server_and_the_connecting_side_the_client() {
        let rows = tcp_rows();
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
    fn owners_come_from_the_rows_and_their_holders() {
        let mut snapshot = Snapshot {
            tcp: vec![tcp_rows()],
            udp: vec![vec![
                row("0.0.0.0:53", "0.0.0.0:0", 7, 4444),
                row("[::ffff:10.0.0.1]:5000", "[::ffff:10.0.0.2]:6000", 1, 5555),
            ]],
            holders: HashMap::from([(2222, 10), (3333, 20), (4444, 30), (5555, 40)]),
        };
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        let server = snapshot.owner(Transport::Tcp, at("127.0.0.1:3389"), at("127.0.0.1:40000"));
        assert_eq!(server.map(|o| (o.tgid, o.role)), Some((10, Role::Server)));
        let client = snapshot.owner(Transport::Tcp, at("127.0.0.1:40000"), at("127.0.0.1:3389"));
        assert_eq!(client.map(|o| (o.tgid, o.role)), Some((20, Role::Client)));
        // Unconnected UDP on the wildcard address; connected UDP on a
        // dual-stack socket, asked for with plain IPv4 addresses.
        let dns = snapshot.owner(Transport::Udp, at("192.168.1.5:53"), at("192.168.1.9:3333"));
        assert_eq!(dns.map(|o| o.tgid), Some(30));
        let mapped = snapshot.owner(Transport::Udp, at("10.0.0.1:5000"), at("10.0.0.2:6000"));
        assert_eq!(mapped.map(|o| o.tgid), Some(40));
        assert_eq!(
            snapshot.owner(Transport::Tcp, at("127.0.0.1:1"), at("127.0.0.1:2")),
            None
        );
        // Still in the accept queue (inode 0): no owner yet.
        snapshot.tcp[0][1].inode = 0;
        assert_eq!(
            snapshot.owner(Transport::Tcp, at("127.0.0.1:3389"), at("127.0.0.1:40000")),
            None
        );
    }

    fn inode_of(fd: &impl std::os::fd::AsFd) -> u64 {
        let fd = fd.as_fd().try_clone_to_owned().unwrap();
        fs::File::from(fd).metadata().unwrap().ino()
    }

    fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
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

    #[test]
    fn a_snapshot_finds_this_very_process_by_its_connection() {
        if !is_root() {
            println!("not root: another namespace may not be entered; skipped");
            return;
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let (local, remote) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
        let me = std::process::id();
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        for snapshot in [
            Snapshot::take(),
            Snapshot::take_for(&[
                (Transport::Tcp, local, remote),
                (Transport::Tcp, remote, local),
            ]),
        ] {
            let client_end = snapshot.owner(Transport::Tcp, local, remote);
            assert_eq!(
                client_end,
                Some(SocketOwner {
                    tgid: me,
                    role: Role::Client,
                    uid
                })
            );
            let server_end = snapshot.owner(Transport::Tcp, remote, local);
            assert_eq!(
                server_end.map(|o| (o.tgid, o.role)),
                Some((me, Role::Server))
            );
            // The very sockets: their inodes are those of our fds.
            let find = |l, r| {
                find_row(&snapshot.tcp[0], Transport::Tcp, l, r)
                    .unwrap()
                    .inode
            };
            assert_eq!(find(local, remote), inode_of(&client));
            assert_eq!(find(remote, local), inode_of(&accepted));
        }
        // As wanted only: the listener, and nothing else of the host.
        let only = Snapshot::take_for(&[(Transport::Tcp, remote, local)]);
        assert_eq!(only.holders.len(), 1);
        assert!(only.tcp.iter().flatten().count() <= 2);
        // A flow that does not exist is not found, and costs no walk.
        let gone: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let none = Snapshot::take_for(&[(Transport::Tcp, gone, remote)]);
        assert_eq!(none.owner(Transport::Tcp, gone, remote), None);
        assert!(none.holders.is_empty());
    }

    /// A child process (`sleep`) in a network namespace of its own,
    /// holding a TCP listener on `0.0.0.0:port` there; killed when dropped.
    struct ListenerElsewhere(std::process::Child);

    impl ListenerElsewhere {
        fn spawn(port: u16) -> io::Result<Self> {
            use std::os::unix::process::CommandExt as _;
            let mut command = std::process::Command::new("sleep");
            command.arg("30");
            // SAFETY: between fork and exec the child only makes system
            // calls, on values of its own: no allocation, no lock.
            unsafe {
                command.pre_exec(move || {
                    let addr = libc::sockaddr_in {
                        sin_family: libc::AF_INET as libc::sa_family_t,
                        sin_port: port.to_be(),
                        sin_addr: libc::in_addr { s_addr: 0 },
                        sin_zero: [0; 8],
                    };
                    if libc::unshare(libc::CLONE_NEWNET) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
                    if fd < 0
                        || libc::bind(
                            fd,
                            (&raw const addr).cast(),
                            size_of::<libc::sockaddr_in>() as libc::socklen_t,
                        ) != 0
                        || libc::listen(fd, 1) != 0
                    {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                })
            };
            command.spawn().map(Self)
        }
    }

    impl Drop for ListenerElsewhere {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn a_listener_in_another_network_namespace_is_found_with_its_process() {
        if !is_root() {
            println!("not root: no network namespace of a test's own; skipped");
            return;
        }
        // A port free here, so that the agent's own namespace has no
        // listener on it.
        let port = std::net::TcpListener::bind("0.0.0.0:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = ListenerElsewhere::spawn(port).unwrap();
        let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
        let remote = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        let expected = Some((child.0.id(), Role::Server));
        let only = Snapshot::take_for(&[(Transport::Tcp, local, remote)]);
        let owner = only.owner(Transport::Tcp, local, remote);
        assert_eq!(owner.map(|o| (o.tgid, o.role)), expected);
        let all = Snapshot::take();
        assert!(all.tcp.len() >= 2, "at least two namespaces");
        let owner = all.owner(Transport::Tcp, local, remote);
        assert_eq!(owner.map(|o| (o.tgid, o.role)), expected);
    }

    #[test]
    fn a_dual_stack_socket_answers_for_ipv4() {
        let Ok(listener) = std::net::TcpListener::bind("[::]:0") else {
            println!("no IPv6 here; skipped");
            return;
        };
        let port = listener.local_addr().unwrap().port();
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        // The flow as the kernel's probes report it: plain IPv4.
        let (local, remote) = (client.peer_addr().unwrap(), client.local_addr().unwrap());
        let snapshot = Snapshot::take_for(&[(Transport::Tcp, local, remote)]);
        let owner = snapshot.owner(Transport::Tcp, local, remote);
        assert_eq!(
            owner.map(|o| (o.tgid, o.role)),
            Some((std::process::id(), Role::Server))
        );
        let row = find_row(&snapshot.tcp[0], Transport::Tcp, local, remote).unwrap();
        assert_eq!(row.inode, inode_of(&accepted));
        // The kernel describes the IPv6 socket with IPv4-mapped addresses.
        assert!(row.local.is_ipv6());
    }

    #[test]
    fn udp_sockets_connected_or_not_are_found() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(server.local_addr().unwrap()).unwrap();
        let (local, remote) = (client.local_addr().unwrap(), server.local_addr().unwrap());
        let snapshot = Snapshot::take_for(&[
            (Transport::Udp, local, remote),
            (Transport::Udp, remote, local),
        ]);
        let me = Some(std::process::id());
        assert_eq!(
            snapshot
                .owner(Transport::Udp, local, remote)
                .map(|o| o.tgid),
            me
        );
        assert_eq!(
            snapshot
                .owner(Transport::Udp, remote, local)
                .map(|o| o.tgid),
            me
        );
        let rows = &snapshot.udp[0];
        let find = |l, r| find_row(rows, Transport::Udp, l, r).unwrap().inode;
        assert_eq!(find(local, remote), inode_of(&client));
        assert_eq!(find(remote, local), inode_of(&server));
    }
}
