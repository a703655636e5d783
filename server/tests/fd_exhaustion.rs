//! Running out of file descriptors must neither stop the accept loop nor spin it: the
//! listener backs off (about 100 ms) and serves again once descriptors are free.
//! Its own test binary: it lowers RLIMIT_NOFILE for the whole process.

#![cfg(test)]

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Client, start};

fn set_soft_limit(n: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain out-parameter / in-parameter calls on our own process.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = n.min(lim.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
}

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(64)
}

/// CPU time (user + system) used by this process so far.
fn cpu_time() -> Duration {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we pass.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) }, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[test]
fn emfile_backs_off_without_spinning_and_recovers() {
    let s = start(|c| c.threads = 1);
    let addr = s.local_addr();
    let mut w = Client::join(addr, "watcher");

    // Leave room for a few connections only; both ends live in this process.
    set_soft_limit(open_fds() + 24);
    let mut clients = Vec::new();
    for _ in 0..100 {
        match TcpStream::connect(addr) {
            Ok(c) => clients.push(c),
            Err(_) => break, // this process is out of descriptors
        }
    }
    assert!(
        !clients.is_empty() && clients.len() < 100,
        "{} clients",
        clients.len()
    );
    // Now the server cannot accept the pending ones. It must not spin meanwhile.
    std::thread::sleep(Duration::from_millis(200));
    let cpu_before = cpu_time();
    let wall = Instant::now();
    std::thread::sleep(Duration::from_millis(600));
    let used = cpu_time() - cpu_before;
    let elapsed = wall.elapsed();
    assert!(
        used < elapsed / 4,
        "accept loop spins: {used:?} CPU in {elapsed:?}"
    );

    // Descriptors come back: every pending connection gets served.
    chat_server::listener::raise_fd_limit().unwrap();
    let mut served = 0;
    for c in clients {
        let mut c = Client::from_stream(c);
        c.expect("NICK");
        served += 1;
    }
    assert!(served > 0);
    w.say("still here");
    w.expect("watcher: still here");
}
