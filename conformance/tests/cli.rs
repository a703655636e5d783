//! The `chat-conformance` command end to end: the table, the closing totals line, the
//! exit status, skips and the Markdown report, against the in-tree server (in-process,
//! as `--target`) and against the original Python server (as `--spawn`).

#![cfg(test)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_chat-conformance");

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "chat-conformance-cli-{name}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn run_against_a_conforming_target_passes_and_skips_what_it_cannot_set() {
    let server = chat_server::Server::bind(chat_server::Config::loopback_ephemeral()).unwrap();
    let addr = server.local_addr();
    let handle = server.spawn().unwrap();
    let dir = temp_dir("target");
    let report = dir.join("report.md");
    let out = Command::new(BIN)
        .args([
            "run",
            "--target",
            &addr.to_string(),
            "--only",
            "chat",
            "--only",
            "handshake-timeout",
        ])
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    handle.shutdown();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[1].starts_with("SESSION"), "{stdout}");
    assert!(stdout.contains("\nchat "), "{stdout}");
    assert!(
        stdout.contains("needs handshake-timeout=1; a --target server keeps its own settings"),
        "{stdout}"
    );
    assert_eq!(*lines.last().unwrap(), "1 passed, 0 failed, 1 skipped");
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.contains("**1 passed, 0 failed, 1 skipped**"), "{md}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The original Python server: `$SEED_SERVER` when set (as for `scripts/compare.py`),
/// otherwise `shared/reference/seed_server.py` beside the nearest ancestor of this
/// crate that has one. CI's clean clone sits beside `shared/` (`<dir>/clone`,
/// `<dir>/shared`); a git worktree may sit deeper (`/work/wt/<name>` beside
/// `/work/shared`). Not found is a failure, not a skip.
fn seed_server() -> std::path::PathBuf {
    const REL: &str = "shared/reference/seed_server.py";
    if let Some(path) = std::env::var_os("SEED_SERVER") {
        return path.into();
    }
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .map(|dir| dir.join(REL))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no {REL} beside any ancestor of {}; set SEED_SERVER",
                here.display()
            )
        })
}

#[test]
fn run_against_the_seed_server_fails_cleanly_with_transcripts() {
    let seed = seed_server();
    let seed = seed.display();
    let dir = temp_dir("seed");
    let report = dir.join("report.md");
    let out = Command::new(BIN)
        .args([
            "run",
            "--spawn",
            &format!("env PORT={{port}} python3 {seed}"),
            "--only",
            "handshake-command",
        ])
        .args(["--step-timeout", "500ms", "--seed", "7"])
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("expected `NICK`, got `NICK` without LF within 500ms"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().last(), Some("0 passed, 1 failed"));
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.contains("--seed 7"), "{md}");
    assert!(md.contains("### handshake-command"), "{md}");
    assert!(md.contains("alice      connect"), "{md}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_usage_exits_with_2() {
    let out = Command::new(BIN)
        .args(["run", "--spawn", "server-without-a-port"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("{port}"));
}

/// TLS-7: `--target tls://` replays over TLS with the fingerprint pinned, and refuses a
/// server whose certificate is not the pinned one.
#[test]
fn tls_7_run_against_a_tls_target_pins_the_fingerprint() {
    let identity = chat_server::tls::Identity::self_signed(None, None).unwrap();
    let fp = identity.fingerprint().to_string();
    let mut config = chat_server::Config::loopback_ephemeral();
    config.tls = Some(chat_server::tls::TlsConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        identity,
    });
    let server = chat_server::Server::bind(config).unwrap();
    let target = format!("tls://{}", server.tls_addr().unwrap());
    let handle = server.spawn().unwrap();
    let run = |extra: &[&str]| {
        Command::new(BIN)
            .args(["run", "--target", &target, "--only", "chat"])
            .args(extra)
            .output()
            .unwrap()
    };
    let ok = run(&["--fingerprint", &fp]);
    let stdout = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert_eq!(ok.status.code(), Some(0), "{stdout}");
    assert!(stdout.ends_with("1 passed, 0 failed\n"), "{stdout}");
    let wrong = format!("SHA256:{}", ["00"; 32].join(":"));
    let refused = run(&["--fingerprint", &wrong]);
    let stdout = String::from_utf8_lossy(&refused.stdout).into_owned();
    assert_eq!(refused.status.code(), Some(1), "{stdout}");
    let needs_trust = run(&[]);
    assert_eq!(needs_trust.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&needs_trust.stderr).contains("--insecure"));
    handle.shutdown();
}
