//! The sock_diag netlink socket both socket attribution
//! ([`super::sockets`]) and the closing of denied flows
//! (`enforce::destroy`) talk to: opened in a given network namespace,
//! with a reply timeout, numbering its requests so that a late answer to
//! an earlier one can be told apart. What each asks and how it reads the
//! replies stays with it.

use std::{io, os::fd::AsRawFd as _, path::Path, time::Duration};

use netlink_packet_core::{
    NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable,
};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_sys::{Socket, protocols::NETLINK_SOCK_DIAG};

/// The kernel answers at once; this only bounds a reply that never comes.
const REPLY_TIMEOUT: Duration = Duration::from_secs(1);
/// A dump comes in batches of at most 32 KiB, whatever the reader's buffer.
const RECEIVE_BUFFER: usize = 64 << 10;

/// A sock_diag netlink socket, in the network namespace it was opened in.
pub(crate) struct DiagSocket {
    socket: Socket,
    /// The number of the last request sent; its replies carry it.
    pub(crate) sequence: u32,
    /// Where [`Self::recv`] puts a datagram.
    pub(crate) buffer: Vec<u8>,
}

impl DiagSocket {
    /// Opened in the calling thread's network namespace.
    pub(crate) fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
        socket.bind_auto()?;
        let timeout = libc::timeval {
            tv_sec: REPLY_TIMEOUT.as_secs() as libc::time_t,
            tv_usec: 0,
        };
        // SAFETY: sets an option of our own socket from a timeval that
        // lives across the call, with its size.
        let set = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const timeout).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if set != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            socket,
            sequence: 0,
            buffer: vec![0; RECEIVE_BUFFER],
        })
    }

    /// Opened in the network namespace `ns` (a `/proc/<pid>/ns/net`): a
    /// thread of its own enters it, opens the socket (which stays in that
    /// namespace) and ends, so that no other thread of the agent ever
    /// changes namespace.
    pub(crate) fn open_in(ns: &Path) -> io::Result<Self> {
        let ns = std::fs::File::open(ns)?;
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    // SAFETY: setns changes the namespace of this thread
                    // only, which ends after opening the socket; `ns` is an
                    // open namespace file.
                    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Self::open()
                })
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))
        })
    }

    /// Sends `payload` as a new request (`NLM_F_REQUEST` and `flags`),
    /// numbered [`Self::sequence`].
    pub(crate) fn send<T: NetlinkSerializable>(
        &mut self,
        flags: u16,
        payload: NetlinkPayload<T>,
    ) -> io::Result<()> {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.sequence;
        let mut message = NetlinkMessage::new(header, payload);
        message.finalize();
        let mut request = vec![0; message.buffer_len()];
        message.serialize(&mut request);
        self.socket.send(&request, 0)?;
        Ok(())
    }

    /// Receives one datagram into [`Self::buffer`]: its size.
    pub(crate) fn recv(&mut self) -> io::Result<usize> {
        self.socket.recv(&mut &mut self.buffer[..], 0)
    }
}

/// A request about the sockets of one protocol and address family, in
/// every state, that `socket_id` matches.
pub(crate) fn inet_request(family: u8, protocol: u8, socket_id: SocketId) -> InetRequest {
    InetRequest {
        family,
        protocol,
        extensions: ExtensionFlags::empty(),
        states: StateFlags::all(),
        socket_id,
    }
}
