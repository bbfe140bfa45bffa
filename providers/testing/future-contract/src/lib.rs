//! Exports `authhost:provider/oauth-provider@1.0.0`, which the host must refuse.

wit_bindgen::generate!({ world: "provider", path: "wit" });

// Exported on wasm only: a native build (`cargo build --workspace`) links no exports.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Future;

impl exports::authhost::provider::oauth_provider::Guest for Future {
    fn info() -> String {
        "from the future".into()
    }
}

#[cfg(target_arch = "wasm32")]
export!(Future);
