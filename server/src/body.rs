//! Request bodies every protocol family reads the same way: whole, within a cap, an
//! oversized one drained (bounded) so its sender reads the 413; and the mark on an answer
//! sent before its body was read.

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
