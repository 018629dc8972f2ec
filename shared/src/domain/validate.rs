//! Field validation with errors that name the field.

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

    #[test]
    fn slugs_refuse_path_tricks() {
        assert!(check_slug("f", "app-db_1.x").is_ok());
        for bad in ["", "..", ".", "a/b", "a b", &"x".repeat(65)] {
            assert!(check_slug("f", bad).is_err(), "{bad:?}");
        }
    }
}
