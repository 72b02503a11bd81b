//! What every provider has, kept once: its name, the currency of a request that names none,
//! how long the request path waits for it, and its status schedule. Each provider builds one
//! [`Common`] from its config section and hands it out through [`super::Provider::common`];
//! the trait's accessors read it. Only settings live here: nothing that talks to a backend.

use std::borrow::Cow;
use std::time::Duration;

/// The settings every provider has.
#[derive(Clone, Debug, PartialEq)]
pub struct Common {
    /// The provider's name in the API and the config (`[providers.<name>]`).
    pub name: &'static str,
    /// The currency of a request that names none.
    pub currency: Cow<'static, str>,
    /// How long the request path waits for `execute` before the outcome counts as unknown.
    pub timeout: Duration,
    /// Intervals between status checks of an unknown outcome; the last one repeats.
    pub schedule: Cow<'static, [Duration]>,
}

impl Common {
    pub fn new(
        name: &'static str,
        currency: impl Into<String>,
        timeout: Duration,
        schedule: Vec<Duration>,
    ) -> Common {
        Common {
            name,
            currency: Cow::Owned(currency.into()),
            timeout,
            schedule: Cow::Owned(schedule),
        }
    }

    /// Settings known when compiling (a test's provider): usable in a `static`.
    pub const fn fixed(
        name: &'static str,
        currency: &'static str,
        timeout: Duration,
        schedule: &'static [Duration],
    ) -> Common {
        Common {
            name,
            currency: Cow::Borrowed(currency),
            timeout,
            schedule: Cow::Borrowed(schedule),
        }
    }
}

/// A configured list of milliseconds (`status_poll_ms`) as durations.
pub fn millis(list: &[u64]) -> Vec<Duration> {
    list.iter().copied().map(Duration::from_millis).collect()
}

/// The configured status schedule, or `default` when the section gives none.
pub fn schedule(
    configured: Option<&Vec<u64>>,
    default: impl FnOnce() -> Vec<Duration>,
) -> Vec<Duration> {
    configured.map_or_else(default, |list| millis(list))
}
