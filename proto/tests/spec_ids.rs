//! Every requirement ID defined in `spec/PROTOCOL.md` is cited by at least one test
//! somewhere in the workspace, and every ID cited in a test exists in the spec.
//!
//! An ID `CMD-MSG-2` counts as cited when a test source mentions `CMD-MSG-2` or has a
//! name containing `cmd_msg_2` (test functions are named after the IDs they check), or a
//! conformance session lists it.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// IDs defined in the spec: bold `**ID**` markers.
fn spec_ids() -> BTreeSet<String> {
    let spec = fs::read_to_string(root().join("spec/PROTOCOL.md")).expect("spec/PROTOCOL.md");
    let mut ids = BTreeSet::new();
    for part in spec.split("**").skip(1).step_by(2) {
        if is_id(part) {
            ids.insert(part.to_owned());
        }
    }
    ids
}

fn is_id(s: &str) -> bool {
    let mut parts = s.split('-').peekable();
    let mut n = 0;
    while let Some(p) = parts.next() {
        n += 1;
        let last = parts.peek().is_none();
        let ok = if last {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())
        } else {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_uppercase())
        };
        if !ok {
            return false;
        }
    }
    n >= 2
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
    let ids = spec_ids();
    assert!(ids.len() > 30, "found only {} IDs in the spec", ids.len());
    let sources = test_sources();
    let missing: Vec<&String> = ids
        .iter()
        .filter(|id| {
            let snake = id.to_ascii_lowercase().replace('-', "_");
            !sources.iter().any(|s| {
                s.contains(id.as_str())
                    || s.match_indices(&snake).any(|(i, _)| {
                        // `frame_1` must not count as a citation of `frame_10`.
                        !s[i + snake.len()..].starts_with(|c: char| c.is_ascii_digit())
                    })
            })
        })
        .collect();
    assert!(missing.is_empty(), "spec IDs no test cites: {missing:?}");
}

#[test]
fn every_cited_id_exists() {
    let ids = spec_ids();
    let prefixes = [
        "FRAME-", "NICK-", "CHAT-", "CMD-", "SRV-", "ERR-", "CONN-", "COMPAT-",
    ];
    let mut unknown = BTreeSet::new();
    // A test that uses a made-up ID on purpose marks the line `not a spec ID`.
    let sources: Vec<String> = test_sources()
        .into_iter()
        .map(|s| {
            s.lines()
                .filter(|l| !l.contains("not a spec ID"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    for s in sources {
        for (i, _) in s.match_indices(|c: char| c.is_ascii_uppercase()) {
            let rest = &s[i..];
            if !prefixes.iter().any(|p| rest.starts_with(p))
                || (i > 0 && s.as_bytes()[i - 1].is_ascii_alphanumeric())
            {
                continue;
            }
            let end = rest
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-'))
                .unwrap_or(rest.len());
            let cand = rest[..end].trim_end_matches('-');
            if is_id(cand) && !ids.contains(cand) {
                unknown.insert(cand.to_owned());
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "tests cite IDs the spec does not define: {unknown:?}"
    );
}
