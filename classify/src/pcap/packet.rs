//! Decoding link-layer frames down to their TCP or UDP payload.
//!
//! The headers are read by etherparse: Ethernet and its VLAN tags, IPv4,
//! IPv6, TCP, UDP. What is left here is what etherparse does not do, or
//! does otherwise than the kernel's sampler, which a capture must match
//! to classify as the live agent would:
//! - the Linux cooked headers (SLL, SLL2) and the BSD loopback header are
//!   stripped by hand: etherparse has no SLL2 nor loopback, and its SLL
//!   refuses the loopback and tunnel devices that `-i any` captures carry;
//! - lengths are checked against the frame on the wire, not only the bytes
//!   captured: a frame cut by the snapshot length is still followed, its
//!   payload's length on the wire kept;
//! - IPv6 extension headers are not walked (the kernel does not sample
//!   such packets), and neither is an IPv4 authentication header;
//! - the first fragment of a datagram is read (it has the transport
//!   header), the later ones are skipped.

use etherparse::{
    EtherType, Ethernet2Slice, IpNumber, Ipv4HeaderSlice, Ipv6Header, Ipv6HeaderSlice,
    SingleVlanSlice, TcpSlice, UdpSlice,
};

use super::*;

/// A TCP or UDP packet, decoded.
#[derive(Debug, Clone, Copy)]
pub(super) struct Packet<'a> {
    pub(super) transport: Transport,
    pub(super) src: SocketAddr,
    pub(super) dst: SocketAddr,
    pub(super) tcp: Option<TcpFlags>,
    /// Captured payload.
    pub(super) payload: &'a [u8],
    /// Payload length on the wire.
    pub(super) wire_len: u32,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct TcpFlags {
    pub(super) seq: u32,
    pub(super) syn: bool,
    pub(super) ack: bool,
    pub(super) rst: bool,
}

// ---- Decoding packets ---------------------------------------------------

const VLAN_TAGS: [EtherType; 3] = [
    EtherType::VLAN_TAGGED_FRAME,
    EtherType::PROVIDER_BRIDGING,
    EtherType::VLAN_DOUBLE_TAGGED_FRAME,
];

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IpVersion {
    V4,
    V6,
    /// Raw IP: the version nibble says.
    Either,
}

/// Decodes a link-layer frame down to its TCP or UDP payload. `missing`:
/// bytes of the frame on the wire that the capture did not keep.
pub(super) fn decode(linktype: Linktype, frame: &[u8], missing: usize) -> Result<Packet<'_>, Skip> {
    let (version, ip) = network_layer(linktype, frame)?;
    let nibble = ip.first().map(|b| b >> 4);
    match (version, nibble) {
        (IpVersion::V4 | IpVersion::Either, Some(4)) => ipv4(ip, missing),
        (IpVersion::V6 | IpVersion::Either, Some(6)) => ipv6(ip, missing),
        (IpVersion::Either, Some(_)) => Err(Skip::NotIp),
        _ => Err(Skip::MalformedIp),
    }
}

/// The network-layer bytes of a frame and the IP version its link header
/// announces.
fn network_layer(linktype: Linktype, frame: &[u8]) -> Result<(IpVersion, &[u8]), Skip> {
    match linktype {
        Linktype::ETHERNET => {
            let ethernet =
                Ethernet2Slice::from_slice_without_fcs(frame).map_err(|_| Skip::MalformedLink)?;
            let mut payload = ethernet.payload();
            // Up to two VLAN tags (802.1Q, QinQ).
            for _ in 0..2 {
                if !VLAN_TAGS.contains(&payload.ether_type) {
                    break;
                }
                payload = SingleVlanSlice::from_slice(payload.payload)
                    .map_err(|_| Skip::MalformedLink)?
                    .payload();
            }
            by_ethertype(payload.ether_type, payload.payload)
        }
        // Cooked headers: the protocol is an ethertype for every device
        // that carries IP (Ethernet, loopback, tunnels).
        Linktype::LINUX_SLL => {
            let ethertype = be16(frame, 14).ok_or(Skip::MalformedLink)?;
            by_ethertype(EtherType(ethertype), &frame[16..])
        }
        Linktype::LINUX_SLL2 => {
            let ethertype = be16(frame, 0).ok_or(Skip::MalformedLink)?;
            let rest = frame.get(20..).ok_or(Skip::MalformedLink)?;
            by_ethertype(EtherType(ethertype), rest)
        }
        Linktype::RAW => Ok((IpVersion::Either, frame)),
        Linktype::IPV4 => Ok((IpVersion::V4, frame)),
        Linktype::IPV6 => Ok((IpVersion::V6, frame)),
        Linktype::NULL | Linktype::LOOP => {
            let header: [u8; 4] = frame
                .get(..4)
                .and_then(|h| h.try_into().ok())
                .ok_or(Skip::MalformedLink)?;
            // NULL: the capturing host's byte order; LOOP: network order.
            // Address families are small, so the order that gives a small
            // number is the right one.
            let little = u32::from_le_bytes(header);
            let family = if little <= 0xffff {
                little
            } else {
                u32::from_be_bytes(header)
            };
            match family {
                2 => Ok((IpVersion::V4, &frame[4..])),
                // AF_INET6: Linux, NetBSD/OpenBSD, FreeBSD, macOS.
                10 | 24 | 28 | 30 => Ok((IpVersion::V6, &frame[4..])),
                _ => Err(Skip::NotIp),
            }
        }
        other => Err(Skip::LinkType(other.0)),
    }
}

fn by_ethertype(ethertype: EtherType, rest: &[u8]) -> Result<(IpVersion, &[u8]), Skip> {
    match ethertype {
        EtherType::IPV4 => Ok((IpVersion::V4, rest)),
        EtherType::IPV6 => Ok((IpVersion::V6, rest)),
        _ => Err(Skip::NotIp),
    }
}

fn ipv4(ip: &[u8], missing: usize) -> Result<Packet<'_>, Skip> {
    let header = Ipv4HeaderSlice::from_slice(ip).map_err(|_| Skip::MalformedIp)?;
    if header.fragments_offset().value() != 0 {
        return Err(Skip::IpFragment);
    }
    let header_len = header.slice().len();
    let total = usize::from(header.total_len());
    // Segmentation offload: a packet captured before the NIC split it may
    // carry a total length of 0.
    let total = if total == 0 {
        ip.len() + missing
    } else {
        total
    };
    if total < header_len || total > ip.len() + missing {
        return Err(Skip::MalformedIp);
    }
    transport(
        header.protocol(),
        IpAddr::V4(header.source_addr()),
        IpAddr::V4(header.destination_addr()),
        &ip[header_len..total.min(ip.len())],
        total - header_len,
        header.more_fragments(),
    )
}

fn ipv6(ip: &[u8], missing: usize) -> Result<Packet<'_>, Skip> {
    let header = Ipv6HeaderSlice::from_slice(ip).map_err(|_| Skip::MalformedIp)?;
    let available = ip.len() - Ipv6Header::LEN;
    let length = usize::from(header.payload_length());
    // A jumbogram, or offloaded as an IPv4 packet of total length 0.
    let length = if length == 0 {
        available + missing
    } else {
        length
    };
    if length > available + missing {
        return Err(Skip::MalformedIp);
    }
    let next = header.next_header();
    // Hop-by-hop, routing, fragment, ESP, AH, destination options,
    // mobility, HIP, shim6, experimental: the kernel does not walk them.
    if next.is_ipv6_ext_header_value() {
        return Err(Skip::Ipv6Extension);
    }
    transport(
        next,
        IpAddr::V6(header.source_addr()),
        IpAddr::V6(header.destination_addr()),
        &ip[Ipv6Header::LEN..Ipv6Header::LEN + length.min(available)],
        length,
        false,
    )
}

/// `segment`: the captured transport bytes; `wire_len`: their length on
/// the wire; `fragmented`: the first fragment of a fragmented datagram.
fn transport(
    protocol: IpNumber,
    src: IpAddr,
    dst: IpAddr,
    segment: &[u8],
    wire_len: usize,
    fragmented: bool,
) -> Result<Packet<'_>, Skip> {
    match protocol {
        IpNumber::TCP => {
            // Cut short, or a data offset under 5 or beyond the bytes.
            let tcp = TcpSlice::from_slice(segment).map_err(|_| Skip::MalformedTcp)?;
            let header_len = tcp.header_len();
            if header_len > wire_len {
                return Err(Skip::MalformedTcp);
            }
            Ok(Packet {
                transport: Transport::Tcp,
                src: SocketAddr::new(src, tcp.source_port()),
                dst: SocketAddr::new(dst, tcp.destination_port()),
                tcp: Some(TcpFlags {
                    seq: tcp.sequence_number(),
                    syn: tcp.syn(),
                    rst: tcp.rst(),
                    ack: tcp.ack(),
                }),
                payload: tcp.payload(),
                wire_len: u32::try_from(wire_len - header_len).map_err(|_| Skip::MalformedTcp)?,
            })
        }
        IpNumber::UDP => {
            // Lax: the payload up to the length field, or to the end of
            // what was captured, whichever comes first.
            let udp = UdpSlice::from_slice_lax(segment).map_err(|_| Skip::MalformedUdp)?;
            // Length 0: a jumbogram; more than the IP payload: legal only in
            // the first fragment of a datagram.
            let length = match usize::from(udp.length()) {
                0 => wire_len,
                n if n < 8 || (n > wire_len && !fragmented) => return Err(Skip::MalformedUdp),
                n => n,
            };
            Ok(Packet {
                transport: Transport::Udp,
                src: SocketAddr::new(src, udp.source_port()),
                dst: SocketAddr::new(dst, udp.destination_port()),
                tcp: None,
                payload: udp.payload(),
                wire_len: u32::try_from(length - 8).map_err(|_| Skip::MalformedUdp)?,
            })
        }
        _ => Err(Skip::OtherTransport),
    }
}
