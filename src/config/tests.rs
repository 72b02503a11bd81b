//! The config's own tests: defaults, unknown keys, every key's check.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("test.toml"))
}

#[test]
fn empty_file_gives_the_embedded_defaults() {
    let c = parse("").unwrap();
    assert_eq!(c.default_provider, "sim");
    assert_eq!(c.journal.capacity, 500);
    assert_eq!(c.providers.sim.currency, "INR");
}

#[test]
fn unknown_keys_are_refused_by_name() {
    let err = parse("[journal]\ncapasity = 5\n").unwrap_err().to_string();
    assert!(err.contains("capasity"), "{err}");
    let err = parse("colour = 1\n").unwrap_err().to_string();
    assert!(err.contains("colour"), "{err}");
}

#[test]
fn values_are_validated_with_the_key_named() {
    let err = parse("[journal]\ncapacity = 0\n").unwrap_err().to_string();
    assert!(err.contains("journal.capacity"), "{err}");
    let err = parse("default_provider = \"phonepe\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("[providers.phonepe]"), "{err}");
    let err = parse("default_provider = \"cash\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("default_provider"), "{err}");
    let err = parse("[providers.sim]\ncurrency = \"rs\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("providers.sim.currency"), "{err}");
}

#[test]
fn every_design_key_parses() {
    let text = r#"
default_provider = "sim"
[api]
socket = "/run/posbridge/api.sock"
allowed_groups = ["posbridge"]
[journal]
capacity = 500
[providers.phonepe]
base_url = "https://mercury-uat.phonepe.com/enterprise-sandbox"
merchant_id = "M"
store_id = "S"
terminal_id = "T"
salt_key_file = "/run/credentials/posbridge.service/salt_key"
salt_index = 1
provider_id = "P"
solution_type = "DQR_DEVICE"
timeout_ms = 120000
status_poll_ms = [25000, 3000]
[providers.iotpay]
base_url = "https://api.iotpaycloud.com/v1/"
mch_id = "1"
key_file = "/k"
job_no = "cashier"
currency = "CAD"
channel_id = "CC_PAX"
timeout_ms = 90000
status_poll_ms = [2000]
[providers.paysera]
base_url = "https://wallet.paysera.com"
client_id = "c"
mac_key_file = "/m"
spot_id = "7"
currency = "EUR"
timeout_ms = 60000
status_poll_ms = [1000]
[providers.lifepay]
login = "l"
password_file = "/p"
reader = "reader-1"
"#;
    let c = parse(text).unwrap();
    assert_eq!(c.providers.phonepe.unwrap().solution_type, "DQR_DEVICE");
    assert_eq!(c.providers.iotpay.unwrap().channel_id, "CC_PAX");
}

#[test]
fn phonepe_optional_keys_are_checked() {
    let base = "[providers.phonepe]\nbase_url = \"u\"\nmerchant_id = \"M\"\nstore_id = \"S\"\n\
                    terminal_id = \"T\"\nsalt_key_file = \"/k\"\nsalt_index = 1\n";
    let c = parse(&format!(
        "{base}status_id = \"merchant\"\nrequest_timeout_ms = 5000\n"
    ))
    .unwrap();
    assert_eq!(c.providers.phonepe.unwrap().request_timeout_ms, Some(5000));
    let err = parse(&format!("{base}status_id = \"theirs\"\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("providers.phonepe.status_id"), "{err}");
    let bad_id = base.replace("store_id = \"S\"", "store_id = \"S-1\"");
    let err = parse(&bad_id).unwrap_err().to_string();
    assert!(err.contains("providers.phonepe.store_id"), "{err}");
    let err = parse(&format!("{base}request_timeout_ms = 0\n"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("providers.phonepe.request_timeout_ms"),
        "{err}"
    );
}

#[test]
fn metrics_are_off_by_default_and_refused_on_a_lan_address() {
    assert_eq!(parse("").unwrap().metrics.listen().unwrap(), None);
    let c = parse("[metrics]\nlisten = \"127.0.0.1:9464\"\n").unwrap();
    assert!(c.metrics.listen().unwrap().is_some());
    let err = parse("[metrics]\nlisten = \"0.0.0.0:9464\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("metrics.listen"), "{err}");
    assert!(err.contains("not a loopback address"), "{err}");
}

#[test]
fn inline_secrets_need_a_private_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(
        &path,
        "[providers.lifepay]\nlogin = \"l\"\npassword = \"hunter2\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = Config::load(&path).unwrap_err().to_string();
    assert!(err.contains("readable by others"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    Config::load(&path).unwrap();
}
