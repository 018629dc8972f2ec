//! Body parsing and field validation with errors that name the field.

use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A validation failure of one field: `items[1].source.path: must be an absolute path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::BadRequest(format!("Invalid field '{}': {}", e.field, e.reason))
    }
}

/// Parses a JSON request body into `T`, naming the offending field on failure
/// (`Invalid field 'items[0].source': unknown variant ...`).
///
/// # Errors
/// [`ApiError::BadRequest`] for an empty body, malformed JSON, unknown fields or wrong types.
pub fn parse_json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest("Request body is empty; a JSON object is required".into()));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::BadRequest(format!("Malformed JSON body: {inner}"))
        } else if path == "." || path.is_empty() {
            ApiError::BadRequest(format!("Invalid body: {inner}"))
        } else {
            ApiError::BadRequest(format!("Invalid field '{path}': {inner}"))
        }
    })
}

/// A display name: 1 to 128 characters, no control characters.
pub(crate) fn check_name(field: &str, name: &str) -> Result<(), FieldError> {
    if name.trim().is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if name.chars().count() > 128 {
        return Err(FieldError::new(field, "must be at most 128 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldError::new(field, "must not contain control characters"));
    }
    Ok(())
}

/// A name used in object keys and file names: 1 to 64 of `A-Z a-z 0-9 . _ -`, not `.`/`..`.
pub(crate) fn check_slug(field: &str, name: &str) -> Result<(), FieldError> {
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if name.is_empty() || name.len() > 64 || !ok_chars || name == "." || name == ".." {
        return Err(FieldError::new(
            field,
            "must be 1 to 64 characters of letters, digits, '.', '_' or '-'",
        ));
    }
    Ok(())
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
    fn when_json_is_malformed_should_say_so() {
        assert!(message("{\"name\":").starts_with("Malformed JSON"));
        assert!(message("  ").contains("empty"));
    }

    #[test]
    fn slugs_refuse_path_tricks() {
        assert!(check_slug("f", "app-db_1.x").is_ok());
        for bad in ["", "..", ".", "a/b", "a b", &"x".repeat(65)] {
            assert!(check_slug("f", bad).is_err(), "{bad:?}");
        }
    }
}
