//! HTML pages (consent, errors, the dev sign-in), rendered from templates built into
//! the binary, with headers that keep them out of frames and caches.

use axum::http::{HeaderName, header};
use minijinja::Environment;
use std::sync::OnceLock;

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in [
            ("base.html", include_str!("../templates/base.html")),
            ("consent.html", include_str!("../templates/consent.html")),
            ("error.html", include_str!("../templates/error.html")),
            (
                "dev_login.html",
                include_str!("../templates/dev_login.html"),
            ),
        ] {
            #[expect(
                clippy::expect_used,
                reason = "the templates are compiled in, and every page test renders them"
            )]
            env.add_template(name, source).expect("templates are valid");
        }
        env
    })
}

/// Render a page. Templates are part of the binary and tested, so failure is a bug;
/// it still yields a plain page rather than a panic.
pub fn render(name: &str, context: minijinja::Value) -> String {
    environment()
        .get_template(name)
        .and_then(|t| t.render(context))
        .unwrap_or_else(|e| {
            tracing::error!("template {name}: {e}");
            "<h1>Something went wrong</h1>".to_string()
        })
}

/// Not frameable (clickjacking), not cached, no referrer leaking codes or states.
pub fn secure_headers() -> [(HeaderName, &'static str); 5] {
    [
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ]
}
