//! The generic `http` target: one JSON request per record to any REST endpoint.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use engine::config::SecretRef;
use engine::connector::{
    ConnectContext, Connection, Connector, ConnectorError, Entities, ParamSpec, ReadRequest, RecordPages, RequestInput,
    ResourceSpec, TargetRequest, WriteOutcome,
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method};
use schemars::{JsonSchema, Schema};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::client::{RetryPolicy, build_client, send_with_retry};

/// Settings of an `http` connection.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// The API's base URL; request paths are appended to it.
    pub base_url: String,
    /// How requests authenticate. Credentials come from the vault or the environment.
    #[serde(default)]
    pub auth: Option<HttpAuth>,
    /// Extra headers sent with every request (not for secrets: use `auth`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Seconds before a request times out.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Requests in flight at once, when the project does not set `concurrency`.
    #[serde(default = "default_concurrency")]
    pub max_in_flight: usize,
    /// Attempts per request, the first included, before a transient failure is given up on
    /// (the record is then read again by the next run).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
}

fn default_attempts() -> u32 {
    5
}

fn default_timeout() -> u64 {
    60
}

fn default_concurrency() -> usize {
    4
}

/// Authentication of an `http` connection.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum HttpAuth {
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// Where the token is kept.
        token: SecretRef,
    },
    /// HTTP Basic.
    Basic {
        /// The user name.
        username: String,
        /// Where the password is kept.
        password: SecretRef,
    },
    /// A header of the API's own, e.g. `X-Api-Key`.
    Header {
        /// The header's name.
        name: String,
        /// Where its value is kept.
        value: SecretRef,
    },
}

/// The connector.
pub struct HttpConnector;

const RESOURCE: &str = "request";
const METHODS: [&str; 3] = ["PUT", "POST", "PATCH"];

#[async_trait]
impl Connector for HttpConnector {
    fn name(&self) -> &'static str {
        "http"
    }

    fn description(&self) -> &'static str {
        "Any JSON REST API: one PUT, POST or PATCH per record."
    }

    fn settings_schema(&self) -> Schema {
        engine::schema::inline_schema_for::<HttpSettings>()
    }

    fn entities(&self) -> Entities {
        Entities::Named(Vec::new())
    }

    fn resources(&self) -> Vec<ResourceSpec> {
        vec![ResourceSpec {
            name: RESOURCE,
            description: "Sends the rendered fields as the JSON body of one request per record.",
            params: vec![
                ParamSpec { name: "method", description: "PUT, POST or PATCH", required: true },
                ParamSpec {
                    name: "path",
                    description: "the path after the base URL, e.g. `/contacts/{{ record.id }}`",
                    required: true,
                },
            ],
        }]
    }

    fn build_request(&self, resource: &str, input: &RequestInput<'_>) -> Result<TargetRequest, String> {
        if resource != RESOURCE {
            return Err(format!("unknown resource `{resource}`"));
        }
        let text = |name: &str| {
            input.params.get(name).and_then(Value::as_str).ok_or(format!("parameter `{name}` must be text"))
        };
        let method = text("method")?.to_uppercase();
        if !METHODS.contains(&method.as_str()) {
            return Err(format!("method `{method}` is not one of {}", METHODS.join(", ")));
        }
        let path = text("path")?;
        if !path.starts_with('/') {
            return Err(format!("path `{path}` must start with `/`"));
        }
        Ok(TargetRequest::new(method, path, input.body.clone()))
    }

    async fn connect(
        &self,
        settings: &Map<String, Value>,
        context: &ConnectContext,
    ) -> Result<Arc<dyn Connection>, ConnectorError> {
        let settings: HttpSettings = serde_json::from_value(Value::Object(settings.clone()))
            .map_err(|e| ConnectorError::new(format!("http settings: {e}")))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &settings.headers {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|_| ConnectorError::new(format!("`{name}` is not a header name")))?;
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|_| ConnectorError::new(format!("header `{name}` has an invalid value")))?;
            headers.insert(name, value);
        }
        let resolve = |r: &SecretRef| context.secrets.resolve(r).map_err(ConnectorError::new);
        let secret_header = |value: String| {
            let mut v = HeaderValue::try_from(value)
                .map_err(|_| ConnectorError::new("a credential holds characters a header cannot carry"))?;
            // Sensitive values are redacted from reqwest's Debug output.
            v.set_sensitive(true);
            Ok::<_, ConnectorError>(v)
        };
        match &settings.auth {
            None => {}
            Some(HttpAuth::Bearer { token }) => {
                headers.insert(reqwest::header::AUTHORIZATION, secret_header(format!("Bearer {}", resolve(token)?))?);
            }
            Some(HttpAuth::Basic { username, password }) => {
                let credentials = crate::client::basic_credentials(username, &resolve(password)?);
                headers.insert(reqwest::header::AUTHORIZATION, secret_header(credentials)?);
            }
            Some(HttpAuth::Header { name, value }) => {
                let name = HeaderName::try_from(name.as_str())
                    .map_err(|_| ConnectorError::new(format!("`{name}` is not a header name")))?;
                headers.insert(name, secret_header(resolve(value)?)?);
            }
        }
        let base_url = settings.base_url.trim_end_matches('/').to_owned();
        Ok(Arc::new(HttpConnection {
            client: build_client(Duration::from_secs(settings.timeout_seconds.max(1))),
            base_url,
            headers,
            concurrency: settings.max_in_flight.max(1),
            retry: RetryPolicy { attempts: settings.max_attempts.max(1), ..RetryPolicy::default() },
        }))
    }
}

pub(crate) struct HttpConnection {
    client: Client,
    base_url: String,
    /// Includes the credential header, marked sensitive.
    headers: HeaderMap,
    concurrency: usize,
    retry: RetryPolicy,
}

#[async_trait]
impl Connection for HttpConnection {
    async fn read(&self, _request: &ReadRequest) -> Result<Box<dyn RecordPages>, ConnectorError> {
        Err(ConnectorError::new("the http connector writes only; it has no entities to read"))
    }

    async fn write(&self, request: &TargetRequest) -> WriteOutcome {
        let url = format!("{}{}", self.base_url, request.path);
        let Ok(method) = Method::from_bytes(request.method.as_bytes()) else {
            return WriteOutcome::Failed {
                transient: false,
                status: None,
                class: "request".into(),
                message: format!("bad method `{}`", request.method),
            };
        };
        let build = || self.client.request(method.clone(), &url).headers(self.headers.clone()).json(&request.body);
        match send_with_retry(build, self.retry).await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body: Option<Value> = response.json().await.ok();
                let target_id = body.as_ref().and_then(|b| b.get("id")).and_then(|id| match id {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                });
                WriteOutcome::Written { target_id, status: Some(status) }
            }
            Err(failure) => failure.into_outcome(),
        }
    }

    fn default_concurrency(&self) -> usize {
        self.concurrency
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_need_a_known_method_and_an_absolute_path() {
        let body = serde_json::json!({"a": 1});
        let mut params = Map::new();
        params.insert("method".into(), "put".into());
        params.insert("path".into(), "/contacts/7".into());
        let req =
            HttpConnector.build_request(RESOURCE, &RequestInput { key: "7", params: &params, body: &body }).unwrap();
        assert_eq!(req, TargetRequest::new("PUT", "/contacts/7", body.clone()));
        params.insert("method".into(), "DELETE".into());
        assert!(
            HttpConnector.build_request(RESOURCE, &RequestInput { key: "7", params: &params, body: &body }).is_err()
        );
        params.insert("method".into(), "PUT".into());
        params.insert("path".into(), "contacts".into());
        assert!(
            HttpConnector.build_request(RESOURCE, &RequestInput { key: "7", params: &params, body: &body }).is_err()
        );
    }
}
