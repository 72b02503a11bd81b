//! Fuzzes the configuration file parser (`config::Config::parse`: TOML, unknown keys refused,
//! then validation). Invariants: no panic; an error names the file and is one line (never
//! toml's quote of a config line, which may hold a secret); an accepted config is
//! usable (its default provider is known and configured, its bounds hold) and its Debug form
//! shows each inline secret as `<redacted>`.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use posbridge::config::Config;
use posbridge::provider;

const PATH: &str = "/etc/posbridge/posbridge.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text, Path::new(PATH)) {
        Ok(config) => {
            assert!(provider::known(&config.default_provider).is_some());
            assert!(config.configured(&config.default_provider));
            assert!((1..=1_000_000).contains(&config.journal.capacity));
            let shown = format!("{config:?}");
            let p = &config.providers;
            let secrets = [
                p.phonepe.as_ref().and_then(|c| c.salt_key.as_ref()),
                p.iotpay.as_ref().and_then(|c| c.key.as_ref()),
                p.paysera.as_ref().and_then(|c| c.mac_key.as_ref()),
                p.lifepay.as_ref().and_then(|c| c.password.as_ref()),
            ];
            let inline = secrets.into_iter().flatten().count();
            assert!(
                shown.matches("<redacted>").count() >= inline,
                "Debug shows an inline secret"
            );
        }
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains(PATH),
                "error does not name the file: {message}"
            );
            // One line, never toml's quote of the source line (it may hold a secret).
            assert!(!message.contains('\n'), "multi-line error: {message}");
        }
    }
});
