//! Secrets that never print (`Debug` and `Display` show `[redacted]`), and the one way
//! a secret is read from configuration.

use std::fmt;
use std::path::Path;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where the configuration may hold one secret: the value itself under `<key>`, the
/// name of an environment variable under `<key>_env`, or a file under `<key>_file`.
#[derive(Clone, Copy, Default)]
pub struct SecretKeys<'a> {
    pub key: &'a str,
    pub inline: Option<&'a str>,
    pub env: Option<&'a str>,
    pub file: Option<&'a Path>,
}

impl SecretKeys<'_> {
    /// The secret from whichever key holds it. One rule everywhere: at most one key;
    /// an unset or empty variable, or an unreadable or blank file, is an error naming
    /// the key (never the value); a file's surrounding whitespace (its newline) goes.
    pub fn load(&self) -> Result<Option<Secret>, String> {
        let key = self.key;
        let given = [
            self.inline.is_some(),
            self.env.is_some(),
            self.file.is_some(),
        ];
        if given.iter().filter(|given| **given).count() > 1 {
            return Err(format!(
                "set only one of `{key}`, `{key}_env`, `{key}_file`"
            ));
        }
        if let Some(value) = self.inline {
            return match value.is_empty() {
                true => Err(format!("key `{key}` is empty")),
                false => Ok(Some(Secret::new(value))),
            };
        }
        if let Some(var) = self.env {
            return match std::env::var(var) {
                Ok(value) if !value.is_empty() => Ok(Some(Secret::new(value))),
                _ => Err(format!(
                    "key `{key}_env`: environment variable `{var}` is not set"
                )),
            };
        }
        if let Some(path) = self.file {
            return match std::fs::read_to_string(path) {
                Ok(value) if !value.trim().is_empty() => Ok(Some(Secret::new(value.trim()))),
                Ok(_) => Err(format!("key `{key}_file`: {} is empty", path.display())),
                Err(e) => Err(format!(
                    "key `{key}_file`: cannot read {}: {e}",
                    path.display()
                )),
            };
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::SecretKeys;

    #[test]
    fn one_source_one_rule() {
        let dir = std::env::temp_dir().join(format!("authhost-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (file, blank) = (dir.join("secret"), dir.join("blank"));
        std::fs::write(&file, "  s3cret-from-file\n").unwrap();
        std::fs::write(&blank, "\n").unwrap();
        let keys = |inline, env, file| SecretKeys {
            key: "client_secret",
            inline,
            env,
            file,
        };
        let load = |k: SecretKeys| k.load().map(|s| s.map(|s| s.expose().to_string()));

        assert_eq!(load(keys(None, None, None)), Ok(None));
        assert_eq!(load(keys(Some("x"), None, None)), Ok(Some("x".into())));
        assert_eq!(
            load(keys(None, None, Some(&file))),
            Ok(Some("s3cret-from-file".into()))
        );
        assert_eq!(
            load(keys(Some("x"), Some("VAR"), None)),
            Err(
                "set only one of `client_secret`, `client_secret_env`, `client_secret_file`".into()
            )
        );
        assert_eq!(
            load(keys(None, Some("AUTHHOST_SURELY_UNSET_VARIABLE"), None)),
            Err("key `client_secret_env`: environment variable `AUTHHOST_SURELY_UNSET_VARIABLE` is not set".into())
        );
        let blank_error = load(keys(None, None, Some(&blank))).unwrap_err();
        assert!(
            blank_error.starts_with("key `client_secret_file`:"),
            "{blank_error}"
        );
        assert!(blank_error.ends_with("is empty"), "{blank_error}");
        let absent = dir.join("absent");
        let missing = load(keys(None, None, Some(&absent))).unwrap_err();
        assert!(missing.contains("cannot read"), "{missing}");
        assert_eq!(
            load(keys(Some(""), None, None)),
            Err("key `client_secret` is empty".into())
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn never_prints() {
        let s = super::Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }
}
