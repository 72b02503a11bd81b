//! packaging/posbridge.toml.example, installed as /etc/posbridge/posbridge.toml: the daemon
//! accepts it as shipped, and also with every commented-out setting turned on, so no example
//! key is misspelt or stale.

mod common;

use common::config_check;

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/packaging/posbridge.toml.example"
);

#[test]
fn the_example_config_passes_config_check_as_shipped() {
    let out = config_check(std::path::Path::new(EXAMPLE));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("default provider sim"));
}

#[test]
fn every_commented_setting_in_the_example_is_valid_when_uncommented() {
    let text = std::fs::read_to_string(EXAMPLE).unwrap();
    let mut uncommented = 0;
    let on: String = text
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest)
                if rest.starts_with('[')
                    || rest.split_once(" =").is_some_and(|(k, _)| {
                        k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    }) =>
            {
                uncommented += 1;
                format!("{rest}\n")
            }
            _ => format!("{l}\n"),
        })
        .collect();
    assert!(
        uncommented > 20,
        "only {uncommented} settings found to turn on"
    );
    for section in ["phonepe", "iotpay", "paysera", "lifepay"] {
        assert!(on.contains(&format!("[providers.{section}]")), "{section}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all-on.toml");
    std::fs::write(&path, on).unwrap();
    let out = config_check(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
