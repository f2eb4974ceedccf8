//! The contract crate must stay free of storage: a Rust client that depends on `crm-wire` must
//! not compile the event log or sled. This asks cargo for crm-wire's normal and build
//! dependency tree (dev-dependencies are never built for a dependent) and fails on either.

use std::process::Command;

#[test]
fn the_wire_crate_depends_on_no_storage() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "tree",
            "--package",
            "crm-wire",
            "--edges",
            "normal,build",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "cargo tree failed: {stderr}");
    let tree = String::from_utf8_lossy(&output.stdout);
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert_eq!(names.first(), Some(&"crm-wire"), "unexpected tree:\n{tree}");
    for forbidden in ["sled", "crm-eventlog"] {
        assert!(
            !names.contains(&forbidden),
            "crm-wire depends on {forbidden}:\n{tree}"
        );
    }
}
