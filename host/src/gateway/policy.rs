//! Who may use an MCP server and call which of its tools, decided on every request
//! from the caller alone (MCP has no session to remember a decision in).
//!
//! Conditions are CEL expressions over:
//! - `user`: `sub`, `preferred_username`, `email`, `email_verified`, `name`, `groups`,
//!   `roles`, `extra` (the provider's extras, e.g. `extra.cloud_ids`);
//! - `client_id`, `provider`, `auth` (`oauth`, `api_key`, `client_token`,
//!   `static_token`), `scopes` (a list);
//! - `tool`: the tool's name (empty for the server-wide condition).

use super::caller::Caller;
use crate::config::PolicyConfig;
use cel::{Context, Env, Program};
use std::sync::Arc;
use wildmatch::WildMatch;

pub struct Policy {
    env: Arc<Env>,
    allow: Option<Condition>,
    allow_tools: Vec<WildMatch>,
    deny_tools: Vec<WildMatch>,
    rules: Vec<Rule>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("allow", &self.allow.as_ref().map(|c| &c.source))
            .field("rules", &self.rules.len())
            .finish_non_exhaustive()
    }
}

/// Why a tool may not be called.
#[derive(Debug)]
pub struct ToolDenial {
    pub reason: String,
    /// When only scopes are lacking: which. An OAuth client can get them by asking for
    /// them in a new authorization (step-up), so the answer is a scope challenge.
    pub missing_scopes: Vec<String>,
}

struct Condition {
    source: String,
    program: Program,
}

struct Rule {
    tools: Vec<WildMatch>,
    allow: Option<Condition>,
    scopes: Vec<String>,
}

impl Policy {
    /// Compile `config`; every problem is reported under `key` (`mcp_servers.x.policy`).
    pub fn compile(config: &PolicyConfig, key: &str) -> Result<Policy, Vec<String>> {
        let env = Arc::new(Env::stdlib());
        let mut problems = Vec::new();
        let mut condition = |source: &Option<String>, at: String| {
            let source = source.as_ref()?;
            match env.compile(source) {
                Ok(program) => Some(Condition {
                    source: source.clone(),
                    program,
                }),
                Err(e) => {
                    problems.push(format!(
                        "{at}: `{source}` is not a valid CEL expression: {e}"
                    ));
                    None
                }
            }
        };
        let allow = condition(&config.allow, format!("{key}.allow"));
        let mut rules = Vec::new();
        for (i, rule) in config.tools.iter().enumerate() {
            rules.push(Rule {
                tools: globs(&rule.tools),
                allow: condition(&rule.allow, format!("{key}.tools[{i}].allow")),
                scopes: rule.scopes.clone(),
            });
        }
        for (i, rule) in config.tools.iter().enumerate() {
            if rule.tools.is_empty() {
                problems.push(format!("{key}.tools[{i}].tools: name at least one tool"));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Policy {
            env,
            allow,
            allow_tools: globs(&config.allow_tools),
            deny_tools: globs(&config.deny_tools),
            rules,
        })
    }

    /// Whether anything restricts tools (so calls and lists must be looked into).
    pub fn restricts_tools(&self) -> bool {
        !self.allow_tools.is_empty() || !self.deny_tools.is_empty() || !self.rules.is_empty()
    }

    /// The server-wide condition. `Err` says why not.
    pub fn admits(&self, caller: &Caller) -> Result<(), String> {
        match &self.allow {
            Some(condition) => self.holds(condition, caller, ""),
            None => Ok(()),
        }
    }

    /// Whether the caller may call `tool`.
    pub fn allows_tool(&self, caller: &Caller, tool: &str) -> Result<(), ToolDenial> {
        let refused = |reason: String| ToolDenial {
            reason,
            missing_scopes: Vec::new(),
        };
        if self.deny_tools.iter().any(|g| g.matches(tool)) {
            return Err(refused(format!(
                "the tool `{tool}` is denied on this server"
            )));
        }
        if !self.allow_tools.is_empty() && !self.allow_tools.iter().any(|g| g.matches(tool)) {
            return Err(refused(format!(
                "the tool `{tool}` is not in this server's allowed tools"
            )));
        }
        let mut missing_scopes: Vec<String> = Vec::new();
        for rule in self
            .rules
            .iter()
            .filter(|r| r.tools.iter().any(|g| g.matches(tool)))
        {
            if let Some(condition) = &rule.allow {
                self.holds(condition, caller, tool)
                    .map_err(|why| refused(format!("calling `{tool}`: {why}")))?;
            }
            for scope in &rule.scopes {
                if !caller.scopes.contains(scope) && !missing_scopes.contains(scope) {
                    missing_scopes.push(scope.clone());
                }
            }
        }
        if missing_scopes.is_empty() {
            Ok(())
        } else {
            Err(ToolDenial {
                reason: format!(
                    "the tool `{tool}` needs the scope `{}`",
                    missing_scopes.join(" ")
                ),
                missing_scopes,
            })
        }
    }

    /// Every scope a tool rule asks for: clients may request them for this server.
    pub fn tool_scopes(&self) -> impl Iterator<Item = &String> {
        self.rules.iter().flat_map(|r| r.scopes.iter())
    }

    fn holds(&self, condition: &Condition, caller: &Caller, tool: &str) -> Result<(), String> {
        let refused = || format!("the condition `{}` does not hold for you", condition.source);
        let mut context = Context::with_env(self.env.clone());
        let bound = context
            .add_variable("user", &caller.user)
            .and_then(|_| {
                context.add_variable("client_id", caller.client_id.as_deref().unwrap_or(""))
            })
            .and_then(|_| {
                context.add_variable("provider", caller.provider.as_deref().unwrap_or(""))
            })
            .and_then(|_| context.add_variable("auth", caller.via.as_str()))
            .and_then(|_| context.add_variable("scopes", &caller.scopes))
            .and_then(|_| context.add_variable("tool", tool));
        if let Err(e) = bound {
            tracing::error!("policy variables: {e}");
            return Err(refused());
        }
        match condition.program.execute(&context) {
            Ok(cel::Value::Bool(true)) => Ok(()),
            Ok(cel::Value::Bool(false)) => Err(refused()),
            Ok(other) => {
                tracing::warn!(
                    condition = condition.source,
                    "policy condition gave {other:?}, not a boolean; denying"
                );
                Err(refused())
            }
            // A missing claim (no email, say) is an error in CEL: it denies.
            Err(e) => {
                tracing::debug!(
                    condition = condition.source,
                    "policy condition failed: {e}; denying"
                );
                Err(refused())
            }
        }
    }
}

fn globs(patterns: &[String]) -> Vec<WildMatch> {
    patterns.iter().map(|p| WildMatch::new(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ToolRule;
    use crate::gateway::caller::{User, Via};

    fn caller(email: &str, groups: &[&str], scopes: &[&str]) -> Caller {
        Caller {
            user: User {
                sub: "u1".into(),
                email: Some(email.into()),
                groups: groups.iter().map(|g| g.to_string()).collect(),
                ..User::default()
            },
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ..Caller::new(Via::Oauth)
        }
    }

    #[test]
    fn conditions_lists_and_scopes_decide() {
        let policy = Policy::compile(
            &PolicyConfig {
                allow: Some(r#"user.email.endsWith("@example.com")"#.into()),
                allow_tools: vec![],
                deny_tools: vec!["drop_*".into()],
                tools: vec![
                    ToolRule {
                        tools: vec!["delete_*".into()],
                        allow: Some(r#""admins" in user.groups"#.into()),
                        scopes: vec![],
                    },
                    ToolRule {
                        tools: vec!["write".into()],
                        allow: None,
                        scopes: vec!["mcp:write".into()],
                    },
                ],
            },
            "p",
        )
        .unwrap();
        let alice = caller("alice@example.com", &["admins"], &["mcp"]);
        let bob = caller("bob@example.com", &["staff"], &["mcp", "mcp:write"]);
        let eve = caller("eve@evil.test", &["admins"], &["mcp"]);
        assert!(policy.admits(&alice).is_ok());
        assert!(policy.admits(&eve).unwrap_err().contains("endsWith"));
        assert!(policy.allows_tool(&alice, "delete_rows").is_ok());
        assert!(policy.allows_tool(&bob, "delete_rows").is_err());
        assert!(policy.allows_tool(&alice, "drop_table").is_err());
        assert_eq!(
            policy
                .allows_tool(&alice, "write")
                .unwrap_err()
                .missing_scopes,
            ["mcp:write"]
        );
        assert!(
            policy
                .allows_tool(&bob, "delete_rows")
                .unwrap_err()
                .missing_scopes
                .is_empty()
        );
        assert!(policy.allows_tool(&bob, "write").is_ok());
        assert!(policy.allows_tool(&bob, "search").is_ok());
    }

    #[test]
    fn a_missing_claim_denies_and_bad_expressions_are_named() {
        let policy = Policy::compile(
            &PolicyConfig {
                allow: Some(r#"user.extra.department == "sales""#.into()),
                ..PolicyConfig::default()
            },
            "p",
        )
        .unwrap();
        assert!(policy.admits(&caller("a@example.com", &[], &[])).is_err());
        let err = Policy::compile(
            &PolicyConfig {
                allow: Some("user.email ==".into()),
                ..PolicyConfig::default()
            },
            "mcp_servers.docs.policy",
        )
        .unwrap_err();
        assert!(err[0].contains("mcp_servers.docs.policy.allow"), "{err:?}");
    }
}
