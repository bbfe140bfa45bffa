//! Reading the operator's settings for one provider instance.

use crate::{ProviderConfig, ProviderError, SettingKind, SettingSpec};

/// The value of a setting, if the operator gave one (the host fills in declared defaults).
pub fn get<'a>(config: &'a ProviderConfig, key: &str) -> Option<&'a str> {
    config
        .settings
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// The value of a setting the provider cannot work without.
pub fn required<'a>(config: &'a ProviderConfig, key: &str) -> Result<&'a str, ProviderError> {
    get(config, key)
        .ok_or_else(|| ProviderError::InvalidConfig(format!("setting `{key}` is required")))
}

/// A boolean setting; absent means `default`.
pub fn flag(config: &ProviderConfig, key: &str, default: bool) -> bool {
    match get(config, key) {
        Some(v) => matches!(v, "true" | "1" | "yes" | "on"),
        None => default,
    }
}

/// A comma-separated list setting; absent means empty.
pub fn list(config: &ProviderConfig, key: &str) -> Vec<String> {
    get(config, key)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// A URL setting without its trailing slash, so paths can be appended.
pub fn base_url<'a>(config: &'a ProviderConfig, key: &str) -> Result<&'a str, ProviderError> {
    Ok(required(config, key)?.trim_end_matches('/'))
}

/// An optional setting for `info`, with its default (the host fills it in).
pub fn spec(
    name: &str,
    kind: SettingKind,
    default: Option<&str>,
    description: &str,
) -> SettingSpec {
    SettingSpec {
        name: name.into(),
        kind,
        required: false,
        default_value: default.map(String::from),
        description: description.into(),
    }
}

/// A setting for `info` the operator must give.
pub fn required_spec(name: &str, kind: SettingKind, description: &str) -> SettingSpec {
    SettingSpec {
        required: true,
        ..spec(name, kind, None, description)
    }
}
