//! Request bodies every protocol family reads the same way: whole, within a cap, an
//! oversized one drained (bounded) so its sender reads the 413; the mark on an answer sent
//! before its body was read; and the outer compression (`Content-Encoding: gzip` or
//! `deflate`) undone within a cap.

use axum::http::{HeaderValue, header};
use axum::response::Response;

/// How long an oversized body is read on and thrown away (at most as much again as the cap) so
/// its sender gets to read the 413.
///
/// Most HTTP clients write the whole body before they read an answer. Were the connection
/// closed with part of the body still unread, the kernel would reset it and the sender would
/// see a broken pipe instead of the status that tells it not to retry. Past these bounds the
/// server stops reading and closes anyway.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Why a request body was not read whole.
#[derive(Debug)]
pub enum BodyError {
    /// It is larger than the cap.
    TooBig,
    /// The connection failed while it was being read.
    Read(axum::BoxError),
}

/// Reads `body` whole if it holds at most `max` bytes. A larger body is read on and discarded,
/// up to `max` bytes more and for at most [`DRAIN_TIME`], before [`BodyError::TooBig`].
pub async fn read_body(
    mut body: axum::body::Body,
    max: usize,
) -> Result<axum::body::Bytes, BodyError> {
    use http_body_util::{BodyExt, LengthLimitError, Limited};
    match Limited::new(&mut body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => {
            let drain = async {
                let mut drained = 0usize;
                while let Some(Ok(frame)) = body.frame().await {
                    drained += frame.data_ref().map_or(0, |d| d.len());
                    if drained > max {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
            Err(BodyError::TooBig)
        }
        Err(e) => Err(BodyError::Read(e)),
    }
}

/// Marks a response sent before the request body was read: the connection closes after it
/// (the unread body cannot be skipped), and saying so lets the client open a new one instead
/// of failing its next request on this one.
pub fn body_unread(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The compression a body arrives in, by `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Identity,
    Gzip,
    Deflate,
}

impl Compression {
    /// Reads `Content-Encoding`: none, `identity`, `gzip` (`x-gzip`) or `deflate`; `Err`
    /// names what else was sent.
    pub fn from_headers(headers: &axum::http::HeaderMap) -> Result<Compression, String> {
        let encoding = headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim();
        match encoding.to_ascii_lowercase().as_str() {
            "" | "identity" => Ok(Compression::Identity),
            "gzip" | "x-gzip" => Ok(Compression::Gzip),
            "deflate" => Ok(Compression::Deflate),
            _ => Err(format!(
                "unsupported Content-Encoding {encoding:?}: send gzip, deflate or none"
            )),
        }
    }
}

/// Why a compressed body could not be undone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    /// It holds more than the cap.
    #[error("the body is larger than the {max} bytes allowed once decompressed")]
    TooLarge { max: usize },
    /// It is not valid data of its compression.
    #[error("the body is not valid {compression} data: {message}")]
    Corrupt {
        compression: &'static str,
        message: String,
    },
}

/// Undoes `compression` (HTTP's `deflate` is zlib), refusing more than `max` bytes out.
pub fn inflate(
    body: &[u8],
    compression: Compression,
    max: usize,
) -> Result<std::borrow::Cow<'_, [u8]>, InflateError> {
    use std::io::Read;
    let (reader, name): (Box<dyn Read + '_>, &'static str) = match compression {
        Compression::Identity => return Ok(std::borrow::Cow::Borrowed(body)),
        Compression::Gzip => (Box::new(flate2::read::MultiGzDecoder::new(body)), "gzip"),
        Compression::Deflate => (Box::new(flate2::read::ZlibDecoder::new(body)), "deflate"),
    };
    let mut out = Vec::new();
    reader
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| InflateError::Corrupt {
            compression: name,
            message: e.to_string(),
        })?;
    if out.len() > max {
        return Err(InflateError::TooLarge { max });
    }
    Ok(std::borrow::Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_undone_within_its_cap() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&[b'x'; 10_000]).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(
            inflate(&gz, Compression::Gzip, 10_000).unwrap().len(),
            10_000
        );
        assert_eq!(
            inflate(&gz, Compression::Gzip, 9_999).unwrap_err(),
            InflateError::TooLarge { max: 9_999 }
        );
        assert!(matches!(
            inflate(b"not gzip", Compression::Gzip, 100),
            Err(InflateError::Corrupt { .. })
        ));
        assert_eq!(
            &*inflate(b"plain", Compression::Identity, 1).unwrap(),
            b"plain"
        );
    }
}
