//! Loki's push request (`logproto.PushRequest`) as prost messages: what Grafana Alloy,
//! Promtail and the other Loki clients send to `POST /loki/api/v1/push`, always as a snappy
//! block. A stream's labels arrive as text in the selector form, `{app="api", env="prod"}`;
//! [`parse_labels`] reads it.

use prost::Message;

use crate::snappy::{self, SnappyError};

/// `logproto.PushRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

/// `logproto.StreamAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    /// The stream's label set as text: `{name="value", …}`.
    #[prost(string, tag = "1")]
    pub labels: String,
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

/// `logproto.EntryAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    #[prost(string, tag = "2")]
    pub line: String,
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    /// Nanoseconds since the epoch (saturating).
    pub fn as_nanos(&self) -> i64 {
        self.seconds
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::from(self.nanos))
    }

    /// The timestamp of `ns` nanoseconds since the epoch.
    pub fn from_nanos(ns: i64) -> Timestamp {
        Timestamp {
            seconds: ns.div_euclid(1_000_000_000),
            nanos: ns.rem_euclid(1_000_000_000) as i32,
        }
    }
}

/// `logproto.LabelPairAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPairAdapter {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// Why a push body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PushDecodeError {
    #[error(transparent)]
    Snappy(#[from] SnappyError),
    #[error("the body is not a Loki push request: {0}")]
    Protobuf(#[from] prost::DecodeError),
}

impl PushRequest {
    /// Decodes a snappy-compressed body, refusing one that would decompress beyond
    /// `decoded_bytes_max`.
    pub fn decode_snappy(
        body: &[u8],
        decoded_bytes_max: usize,
    ) -> Result<PushRequest, PushDecodeError> {
        let raw = snappy::decompress(body, decoded_bytes_max)?;
        Ok(PushRequest::decode(raw.as_slice())?)
    }

    /// The snappy-compressed body a client sends.
    pub fn encode_snappy(&self) -> Vec<u8> {
        snappy::compress(&self.encode_to_vec())
    }
}

/// Why a stream's label text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stream labels {text:?}: {reason}")]
pub struct LabelsError {
    pub text: String,
    pub reason: &'static str,
}

/// Reads a stream's labels written as `{name="value", …}` (Go-quoted values, `=` only), in
/// the order written.
pub fn parse_labels(text: &str) -> Result<Vec<(String, String)>, LabelsError> {
    let err = |reason| LabelsError {
        text: text.to_owned(),
        reason,
    };
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| err("expected {name=\"value\", …}"))?;
    let mut out = Vec::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let name_len = rest
            .bytes()
            .enumerate()
            .take_while(|&(i, b)| {
                b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit())
            })
            .count();
        if name_len == 0 {
            return Err(err("expected a label name"));
        }
        let name = &rest[..name_len];
        rest = rest[name_len..].trim_start();
        rest = rest
            .strip_prefix('=')
            .ok_or_else(|| err("expected = after a label name"))?;
        rest = rest.trim_start();
        rest = rest
            .strip_prefix('"')
            .ok_or_else(|| err("expected a quoted value"))?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            let Some((i, c)) = chars.next() else {
                return Err(err("unterminated value"));
            };
            match c {
                '"' => break i + 1,
                '\\' => match chars.next().map(|(_, e)| e) {
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some('r') => value.push('\r'),
                    Some(e @ ('\\' | '"' | '\'')) => value.push(e),
                    _ => return Err(err("unsupported escape in a value")),
                },
                c => value.push(c),
            }
        };
        out.push((name.to_owned(), value));
        rest = rest[end..].trim_start();
        match rest.strip_prefix(',') {
            Some(r) => rest = r.trim_start(),
            None if rest.is_empty() => {}
            None => return Err(err("expected , between labels")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_labels_read_as_loki_clients_write_them() {
        assert_eq!(
            parse_labels(r#"{app="api", env="prod",job="a\"b\\c"}"#).unwrap(),
            [
                ("app".to_string(), "api".to_string()),
                ("env".to_string(), "prod".to_string()),
                ("job".to_string(), "a\"b\\c".to_string()),
            ]
        );
        assert_eq!(parse_labels("{}").unwrap(), []);
        for bad in [
            "app=\"a\"",
            "{app=a}",
            "{app=\"a\" env=\"b\"}",
            "{=\"a\"}",
            "{app=\"a}",
            "{app!=\"a\"}",
        ] {
            assert!(parse_labels(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_push_request_survives_the_round_trip_and_a_bomb_is_refused() {
        let req = PushRequest {
            streams: vec![StreamAdapter {
                labels: "{app=\"api\"}".into(),
                entries: vec![EntryAdapter {
                    timestamp: Some(Timestamp::from_nanos(1_700_000_000_123_456_789)),
                    line: "GET / 200".into(),
                    structured_metadata: vec![LabelPairAdapter {
                        name: "trace_id".into(),
                        value: "abc".into(),
                    }],
                }],
                hash: 0,
            }],
        };
        let body = req.encode_snappy();
        let back = PushRequest::decode_snappy(&body, 1 << 20).unwrap();
        assert_eq!(back, req);
        assert_eq!(
            back.streams[0].entries[0].timestamp.unwrap().as_nanos(),
            1_700_000_000_123_456_789
        );
        assert!(
            PushRequest::decode_snappy(&body, 8).is_err(),
            "over the decoded cap"
        );
        assert!(PushRequest::decode_snappy(b"not snappy", 1 << 20).is_err());
        assert_eq!(Timestamp::from_nanos(-1).as_nanos(), -1);
    }
}
