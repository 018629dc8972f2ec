//! The transport-neutral request, and its translation from a `lambda_http` event.

use lambda_http::request::RequestContext;
use lambda_http::RequestExt;
use serde::de::DeserializeOwned;

use super::status::HttpError;

/// What the HTTP layer needs of a request.
#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub authorization: Option<String>,
    pub idempotency_key: Option<String>,
    pub body: Vec<u8>,
    /// The client's address as API Gateway saw it (never a header the client can set).
    pub source_ip: String,
    pub request_id: String,
}

impl ApiRequest {
    /// The first value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Translates an API Gateway (HTTP API, payload 2.0) request.
    pub fn from_lambda(request: &lambda_http::Request) -> Self {
        // Lossy, so that a header with bytes outside ASCII reaches validation (and is
        // refused there) instead of vanishing.
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let (source_ip, gateway_request_id) = match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => (ctx.http.source_ip.clone(), ctx.request_id.clone()),
            _ => (None, None),
        };
        let request_id = gateway_request_id
            .or_else(|| request.lambda_context_ref().map(|c| c.request_id.clone()))
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let query = request
            .query_string_parameters_ref()
            .map(|q| q.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
            .unwrap_or_default();
        let path = request.raw_http_path();
        let path = if path.is_empty() { request.uri().path() } else { path };
        Self {
            method: request.method().as_str().to_owned(),
            path: path.to_owned(),
            query,
            authorization: header("authorization"),
            idempotency_key: header("idempotency-key"),
            body: request.body().to_vec(),
            source_ip: source_ip.unwrap_or_else(|| "unknown".into()),
            request_id,
        }
    }
}

/// Parses a JSON request body into `T`, naming the offending field on failure
/// (`Invalid field 'items[0].source': unknown variant ...`).
///
/// # Errors
/// [`HttpError::BadRequest`] for an empty body, malformed JSON, unknown fields or wrong types.
pub fn parse_json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, HttpError> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(HttpError::BadRequest("Request body is empty; a JSON object is required".into())),
        // serde reads a struct from a JSON array too; the API takes objects only.
        Some(b'{') => {}
        Some(_) => return Err(HttpError::BadRequest("Request body must be a JSON object ({...})".into())),
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            HttpError::BadRequest(format!("Malformed JSON body: {inner}"))
        } else if path == "." || path.is_empty() {
            HttpError::BadRequest(format!("Invalid body: {inner}"))
        } else {
            HttpError::BadRequest(format!("Invalid field '{path}': {inner}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        level: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        inner: Vec<Inner>,
    }

    fn message(body: &str) -> String {
        parse_json_body::<Outer>(body.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn when_a_nested_field_has_the_wrong_type_should_name_its_path() {
        let m = message(r#"{"name":"a","inner":[{"level":"high"}]}"#);
        assert!(m.contains("inner[0].level"), "{m}");
    }

    #[test]
    fn when_a_field_is_unknown_should_name_it() {
        let m = message(r#"{"name":"a","inner":[],"colour":1}"#);
        assert!(m.contains("colour"), "{m}");
    }

    #[test]
    fn when_the_body_is_not_an_object_should_say_so() {
        assert!(message(r#"[{"name":"a","inner":[]}]"#).contains("must be a JSON object"));
        assert!(message("42").contains("must be a JSON object"));
    }

    #[test]
    fn when_json_is_malformed_should_say_so() {
        assert!(message("{\"name\":").starts_with("Malformed JSON"));
        assert!(message("  ").contains("empty"));
    }
}
