//! Prometheus metrics: the agent's health and what it sees, in the text
//! exposition format (version 0.0.4), on a plain HTTP endpoint bound to
//! localhost by default (`--metrics-listen`).
//!
//! The body is rendered by the agent's own loop (which owns every table)
//! when a connection arrives; a spawned task then reads the request and
//! writes the answer, so a slow client never stalls the agent. Only
//! `GET /metrics` is served; anything else gets 404.

use std::{fmt::Write as _, time::Duration};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

/// One sample: name, labels, value.
pub struct Sample {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

/// Renders samples; families keep their first HELP/TYPE lines.
pub fn render(samples: &[Sample]) -> String {
    let mut out = String::new();
    let mut seen: Vec<&str> = Vec::new();
    for s in samples {
        if !seen.contains(&s.name) {
            seen.push(s.name);
            let _ = writeln!(out, "# HELP {} {}", s.name, s.help);
            let _ = writeln!(out, "# TYPE {} {}", s.name, s.kind);
        }
        out.push_str(s.name);
        if !s.labels.is_empty() {
            out.push('{');
            for (i, (key, value)) in s.labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{key}=\"{}\"", escape(value));
            }
            out.push('}');
        }
        let _ = writeln!(out, " {}", s.value);
    }
    out
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Answers one connection with `body` (already rendered).
pub async fn serve(mut stream: TcpStream, body: String) {
    let mut request = Vec::with_capacity(512);
    let mut buf = [0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    if read.is_err() {
        return;
    }
    let line = request.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let ok = parts.next() == Some("GET")
        && parts
            .next()
            .is_some_and(|path| path == "/metrics" || path.starts_with("/metrics?"));
    let response = if ok {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    } else {
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        stream.write_all(response.as_bytes()),
    )
    .await;
    let _ = stream.shutdown().await;
}

/// The agent's own CPU seconds and resident bytes, from /proc/self.
pub fn own_usage() -> (f64, f64) {
    // SAFETY: sysconf has no preconditions.
    let (hz, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK).max(1) as f64,
            libc::sysconf(libc::_SC_PAGESIZE).max(1) as f64,
        )
    };
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let rest = stat.get(stat.rfind(')')? + 2..)?.to_owned();
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / hz)
        })
        .unwrap_or(0.0);
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|pages| pages * page)
        .unwrap_or(0.0);
    (cpu, rss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_render_in_the_text_format() {
        let text = render(&[
            Sample {
                name: "assay_open_verdicts",
                help: "Open verdicts.",
                kind: "gauge",
                labels: vec![
                    ("class", "pow-mining".into()),
                    ("level", "con\"firmed".into()),
                ],
                value: 2.0,
            },
            Sample {
                name: "assay_open_verdicts",
                help: "Open verdicts.",
                kind: "gauge",
                labels: vec![("class", "chain-node".into()), ("level", "observed".into())],
                value: 0.0,
            },
            Sample {
                name: "assay_events_total",
                help: "Ring buffer records.",
                kind: "counter",
                labels: vec![],
                value: 12.0,
            },
        ]);
        assert_eq!(
            text,
            "# HELP assay_open_verdicts Open verdicts.\n# TYPE assay_open_verdicts gauge\n\
             assay_open_verdicts{class=\"pow-mining\",level=\"con\\\"firmed\"} 2\n\
             assay_open_verdicts{class=\"chain-node\",level=\"observed\"} 0\n\
             # HELP assay_events_total Ring buffer records.\n# TYPE assay_events_total counter\n\
             assay_events_total 12\n"
        );
        let (cpu, rss) = own_usage();
        assert!(cpu >= 0.0 && rss > 0.0);
    }
}
