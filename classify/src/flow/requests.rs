//! Following a direction that opens with an HTTP/1 request: each complete
//! request is read (request line, headers, body), and after a websocket
//! upgrade each complete text frame. What a chain client, a validator
//! client or a Bittensor dendrite sends is recognised there
//! ([`chain_rpc`], [`beacon`], [`bittensor`]); nothing else is kept.
//!
//! Requests on one keep-alive connection follow each other: each is
//! drained once read, so the stream buffer holds at most the one still
//! arriving. A request split over writes waits for its rest (the flow
//! model asks the kernel for more samples); a malformed one ends the
//! following of that direction.

use super::Observation;
use crate::{beacon, bittensor, chain_rpc, http};

/// How a followed request direction is framed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Http,
    /// After an upgrade request: websocket frames, masked by the client.
    WebSocket,
}

/// What [`follow`] read.
#[derive(Debug, Default)]
pub(super) struct Followed {
    pub observations: Vec<Observation>,
    /// The bytes can no longer be framed: stop following.
    pub lost: bool,
}

/// The carrier a chain call arrived on, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Carrier {
    Http,
    Websocket,
    JsonLines,
}

/// Reads the complete requests (or frames) at the front of `bytes`,
/// draining them.
pub(super) fn follow(bytes: &mut Vec<u8>, mode: &mut Mode) -> Followed {
    let mut out = Followed::default();
    loop {
        match *mode {
            Mode::Http => match http::parse_request(bytes) {
                Ok(request) => {
                    bytes.drain(..request.len.min(bytes.len()));
                    observe_request(&request, &mut out.observations);
                    if request.is_websocket_upgrade() {
                        *mode = Mode::WebSocket;
                    }
                }
                Err(http::HttpError::Incomplete) => break,
                Err(http::HttpError::Invalid) => {
                    out.lost = true;
                    break;
                }
            },
            Mode::WebSocket => match http::parse_frame(bytes) {
                Ok(frame) => {
                    bytes.drain(..frame.len.min(bytes.len()));
                    // Whole text messages only: a fragmented one is not
                    // joined (JSON-RPC clients send one frame a call).
                    if frame.fin
                        && frame.opcode == 1
                        && let Some(call) = chain_rpc::identify(&frame.payload)
                    {
                        out.observations.push(Observation::ChainRpc {
                            call,
                            carrier: Carrier::Websocket,
                            bearer_jwt: None,
                        });
                    }
                }
                Err(http::HttpError::Incomplete) => break,
                Err(http::HttpError::Invalid) => {
                    out.lost = true;
                    break;
                }
            },
        }
        if bytes.is_empty() {
            break;
        }
    }
    out
}

/// A request whose head is in but whose body is still arriving (or a
/// websocket frame cut short): worth more samples. A head that never ends
/// is not: that is how a client would keep a flow sampled forever.
pub(super) fn awaits_rest(bytes: &[u8], mode: Mode) -> bool {
    match mode {
        Mode::Http => {
            bytes.windows(4).any(|w| w == b"\r\n\r\n")
                && http::parse_request(bytes) == Err(http::HttpError::Incomplete)
        }
        Mode::WebSocket => http::parse_frame(bytes) == Err(http::HttpError::Incomplete),
    }
}

fn observe_request(request: &http::Request, observations: &mut Vec<Observation>) {
    if let Some(signed) = bittensor::identify(request) {
        observations.push(Observation::Bittensor(signed));
    }
    if let Some(call) = beacon::identify(request) {
        observations.push(Observation::BeaconApi(call));
    }
    if request.method == "POST"
        && let Some(call) = chain_rpc::identify(&request.body)
    {
        observations.push(Observation::ChainRpc {
            call,
            carrier: Carrier::Http,
            bearer_jwt: request.bearer_jwt_alg(),
        });
    }
}

/// Chain calls among complete JSON lines (the Electrum protocol, JSON-RPC
/// over a raw socket).
pub(super) fn json_lines(lines: &[u8], observations: &mut Vec<Observation>) {
    for line in lines.split(|&b| b == b'\n') {
        if let Some(call) = chain_rpc::identify(line) {
            observations.push(Observation::ChainRpc {
                call,
                carrier: Carrier::JsonLines,
                bearer_jwt: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{
        Direction,
        flow::{FlowTable, Observation, SampleOutcome, Segment, Transport},
    };

    /// A segment the local process wrote on a flow it opened.
    fn send(table: &mut FlowTable, index: u16, payload: &[u8]) -> SampleOutcome {
        table.on_open(1, 0);
        table.on_segment(&Segment {
            key: 1,
            direction: Direction::Outbound,
            index,
            timestamp_ns: 1 + u64::from(index),
            transport: Transport::Tcp,
            payload,
            wire_len: payload.len() as u32,
            offset: 0,
            endpoints: None,
        })
    }

    fn chain_calls(outcome: &SampleOutcome) -> usize {
        outcome
            .observations
            .iter()
            .filter(|o| matches!(o.observation, Observation::ChainRpc { .. }))
            .count()
    }

    const BODY: &str = r#"{"jsonrpc":"2.0","method":"eth_blockNumber","params":[],"id":1}"#;

    fn request() -> Vec<u8> {
        format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n{BODY}",
            BODY.len()
        )
        .into_bytes()
    }

    #[test]
    fn a_request_line_written_a_few_bytes_at_a_time_is_still_read() {
        let request = request();
        let mut table = FlowTable::new(8, 8);
        let pieces = [&request[..1], &request[1..3], &request[3..]];
        let found: usize = pieces
            .iter()
            .enumerate()
            .map(|(i, p)| chain_calls(&send(&mut table, i as u16, p)))
            .sum();
        assert_eq!(found, 1);
    }

    #[test]
    fn a_body_written_apart_from_its_head_at_the_last_sample_gets_more_samples() {
        let request = request();
        let head_len = request.len() - BODY.len();
        let mut table = FlowTable::new(8, 1);
        let first = send(&mut table, 0, &request[..head_len]);
        assert!(first.raised_limit.is_some(), "the body is still to come");
        let second = send(&mut table, 1, &request[head_len..]);
        assert_eq!(chain_calls(&second), 1);
        // A complete request at the last sample asks for nothing more.
        let mut table = FlowTable::new(8, 1);
        let whole = send(&mut table, 0, &request);
        assert_eq!((chain_calls(&whole), whole.raised_limit), (1, None));
    }
}
