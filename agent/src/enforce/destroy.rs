//! Closes flows already open when deny-egress starts: a connected miner
//! is not stopped by a refused *new* connect. The kernel's sock_diag
//! netlink interface lists the TCP and UDP sockets (each with the id of
//! the cgroup that created it, `INET_DIAG_CGROUP_ID`, Linux 5.7) and
//! closes one on request (`SOCK_DESTROY`, `CONFIG_INET_DIAG_DESTROY`):
//! the owner's next read or write fails with ECONNABORTED. Only sockets of
//! the denied cgroups whose peer is a denied endpoint are closed; a
//! listener never is.
//!
//! A socket is listed in the network namespace it lives in: the agent
//! asks in its own, then in each other namespace the workload's processes
//! are in (a container's), entered on a short-lived thread of its own so
//! that no other thread of the agent ever changes namespace.

use std::{
    io,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_MULTIPART, NetlinkMessage, NetlinkPayload, Nla as _,
};
use netlink_packet_sock_diag::{
    AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP, SockDiagDestroy, SockDiagMessage, TCP_LISTEN,
    inet::{SocketId, nlas::Nla},
};

use super::deny::Endpoint;
use crate::procfs::diag::{DiagSocket, inet_request};

/// `INET_DIAG_CGROUP_ID` (linux/inet_diag.h): the socket's cgroup v2 id.
const INET_DIAG_CGROUP_ID: u16 = 21;

/// One socket the dump listed.
#[derive(Debug, Clone)]
struct Found {
    protocol: u8,
    family: u8,
    id: SocketId,
    state: u8,
    cgroup_id: Option<u64>,
}

/// Closes every socket of `cgroup_ids` whose peer is one of `endpoints`,
/// in the agent's network namespace and in each of `namespaces` (`/proc/
/// <pid>/ns/net` files): how many were closed, or why it could not be done.
pub fn close_flows(
    cgroup_ids: &[u64],
    endpoints: &[Endpoint],
    namespaces: &[PathBuf],
) -> Result<usize, String> {
    let mut closed = close_in(
        Diag::open().map_err(|e| format!("cannot open sock_diag: {e}"))?,
        cgroup_ids,
        endpoints,
    )?;
    for ns in namespaces {
        let diag = Diag::open_in(ns)
            .map_err(|e| format!("cannot open sock_diag in {}: {e}", ns.display()))?;
        closed += close_in(diag, cgroup_ids, endpoints)?;
    }
    Ok(closed)
}

/// The network namespaces (`/proc/<pid>/ns/net`, one per namespace) of
/// `pids` other than the agent's own.
pub fn other_namespaces(pids: impl Iterator<Item = u32>) -> Vec<PathBuf> {
    let own = std::fs::read_link("/proc/thread-self/ns/net").ok();
    let mut seen = std::collections::HashSet::new();
    pids.filter_map(|pid| {
        let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
        let ns = std::fs::read_link(&path).ok()?;
        (Some(&ns) != own.as_ref() && seen.insert(ns)).then_some(path)
    })
    .collect()
}

fn close_in(mut diag: Diag, cgroup_ids: &[u64], endpoints: &[Endpoint]) -> Result<usize, String> {
    let mut found = Vec::new();
    for protocol in [IPPROTO_TCP, IPPROTO_UDP] {
        for family in [AF_INET, AF_INET6] {
            found.extend(
                diag.dump(protocol, family)
                    .map_err(|e| format!("sock_diag dump failed: {e}"))?,
            );
        }
    }
    let mut closed = 0;
    let mut errors = Vec::new();
    for socket in &found {
        let remote = SocketAddr::new(socket.id.destination_address, socket.id.destination_port);
        if socket.protocol == IPPROTO_TCP && socket.state == TCP_LISTEN
            || socket.id.destination_port == 0
            || !endpoints.iter().any(|e| e.matches(remote))
        {
            continue;
        }
        match socket.cgroup_id {
            Some(id) if cgroup_ids.contains(&id) => {}
            Some(_) => continue,
            None => {
                errors.push(format!(
                    "the kernel does not say which cgroup the socket to {remote} is in"
                ));
                continue;
            }
        }
        match diag.destroy(socket) {
            Ok(()) => closed += 1,
            // Closed meanwhile: nothing left to do.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                return Err(format!(
                    "SOCK_DESTROY is not supported here (CONFIG_INET_DIAG_DESTROY): {e}"
                ));
            }
            Err(e) => errors.push(format!("SOCK_DESTROY of the flow to {remote}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(closed)
    } else {
        Err(errors.join("; "))
    }
}

/// Whether this kernel closes sockets on request: a `SOCK_DESTROY` for a
/// socket that does not exist answers ENOENT where it does, EOPNOTSUPP
/// where it was built without `CONFIG_INET_DIAG_DESTROY`.
pub fn supported() -> Result<(), String> {
    let mut diag = Diag::open().map_err(|e| format!("cannot open sock_diag: {e}"))?;
    let none = Found {
        protocol: IPPROTO_TCP,
        family: AF_INET,
        id: SocketId {
            cookie: [0xff; 8],
            ..SocketId::new_v4()
        },
        state: 0,
        cgroup_id: None,
    };
    match diag.destroy(&none) {
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Err(
            "the kernel was built without CONFIG_INET_DIAG_DESTROY: open flows are not closed"
                .into(),
        ),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            Err("SOCK_DESTROY needs CAP_NET_ADMIN".into())
        }
        _ => Ok(()),
    }
}

/// A sock_diag netlink socket, in the network namespace it was opened in.
struct Diag(DiagSocket);

impl Diag {
    fn open() -> io::Result<Self> {
        DiagSocket::open().map(Self)
    }

    /// Opened in the network namespace `ns`.
    fn open_in(ns: &Path) -> io::Result<Self> {
        DiagSocket::open_in(ns).map(Self)
    }

    fn dump(&mut self, protocol: u8, family: u8) -> io::Result<Vec<Found>> {
        let socket_id = if family == AF_INET {
            SocketId::new_v4()
        } else {
            SocketId::new_v6()
        };
        let request = SockDiagMessage::InetRequest(inet_request(family, protocol, socket_id));
        self.0.send(NLM_F_DUMP, request.into())?;
        let mut found = Vec::new();
        loop {
            let size = self.0.recv()?;
            if size == 0 || size > self.0.buffer.len() {
                return Ok(found);
            }
            let mut datagram = &self.0.buffer[..size];
            while !datagram.is_empty() {
                let Ok(message) = NetlinkMessage::<SockDiagMessage>::deserialize(datagram) else {
                    return Ok(found);
                };
                let length = (message.header.length as usize).next_multiple_of(4);
                if length == 0 {
                    return Ok(found);
                }
                datagram = datagram.get(length..).unwrap_or_default();
                if message.header.sequence_number != self.0.sequence {
                    continue;
                }
                match message.payload {
                    NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) => {
                        let cgroup_id = response.nlas.iter().find_map(|nla| match nla {
                            Nla::Other(other)
                                if other.kind() == INET_DIAG_CGROUP_ID
                                    && other.value_len() == 8 =>
                            {
                                let mut id = [0u8; 8];
                                other.emit_value(&mut id);
                                Some(u64::from_ne_bytes(id))
                            }
                            _ => None,
                        });
                        found.push(Found {
                            protocol,
                            family,
                            id: response.header.socket_id.clone(),
                            state: response.header.state,
                            cgroup_id,
                        });
                        if message.header.flags & NLM_F_MULTIPART == 0 {
                            return Ok(found);
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(found),
                    NetlinkPayload::Error(err) => {
                        return Err(err.to_io());
                    }
                    _ => {}
                }
            }
        }
    }

    fn destroy(&mut self, socket: &Found) -> io::Result<()> {
        let request = SockDiagDestroy::new(SockDiagMessage::InetRequest(inet_request(
            socket.family,
            socket.protocol,
            socket.id.clone(),
        )));
        self.0.send(NLM_F_ACK, request.into())?;
        loop {
            let size = self.0.recv()?;
            let datagram = &self.0.buffer[..size.min(self.0.buffer.len())];
            let message = NetlinkMessage::<SockDiagMessage>::deserialize(datagram)
                .map_err(|e| io::Error::other(e.to_string()))?;
            if message.header.sequence_number != self.0.sequence {
                continue;
            }
            return match message.payload {
                NetlinkPayload::Error(err) => match err.code {
                    None => Ok(()),
                    Some(_) => Err(err.to_io()),
                },
                _ => Ok(()),
            };
        }
    }
}
