//! Which spec IDs the suite checks, and where: the sessions' `checks:` headers, plus the
//! coverage manifest (`sessions/COVERAGE.md`) naming a test for each requirement no
//! session can check (signals, memory bounds, races). Every ID of the spec must be in
//! one of them, and every test the manifest names must exist.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::session::{Session, is_spec_id};

/// Every requirement ID the spec defines (`**FRAME-1**` in bold), in order of first
/// appearance, without those marked withdrawn: the scanner `proto/tests/spec_ids.rs`
/// uses too.
pub fn spec_ids(spec: &str) -> Vec<String> {
    chat_proto::spec_ids::in_force(spec)
}

/// One row of the manifest: a spec ID and the tests that check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// The spec ID.
    pub id: String,
    /// Tests as `path/from/workspace/root.rs::function_name`.
    pub tests: Vec<String>,
    /// Why no session checks it (or checks it all).
    pub why: String,
}

/// Reads the manifest's Markdown table: `| ID | tests | why |`, tests in backticks.
pub fn parse_manifest(text: &str) -> Result<Vec<ManifestEntry>, String> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let cells: Vec<&str> = line.trim().split('|').map(str::trim).collect();
        // `| a | b | c |` splits into ["", a, b, c, ""].
        let [_, id, tests, why, _] = cells.as_slice() else {
            continue;
        };
        if !is_spec_id(id) {
            continue;
        }
        let tests: Vec<String> = tests
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect();
        if tests.is_empty() || tests.iter().any(|t| !t.contains("::")) {
            return Err(format!(
                "manifest line {}: name tests as `path/file.rs::function`",
                i + 1
            ));
        }
        entries.push(ManifestEntry {
            id: id.to_string(),
            tests,
            why: why.to_string(),
        });
    }
    Ok(entries)
}

/// True when `source` defines a function `name` (`fn name(` or `fn name<`).
pub fn defines_fn(source: &str, name: &str) -> bool {
    let needle = format!("fn {name}");
    source.match_indices(&needle).any(|(at, _)| {
        let next = source
            .get(at + needle.len()..)
            .and_then(|r| r.chars().next());
        matches!(next, Some('(' | '<'))
    })
}

/// The coverage of the suite.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    /// Spec ID -> sessions that check it.
    pub by_session: BTreeMap<String, Vec<String>>,
    /// Spec ID -> tests from the manifest.
    pub by_test: BTreeMap<String, Vec<String>>,
    /// Everything wrong: uncovered IDs, unknown IDs, missing tests.
    pub problems: Vec<String>,
}

/// Checks the sessions and the manifest against the spec. `root` is the workspace
/// root, against which manifest paths are resolved.
pub fn check(
    spec: &str,
    sessions: &[Session],
    manifest: &[ManifestEntry],
    root: &Path,
) -> Coverage {
    let ids = spec_ids(spec);
    let known: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    let mut cov = Coverage::default();
    for s in sessions {
        for id in &s.checks {
            if !known.contains(id.as_str()) {
                cov.problems.push(format!(
                    "session {} checks {id}, which the spec does not define",
                    s.name
                ));
            }
            cov.by_session
                .entry(id.clone())
                .or_default()
                .push(s.name.clone());
        }
    }
    for e in manifest {
        if !known.contains(e.id.as_str()) {
            cov.problems.push(format!(
                "the manifest names {}, which the spec does not define",
                e.id
            ));
        }
        for t in &e.tests {
            let (path, func) = t.rsplit_once("::").unwrap_or((t, ""));
            match std::fs::read_to_string(root.join(path)) {
                Ok(src) if defines_fn(&src, func) => {}
                Ok(_) => cov
                    .problems
                    .push(format!("{}: {path} has no fn {func}", e.id)),
                Err(err) => cov
                    .problems
                    .push(format!("{}: cannot read {path}: {err}", e.id)),
            }
        }
        cov.by_test
            .entry(e.id.clone())
            .or_default()
            .extend(e.tests.iter().cloned());
    }
    for id in &ids {
        if !cov.by_session.contains_key(id) && !cov.by_test.contains_key(id) {
            cov.problems.push(format!(
                "{id} is checked by no session and named in no manifest entry"
            ));
        }
    }
    cov
}

/// A table of every spec ID and what checks it, for `chat-conformance coverage`.
pub fn matrix(spec: &str, cov: &Coverage) -> String {
    let mut out = String::new();
    for id in spec_ids(spec) {
        let sessions = cov
            .by_session
            .get(&id)
            .map(|v| v.join(", "))
            .unwrap_or_default();
        let tests = cov
            .by_test
            .get(&id)
            .map(|v| v.join(", "))
            .unwrap_or_default();
        let what = match (sessions.is_empty(), tests.is_empty()) {
            (false, true) => sessions,
            (true, false) => format!("tests: {tests}"),
            (false, false) => format!("{sessions}; tests: {tests}"),
            (true, true) => "NOT COVERED".to_owned(),
        };
        out.push_str(&format!("{id:<12} {what}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "**FRAME-1** A connection...\n\
        **FRAME-2** A CR ... (FRAME-5). **NICK-1** first\n\
        mentions FRAME-1 again, and **bold** text\n\
        **OLD-1** (withdrawn) gone\n";

    #[test]
    fn withdrawn_ids_need_no_check() {
        assert_eq!(spec_ids(SPEC), ["FRAME-1", "FRAME-2", "NICK-1"]);
    }

    #[test]
    fn manifest_rows_and_fn_lookup() {
        let md = "| ID | tests | why |\n|---|---|---|\n\
            | NICK-1 | `server/tests/a.rs::x`, `proto/src/b.rs::y` | signals |\n\
            | FRAME-2 | nothing here | oops |\n";
        assert!(parse_manifest(md).unwrap_err().contains("line 4"));
        let md = "| NICK-1 | `server/tests/a.rs::x`, `proto/src/b.rs::y` | signals |\n";
        let m = parse_manifest(md).unwrap();
        assert_eq!(m[0].tests, ["server/tests/a.rs::x", "proto/src/b.rs::y"]);
        assert!(defines_fn("#[test]\nfn conn_6_x() {}", "conn_6_x"));
        assert!(defines_fn("async fn g<T>() {}", "g"));
        assert!(!defines_fn("fn conn_6_xy() {}", "conn_6_x"));
    }

    #[test]
    fn flags_uncovered_unknown_and_missing() {
        let s = Session::parse("s", "checks: FRAME-1 FRAME-9\nconnect a\n").unwrap(); // not a spec ID
        let m = vec![ManifestEntry {
            id: "NICK-1".into(),
            tests: vec!["no/such/file.rs::f".into()],
            why: String::new(),
        }];
        let cov = check(SPEC, &[s], &m, Path::new("/nonexistent"));
        let all = cov.problems.join("\n");
        assert!(
            all.contains("FRAME-9, which the spec does not define"), // not a spec ID
            "{all}"
        );
        assert!(all.contains("FRAME-2 is checked by no session"), "{all}");
        assert!(all.contains("NICK-1: cannot read no/such/file.rs"), "{all}");
        assert!(!all.contains("FRAME-1 is"), "{all}");
    }
}
