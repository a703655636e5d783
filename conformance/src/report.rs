//! What a run prints: a plain-text table for the terminal and a Markdown report that
//! keeps every failing session's full wire transcript, so a difference can be
//! understood without running anything again.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::runner::{CaseResult, Outcome, Totals};

/// Longest "first difference" shown in the terminal table; the report has it whole.
const TABLE_DIFF_MAX: usize = 140;

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(3)).collect();
    out.push_str("...");
    out
}

/// The result column: `pass`, `fail` or `skip`.
pub fn result_word(o: &Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail(_) => "fail",
        Outcome::Skip(_) => "skip",
    }
}

/// The last column: the first difference, or why the case was skipped.
fn detail(o: &Outcome) -> String {
    match o {
        Outcome::Pass => String::new(),
        Outcome::Fail(f) if f.line == 0 => format!("{}: {}", f.step, f.message),
        Outcome::Fail(f) => format!("line {}: {}: {}", f.line, f.step, f.message),
        Outcome::Skip(why) => why.clone(),
    }
}

/// The last column of the terminal table: like [`detail`] but without the step's text
/// (the message already says what was expected), to keep rows short.
fn short_detail(o: &Outcome) -> String {
    match o {
        Outcome::Fail(f) if f.line > 0 => format!("line {}: {}", f.line, f.message),
        other => detail(other),
    }
}

/// One table row, columns separated by two spaces.
pub fn row(r: &CaseResult, widths: (usize, usize)) -> String {
    let line = format!(
        "{:<w0$}  {:<w1$}  {:<6}  {}",
        r.label(),
        r.checks.join(","),
        result_word(&r.outcome),
        cut(&short_detail(&r.outcome), TABLE_DIFF_MAX),
        w0 = widths.0,
        w1 = widths.1
    );
    line.trim_end().to_owned()
}

/// The terminal table: header, one row per case, and the closing totals line.
pub fn table(results: &[CaseResult]) -> String {
    let w0 = results
        .iter()
        .map(|r| r.label().len())
        .max()
        .unwrap_or(0)
        .max("SESSION".len());
    let w1 = results
        .iter()
        .map(|r| r.checks.join(",").len())
        .max()
        .unwrap_or(0)
        .max("MUST IDS".len());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<w0$}  {:<w1$}  {:<6}  FIRST DIFFERENCE",
        "SESSION", "MUST IDS", "RESULT"
    );
    for r in results {
        out.push_str(&row(r, (w0, w1)));
        out.push('\n');
    }
    out.push_str(&Totals::of(results).line());
    out.push('\n');
    out
}

/// What a run was: shown at the top of the report.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// `--target ...` or `--spawn ...`, as given.
    pub target: String,
    /// Seed of the chunked variant.
    pub seed: u64,
    /// Default step timeout, e.g. `2s`.
    pub step_timeout: String,
    /// Wall time of the whole run.
    pub elapsed_secs: f64,
}

/// Per-session explanations (`--explain FILE`): lines `session-name: text`, for known
/// differences of a server, shown beside its failures in the report.
pub fn parse_explanations(text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((name, why)) = line.split_once(": ") {
            map.insert(name.trim().to_owned(), why.trim().to_owned());
        }
    }
    map
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown report.
pub fn markdown(
    results: &[CaseResult],
    info: &RunInfo,
    explain: &BTreeMap<String, String>,
) -> String {
    let totals = Totals::of(results);
    let mut out = String::new();
    out.push_str("# Conformance report\n\n");
    let _ = writeln!(out, "- Target: `{}`", info.target);
    let _ = writeln!(
        out,
        "- Seed of the `chunked` variant: {} (replay it with `--seed {}`)",
        info.seed, info.seed
    );
    let _ = writeln!(out, "- Default step timeout: {}", info.step_timeout);
    let _ = writeln!(out, "- Wall time: {:.1}s", info.elapsed_secs);
    let _ = writeln!(out, "- Result: **{}**\n", totals.line());
    out.push_str(
        "| session | variant | MUST IDs | result | first difference |\n|---|---|---|---|---|\n",
    );
    for r in results {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            r.session,
            r.variant,
            r.checks.join(" "),
            result_word(&r.outcome),
            md_cell(&detail(&r.outcome))
        );
    }
    let failures: Vec<&CaseResult> = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Fail(_)))
        .collect();
    if !failures.is_empty() {
        out.push_str("\n## Failures\n");
    }
    for r in failures {
        let _ = writeln!(out, "\n### {}\n", r.label());
        let _ = writeln!(out, "Checks: {}\n", r.checks.join(" "));
        let _ = writeln!(out, "First difference: {}\n", md_cell(&detail(&r.outcome)));
        if let Some(why) = explain.get(&r.session) {
            let _ = writeln!(out, "Why: {why}\n");
        }
        if let Some(replay) = &r.replay {
            out.push_str("Transcript (`->` sent by the client, `<-` received; payloads escaped as in session files):\n\n```text\n");
            for line in &replay.transcript {
                out.push_str(line);
                out.push('\n');
            }
            out.push_str("```\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::{Failure, Replay};
    use crate::variant::Variant;
    use std::time::Duration;

    fn case(name: &str, variant: Variant, outcome: Outcome) -> CaseResult {
        let replay = Some(Replay {
            failure: None,
            transcript: vec![
                "   0.000s a          connect".into(),
                "   0.001s a          <- NICK".into(),
            ],
            clients: vec![],
        });
        CaseResult {
            session: name.into(),
            variant,
            checks: vec!["NICK-1".into(), "FRAME-2".into()],
            outcome,
            replay,
            elapsed: Duration::from_millis(5),
        }
    }

    fn results() -> Vec<CaseResult> {
        vec![
            case("hello", Variant::Whole, Outcome::Pass),
            case(
                "crlf",
                Variant::Bytewise,
                Outcome::Fail(Failure {
                    line: 4,
                    step: "recv a NICK".into(),
                    message: "expected `NICK`, got nothing".into(),
                }),
            ),
            case(
                "timeout",
                Variant::Whole,
                Outcome::Skip("needs handshake-timeout=1".into()),
            ),
        ]
    }

    #[test]
    fn table_has_one_row_per_case_and_the_totals_line() {
        let t = table(&results());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[0].starts_with("SESSION"));
        assert!(
            lines[2].contains("crlf (bytewise)")
                && lines[2].contains("fail")
                && lines[2].contains("line 4: expected `NICK`")
        );
        assert!(lines[3].contains("skip") && lines[3].contains("needs handshake-timeout=1"));
        assert_eq!(lines[4], "1 passed, 1 failed, 1 skipped");
        assert_eq!(Totals::of(&results()[..1]).line(), "1 passed, 0 failed");
    }

    #[test]
    fn markdown_keeps_failing_transcripts_and_explanations() {
        let info = RunInfo {
            target: "--spawn x".into(),
            seed: 42,
            step_timeout: "2s".into(),
            elapsed_secs: 1.0,
        };
        let explain =
            parse_explanations("# known\ncrlf: the seed server has no framing (DEFECTS.md 1)\n");
        let md = markdown(&results(), &info, &explain);
        assert!(md.contains("--seed 42"));
        assert!(md.contains("### crlf (bytewise)"));
        assert!(md.contains("Why: the seed server has no framing (DEFECTS.md 1)"));
        assert!(md.contains("<- NICK"));
        assert!(
            !md.contains("### hello"),
            "passing sessions carry no transcript"
        );
        assert!(md.contains("**1 passed, 1 failed, 1 skipped**"));
    }
}
