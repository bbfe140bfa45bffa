//! Exports `authhost:provider/oauth-provider@1.0.0`, which the host must refuse.

wit_bindgen::generate!({ world: "provider", path: "wit" });

struct Future;

impl exports::authhost::provider::oauth_provider::Guest for Future {
    fn info() -> String {
        "from the future".into()
    }
}

export!(Future);
