//! A wall clock a test can step while the daemon (or a replica) runs: the file named by
//! `POSBRIDGE_TEST_CLOCK_OFFSET_FILE` (src/clock.rs), whose whole seconds every wall-clock
//! read of that process adds. The monotonic clock is untouched, as on a real counter whose
//! clock NTP steps.

use std::path::{Path, PathBuf};

pub const ENV: &str = "POSBRIDGE_TEST_CLOCK_OFFSET_FILE";

pub struct SteppedClock {
    pub path: PathBuf,
}

impl SteppedClock {
    /// A clock file in `dir` named `name`, at the real time.
    pub fn new(dir: &Path, name: &str) -> SteppedClock {
        let c = SteppedClock {
            path: dir.join(name),
        };
        c.offset(0);
        c
    }

    /// `(ENV, path)` for a process's environment.
    pub fn env(&self) -> (&'static str, String) {
        (ENV, self.path.display().to_string())
    }

    /// Steps the clock to real time + `secs` (written whole, by rename: never half read).
    pub fn offset(&self, secs: i64) {
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, format!("{secs}\n")).unwrap();
        std::fs::rename(&tmp, &self.path).unwrap();
    }

    /// Steps the clock to 1970-01-01, as a counter without a battery boots.
    pub fn to_1970(&self) {
        let now = std::time::SystemTime::UNIX_EPOCH
            .elapsed()
            .unwrap()
            .as_secs() as i64;
        self.offset(-now);
    }
}
