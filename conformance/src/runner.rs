//! Running a suite: every session in every variant it asks for, against a target, with
//! a fresh server per case when spawning, several cases at once when that is safe.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::replay::{Failure, Replay, ReplayOptions, replay, replay_spread};
use crate::session::Session;
use crate::target::Target;
use crate::variant::Variant;

/// Settings of a run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Where to replay.
    pub target: Target,
    /// Seed of the `chunked` variant.
    pub seed: u64,
    /// Default wait of `recv`, `closed` and `connect`.
    pub step_timeout: Duration,
    /// Cases run at once (spawn only; a shared `--target` server runs one at a time,
    /// since sessions reuse nicknames).
    pub jobs: usize,
    /// Connect with TLS, trusting the server as this says (spec §19).
    pub tls: Option<crate::wire::Trust>,
}

/// How one case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every step held.
    Pass,
    /// The first difference.
    Fail(Failure),
    /// Not run, and why.
    Skip(String),
}

/// One session in one variant.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Session name.
    pub session: String,
    /// How writes were cut.
    pub variant: Variant,
    /// Spec IDs the session checks.
    pub checks: Vec<String>,
    /// Result.
    pub outcome: Outcome,
    /// The replay, when the case ran.
    pub replay: Option<Replay>,
    /// Wall time of the case, server start included.
    pub elapsed: Duration,
}

impl CaseResult {
    /// `name` or `name (bytewise)`.
    pub fn label(&self) -> String {
        match self.variant {
            Variant::Whole => self.session.clone(),
            v => format!("{} ({v})", self.session),
        }
    }
}

/// Totals of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed.
    pub failed: usize,
    /// Cases skipped.
    pub skipped: usize,
}

impl Totals {
    /// Counts the outcomes.
    pub fn of(results: &[CaseResult]) -> Totals {
        let mut t = Totals::default();
        for r in results {
            match r.outcome {
                Outcome::Pass => t.passed += 1,
                Outcome::Fail(_) => t.failed += 1,
                Outcome::Skip(_) => t.skipped += 1,
            }
        }
        t
    }

    /// The closing line: `N passed, N failed` and `, N skipped` when some were.
    pub fn line(&self) -> String {
        let mut s = format!("{} passed, {} failed", self.passed, self.failed);
        if self.skipped > 0 {
            s.push_str(&format!(", {} skipped", self.skipped));
        }
        s
    }
}

/// False once the `--target` server failed an idle probe (see [`crate::idle`]). One
/// run per process, so a process-wide flag is enough.
static PROBE_WORKS: AtomicBool = AtomicBool::new(true);

/// Runs one case.
fn run_case(session: &Session, variant: Variant, config: &RunConfig, round: u32) -> CaseResult {
    let started = Instant::now();
    let mut result = CaseResult {
        session: session.name.clone(),
        variant,
        checks: session.checks.clone(),
        outcome: Outcome::Pass,
        replay: None,
        elapsed: Duration::ZERO,
    };
    if let Some(why) = config.target.skip_reason(session) {
        result.outcome = Outcome::Skip(why);
        return result;
    }
    let opts = ReplayOptions {
        variant,
        step_timeout: config.step_timeout,
        tls: config.tls,
        ..Default::default()
    };
    let r = match &config.target {
        Target::Address(addrs) => {
            // A shared server: let it forget the previous session first. A server that
            // cannot answer the probe once is not probed again (each failed probe costs
            // time, and a probe is one more client it mishandles); it gets a pause.
            // The first case finds the server as it was started: no probe.
            let probed = round == 0
                || (PROBE_WORKS.load(Ordering::Relaxed)
                    && addrs.iter().all(|&addr| {
                        crate::idle::wait_until_idle(
                            addr,
                            config.tls,
                            round,
                            Duration::from_secs(2),
                        )
                        .is_ok()
                    }));
            if !probed {
                PROBE_WORKS.store(false, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(200));
            }
            replay_spread(session, addrs, &opts)
        }
        Target::Spawn(spec) => {
            let label = format!("{}-{}", session.name, variant.name());
            match spec.start(&label, &session.requires) {
                Ok(server) => replay(session, server.addr, &opts),
                Err(message) => {
                    result.outcome = Outcome::Fail(Failure {
                        line: 0,
                        step: "(starting the server)".into(),
                        message,
                    });
                    result.elapsed = started.elapsed();
                    return result;
                }
            }
        }
    };
    if let Some(f) = &r.failure {
        result.outcome = Outcome::Fail(f.clone());
    }
    result.replay = Some(r);
    result.elapsed = started.elapsed();
    result
}

/// Runs every session in each of its variants; results come back in suite order.
/// `on_result` is called as each case finishes (for progress output).
pub fn run(
    sessions: &[Session],
    config: &RunConfig,
    on_result: impl Fn(&CaseResult) + Sync,
) -> Vec<CaseResult> {
    let cases: Vec<(usize, &Session, Variant)> = sessions
        .iter()
        .flat_map(|s| {
            Variant::for_session(s.framing, config.seed)
                .into_iter()
                .map(move |v| (s, v))
        })
        .enumerate()
        .map(|(i, (s, v))| (i, s, v))
        .collect();
    let jobs = match config.target {
        Target::Address(_) => 1,
        Target::Spawn(_) => config.jobs.clamp(1, 16),
    };
    let queue = Mutex::new(cases.into_iter().collect::<VecDeque<_>>());
    let done = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                // Bounded by the queue's length.
                loop {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                    let Some((i, session, variant)) = next else {
                        break;
                    };
                    let round = u32::try_from(i).unwrap_or(u32::MAX);
                    let result = run_case(session, variant, config, round);
                    on_result(&result);
                    done.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((i, result));
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|p| p.into_inner());
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}
