//! Who may use an MCP server and which of its tools, resources and prompts, decided on
//! every request from the caller alone (MCP has no session to remember a decision in).
//!
//! Conditions are CEL expressions over:
//! - `user`: `sub`, `preferred_username`, `email`, `email_verified`, `name`, `groups`,
//!   `roles`, `extra` (the provider's extras, e.g. `extra.cloud_ids`);
//! - `client_id`, `provider`, `auth` (`oauth`, `api_key`, `client_token`,
//!   `static_token`), `scopes` (a list);
//! - `tool`, `uri`, `prompt`: the tool called, the resource read or the prompt got
//!   (empty when the request is about something else, and for the server-wide
//!   condition).

use super::body::Target;
use super::caller::Caller;
use crate::config::PolicyConfig;
use cel::{Context, Env, Program};
use std::sync::Arc;
use wildmatch::WildMatch;

pub struct Policy {
    env: Arc<Env>,
    allow: Option<Condition>,
    tools: Capability,
    resources: Capability,
    prompts: Capability,
}

/// The allow and deny lists and rules of one kind of capability.
#[derive(Default)]
struct Capability {
    allow: Vec<WildMatch>,
    deny: Vec<WildMatch>,
    rules: Vec<Rule>,
}

impl Capability {
    fn is_restricted(&self) -> bool {
        !self.allow.is_empty() || !self.deny.is_empty() || !self.rules.is_empty()
    }
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("allow", &self.allow.as_ref().map(|c| &c.source))
            .field("tool_rules", &self.tools.rules.len())
            .finish_non_exhaustive()
    }
}

/// Why a tool, resource or prompt may not be used.
#[derive(Debug)]
pub struct Denial {
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
    names: Vec<WildMatch>,
    allow: Option<Condition>,
    scopes: Vec<String>,
}

impl Target {
    fn kind(&self) -> &'static str {
        match self {
            Target::Tool(_) => "tool",
            Target::Resource(_) => "resource",
            Target::Prompt(_) => "prompt",
        }
    }

    fn name(&self) -> &str {
        match self {
            Target::Tool(n) | Target::Resource(n) | Target::Prompt(n) => n,
        }
    }
}

impl Policy {
    /// Compile `config`; every problem is reported under `key` (`mcp_servers.x.policy`).
    pub fn compile(config: &PolicyConfig, key: &str) -> Result<Policy, Vec<String>> {
        let env = Arc::new(Env::stdlib());
        let mut problems = Vec::new();
        let allow = compile_condition(&env, &config.allow, format!("{key}.allow"), &mut problems);
        let mut capability = |table: &str, field: &str, allow, deny, rules: Vec<RuleConfig>| {
            let rules = rules
                .into_iter()
                .enumerate()
                .map(|(i, (names, condition, scopes))| {
                    if names.is_empty() {
                        problems.push(format!("{key}.{table}[{i}].{field}: name at least one"));
                    }
                    let at = format!("{key}.{table}[{i}].allow");
                    Rule {
                        names: globs(names),
                        allow: compile_condition(&env, condition, at, &mut problems),
                        scopes: scopes.clone(),
                    }
                })
                .collect();
            Capability {
                allow: globs(allow),
                deny: globs(deny),
                rules,
            }
        };
        let tools = capability(
            "tools",
            "tools",
            &config.allow_tools,
            &config.deny_tools,
            config
                .tools
                .iter()
                .map(|r| (&r.tools, &r.allow, &r.scopes))
                .collect(),
        );
        let resources = capability(
            "resources",
            "uris",
            &config.allow_resources,
            &config.deny_resources,
            config
                .resources
                .iter()
                .map(|r| (&r.uris, &r.allow, &r.scopes))
                .collect(),
        );
        let prompts = capability(
            "prompts",
            "prompts",
            &config.allow_prompts,
            &config.deny_prompts,
            config
                .prompts
                .iter()
                .map(|r| (&r.prompts, &r.allow, &r.scopes))
                .collect(),
        );
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Policy {
            env,
            allow,
            tools,
            resources,
            prompts,
        })
    }

    /// Whether anything restricts tools, resources or prompts: request bodies must then
    /// be read (strictly) and list answers filtered.
    pub fn inspects_bodies(&self) -> bool {
        self.tools.is_restricted() || self.resources.is_restricted() || self.prompts.is_restricted()
    }

    /// The server-wide condition. `Err` says why not.
    pub fn admits(&self, caller: &Caller) -> Result<(), String> {
        match &self.allow {
            Some(condition) => self.holds(condition, caller, None),
            None => Ok(()),
        }
    }

    fn capability(&self, target: &Target) -> &Capability {
        match target {
            Target::Tool(_) => &self.tools,
            Target::Resource(_) => &self.resources,
            Target::Prompt(_) => &self.prompts,
        }
    }

    /// Whether the caller may use `target` (call the tool, read the resource, get the
    /// prompt).
    pub fn allows(&self, caller: &Caller, target: &Target) -> Result<(), Denial> {
        let (kind, name) = (target.kind(), target.name());
        let capability = self.capability(target);
        let refused = |reason: String| Denial {
            reason,
            missing_scopes: Vec::new(),
        };
        if capability.deny.iter().any(|g| g.matches(name)) {
            return Err(refused(format!(
                "the {kind} `{name}` is denied on this server"
            )));
        }
        if !capability.allow.is_empty() && !capability.allow.iter().any(|g| g.matches(name)) {
            return Err(refused(format!(
                "the {kind} `{name}` is not among this server's allowed {kind}s"
            )));
        }
        let mut missing_scopes: Vec<String> = Vec::new();
        for rule in capability
            .rules
            .iter()
            .filter(|r| r.names.iter().any(|g| g.matches(name)))
        {
            if let Some(condition) = &rule.allow {
                self.holds(condition, caller, Some(target))
                    .map_err(|why| refused(format!("using the {kind} `{name}`: {why}")))?;
            }
            for scope in &rule.scopes {
                if !caller.has_scope(scope) && !missing_scopes.contains(scope) {
                    missing_scopes.push(scope.clone());
                }
            }
        }
        if missing_scopes.is_empty() {
            Ok(())
        } else {
            Err(Denial {
                reason: format!(
                    "the {kind} `{name}` needs the scope `{}`",
                    missing_scopes.join(" ")
                ),
                missing_scopes,
            })
        }
    }

    /// Every scope a rule asks for: clients may request them for this server.
    pub fn rule_scopes(&self) -> impl Iterator<Item = &String> {
        [&self.tools, &self.resources, &self.prompts]
            .into_iter()
            .flat_map(|c| c.rules.iter().flat_map(|r| r.scopes.iter()))
    }

    fn holds(
        &self,
        condition: &Condition,
        caller: &Caller,
        target: Option<&Target>,
    ) -> Result<(), String> {
        let refused = || format!("the condition `{}` does not hold for you", condition.source);
        let named = |kind: fn(&Target) -> Option<&str>| target.and_then(kind).unwrap_or("");
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
            .and_then(|_| {
                context.add_variable(
                    "tool",
                    named(|t| match t {
                        Target::Tool(n) => Some(n),
                        _ => None,
                    }),
                )
            })
            .and_then(|_| {
                context.add_variable(
                    "uri",
                    named(|t| match t {
                        Target::Resource(n) => Some(n),
                        _ => None,
                    }),
                )
            })
            .and_then(|_| {
                context.add_variable(
                    "prompt",
                    named(|t| match t {
                        Target::Prompt(n) => Some(n),
                        _ => None,
                    }),
                )
            });
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

/// A rule as configured: the names it covers, its condition and its scopes.
type RuleConfig<'a> = (&'a Vec<String>, &'a Option<String>, &'a Vec<String>);

fn compile_condition(
    env: &Env,
    source: &Option<String>,
    at: String,
    problems: &mut Vec<String>,
) -> Option<Condition> {
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
}

fn globs(patterns: &[String]) -> Vec<WildMatch> {
    patterns.iter().map(|p| WildMatch::new(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ToolRule;
    use crate::domain::user::User;
    use crate::gateway::caller::Via;

    fn tool(name: &str) -> Target {
        Target::Tool(name.into())
    }

    fn caller(email: &str, groups: &[&str], scopes: &[&str]) -> Caller {
        let user = User {
            sub: "u1".into(),
            email: Some(email.into()),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..User::default()
        };
        Caller {
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ..Caller::new(Via::Oauth, user)
        }
    }

    #[test]
    fn conditions_lists_and_scopes_decide() {
        let policy = Policy::compile(
            &PolicyConfig {
                allow: Some(r#"user.email.endsWith("@example.com")"#.into()),
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
                ..PolicyConfig::default()
            },
            "p",
        )
        .unwrap();
        let alice = caller("alice@example.com", &["admins"], &["mcp"]);
        let bob = caller("bob@example.com", &["staff"], &["mcp", "mcp:write"]);
        let eve = caller("eve@evil.test", &["admins"], &["mcp"]);
        assert!(policy.admits(&alice).is_ok());
        assert!(policy.admits(&eve).unwrap_err().contains("endsWith"));
        assert!(policy.allows(&alice, &tool("delete_rows")).is_ok());
        assert!(policy.allows(&bob, &tool("delete_rows")).is_err());
        assert!(policy.allows(&alice, &tool("drop_table")).is_err());
        assert_eq!(
            policy
                .allows(&alice, &tool("write"))
                .unwrap_err()
                .missing_scopes,
            ["mcp:write"]
        );
        assert!(
            policy
                .allows(&bob, &tool("delete_rows"))
                .unwrap_err()
                .missing_scopes
                .is_empty()
        );
        assert!(policy.allows(&bob, &tool("write")).is_ok());
        assert!(policy.allows(&bob, &tool("search")).is_ok());
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
