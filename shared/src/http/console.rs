//! The web console: one page, its script and its style, served by the list function at
//! `/` and `/console` (API Gateway's `$default` route). There is no build step and no
//! third-party code; the page talks to this API with the key the user enters.

/// Scripts, styles and calls from this origin only; nothing inline, no frames, no forms
/// posted elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One file of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static str,
}

const PAGE: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    body: include_str!("console/index.html"),
};
const SCRIPT: Asset = Asset {
    content_type: "text/javascript; charset=utf-8",
    body: include_str!("console/console.js"),
};
const STYLE: Asset = Asset {
    content_type: "text/css; charset=utf-8",
    body: include_str!("console/console.css"),
};

/// The console file a request asks for, if it asks for one.
pub fn asset(method: &str, path: &str) -> Option<Asset> {
    if method != "GET" {
        return None;
    }
    match path {
        "/" | "/console" | "/console/" => Some(PAGE),
        "/console/console.js" => Some(SCRIPT),
        "/console/console.css" => Some(STYLE),
        _ => None,
    }
}

/// The headers every console file is served with.
pub fn headers(asset: Asset) -> [(&'static str, &'static str); 6] {
    [
        ("content-type", asset.content_type),
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-cache"),
    ]
}

/// The file as a `lambda_http` response.
pub fn into_lambda(asset: Asset) -> lambda_http::Response<lambda_http::Body> {
    let mut builder = lambda_http::Response::builder().status(200);
    for (name, value) in headers(asset) {
        builder = builder.header(name, value);
    }
    builder
        .body(lambda_http::Body::Text(asset.body.to_owned()))
        .unwrap_or_else(|_| lambda_http::Response::new(lambda_http::Body::Empty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_script_and_style() {
        let page = asset("GET", "/").unwrap();
        assert!(page.body.contains(r#"<script src="/console/console.js" defer></script>"#));
        assert!(page.body.contains(r#"href="/console/console.css""#));
        // Nothing inline that the policy would refuse.
        assert!(!page.body.contains("<script>") && !page.body.contains("style=") && !page.body.contains("onclick"));
        assert_eq!(asset("GET", "/console"), Some(page));
        assert!(asset("POST", "/").is_none());
        assert!(asset("GET", "/api/jobs").is_none());
    }

    #[test]
    fn the_script_never_writes_html() {
        let script = asset("GET", "/console/console.js").unwrap().body;
        assert!(!script.contains("innerHTML") && !script.contains("eval("));
        assert!(script.contains("sessionStorage") && !script.contains("localStorage"));
        // The key is sent, never shown, not even in part.
        assert!(!script.contains("key.slice") && !script.contains("key.substring"));
    }
}
