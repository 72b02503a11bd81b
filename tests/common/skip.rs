//! Tests that need something this machine may not have (root, a mount, a tool). On CI
//! (`CI=true`, as `.ci/run` is run) a missing capability FAILS the test: CI has every one, and a
//! skip there would pass having checked nothing. Elsewhere the test is skipped, loudly: a
//! `SKIPPED` line on stderr, which nextest prints as each such test passes, for the test binaries
//! that can skip (`.config/nextest.toml`).

/// Whether this run is CI's.
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `why` this test cannot run here: panics on CI, else says SKIPPED. The caller returns.
pub fn cannot_run(why: &str) {
    assert!(
        !on_ci(),
        "CI=true and this test cannot run: {why}. CI must have every capability the suite \
         needs (.ci/deps, root); a skip there would pass having checked nothing"
    );
    eprintln!("SKIPPED: {why}");
}

/// Whether this process is root (some tests act as another user or mount file systems).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
