//! Typed settings: each declared once as a [`Setting`] const, which both describes it
//! in `info` ([`Setting::spec`]) and reads it from the operator's configuration.
//!
//! ```ignore
//! const BASE_URL: Setting = Setting::url("base_url", "Your GitLab.").default("https://gitlab.com");
//! // info():   settings: specs(&[BASE_URL]),
//! // a call:   let base = BASE_URL.base_url(&config)?;
//! ```

use crate::{ProviderConfig, ProviderError, SettingKind, SettingSpec};

/// One configuration key the provider understands.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub name: &'static str,
    pub kind: SettingKind,
    pub required: bool,
    /// Used when the operator gives no value (the host fills it in).
    pub default: Option<&'static str>,
    pub description: &'static str,
}

impl Setting {
    const fn new(name: &'static str, kind: SettingKind, description: &'static str) -> Self {
        Setting {
            name,
            kind,
            required: false,
            default: None,
            description,
        }
    }

    /// Free text.
    pub const fn text(name: &'static str, description: &'static str) -> Self {
        Setting::new(name, SettingKind::Text, description)
    }

    /// An absolute URL; the host allows calls to its host by default.
    pub const fn url(name: &'static str, description: &'static str) -> Self {
        Setting::new(name, SettingKind::Url, description)
    }

    /// A comma-separated list.
    pub const fn list(name: &'static str, description: &'static str) -> Self {
        Setting::new(name, SettingKind::List, description)
    }

    /// `true` or `false`.
    pub const fn flag(name: &'static str, description: &'static str) -> Self {
        Setting::new(name, SettingKind::Boolean, description)
    }

    /// The operator must give it.
    pub const fn required(self) -> Self {
        Setting {
            required: true,
            ..self
        }
    }

    /// The value when the operator gives none.
    pub const fn default(self, value: &'static str) -> Self {
        Setting {
            default: Some(value),
            ..self
        }
    }

    /// The declaration for `info`.
    pub fn spec(&self) -> SettingSpec {
        SettingSpec {
            name: self.name.into(),
            kind: self.kind,
            required: self.required,
            default_value: self.default.map(String::from),
            description: self.description.into(),
        }
    }

    /// The value, if there is one (the host has filled in the default).
    pub fn get<'a>(&self, config: &'a ProviderConfig) -> Option<&'a str> {
        config
            .settings
            .iter()
            .find(|(k, _)| k == self.name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// The value of a setting the provider cannot work without.
    pub fn value<'a>(&self, config: &'a ProviderConfig) -> Result<&'a str, ProviderError> {
        self.get(config).ok_or_else(|| {
            ProviderError::InvalidConfig(format!("setting `{}` is required", self.name))
        })
    }

    /// A URL value without its trailing slash, so paths can be appended.
    pub fn base_url<'a>(&self, config: &'a ProviderConfig) -> Result<&'a str, ProviderError> {
        Ok(self.value(config)?.trim_end_matches('/'))
    }

    /// A boolean value; absent means the declared default (else `false`).
    pub fn is_on(&self, config: &ProviderConfig) -> bool {
        match self.get(config).or(self.default) {
            Some(v) => matches!(v, "true" | "1" | "yes" | "on"),
            None => false,
        }
    }

    /// A list value; absent means empty.
    pub fn items(&self, config: &ProviderConfig) -> Vec<String> {
        self.get(config)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The declarations for `info`.
pub fn specs(settings: &[Setting]) -> Vec<SettingSpec> {
    settings.iter().map(Setting::spec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORGS: Setting = Setting::list("orgs", "Organizations.");
    const TEAMS: Setting = Setting::flag("teams", "Teams too.").default("true");
    const BASE: Setting = Setting::url("base_url", "The server.").required();

    fn config(settings: &[(&str, &str)]) -> ProviderConfig {
        ProviderConfig {
            client_id: "c".into(),
            redirect_uri: "https://r".into(),
            scopes: vec![],
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            has_client_secret: false,
        }
    }

    #[test]
    fn values_are_read_through_their_declaration() {
        let config = config(&[("orgs", "a, b,,"), ("base_url", "https://x/")]);
        assert_eq!(ORGS.items(&config), ["a", "b"]);
        assert!(TEAMS.is_on(&config), "the declared default applies");
        assert_eq!(BASE.base_url(&config).unwrap(), "https://x");
    }

    #[test]
    fn a_missing_required_value_names_the_key() {
        let err = BASE.value(&config(&[])).unwrap_err();
        assert!(matches!(err, ProviderError::InvalidConfig(m) if m.contains("base_url")));
        assert!(BASE.spec().required);
    }
}
