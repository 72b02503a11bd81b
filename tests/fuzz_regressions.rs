//! Regression tests for what the fuzz targets (fuzz/, fuzz/README.md) found, one per finding,
//! each named after what it was and fed the fuzzer's own input (minimised where that reads
//! better). They call the same public parsers the targets do; they must not need a daemon.

use posbridge::provider::phonepe::answer::{self, Status};
use posbridge::provider::Operation;

fn longest_digit_run(text: &str) -> usize {
    text.split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0)
}

fn phonepe_pay() -> Operation {
    serde_json::from_value(serde_json::json!({
        "request_id": "till1-0001",
        "kind": "pay",
        "provider": "phonepe",
        "amount": 100,
        "currency": "INR",
        "created_at": "2026-01-01T00:00:00Z",
        "backend_id": "P0123456789abcdef0123456789ab",
    }))
    .unwrap()
}

/// fuzz/phonepe_answer, crash-f0219ec5: the answer's `code` went into the cashier's message
/// unscrubbed, so a code carrying a card number put a full PAN into the journal and the POS.
#[test]
fn phonepe_code_with_a_card_number_never_reaches_the_message_unmasked() {
    let crash = br#"{"success": false, "code": "DU88888888888888888888888888888888PLICATE_TRANSACTION_ID", "message": "The transa#tion id you have entered seems to be invalid. [message = Duplicate transaction id]"}"#;
    let pan_code =
        br#"{"success": false, "code": "4111111111111111", "data": {"status": "FAILED"}}"#;
    for body in [&crash[..], &pan_code[..]] {
        let a = answer::parse_answer(body).expect("a PhonePe answer");
        let text = match answer::classify_status(&phonepe_pay(), "P1", &a) {
            Status::Unclear(why) => why,
            Status::Failed(f) => f.message,
            other => panic!("unexpected verdict {other:?}"),
        };
        assert!(
            longest_digit_run(&text) < 12,
            "a card number reached the message: {text}"
        );
        assert!(text.contains("PhonePe answered"), "{text}");
    }
}

/// Found writing fuzz/config_toml: a TOML syntax error printed toml's quote of the offending
/// line, twice (message and cause), so `config check` and the daemon's start-up log showed
/// `key = "<the IOT Pay key>"` in clear. Through the real binary, as a technician runs it.
#[test]
fn config_syntax_error_never_quotes_the_line_holding_a_secret() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("posbridge.toml");
    std::fs::write(
        &path,
        "default_provider = \"sim\"\n[providers.iotpay]\nbase_url = \"http://127.0.0.1:9\"\n\
         mch_id = \"1\"\nkey = \"SuperSecretKey123\" oops\njob_no = \"1\"\ncurrency = \"CAD\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_posbridge"))
        .args(["config", "check"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("stderr: {stderr}");
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(!stderr.contains("SuperSecretKey123") && !stdout.contains("SuperSecretKey123"));
    assert!(stderr.contains("line 5, column 27"), "{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
}
