//! The report as a table or as JSON lines.

use super::*;

/// One JSON object per flow with payload, per line (fields: module doc).
pub fn write_json(report: &Report, out: &mut impl Write) -> io::Result<()> {
    for flow in report.flows_with_payload() {
        let line = JsonFlow {
            flow: flow.number,
            transport: flow.transport,
            initiator: JsonSide {
                addr: flow.initiator,
                traffic: &flow.initiator_sent,
            },
            responder: JsonSide {
                addr: flow.responder,
                traffic: &flow.responder_sent,
            },
            handshake_seen: flow.handshake_seen,
            first_seen: rfc3339(flow.first_seen_ns),
            last_seen: rfc3339(flow.last_seen_ns),
            protocol: flow.protocol,
            details: &flow.details,
            stratum_rejections: flow.stratum_rejections,
        };
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// A table, one line per flow with payload.
pub fn write_table(report: &Report, out: &mut impl Write) -> io::Result<()> {
    let header = [
        "FLOW",
        "L4",
        "INITIATOR",
        "",
        "RESPONDER",
        "PKTS>",
        "BYTES>",
        "PKTS<",
        "BYTES<",
        "PROTOCOL",
        "DETAIL",
    ];
    let rows: Vec<[String; 11]> = report
        .flows_with_payload()
        .map(|flow| {
            [
                flow.number.to_string(),
                match flow.transport {
                    Transport::Tcp => "tcp".into(),
                    Transport::Udp => "udp".into(),
                },
                flow.initiator.to_string(),
                "->".into(),
                flow.responder.to_string(),
                flow.initiator_sent.packets.to_string(),
                flow.initiator_sent.bytes.to_string(),
                flow.responder_sent.packets.to_string(),
                flow.responder_sent.bytes.to_string(),
                flow.protocol.unwrap_or("unknown").into(),
                detail_line(&flow.details),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut line = |cells: &[&str]| -> io::Result<()> {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(&header)?;
    for row in &rows {
        line(&row.each_ref().map(String::as_str))?;
    }
    Ok(())
}

/// The short detail column: what identified the flow.
pub(super) fn detail_line(details: &Details) -> String {
    let mut parts = Vec::new();
    if let Some(s) = &details.stratum {
        let mut part = s.variant.unwrap_or("stratum").to_owned();
        if !s.methods.is_empty() {
            part.push_str(&format!(" {}", s.methods.join(",")));
        }
        for (name, value) in [
            ("agent", &s.agent),
            ("login", &s.login),
            ("worker", &s.worker),
        ] {
            if let Some(value) = value {
                part.push_str(&format!(" {name}={}", shorten(value, 40)));
            }
        }
        parts.push(part);
    }
    if let Some(t) = &details.tls {
        let mut part = Vec::new();
        if let Some(sni) = &t.sni {
            part.push(format!("sni={sni}"));
        }
        if !t.alpn.is_empty() {
            part.push(format!("alpn={}", t.alpn.join(",")));
        }
        if let Some(ja4) = &t.ja4 {
            part.push(format!("ja4={ja4}"));
        }
        if let Some(c) = &t.certificate {
            let name = c.dns_names.first().or(c.subject_cn.as_ref());
            let mut cert = format!("cert={}", shorten(name.map_or("-", String::as_str), 40));
            if c.self_signed {
                cert.push_str(" (self-signed)");
            }
            part.push(cert);
        }
        if part.is_empty() && t.server_hello {
            part.push("server hello".into());
        }
        parts.push(part.join(" "));
    }
    if let Some(d) = &details.dns {
        let mut part = d.names.join(",");
        if !d.addresses.is_empty() {
            part.push_str(&format!(" -> {}", d.addresses.join(",")));
        }
        parts.push(part);
    }
    if let Some(p) = &details.p2p {
        parts.push(match &p.message {
            Some(message) => format!("{} {message}", p.network),
            None => p.network.clone(),
        });
    }
    if let Some(s) = &details.stratum_v2 {
        let mut part = Vec::new();
        if let Some(protocol) = s.protocol {
            part.push(protocol.to_owned());
        }
        for (name, value) in [
            ("endpoint", &s.endpoint),
            ("vendor", &s.vendor),
            ("device", &s.device),
        ] {
            if let Some(value) = value {
                part.push(format!("{name}={}", shorten(value, 40)));
            }
        }
        if let Some(version) = s.version {
            part.push(format!("version={version}"));
        }
        if let Some(client) = s.noise_client {
            part.push(format!("noise client={client}"));
        }
        parts.push(part.join(" "));
    }
    if details.devp2p_discv4 {
        parts.push("discovery v4".into());
    }
    parts.join("; ")
}

pub(super) fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(max - 1).collect();
        short.push('…');
        short
    }
}

pub(super) fn rfc3339(ns: u64) -> String {
    humantime::format_rfc3339_micros(SystemTime::UNIX_EPOCH + Duration::from_nanos(ns)).to_string()
}

#[derive(Serialize)]
pub(super) struct JsonFlow<'a> {
    pub(super) flow: u64,
    pub(super) transport: Transport,
    pub(super) initiator: JsonSide<'a>,
    pub(super) responder: JsonSide<'a>,
    pub(super) handshake_seen: bool,
    pub(super) first_seen: String,
    pub(super) last_seen: String,
    pub(super) protocol: Option<&'static str>,
    #[serde(flatten)]
    pub(super) details: &'a Details,
    #[serde(skip_serializing_if = "is_zero")]
    pub(super) stratum_rejections: u64,
}

#[derive(Serialize)]
pub(super) struct JsonSide<'a> {
    pub(super) addr: SocketAddr,
    #[serde(flatten)]
    pub(super) traffic: &'a Traffic,
}

pub(super) fn is_zero(n: &u64) -> bool {
    *n == 0
}
