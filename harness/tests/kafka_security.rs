//! TLS and SASL on `engine.kind: kafka` (librdkafka built with OpenSSL): end to end through a TLS
//! proxy in front of tansu; refusals (a wrong CA, a wrong key password, a SASL mechanism the broker
//! does not offer) that fail the case at once with librdkafka's error named; secrets that never
//! reach a file the run writes nor its terminal output. No local broker completes a SASL login
//! (docs/KAFKA.md says why). The brokers and certificates come from scripts/broker.sh
//! (`KBENCH_TEST_*`); the tests needing them are ignored in a plain `cargo test` and run by
//! scripts/test.sh with `--ignored`. The last tests need no broker (the mock cluster).
#![cfg(feature = "kafka")]

mod kafka_support;

use std::path::Path;

use kafka_support::*;

/// The client key's passphrase scripts/broker.sh chose.
fn key_password() -> String {
    std::fs::read_to_string(tls_file("client.key.pass")).unwrap().trim().to_string()
}

/// A workload on `bootstrap` with `properties` (YAML lines under `engine.properties`). Keyed
/// records: the ledger checks order per key, which Kafka keeps only within a partition.
fn secured(bootstrap: &str, topic: &str, properties: &str, consumers: bool) -> String {
    format!(
        "name: kafka-secured\nengine:\n  kind: kafka\n  bootstrap.servers: '{bootstrap}'\n  properties:\n{properties}\
         topic: {{ name: {topic}, partitions: 2 }}\nproducer: {{ linger.ms: 2 }}\n\
         records: {{ duration: 1s, warmup: 200ms, rate: 2000, key: {{ distribution: uniform, cardinality: 100 }} }}\n{}",
        if consumers { "consumers: { members: 1, commit: after-processing }\n" } else { "" }
    )
}

/// TLS to the proxy, with a client certificate whose key is under a passphrase from the
/// environment; `ca` is the CA file the client trusts.
fn tls_properties(ca: &str, key_password: &str) -> String {
    let dir = broker("KBENCH_TEST_TLS_DIR");
    format!(
        "    security.protocol: SSL\n    ssl.ca.location: '{dir}/{ca}'\n\
         \x20   ssl.certificate.location: '{dir}/client.pem'\n    ssl.key.location: '{dir}/client.key'\n\
         \x20   ssl.key.password: '{key_password}'\n"
    )
}

/// The case's error, from run.json, after a run that must have failed.
fn failed_case_error(out: &std::process::Output, dir: &Path) -> String {
    assert!(!out.status.success(), "the run should fail: {}", String::from_utf8_lossy(&out.stderr));
    let run = read_run(dir);
    assert_eq!(run["cases"][0]["status"], "failed", "{run}");
    run["cases"][0]["error"].as_str().unwrap().to_string()
}

/// librdkafka gave up at once, naming the refusal, rather than after the 30 s metadata timeout.
fn assert_refused_at_once(error: &str, librdkafka_name: &str) {
    assert!(error.contains(&format!("librdkafka: {librdkafka_name}")), "{error}");
    assert!(!error.contains("fetching cluster metadata"), "timed out instead of failing at once: {error}");
}

#[test]
#[ignore = "needs the local brokers: scripts/broker.sh start, then --ignored (scripts/test.sh does)"]
fn tls_through_a_terminating_proxy_runs_end_to_end_and_keeps_the_key_password_secret() {
    let dir = tempfile::tempdir().unwrap();
    let password = key_password();
    // The passphrase comes from the environment: the workload holds only `${...}`.
    let w = secured(
        "${KBENCH_TEST_BROKER_TLS}",
        &fresh_topic("tls"),
        &tls_properties("ca.pem", "${KBENCH_TEST_KEY_PASSWORD}"),
        true,
    );
    let out = try_run(dir.path(), "run", &w, &[("KBENCH_TEST_KEY_PASSWORD", &password)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run = read_run(&dir.path().join("run"));
    let s = assert_clean_case(&run);
    assert_eq!(s["kafka"]["bootstrap_servers"], broker("KBENCH_TEST_BROKER_TLS").as_str());
    let p = &run["workload"]["engine"]["properties"];
    assert_eq!(p["ssl.key.password"], "(secret, set from ${KBENCH_TEST_KEY_PASSWORD})", "{p}");
    assert_eq!(p["security.protocol"], "SSL");
    assert_secret_absent(&password, &dir.path().join("run"), &[&out.stdout, &out.stderr]);
}

#[test]
#[ignore = "needs the local brokers: scripts/broker.sh start, then --ignored (scripts/test.sh does)"]
fn a_certificate_signed_by_another_ca_fails_the_case_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let w = secured(
        &broker("KBENCH_TEST_BROKER_TLS"),
        &fresh_topic("wrong-ca"),
        &tls_properties("other-ca.pem", &key_password()),
        false,
    );
    let out = try_run(dir.path(), "run", &w, &[]);
    let error = failed_case_error(&out, &dir.path().join("run"));
    assert_refused_at_once(&error, "SSL");
    assert!(error.contains("certificate verify failed"), "{error}");
}

#[test]
#[ignore = "needs the local brokers: scripts/broker.sh start, then --ignored (scripts/test.sh does)"]
fn a_wrong_key_password_fails_the_case_at_once_without_quoting_it() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = "not-the-kbench-passphrase";
    let w =
        secured(&broker("KBENCH_TEST_BROKER_TLS"), &fresh_topic("wrong-pass"), &tls_properties("ca.pem", wrong), false);
    let out = try_run(dir.path(), "run", &w, &[]);
    let error = failed_case_error(&out, &dir.path().join("run"));
    // librdkafka cannot decrypt the key: the client is never created.
    assert!(error.contains("ssl.key"), "{error}");
    assert_secret_absent(wrong, &dir.path().join("run"), &[&out.stdout, &out.stderr]);
}

#[test]
#[ignore = "needs the local brokers: scripts/broker.sh start, then --ignored (scripts/test.sh does)"]
fn a_sasl_mechanism_the_broker_does_not_offer_fails_the_case_at_once() {
    // tansu without --authentication answers SaslHandshake with UNSUPPORTED_SASL_MECHANISM, as
    // Kafka does for a mechanism not in sasl.enabled.mechanisms; librdkafka calls it an
    // authentication failure.
    let bootstrap = broker("KBENCH_TEST_BROKER");
    for (mechanism, extra) in [
        ("PLAIN", ""),
        ("SCRAM-SHA-256", ""),
        ("SCRAM-SHA-512", ""),
        // librdkafka's own unsecured JWT (no token endpoint: OIDC needs libcurl, not built).
        (
            "OAUTHBEARER",
            "    enable.sasl.oauthbearer.unsecure.jwt: true\n    sasl.oauthbearer.config: 'principal=kbench'\n",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let props = format!(
            "    security.protocol: SASL_PLAINTEXT\n    sasl.mechanism: {mechanism}\n    sasl.username: kbench\n    sasl.password: kbench-sasl-0451\n{extra}"
        );
        let out = try_run(dir.path(), "run", &secured(&bootstrap, &fresh_topic("sasl"), &props, false), &[]);
        let error = failed_case_error(&out, &dir.path().join("run"));
        assert_refused_at_once(&error, "Authentication");
        assert!(error.contains(mechanism), "{mechanism}: {error}");
        assert_secret_absent("kbench-sasl-0451", &dir.path().join("run"), &[&out.stdout, &out.stderr]);
    }
}

#[test]
#[ignore = "needs the local brokers: scripts/broker.sh start, then --ignored (scripts/test.sh does)"]
fn sasl_ssl_gets_through_tls_to_the_sasl_handshake_and_no_file_or_terminal_line_holds_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let key_password = key_password();
    let sasl_password = "kbench-sasl-ssl-secret";
    let props = format!(
        "{}    sasl.mechanism: SCRAM-SHA-512\n    sasl.username: kbench\n    sasl.password: {sasl_password}\n",
        tls_properties("ca.pem", "${KBENCH_TEST_KEY_PASSWORD}")
            .replace("security.protocol: SSL", "security.protocol: SASL_SSL")
    );
    let w = secured(&broker("KBENCH_TEST_BROKER_TLS"), &fresh_topic("sasl-ssl"), &props, false);
    let file = dir.path().join("w.yaml");
    std::fs::write(&file, w).unwrap();
    // Not quiet: the terminal output is checked too.
    let out = kbench_output(
        &[file.to_str().unwrap()],
        &dir.path().join("run"),
        &[("KBENCH_TEST_KEY_PASSWORD", &key_password)],
        false,
    );
    // The TLS handshake succeeded (no SSL error): the broker refused the SASL mechanism.
    let error = failed_case_error(&out, &dir.path().join("run"));
    assert_refused_at_once(&error, "Authentication");
    assert!(error.contains("SCRAM-SHA-512"), "{error}");
    let p = &read_run(&dir.path().join("run"))["workload"]["engine"]["properties"];
    assert_eq!(p["sasl.password"], "(secret, set)", "{p}");
    for secret in [sasl_password, key_password.as_str()] {
        assert_secret_absent(secret, &dir.path().join("run"), &[&out.stdout, &out.stderr]);
    }
}

// No broker needed from here on: librdkafka's mock cluster ignores security properties.

fn mock_with(properties: &str) -> String {
    format!(
        "name: kafka-secret\nengine:\n  kind: kafka\n  bootstrap.servers: 'mock:1'\n  properties:\n{properties}\
         topic: {{ name: t, partitions: 1 }}\nrecords: {{ count: 200, warmup: 0s, rate: 1000 }}\n"
    )
}

#[test]
fn secrets_given_literally_or_by_environment_are_recorded_as_set_only() {
    let dir = tempfile::tempdir().unwrap();
    let w = mock_with(
        "    sasl.username: kbench-user-0451\n    sasl.password: kbench-literal-0451\n    ssl.key.password: '${KBENCH_SECRET_FROM_ENV}'\n",
    );
    let out = try_run(dir.path(), "run", &w, &[("KBENCH_SECRET_FROM_ENV", "kbench-env-0451")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run = read_run(&dir.path().join("run"));
    let p = &run["workload"]["engine"]["properties"];
    assert_eq!(p["sasl.password"], "(secret, set)", "{p}");
    assert_eq!(p["ssl.key.password"], "(secret, set from ${KBENCH_SECRET_FROM_ENV})", "{p}");
    for secret in ["kbench-user-0451", "kbench-literal-0451", "kbench-env-0451"] {
        assert_secret_absent(secret, &dir.path().join("run"), &[&out.stdout, &out.stderr]);
    }
}

#[test]
fn a_missing_variable_or_a_swept_secret_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = try_run(dir.path(), "missing", &mock_with("    sasl.password: '${KBENCH_NO_SUCH_VARIABLE}'\n"), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("engine.properties.sasl.password") && err.contains("KBENCH_NO_SUCH_VARIABLE"), "{err}");
    assert!(!dir.path().join("missing").exists(), "nothing ran");
    // Sweeping engine.properties as a whole: the cases would be named by the secret.
    let swept = format!(
        "{}sweep:\n  engine.properties: [{{ sasl.password: kbench-swept-a }}, {{ sasl.password: kbench-swept-b }}]\n",
        mock_with("    sasl.password: x\n")
    );
    let out = try_run(dir.path(), "swept", &swept, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("sweep.engine.properties: a secret cannot be swept"), "{err}");
    assert!(!err.contains("kbench-swept-a") && !err.contains("kbench-swept-b"), "{err}");
    assert!(!dir.path().join("swept").exists(), "nothing ran");
}
