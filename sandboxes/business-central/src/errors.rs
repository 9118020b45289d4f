//! BC API errors: `{"error":{"code","message"}}` with the codes of reference §4.5 and messages
//! ending in `  CorrelationId:  <guid>.` (two spaces, as recorded). Where the reference gives no
//! text, the message is the one the underlying OData library (Microsoft.OData.Core) or the AL
//! code produces; the constructors below say which.

use serde_json::{Value, json};

/// One API error: status, BC code, message without the correlation suffix.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// BC's error code (`BadRequest_NotFound`, …): what clients branch on.
    pub code: String,
    /// The text before the correlation suffix.
    pub message: String,
    /// Seconds for a `Retry-After` header (BC documents it for 502/503 only).
    pub retry_after: Option<u64>,
    /// Adds the `WWW-Authenticate: Bearer …` challenge (401s).
    pub challenge: bool,
}

impl ApiError {
    pub(crate) fn new(status: u16, code: &str, message: impl Into<String>) -> ApiError {
        ApiError { status, code: code.into(), message: message.into(), retry_after: None, challenge: false }
    }

    /// The response body, with the correlation id appended to the message.
    pub(crate) fn body(&self, correlation_id: &str) -> Value {
        json!({"error": {"code": self.code, "message": format!("{}  CorrelationId:  {correlation_id}.", self.message)}})
    }

    /// 401 for a missing, unknown or expired bearer token [MS-ERR][ISS-NAVDOCKER570].
    pub(crate) fn unauthorized() -> ApiError {
        ApiError {
            challenge: true,
            ..ApiError::new(401, "Authentication_InvalidCredentials", "The server has rejected the client credentials.")
        }
    }

    /// 404 for an unknown segment or a key that matches nothing (recorded for a deleted customer).
    pub(crate) fn segment_not_found(segment: &str) -> ApiError {
        ApiError::new(404, "BadRequest_ResourceNotFound", format!("Resource not found for the segment '{segment}'."))
    }

    /// A `$filter`/query syntax or typing error (`BadRequest_NotFound` per [MS-ERR]).
    pub(crate) fn query(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest_NotFound", message)
    }

    /// OData Core's message for a property name the type does not have.
    pub(crate) fn unknown_property(name: &str, type_name: &str) -> ApiError {
        ApiError::query(format!("Could not find a property named '{name}' on type 'Microsoft.NAV.{type_name}'."))
    }

    /// PATCH/DELETE without a usable `If-Match` [MS-ERR].
    pub(crate) fn invalid_token() -> ApiError {
        ApiError::new(
            400,
            "BadRequest_InvalidToken",
            "Could not validate the client concurrency token required by the service. Please provide a valid token in the client request.",
        )
    }

    /// A stale `If-Match`: 409, not 412 [MS-ERR][MS-HTTP].
    pub(crate) fn entity_changed() -> ApiError {
        ApiError::new(409, "Request_EntityChanged", "Another user has already changed the record.")
    }

    /// A verb the entity set does not allow (405).
    pub(crate) fn method_not_allowed(method: &str, set: &str) -> ApiError {
        ApiError::new(
            405,
            "BadRequest_MethodNotAllowed",
            format!(
                "'{method}' requests for '{set}' of EdmType 'Entity' are not allowed within Dynamics 365 Business Central OData web services."
            ),
        )
    }

    /// A malformed or unreadable request body.
    pub(crate) fn invalid_body() -> ApiError {
        ApiError::new(400, "BadRequest", "Invalid Request Body")
    }

    /// OData Core's message for a body property the type does not declare.
    pub(crate) fn body_unknown_property(name: &str, type_name: &str) -> ApiError {
        ApiError::new(
            400,
            "BadRequest",
            format!(
                "The property '{name}' does not exist on type 'Microsoft.NAV.{type_name}'. Make sure to only use property names that are defined by the type."
            ),
        )
    }

    /// A body value of the wrong JSON/EDM type (OData Core's conversion message).
    pub(crate) fn body_type(value: &Value, type_name: &str) -> ApiError {
        let shown = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        ApiError::new(
            400,
            "BadRequest",
            format!("Cannot convert the literal '{shown}' to the expected type '{type_name}'."),
        )
    }

    /// A write to a property the API page does not let clients edit.
    pub(crate) fn read_only(name: &str) -> ApiError {
        ApiError::new(400, "BadRequest", format!("The property '{name}' is read-only and cannot be modified."))
    }

    /// AL's message for text longer than the field [MS-ERR: Application_StringExceededLength].
    pub(crate) fn too_long(value: &str, max: u32) -> ApiError {
        ApiError::new(
            400,
            "Application_StringExceededLength",
            format!(
                "The length of the string is {}, but it must be less than or equal to {max} characters. Value: {value}",
                value.chars().count()
            ),
        )
    }

    /// A required field left blank [MS-ERR: BadRequest_RequiredParamNotProvided].
    pub(crate) fn required(name: &str) -> ApiError {
        ApiError::new(400, "BadRequest_RequiredParamNotProvided", format!("The parameter '{name}' is required."))
    }

    /// AL's `Record.Get` failure [MS-ERR: Internal_RecordNotFound].
    pub(crate) fn record_not_found(table: &str, field: &str, value: &str) -> ApiError {
        ApiError::new(
            404,
            "Internal_RecordNotFound",
            format!("The {table} does not exist. Identification fields and values: {field}='{value}'"),
        )
    }

    /// AL's duplicate-key insert failure [MS-ERR: Internal_EntityWithSameKeyExists].
    pub(crate) fn same_key(table: &str, field: &str, value: &str) -> ApiError {
        ApiError::new(
            400,
            "Internal_EntityWithSameKeyExists",
            format!("The record in table {table} already exists. Identification fields and values: {field}='{value}'"),
        )
    }

    /// An AL `Error(...)` raised by page or table code.
    pub(crate) fn dialog(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "Application_DialogException", message)
    }

    /// 429 past the queue or the per-user request rate [MS-LIM]; no Retry-After (documented
    /// for 502/503 only).
    pub(crate) fn too_many_requests(actual: usize, max: usize) -> ApiError {
        ApiError::new(
            429,
            "Application_TooManyRequests",
            format!("Too many requests reached.  Actual ({actual}). Maximum ({max})."),
        )
    }

    /// 503 (queue wait exceeded, or injected) with `Retry-After` [MS-HTTP].
    pub(crate) fn unavailable() -> ApiError {
        ApiError {
            retry_after: Some(5),
            ..ApiError::new(
                503,
                "ServiceUnavailable",
                "The service is temporarily unavailable. Please retry the request.",
            )
        }
    }

    /// 504: the request timeout was reached [MS-LIM].
    pub(crate) fn gateway_timeout() -> ApiError {
        ApiError::new(504, "GatewayTimeout", "The request could not be completed within the request timeout.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_correlation_suffix() {
        let body = ApiError::segment_not_found("customers").body("3ffdbdbd-f677-40ad-b95b-3a778b9e786a");
        assert_eq!(
            body["error"]["message"],
            "Resource not found for the segment 'customers'.  CorrelationId:  3ffdbdbd-f677-40ad-b95b-3a778b9e786a."
        );
        assert_eq!(body["error"]["code"], "BadRequest_ResourceNotFound");
    }
}
