//! The Prometheus HTTP API's error answer: Prometheus's `errorType`, the status code it pairs
//! with it, and the message, in the envelope `{"status":"error","errorType":...,"error":...}`.
//! PromQL's errors map onto it here.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use strata_engine::promql::PromqlError;

use crate::state::NOT_READY;

/// An error answer: its type (Prometheus's `errorType`), status code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub error_type: &'static str,
    pub message: String,
}

impl ApiError {
    fn of(status: StatusCode, error_type: &'static str, message: String) -> ApiError {
        ApiError {
            status,
            error_type,
            message,
        }
    }

    /// 400 `bad_data`: a parameter the client must fix.
    pub fn bad_data(message: impl Into<String>) -> ApiError {
        ApiError::of(StatusCode::BAD_REQUEST, "bad_data", message.into())
    }

    /// 503 `unavailable`: not ready yet, or switched off.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::of(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            message.into(),
        )
    }

    /// 503 `unavailable` while the engine opens.
    pub fn not_ready() -> ApiError {
        ApiError::unavailable(NOT_READY)
    }

    /// 503 `timeout`: the query ran out of time (or waited too long for a turn).
    pub fn timeout(message: impl Into<String>) -> ApiError {
        ApiError::of(StatusCode::SERVICE_UNAVAILABLE, "timeout", message.into())
    }

    /// 500 `internal`: the storage failed.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::of(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            message.into(),
        )
    }
}

impl From<PromqlError> for ApiError {
    fn from(e: PromqlError) -> ApiError {
        let message = e.to_string();
        match e {
            PromqlError::Parse(_) => {
                ApiError::bad_data(format!("invalid parameter \"query\": {message}"))
            }
            PromqlError::BadData(_) => ApiError::bad_data(message),
            PromqlError::Timeout => ApiError::timeout(message),
            PromqlError::Canceled => ApiError::of(
                StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
                "canceled",
                message,
            ),
            PromqlError::Storage(_) => ApiError::internal(message),
            _ => ApiError::of(StatusCode::UNPROCESSABLE_ENTITY, "execution", message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body<'a> {
            status: &'static str,
            #[serde(rename = "errorType")]
            error_type: &'a str,
            error: &'a str,
        }
        let body = Body {
            status: "error",
            error_type: self.error_type,
            error: &self.message,
        };
        (self.status, Json(body)).into_response()
    }
}
