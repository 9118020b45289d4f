//! Problem documents (`application/problem+json`): every error the API returns, with the titles
//! and details real Mailchimp uses (reference §2–§4), built in one place so they stay exact.

use serde::Serialize;
use serde_json::{Value, json};

/// The `type` of every problem document (the current glossary address).
pub(crate) const ERROR_TYPE: &str = "https://mailchimp.com/developer/marketing/docs/errors/";

/// The detail of a schema validation failure; the specifics are in `errors[]`.
pub(crate) const INVALID_RESOURCE_DETAIL: &str =
    "The resource submitted could not be validated. For field-specific details, see the 'errors' array.";

/// The detail of a merge-field value failure (observed in real responses).
pub(crate) const MERGE_FIELDS_DETAIL: &str = "Your merge fields were invalid.";

/// One entry of a problem document's `errors[]` array.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct FieldError {
    /// The offending field in dot notation (`merge_fields.FNAME`), or `""` for the whole body.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError { field: field.into(), message: message.into() }
    }
}

/// An API error: becomes a problem document over HTTP and inside batch results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// The human title ("Resource Not Found"), as real bodies carry it.
    pub title: String,
    /// The human detail.
    pub detail: String,
    /// Field-level errors (only for validation failures).
    pub errors: Vec<FieldError>,
    /// The `Allow` header of a 405.
    pub allow: Option<String>,
}

impl ApiError {
    pub(crate) fn new(status: u16, title: &str, detail: impl Into<String>) -> ApiError {
        ApiError { status, title: title.into(), detail: detail.into(), errors: Vec::new(), allow: None }
    }

    pub(crate) fn not_found() -> ApiError {
        ApiError::new(404, "Resource Not Found", "The requested resource could not be found.")
    }

    /// 400 Invalid Resource with field errors.
    pub(crate) fn invalid(errors: Vec<FieldError>) -> ApiError {
        ApiError { errors, ..ApiError::new(400, "Invalid Resource", INVALID_RESOURCE_DETAIL) }
    }

    /// 400 Invalid Resource for one field.
    pub(crate) fn invalid_field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::invalid(vec![FieldError::new(field, message)])
    }

    /// 400 Invalid Resource with its own detail and no `errors[]` (e.g. a bad email address).
    pub(crate) fn invalid_detail(detail: impl Into<String>) -> ApiError {
        ApiError::new(400, "Invalid Resource", detail)
    }

    /// 400 Invalid Resource listing required fields that were not provided.
    pub(crate) fn required(names: &[String]) -> ApiError {
        ApiError::invalid_field("", format!("Required fields were not provided: {}", names.join(", ")))
    }

    /// 400 Invalid Resource for merge-field values ("Your merge fields were invalid.").
    pub(crate) fn merge_fields(errors: Vec<FieldError>) -> ApiError {
        ApiError { errors, ..ApiError::new(400, "Invalid Resource", MERGE_FIELDS_DETAIL) }
    }

    /// 400 Bad Request, the title of e-commerce conflicts.
    pub(crate) fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(400, "Bad Request", detail)
    }

    pub(crate) fn json_parse() -> ApiError {
        ApiError::new(400, "JSON Parse Error", "We encountered an unspecified JSON parsing error.")
    }

    pub(crate) fn invalid_email() -> ApiError {
        ApiError::invalid_detail("Please provide a valid email address.")
    }

    pub(crate) fn method_not_allowed(allow: &[&str]) -> ApiError {
        ApiError {
            allow: Some(allow.join(", ")),
            ..ApiError::new(
                405,
                "Method Not Allowed",
                "The requested method and resource are not compatible. See the Allow header for this resource's \
                 available methods.",
            )
        }
    }

    pub(crate) fn api_key_missing() -> ApiError {
        ApiError::new(401, "API Key Missing", "Your request did not include an API key.")
    }

    /// The detail as observed in real responses ("datacenter", one word).
    pub(crate) fn api_key_invalid() -> ApiError {
        ApiError::new(
            401,
            "API Key Invalid",
            "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
        )
    }

    pub(crate) fn wrong_datacenter() -> ApiError {
        ApiError::new(403, "Wrong Datacenter", "The API key provided is linked to a different data center.")
    }

    pub(crate) fn too_many_requests(limit: usize) -> ApiError {
        ApiError::new(
            429,
            "Too Many Requests",
            format!("You have exceeded the limit of {limit} simultaneous connections."),
        )
    }

    pub(crate) fn internal() -> ApiError {
        ApiError::new(
            500,
            "Internal Server Error",
            "An unexpected internal error has occurred. Please contact Support for more information.",
        )
    }

    pub(crate) fn requested_fields_invalid() -> ApiError {
        ApiError::new(422, "Requested Fields Invalid", "The fields requested from this resource are invalid.")
    }

    pub(crate) fn invalid_method_override() -> ApiError {
        ApiError::new(
            422,
            "Invalid Method Override",
            "You can only use the X-HTTP-Method-Override header with the POST method.",
        )
    }

    pub(crate) fn member_exists(email: &str) -> ApiError {
        ApiError::new(
            400,
            "Member Exists",
            format!("{email} is already a list member. Use PUT to insert or update list members."),
        )
    }

    pub(crate) fn compliance(email: &str) -> ApiError {
        ApiError::new(
            400,
            "Member In Compliance State",
            format!(
                "{email} is in a compliance state due to unsubscribe, bounce, or compliance review and cannot be \
                 subscribed."
            ),
        )
    }

    pub(crate) fn forgotten(email: &str) -> ApiError {
        ApiError::new(
            400,
            "Forgotten Email Not Subscribed",
            format!(
                "{email} was permanently deleted and cannot be re-imported. The contact must re-subscribe to get \
                 back on the list."
            ),
        )
    }

    /// The problem document; `instance` is the request id.
    pub(crate) fn body(&self, instance: &str) -> Value {
        let mut body = json!({
            "type": ERROR_TYPE,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
        });
        if !self.errors.is_empty() {
            body["errors"] = serde_json::to_value(&self.errors).unwrap_or_default();
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_resource_carries_errors() {
        let error = ApiError::invalid_field("status", "bad");
        let body = error.body("id-1");
        assert_eq!(body["title"], "Invalid Resource");
        assert_eq!(body["errors"][0]["field"], "status");
        assert_eq!(body["instance"], "id-1");
        assert!(ApiError::not_found().body("x").get("errors").is_none());
    }
}
