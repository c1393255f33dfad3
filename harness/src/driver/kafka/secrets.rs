//! Secrets in `engine.properties` (`sasl.password`, `ssl.key.password`, ...): values may come from
//! the environment (`${NAME}`), and a secret's value never reaches run.json, the report or the
//! terminal — the run records that it was set (and from which variable), not what it is.
//!
//! Built with or without `--features kafka`: the workload is recorded in run.json either way.

use serde_json::Value;

/// The properties librdkafka marks sensitive (`_RK_SENSITIVE` in its rdkafka_conf.c: it redacts
/// them in its own configuration dumps), and the alias of one of them.
const SENSITIVE: &[&str] = &[
    "sasl.username",
    "sasl.password",
    "sasl.oauthbearer.config",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.client.credentials.client.secret",
    "sasl.oauthbearer.assertion.private.key.file",
    "sasl.oauthbearer.assertion.private.key.passphrase",
    "sasl.oauthbearer.assertion.private.key.pem",
    "ssl.key.location",
    "ssl.key.password",
    "ssl.key.pem",
    "ssl_key",
    "ssl.ca.pem",
    "ssl.keystore.password",
];

/// Whether the property `key` holds a secret: librdkafka's sensitive properties, and any name with
/// `password` or `secret` in it (Java's `ssl.truststore.password` and the like).
pub(crate) fn is_secret(key: &str) -> bool {
    SENSITIVE.contains(&key) || key.contains("password") || key.contains("secret")
}

/// The property a dotted workload path names when it is under `engine.properties`
/// (`engine.properties.sasl.password` -> `sasl.password`).
fn property_of(path: &str) -> Option<&str> {
    path.strip_prefix("engine.properties.")
}

/// `value` with every `${NAME}` replaced by the environment variable NAME (`$${` stands for a
/// literal `${`). The error names the variable; it never quotes the value.
pub(crate) fn expand_env(value: &str) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let end = after.find('}').ok_or("`${` without its closing `}` (write `$${` for a literal `${`)")?;
            let name = &after[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("`${{{name}}}` is no environment variable name (letters, digits, `_`)"));
            }
            let v = std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))?;
            out.push_str(&v);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// What run.json says instead of a secret's value: that it was set, and from which variables.
fn marker(written: &Value) -> Value {
    let text = match written {
        Value::String(s) => s.as_str(),
        _ => "",
    };
    let vars: Vec<&str> = text
        .match_indices("${")
        .filter(|(i, _)| !text[..*i].ends_with('$'))
        .filter_map(|(i, _)| text[i + 2..].split_once('}').map(|(name, _)| name))
        .collect();
    Value::String(if vars.is_empty() {
        "(secret, set)".to_string()
    } else {
        format!("(secret, set from {})", vars.iter().map(|v| format!("${{{v}}}")).collect::<Vec<_>>().join(", "))
    })
}

/// The resolved workload as run.json records it: each secret in `engine.properties` replaced by a
/// marker, and the other properties' `${NAME}` replaced by the value that ran.
pub(crate) fn record_workload(workload: &mut Value) {
    let Some(props) = workload.pointer_mut("/engine/properties").and_then(Value::as_object_mut) else { return };
    for (k, v) in props.iter_mut() {
        if is_secret(k) {
            *v = marker(v);
        } else if let Value::String(s) = v
            && let Ok(expanded) = expand_env(s)
        {
            *s = expanded;
        }
    }
}

/// Whether `key = value` (a `--set` override or a swept parameter) carries a secret: a secret
/// property by its path, or `engine.properties` as a whole with a secret among its keys.
fn carries_secret(key: &str, value: &Value) -> bool {
    match key {
        "engine.properties" => match value {
            Value::Object(m) => m.keys().any(|k| is_secret(k)),
            // An override's text, not parsed yet: any secret property's name in it.
            Value::String(text) => SENSITIVE.iter().any(|k| text.contains(k)) || is_secret(text),
            Value::Array(values) => values.iter().any(|v| carries_secret(key, v)),
            _ => false,
        },
        _ => property_of(key).is_some_and(is_secret),
    }
}

/// `--set KEY=VALUE` overrides as run.json records them: a value carrying a secret replaced.
pub(crate) fn record_overrides(overrides: &[String]) -> Vec<String> {
    overrides
        .iter()
        .map(|o| match o.split_once('=') {
            Some((key, value)) if carries_secret(key.trim(), &Value::String(value.to_string())) => {
                format!("{key}={}", marker(&Value::String(value.to_string())).as_str().unwrap_or_default())
            }
            _ => o.clone(),
        })
        .collect()
}

/// The swept key carrying a secret, if any: a secret cannot be swept, since swept values name the
/// cases (in their ids, the terminal and the report).
#[cfg(feature = "kafka")]
pub(crate) fn swept_secret<'a>(params: impl IntoIterator<Item = (&'a String, &'a Value)>) -> Option<&'a str> {
    params.into_iter().find(|(k, v)| carries_secret(k, v)).map(|(k, _)| k.as_str())
}

/// `message` with every occurrence of a secret's value replaced, for errors that may quote it.
pub(crate) fn scrub(message: &str, secret: &str) -> String {
    if secret.is_empty() { message.to_string() } else { message.replace(secret, "(secret)") }
}

/// The secret values a run or a validation carries, to scrub from whatever it prints: each secret
/// property of the workload file's `engine.properties` (as written, and with `${NAME}` expanded)
/// and each `--set` that carries one (its text after `=`, and the strings in it once parsed).
/// Longest first, so that a secret containing another is replaced whole.
pub(crate) fn secret_values(workload_text: Option<&str>, overrides: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut add = |v: &Value| {
        leaves(v, &mut |s| {
            out.push(s.to_string());
            if let Ok(expanded) = expand_env(s) {
                out.push(expanded);
            }
        })
    };
    if let Some(Ok(file)) = workload_text.map(serde_saphyr::from_str::<Value>)
        && let Some(props) = file.pointer("/engine/properties").and_then(Value::as_object)
    {
        props.iter().filter(|(k, _)| is_secret(k)).for_each(|(_, v)| add(v));
    }
    for o in overrides {
        let Some((key, text)) = o.split_once('=') else { continue };
        let key = key.trim();
        if !carries_secret(key, &Value::String(text.to_string())) {
            continue;
        }
        add(&Value::String(text.to_string()));
        if let Ok(parsed) = serde_saphyr::from_str::<Value>(text) {
            match (&parsed, key) {
                (Value::Object(m), "engine.properties") => {
                    m.iter().filter(|(k, _)| is_secret(k)).for_each(|(_, v)| add(v));
                }
                _ => add(&parsed),
            }
        }
    }
    out.retain(|s| !s.trim().is_empty());
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// Every string (and number, as written) inside `v`.
fn leaves(v: &Value, f: &mut dyn FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Number(n) => f(&n.to_string()),
        Value::Array(a) => a.iter().for_each(|v| leaves(v, f)),
        Value::Object(m) => m.values().for_each(|v| leaves(v, f)),
        Value::Bool(_) | Value::Null => {}
    }
}

/// `message` with each of `secrets` ([`secret_values`]) replaced by `(secret)`.
pub(crate) fn scrub_all(message: &str, secrets: &[String]) -> String {
    secrets.iter().fold(message.to_string(), |m, s| scrub(&m, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn librdkafkas_sensitive_properties_and_password_names_are_secrets() {
        for k in ["sasl.password", "ssl.key.password", "sasl.oauthbearer.client.secret", "ssl.truststore.password"] {
            assert!(is_secret(k), "{k}");
        }
        for k in ["security.protocol", "sasl.mechanism", "ssl.ca.location", "socket.nagle.disable"] {
            assert!(!is_secret(k), "{k}");
        }
    }

    /// A variable every test process has (cargo sets it for the test binary).
    const SET: &str = "CARGO_PKG_NAME";

    #[test]
    fn env_references_expand_and_name_a_missing_variable() {
        let name = std::env::var(SET).unwrap();
        assert_eq!(expand_env(&format!("x-${{{SET}}}-y")).unwrap(), format!("x-{name}-y"));
        assert_eq!(expand_env("cost $5, $${literal}").unwrap(), "cost $5, ${literal}");
        let err = expand_env("${KBENCH_SECRETS_TEST_MISSING}").unwrap_err();
        assert!(err.contains("KBENCH_SECRETS_TEST_MISSING") && err.contains("not set"), "{err}");
        assert!(expand_env("${unclosed").is_err());
        assert!(expand_env("${bad name}").is_err());
    }

    #[test]
    fn run_json_records_that_a_secret_was_set_not_its_value() {
        let mut w = serde_json::json!({ "engine": { "properties": {
            "sasl.password": "hunter2",
            "ssl.key.password": "${KBENCH_PASS}",
            "ssl.ca.location": format!("/etc/${{{SET}}}.pem"),
            "socket.nagle.disable": true,
        }}});
        record_workload(&mut w);
        let p = &w["engine"]["properties"];
        assert_eq!(p["sasl.password"], "(secret, set)");
        assert_eq!(p["ssl.key.password"], "(secret, set from ${KBENCH_PASS})");
        assert_eq!(p["ssl.ca.location"], format!("/etc/{}.pem", std::env::var(SET).unwrap()));
        assert_eq!(p["socket.nagle.disable"], true);
        let o = record_overrides(&[
            "engine.properties.sasl.password=hunter2".into(),
            "engine.properties={sasl.password: hunter2, acks: 1}".into(),
            "producer.linger.ms=5".into(),
        ]);
        assert_eq!(
            o,
            [
                "engine.properties.sasl.password=(secret, set)",
                "engine.properties=(secret, set)",
                "producer.linger.ms=5"
            ]
        );
    }

    #[test]
    fn secret_values_come_from_the_file_and_the_command_line_and_are_scrubbed() {
        let file = "name: x\nengine: { properties: { sasl.password: 'file-pass', sasl.mechanism: PLAIN, \
                    ssl.key.password: { nested: deep-pass } } }\nrecords: { duration: 1s }\n";
        let secrets = secret_values(
            Some(file),
            &[
                "engine.properties.sasl.password=[cli-pass".into(),
                "engine.properties={sasl.username: cli-user, acks: 1}".into(),
                "producer.linger.ms=5".into(),
            ],
        );
        for s in ["file-pass", "deep-pass", "[cli-pass", "cli-user"] {
            assert!(secrets.iter().any(|v| v == s), "{s}: {secrets:?}");
        }
        assert!(!secrets.iter().any(|v| v == "PLAIN" || v == "5" || v == "1"), "{secrets:?}");
        assert_eq!(
            scrub_all("bad [cli-pass and file-pass, not PLAIN", &secrets),
            "bad (secret) and (secret), not PLAIN"
        );
    }

    #[test]
    #[cfg(feature = "kafka")]
    fn a_swept_secret_is_found_and_errors_are_scrubbed() {
        let swept = |k: &str, v: Value| swept_secret([(&k.to_string(), &v)]).map(str::to_string);
        assert_eq!(
            swept("engine.properties", serde_json::json!({"sasl.password": "a"})).as_deref(),
            Some("engine.properties")
        );
        assert_eq!(
            swept("engine.properties.ssl.key.password", serde_json::json!("a")).as_deref(),
            Some("engine.properties.ssl.key.password")
        );
        assert_eq!(swept("engine.properties", serde_json::json!({"linger.ms": 1})), None);
        assert_eq!(swept("producer.linger.ms", serde_json::json!(5)), None);
        assert_eq!(scrub("bad value hunter2", "hunter2"), "bad value (secret)");
    }
}
