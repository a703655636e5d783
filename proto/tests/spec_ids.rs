//! Every requirement ID defined in `spec/PROTOCOL.md` is cited by at least one test
//! somewhere in the workspace, and every ID cited in a test exists in the spec.
//!
//! An ID `CMD-MSG-2` counts as cited when a test source mentions `CMD-MSG-2` or has a
//! name containing `cmd_msg_2` (test functions are named after the IDs they check), or a
//! conformance session lists it. The scanning is `chat_proto::spec_ids`, shared with the
//! conformance suite's coverage check.

#![cfg(test)]

use std::fs;
use std::path::{Path, PathBuf};

use chat_proto::spec_ids::{cited, cites, defined, in_force, prefixes};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn spec() -> String {
    fs::read_to_string(root().join("spec/PROTOCOL.md")).expect("spec/PROTOCOL.md")
}

/// Test sources: `tests/` folders, `#[cfg(test)]` parts of `src/`, conformance sessions
/// and the conformance coverage manifest.
fn test_sources() -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "fuzz" && name != "spec" {
                    stack.push(path);
                }
                continue;
            }
            let Ok(text) = fs::read_to_string(&path) else {
                continue;
            };
            let in_tests = path
                .components()
                .any(|c| c.as_os_str() == "tests" || c.as_os_str() == "sessions");
            if in_tests
                && (name.ends_with(".rs")
                    || name.ends_with(".session")
                    || name.ends_with(".toml")
                    || name.ends_with(".md"))
            {
                out.push(text);
            } else if name.ends_with(".rs") {
                if let Some(i) = text.find("#[cfg(test)]") {
                    out.push(text[i..].to_owned());
                }
            }
        }
    }
    out
}

#[test]
fn every_spec_id_is_cited_by_a_test() {
    let ids = in_force(&spec());
    assert!(ids.len() > 30, "found only {} IDs in the spec", ids.len());
    let sources = test_sources();
    let missing: Vec<&String> = ids
        .iter()
        .filter(|id| !sources.iter().any(|s| cites(s, id)))
        .collect();
    assert!(missing.is_empty(), "spec IDs no test cites: {missing:?}");
}

#[test]
fn every_cited_id_exists() {
    let defined = defined(&spec());
    let prefixes = prefixes(&defined);
    let unknown: Vec<String> = test_sources()
        .iter()
        .flat_map(|s| cited(s, &prefixes))
        .filter(|c| !defined.iter().any(|d| &d.id == c))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(
        unknown.is_empty(),
        "tests cite IDs the spec does not define: {unknown:?}"
    );
}
