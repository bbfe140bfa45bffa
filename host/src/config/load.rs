//! From file and environment to a `Config`: `${VAR}` references in string values are
//! replaced by the variable (`${VAR:-default}` when it may be unset, `$${` for a
//! literal `${`), then `AUTHHOST_<SECTION>__<KEY>` variables override single keys.

use super::Config;
use std::path::Path;
use toml::{Table, Value};

/// Every problem found, each naming its key.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<String>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid configuration:\n  {}", self.0.join("\n  "))
    }
}

impl std::error::Error for ConfigErrors {}

/// The prefix of override variables; `__` separates the parts of a key path.
const ENV_PREFIX: &str = "AUTHHOST_";

impl Config {
    /// Read the file (if any), interpolate, apply the environment's overrides, parse.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigErrors> {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        let lookup = |name: &str| std::env::var(name).ok();
        let text = match path {
            Some(path) => std::fs::read_to_string(path).map_err(|e| {
                ConfigErrors(vec![format!("cannot read config {}: {e}", path.display())])
            })?,
            None => String::new(),
        };
        let origin = path.map(|p| p.display().to_string());
        Config::from_parts(&text, origin.as_deref(), &lookup, &vars)
    }

    /// `load` without the process environment: `lookup` resolves `${VAR}`, `overrides`
    /// are `(name, value)` pairs such as `("AUTHHOST_SERVER__LISTEN", "0.0.0.0:80")`.
    pub fn from_parts(
        text: &str,
        origin: Option<&str>,
        lookup: &dyn Fn(&str) -> Option<String>,
        overrides: &[(String, String)],
    ) -> Result<Config, ConfigErrors> {
        let at = |e: String| match origin {
            Some(file) => format!("{file}: {e}"),
            None => e,
        };
        let mut table: Table =
            toml::from_str(text).map_err(|e| ConfigErrors(vec![at(e.to_string())]))?;
        for (name, raw) in overrides {
            if let Some(path) = override_path(name) {
                set_path(&mut table, &path, parse_override(raw));
            }
        }
        let mut problems = Vec::new();
        interpolate_table(&mut table, "", lookup, &mut problems);
        if !problems.is_empty() {
            return Err(ConfigErrors(problems.into_iter().map(at).collect()));
        }
        serde_path_to_error::deserialize(Value::Table(table)).map_err(|e| {
            let key = e.path().to_string();
            let message = e.into_inner().message().trim().to_string();
            ConfigErrors(vec![at(if key == "." {
                message
            } else {
                format!("key `{key}`: {message}")
            })])
        })
    }
}

/// `AUTHHOST_PROVIDERS__GITHUB__CLIENT_ID` → `["providers", "github", "client_id"]`.
/// Variables without `__` (`AUTHHOST_LOG`, `AUTHHOST_CONFIG`, ...) are not overrides.
fn override_path(name: &str) -> Option<Vec<String>> {
    let rest = name.strip_prefix(ENV_PREFIX)?;
    if !rest.contains("__") {
        return None;
    }
    let parts: Vec<String> = rest.split("__").map(|p| p.to_lowercase()).collect();
    parts.iter().all(|p| !p.is_empty()).then_some(parts)
}

/// A TOML value when the text is one (`true`, `8080`, `["a", "b"]`), else a string.
fn parse_override(raw: &str) -> Value {
    toml::from_str::<Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_string()))
}

fn set_path(table: &mut Table, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = table;
    for part in parents {
        let entry = current
            .entry(part.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        let Value::Table(next) = entry else {
            return;
        };
        current = next;
    }
    current.insert(last.clone(), value);
}

fn interpolate_table(
    table: &mut Table,
    prefix: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) {
    for (key, value) in table.iter_mut() {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        interpolate_value(value, &path, lookup, problems);
    }
}

fn interpolate_value(
    value: &mut Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) {
    match value {
        Value::String(text) => match interpolate(text, lookup) {
            Ok(done) => *text = done,
            Err(e) => problems.push(format!("key `{path}`: {e}")),
        },
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_value(item, &format!("{path}[{i}]"), lookup, problems);
            }
        }
        Value::Table(table) => interpolate_table(table, path, lookup, problems),
        _ => {}
    }
}

/// Replace `${VAR}` and `${VAR:-default}`; `$${` stays a literal `${`.
fn interpolate(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        if rest[..at].ends_with('$') {
            out.push_str(&rest[..at]);
            out.push('{');
            rest = &rest[at + 2..];
            continue;
        }
        out.push_str(&rest[..at]);
        let Some(end) = rest[at..].find('}') else {
            return Err(format!("unclosed `${{` in `{text}`"));
        };
        let reference = &rest[at + 2..at + end];
        let (name, default) = match reference.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (reference, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`${{{reference}}}` is not a variable reference"));
        }
        match (lookup(name), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => return Err(format!("environment variable `{name}` is not set")),
        }
        rest = &rest[at + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "GITHUB_ID" => Some("Iv1.abc".into()),
            "PORT" => Some("9000".into()),
            _ => None,
        }
    }

    #[test]
    fn references_are_replaced_and_defaults_apply() {
        assert_eq!(
            interpolate("id ${GITHUB_ID}!", &env).unwrap(),
            "id Iv1.abc!"
        );
        assert_eq!(interpolate("${NOPE:-fallback}", &env).unwrap(), "fallback");
        assert_eq!(interpolate("$${GITHUB_ID}", &env).unwrap(), "${GITHUB_ID}");
        assert!(interpolate("${NOPE}", &env).unwrap_err().contains("`NOPE`"));
        assert!(interpolate("${bad-name}", &env).is_err());
    }

    #[test]
    fn every_unset_variable_is_reported_with_its_key() {
        let text = r#"
            [server]
            base_url = "https://${MISSING_HOST}"
            [providers.gh]
            component = "github"
            client_id = "${GITHUB_ID}"
            client_secret = "${MISSING_SECRET}"
        "#;
        let err = Config::from_parts(text, Some("authhost.toml"), &env, &[]).unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        assert!(err.to_string().contains("providers.gh.client_secret"));
        assert!(err.to_string().contains("server.base_url"));
        assert!(err.to_string().contains("authhost.toml"));
    }

    #[test]
    fn environment_overrides_single_keys() {
        let text = "[server]\nlisten = \"127.0.0.1:8080\"\n[providers.gh]\nclient_id = \"file\"\n";
        let overrides = vec![
            (
                "AUTHHOST_SERVER__LISTEN".to_string(),
                "0.0.0.0:${PORT}".to_string(),
            ),
            (
                "AUTHHOST_PROVIDERS__GH__CLIENT_ID".to_string(),
                "env".to_string(),
            ),
            (
                "AUTHHOST_TOKENS__ACCESS_TOKEN_TTL".to_string(),
                "60".to_string(),
            ),
            ("AUTHHOST_LOG".to_string(), "debug".to_string()),
        ];
        let config = Config::from_parts(text, None, &env, &overrides).unwrap();
        assert_eq!(config.server.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(config.providers["gh"].client_id, "env");
        assert_eq!(config.tokens.access_token_ttl, 60);
    }

    #[test]
    fn an_override_with_a_wrong_type_names_the_key() {
        let overrides = vec![(
            "AUTHHOST_TOKENS__ACCESS_TOKEN_TTL".to_string(),
            "soon".to_string(),
        )];
        let err = Config::from_parts("", None, &env, &overrides).unwrap_err();
        assert!(err.to_string().contains("access_token_ttl"), "{err}");
    }
}
