//! A secret property's value (`engine.properties.sasl.password`, from the file or `--set`) is never
//! printed, even by an error that refuses that very value: `validate` and `run` alike, in a build
//! with or without the kafka feature (the properties' shape is checked for any engine kind).

use std::path::Path;
use std::process::Command;

const PASSWORD: &str = "hunter2-kbench";

fn kbench(args: &[&str], dir: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kbench")).args(args).current_dir(dir).output().unwrap();
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn errors_that_echo_a_refused_secret_never_print_it() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.yaml");
    std::fs::write(&w, "name: secrets\nengine: { kind: embedded, io: discard }\nrecords: { duration: 1s }\n").unwrap();
    let w = w.to_str().unwrap();
    let cases: [(&[&str], &str); 3] = [
        // Not a YAML scalar: the error quotes the text after `=`.
        (&["--set", &format!("engine.properties.sasl.password=[{PASSWORD}")], "is not a YAML scalar"),
        // A mapping where a property's scalar belongs: the error quotes the mapping.
        (&["--set", &format!("engine.properties.sasl.password={{x: {PASSWORD}}}")], "must be a string"),
        (&["--set", &format!("engine.properties={{sasl.password: {{x: {PASSWORD}}}}}")], "must be a string"),
    ];
    for (set, refused) in cases {
        for command in ["validate", "run"] {
            let mut args = vec![command, w];
            args.extend_from_slice(set);
            let (code, output) = kbench(&args, dir.path());
            assert_eq!(code, Some(2), "{command} {set:?}: refused: {output}");
            assert!(output.contains(refused) && output.contains("(secret)"), "{command} {set:?}: {output}");
            assert!(!output.contains(PASSWORD), "{command} {set:?} printed the secret: {output}");
        }
    }

    // The same value written in the file.
    let f = dir.path().join("f.yaml");
    std::fs::write(
        &f,
        format!(
            "name: secrets\nengine: {{ kind: embedded, io: discard, \
             properties: {{ sasl.password: {{ x: {PASSWORD} }} }} }}\nrecords: {{ duration: 1s }}\n"
        ),
    )
    .unwrap();
    let (code, output) = kbench(&["validate", f.to_str().unwrap()], dir.path());
    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains("must be a string") && !output.contains(PASSWORD), "{output}");
}
