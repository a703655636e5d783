//! Every requirement ID of the spec is checked by a session or by a test the coverage
//! manifest names, and every test named there exists.

#![cfg(test)]

use std::path::Path;

use chat_conformance::coverage::{check, parse_manifest, spec_ids};
use chat_conformance::session::Session;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

#[test]
fn every_spec_id_is_checked_by_a_session_or_a_named_test() {
    let root = Path::new(ROOT);
    let spec = std::fs::read_to_string(root.join("spec/PROTOCOL.md")).unwrap();
    let sessions = Session::load_dir(&root.join("conformance/sessions")).unwrap();
    let manifest = parse_manifest(
        &std::fs::read_to_string(root.join("conformance/sessions/COVERAGE.md")).unwrap(),
    )
    .unwrap();
    // The spec defines the IDs this suite was written against; a spec without them is
    // the wrong file, not full coverage.
    let ids = spec_ids(&spec);
    assert!(ids.len() >= 40, "only {} IDs found in the spec", ids.len());
    let cov = check(&spec, &sessions, &manifest, root);
    assert!(
        cov.problems.is_empty(),
        "coverage problems:\n{}",
        cov.problems.join("\n")
    );
}
