//! Decoding link-layer frames down to their TCP or UDP payload.

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

pub(super) const ETHERTYPE_IPV4: u16 = 0x0800;
pub(super) const ETHERTYPE_IPV6: u16 = 0x86dd;
pub(super) const ETHERTYPE_VLAN: [u16; 3] = [0x8100, 0x88a8, 0x9100];

pub(super) fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

pub(super) fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IpVersion {
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
pub(super) fn network_layer(linktype: Linktype, frame: &[u8]) -> Result<(IpVersion, &[u8]), Skip> {
    match linktype {
        Linktype::ETHERNET => {
            let mut at = 12;
            let mut ethertype = be16(frame, at).ok_or(Skip::MalformedLink)?;
            // Up to two VLAN tags (802.1Q, QinQ).
            for _ in 0..2 {
                if !ETHERTYPE_VLAN.contains(&ethertype) {
                    break;
                }
                at += 4;
                ethertype = be16(frame, at).ok_or(Skip::MalformedLink)?;
            }
            by_ethertype(ethertype, &frame[at + 2..])
        }
        Linktype::LINUX_SLL => {
            let ethertype = be16(frame, 14).ok_or(Skip::MalformedLink)?;
            by_ethertype(ethertype, &frame[16..])
        }
        Linktype::LINUX_SLL2 => {
            let ethertype = be16(frame, 0).ok_or(Skip::MalformedLink)?;
            let rest = frame.get(20..).ok_or(Skip::MalformedLink)?;
            by_ethertype(ethertype, rest)
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

pub(super) fn by_ethertype(ethertype: u16, rest: &[u8]) -> Result<(IpVersion, &[u8]), Skip> {
    match ethertype {
        ETHERTYPE_IPV4 => Ok((IpVersion::V4, rest)),
        ETHERTYPE_IPV6 => Ok((IpVersion::V6, rest)),
        _ => Err(Skip::NotIp),
    }
}

pub(super) fn ipv4(ip: &[u8], missing: usize) -> Result<Packet<'_>, Skip> {
    if ip.len() < 20 {
        return Err(Skip::MalformedIp);
    }
    let header_len = usize::from(ip[0] & 0x0f) * 4;
    if header_len < 20 || header_len > ip.len() {
        return Err(Skip::MalformedIp);
    }
    let total = usize::from(be16(ip, 2).ok_or(Skip::MalformedIp)?);
    let fragment = be16(ip, 6).ok_or(Skip::MalformedIp)?;
    if fragment & 0x1fff != 0 {
        return Err(Skip::IpFragment);
    }
    let more_fragments = fragment & 0x2000 != 0;
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
    let src = Ipv4Addr::from(<[u8; 4]>::try_from(&ip[12..16]).map_err(|_| Skip::MalformedIp)?);
    let dst = Ipv4Addr::from(<[u8; 4]>::try_from(&ip[16..20]).map_err(|_| Skip::MalformedIp)?);
    transport(
        ip[9],
        IpAddr::V4(src),
        IpAddr::V4(dst),
        &ip[header_len..total.min(ip.len())],
        total - header_len,
        more_fragments,
    )
}

pub(super) fn ipv6(ip: &[u8], missing: usize) -> Result<Packet<'_>, Skip> {
    if ip.len() < 40 {
        return Err(Skip::MalformedIp);
    }
    let available = ip.len() - 40;
    let length = usize::from(be16(ip, 4).ok_or(Skip::MalformedIp)?);
    let length = if length == 0 {
        available + missing
    } else {
        length
    };
    if length > available + missing {
        return Err(Skip::MalformedIp);
    }
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).map_err(|_| Skip::MalformedIp)?);
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).map_err(|_| Skip::MalformedIp)?);
    let next = ip[6];
    match next {
        // Hop-by-hop, routing, fragment, ESP, AH, destination options,
        // mobility, HIP, shim6, experimental.
        0 | 43 | 44 | 50 | 51 | 60 | 135 | 139 | 140 | 253 | 254 => Err(Skip::Ipv6Extension),
        _ => transport(
            next,
            IpAddr::V6(src),
            IpAddr::V6(dst),
            &ip[40..40 + length.min(available)],
            length,
            false,
        ),
    }
}

/// `segment`: the captured transport bytes; `wire_len`: their length on
/// the wire; `fragmented`: the first fragment of a fragmented datagram.
pub(super) fn transport(
    protocol: u8,
    src: IpAddr,
    dst: IpAddr,
    segment: &[u8],
    wire_len: usize,
    fragmented: bool,
) -> Result<Packet<'_>, Skip> {
    match protocol {
        6 => {
            let header = segment.get(..20).ok_or(Skip::MalformedTcp)?;
            let header_len = usize::from(header[12] >> 4) * 4;
            if header_len < 20 || header_len > segment.len() || header_len > wire_len {
                return Err(Skip::MalformedTcp);
            }
            let flags = header[13];
            Ok(Packet {
                transport: Transport::Tcp,
                src: SocketAddr::new(src, be16(header, 0).ok_or(Skip::MalformedTcp)?),
                dst: SocketAddr::new(dst, be16(header, 2).ok_or(Skip::MalformedTcp)?),
                tcp: Some(TcpFlags {
                    seq: be32(header, 4).ok_or(Skip::MalformedTcp)?,
                    syn: flags & 0x02 != 0,
                    rst: flags & 0x04 != 0,
                    ack: flags & 0x10 != 0,
                }),
                payload: &segment[header_len..],
                wire_len: u32::try_from(wire_len - header_len).map_err(|_| Skip::MalformedTcp)?,
            })
        }
        17 => {
            let header = segment.get(..8).ok_or(Skip::MalformedUdp)?;
            let length = usize::from(be16(header, 4).ok_or(Skip::MalformedUdp)?);
            // Length 0: a jumbogram; more than the IP payload: legal only in
            // the first fragment of a datagram.
            let length = match length {
                0 => wire_len,
                n if n < 8 || (n > wire_len && !fragmented) => return Err(Skip::MalformedUdp),
                n => n,
            };
            let payload = &segment[8..segment.len().min(length)];
            Ok(Packet {
                transport: Transport::Udp,
                src: SocketAddr::new(src, be16(header, 0).ok_or(Skip::MalformedUdp)?),
                dst: SocketAddr::new(dst, be16(header, 2).ok_or(Skip::MalformedUdp)?),
                tcp: None,
                payload,
                wire_len: u32::try_from(length - 8).map_err(|_| Skip::MalformedUdp)?,
            })
        }
        _ => Err(Skip::OtherTransport),
    }
}
