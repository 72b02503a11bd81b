//! The v1 answer: one [`Response`] line per request, with its [`ErrorType`] and `code`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Metadata;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    DefaultError,
    UnknownResultError,
    DuplicateRequestError,
    ResultNotFoundError,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::DefaultError => "default_error",
            ErrorType::UnknownResultError => "unknown_result_error",
            ErrorType::DuplicateRequestError => "duplicate_request_error",
            ErrorType::ResultNotFoundError => "result_not_found_error",
        }
    }

    /// The non-zero `code` that goes with each error type.
    pub fn code(self) -> i32 {
        match self {
            ErrorType::DefaultError => 1,
            ErrorType::UnknownResultError => 2,
            ErrorType::DuplicateRequestError => 3,
            ErrorType::ResultNotFoundError => 4,
        }
    }
}

/// One response line. Field order is the wire order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub code: i32,
    pub request_id: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<ErrorType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}

impl Response {
    pub fn ok(request_id: Option<String>, metadata: Metadata, data: Value) -> Self {
        Response {
            code: 0,
            request_id,
            metadata,
            data: Some(data),
            error_type: None,
            reason: None,
            message: None,
            log: None,
        }
    }

    pub fn error(
        request_id: Option<String>,
        metadata: Metadata,
        error_type: ErrorType,
        reason: &str,
        message: impl Into<String>,
    ) -> Self {
        Response {
            code: error_type.code(),
            request_id,
            metadata,
            data: None,
            error_type: Some(error_type),
            reason: Some(reason.to_owned()),
            message: Some(message.into()),
            log: None,
        }
    }

    /// The response as one line, without the newline.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a Response always serializes")
    }
}
