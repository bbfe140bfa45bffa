//! Loading components: contract checks, the providers folder, pins, config errors and
//! the on-disk compile cache.

use crate::common::{self, runtime, test_component_path};
use authhost::config::Config;
use authhost::registry::Registry;

fn load_error(
    result: Result<
        std::sync::Arc<authhost::runtime::ProviderComponent>,
        authhost::runtime::LoadError,
    >,
) -> String {
    result
        .expect_err("the component must be refused")
        .to_string()
}

#[tokio::test]
async fn a_newer_contract_major_is_refused_naming_file_and_version() {
    let path = test_component_path("test_provider_future_contract");
    let bytes = std::fs::read(&path).unwrap();
    let message = load_error(runtime().load(&path.display().to_string(), &bytes).await);
    assert!(
        message.starts_with(&path.display().to_string()),
        "{message}"
    );
    assert!(message.contains("contract 1.0.0"), "{message}");
    assert!(message.contains("speaks 0.2.x"), "{message}");
}

/// Components built against 0.1.0 and 0.1.1 load through the host's adapter and are
/// served like current ones; what they lack reads as not offered.
#[tokio::test]
async fn components_built_against_0_1_0_and_0_1_1_still_load_and_serve() {
    let runtime = runtime();
    let old = common::load_test_component(&runtime, "test_provider_contract_0_1_0").await;
    assert_eq!(old.contract.to_string(), "0.1.0");
    assert!(old.info.default_allowed_hosts.is_empty());
    let spec = common::spec("old", &[], &["upstream.test".to_string()]);
    let old = authhost::runtime::ProviderInstance::new(runtime.clone(), old, spec).unwrap();
    assert!(
        !old.can_check_audience().await.unwrap(),
        "0.1.0 has no token-audience"
    );
    let claims = old
        .user_claims(authhost::runtime::TokenSet::bearer("alice"))
        .await
        .unwrap();
    assert_eq!(claims.subject, "alice");

    let recent = common::load_test_component(&runtime, "test_provider_contract_0_1_1").await;
    assert_eq!(recent.contract.to_string(), "0.1.1");
    assert_eq!(recent.info.id, "legacy-0-1-1");
    assert!(recent.info.default_allowed_hosts.is_empty());
    let mut spec = common::spec("recent", &[], &[]);
    spec.allowed_hosts = None;
    let recent = authhost::runtime::ProviderInstance::new(runtime.clone(), recent, spec).unwrap();
    assert_eq!(
        recent.allowed_hosts(),
        ["https://upstream.test"],
        "from its URL setting's default"
    );
    let url = recent
        .authorize_url(common::authorize_request(Some("ch")))
        .await
        .unwrap();
    assert!(
        url.starts_with("https://upstream.test/authorize?state="),
        "{url}"
    );
    let exchange = authhost::runtime::CodeExchange {
        code: "c1".into(),
        code_verifier: None,
        nonce: "n".into(),
    };
    let tokens = recent.exchange_code(exchange).await.unwrap();
    assert_eq!(
        tokens.extra,
        [("contract".to_string(), "0.1.1".to_string())]
    );
    let claims = recent.user_claims(tokens.clone()).await.unwrap();
    assert_eq!(
        (claims.subject.as_str(), claims.extra_json.as_str()),
        ("ours-c1", r#"{"contract":"0.1.1"}"#)
    );
    assert!(recent.can_check_audience().await.unwrap());
    assert!(recent.issued_to_client(tokens.access_token).await.unwrap());
    assert!(!recent.issued_to_client("theirs".into()).await.unwrap());
}

/// A provider's default allowed hosts apply when the operator lists none, and the
/// operator's list replaces them.
#[tokio::test]
async fn default_allowed_hosts_apply_only_without_the_operators_list() {
    let runtime = runtime();
    let google = common::load_bundled(&runtime, "provider-google.wasm").await;
    let mut spec = common::spec("google", &[], &[]);
    spec.allowed_hosts = None;
    let instance =
        authhost::runtime::ProviderInstance::new(runtime.clone(), google.clone(), spec).unwrap();
    let mut hosts = instance.allowed_hosts();
    hosts.sort();
    assert_eq!(
        hosts,
        [
            "https://accounts.google.com",
            "https://oauth2.googleapis.com",
            "https://openidconnect.googleapis.com"
        ]
    );
    let spec = common::spec("google", &[], &["sso.example.com".to_string()]);
    let instance = authhost::runtime::ProviderInstance::new(runtime, google, spec).unwrap();
    assert_eq!(instance.allowed_hosts(), ["https://sso.example.com"]);
}

#[tokio::test]
async fn files_that_are_not_providers_are_refused_with_the_reason() {
    let runtime = runtime();
    let empty_component = b"\0asm\x0d\0\x01\0";
    let message = load_error(runtime.load("empty.wasm", empty_component).await);
    assert!(
        message.contains("does not export authhost:provider/oauth-provider"),
        "{message}"
    );

    let core_module = b"\0asm\x01\0\0\0";
    let message = load_error(runtime.load("core.wasm", core_module).await);
    assert!(
        message.contains("core WebAssembly module, not a component"),
        "{message}"
    );

    let message = load_error(runtime.load("notes.wasm", b"hello").await);
    assert!(
        message.contains("notes.wasm: is not a WebAssembly component"),
        "{message}"
    );
}

#[tokio::test]
async fn the_providers_folder_loads_good_files_and_refuses_bad_ones() {
    let dir = tempdir("providers-dir");
    std::fs::copy(
        test_component_path("test_provider_misbehaving"),
        dir.join("misbehaving.wasm"),
    )
    .unwrap();
    std::fs::copy(
        test_component_path("test_provider_future_contract"),
        dir.join("future.wasm"),
    )
    .unwrap();
    std::fs::write(dir.join("broken.wasm"), b"not wasm").unwrap();
    std::fs::write(dir.join("README.txt"), b"ignored").unwrap();
    let registry = Registry::load(runtime(), &Config::default(), Some(&dir))
        .await
        .unwrap();
    assert!(registry.components.contains_key("misbehaving"));
    assert!(
        !registry.components.contains_key("oidc"),
        "bundled providers no instance uses are not compiled"
    );
    let all = Registry::load_all(runtime(), &Config::default(), Some(&dir))
        .await
        .unwrap();
    assert!(
        all.components.contains_key("oidc"),
        "`providers list` sees them all"
    );
    assert!(all.components.contains_key("misbehaving"));
    let refused: Vec<String> = registry.refused.iter().map(|e| e.to_string()).collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused.iter().any(|r| r.contains("broken.wasm")));
    assert!(
        refused
            .iter()
            .any(|r| r.contains("future.wasm") && r.contains("1.0.0"))
    );
}

#[tokio::test]
async fn configuration_problems_name_the_provider_and_the_key() {
    let config = Config::from_toml(
        r#"
        [providers.corp]
        component = "oidc"
        client_id = "authhost"
        isuer = "https://id.example.com"
        use_userinfo = "maybe"
        sha256 = "0000"

        [providers.nothing]
        client_id = "x"
        "#,
    )
    .unwrap();
    let err = Registry::load(runtime(), &config, None)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("providers.corp: key `sha256`"), "{err}");
    assert!(
        err.contains("providers.nothing: no component with id `nothing`"),
        "{err}"
    );

    let config = Config::from_toml(
        r#"
        [providers.corp]
        component = "oidc"
        client_id = "authhost"
        isuer = "https://id.example.com"
        use_userinfo = "maybe"
        client_secret_env = "AUTHHOST_SURELY_UNSET"
        "#,
    )
    .unwrap();
    let err = Registry::load(runtime(), &config, None)
        .await
        .err()
        .unwrap()
        .to_string();
    for expected in [
        "providers.corp: unknown key `isuer`",
        "providers.corp: missing key `issuer`",
        "providers.corp: key `use_userinfo` must be true or false",
        "providers.corp: key `client_secret_env`: environment variable `AUTHHOST_SURELY_UNSET`",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

#[tokio::test]
async fn a_matching_sha256_pin_loads_and_url_settings_set_the_default_allowlist() {
    let sha = {
        let runtime = runtime();
        common::load_bundled(&runtime, "provider-oidc.wasm")
            .await
            .sha256
            .clone()
    };
    let config = Config::from_toml(&format!(
        r#"
        [providers.corp]
        component = "oidc"
        client_id = "authhost"
        issuer = "https://id.example.com/realms/corp"
        sha256 = "{sha}"
        "#
    ))
    .unwrap();
    let registry = Registry::load(runtime(), &config, None).await.unwrap();
    assert_eq!(
        registry.instances["corp"].allowed_hosts(),
        vec!["https://id.example.com"]
    );
}

#[tokio::test]
async fn compiled_components_are_cached_on_disk_and_a_bad_cache_file_is_replaced() {
    let dir = tempdir("compile-cache");
    let path = test_component_path("test_provider_misbehaving");
    let bytes = std::fs::read(&path).unwrap();
    let origin = path.display().to_string();

    let first = common::runtime_with_cache(Some(dir.clone()))
        .load(&origin, &bytes)
        .await
        .unwrap();
    assert!(!first.from_cache);
    let second = common::runtime_with_cache(Some(dir.clone()))
        .load(&origin, &bytes)
        .await
        .unwrap();
    assert!(second.from_cache, "a second start loads from the cache");

    for entry in std::fs::read_dir(&dir).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    let third = common::runtime_with_cache(Some(dir.clone()))
        .load(&origin, &bytes)
        .await
        .unwrap();
    assert!(!third.from_cache, "a corrupt cache file is recompiled");
    assert_eq!(third.info.id, "misbehaving");
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
