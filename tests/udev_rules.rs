//! udev/70-posbridge.rules: the syntax udev accepts and the keys operations rely on
//! (docs/operations.md). Debian 12's udev (252), here and in CI, has no `udevadm verify` (a
//! test that ran it where it exists never ran anywhere, and passed): the rules are parsed
//! here, and the VM stage has the real udev apply them to a USB serial reader (hil/vm part 3,
//! `usb.*`: the /dev/posbridge name, group and mode).

use std::collections::BTreeSet;

const RULES: &str = include_str!("../udev/70-posbridge.rules");

/// One `KEY{attr}op"value"` of a rule line.
#[derive(Debug)]
struct Pair {
    key: String,
    op: String,
    value: String,
}

const MATCH_KEYS: &[&str] = &[
    "ACTION",
    "KERNEL",
    "SUBSYSTEM",
    "SUBSYSTEMS",
    "ATTR",
    "ATTRS",
    "ENV",
];
const ASSIGN_KEYS: &[&str] = &[
    "ENV", "GROUP", "MODE", "TAG", "SYMLINK", "IMPORT", "OPTIONS", "GOTO", "LABEL",
];

/// Splits a rule line into its pairs, the way udev's parser does, or says what is wrong.
fn parse_line(line: &str) -> Result<Vec<Pair>, String> {
    let mut pairs = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let key_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '{' || c == '}'))
            .ok_or("a key without an operator")?;
        let key = &rest[..key_end];
        rest = &rest[key_end..];
        let op = ["==", "!=", "+=", "-=", ":=", "="]
            .into_iter()
            .find(|op| rest.starts_with(op))
            .ok_or_else(|| format!("{key}: no operator"))?;
        rest = rest[op.len()..]
            .strip_prefix('"')
            .ok_or_else(|| format!("{key}: the value must be in double quotes"))?;
        let value_end = rest
            .find('"')
            .ok_or_else(|| format!("{key}: unterminated value"))?;
        pairs.push(Pair {
            key: key.to_owned(),
            op: op.to_owned(),
            value: rest[..value_end].to_owned(),
        });
        rest = rest[value_end + 1..].trim_start();
        if !rest.is_empty() {
            rest = rest
                .strip_prefix(',')
                .ok_or_else(|| format!("{key}: pairs must be separated by commas"))?
                .trim_start();
        }
    }
    for p in &pairs {
        let base = p.key.split('{').next().unwrap();
        let is_match = p.op == "==" || p.op == "!=";
        let known = if is_match {
            MATCH_KEYS.contains(&base)
        } else {
            ASSIGN_KEYS.contains(&base)
        };
        if !known {
            return Err(format!(
                "{} {} is not used this way in udev rules",
                p.key, p.op
            ));
        }
        if p.key.contains('{') != matches!(base, "ATTR" | "ATTRS" | "ENV" | "IMPORT") {
            return Err(format!("{}: wrong use of {{attribute}}", p.key));
        }
    }
    Ok(pairs)
}

fn rules() -> Vec<(usize, Vec<Pair>)> {
    RULES
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(n, l)| {
            let pairs = parse_line(l).unwrap_or_else(|e| panic!("line {}: {e}: {l}", n + 1));
            (n + 1, pairs)
        })
        .collect()
}

fn find<'a>(pairs: &'a [Pair], key: &str) -> Option<&'a Pair> {
    pairs.iter().find(|p| p.key == key)
}

#[test]
fn every_line_parses_and_every_goto_has_its_label() {
    let rules = rules();
    assert!(rules.len() > 5);
    let labels: BTreeSet<&str> = rules
        .iter()
        .filter_map(|(_, r)| find(r, "LABEL"))
        .map(|p| p.value.as_str())
        .collect();
    for (n, r) in &rules {
        if let Some(goto) = find(r, "GOTO") {
            assert!(
                labels.contains(goto.value.as_str()),
                "line {n}: no LABEL {goto:?}"
            );
        }
    }
    // A GOTO may only jump forwards: udev ignores a backward one.
    let label_line = |name: &str| {
        rules
            .iter()
            .find(|(_, r)| find(r, "LABEL").is_some_and(|p| p.value == name))
            .map(|(n, _)| *n)
            .unwrap()
    };
    for (n, r) in &rules {
        if let Some(goto) = find(r, "GOTO") {
            assert!(label_line(&goto.value) > *n, "line {n}: GOTO backwards");
        }
    }
}

#[test]
fn the_parser_refuses_what_udev_refuses() {
    assert!(parse_line(r#"KERNEL=="tty*", GROUP="x""#).is_ok());
    assert!(parse_line(r#"KERNEL=="tty*" GROUP="x""#).is_err());
    assert!(parse_line(r#"KERNEL==tty"#).is_err());
    assert!(parse_line(r#"SYMLINK=="x""#).is_err());
    assert!(parse_line(r#"ATTRS{idVendor}="x""#).is_err());
    assert!(parse_line(r#"GROUP{x}="posbridge""#).is_err());
}

#[test]
fn each_model_is_matched_by_vendor_and_product_and_has_a_role() {
    let models: Vec<_> = rules()
        .into_iter()
        .filter(|(_, r)| find(r, "ENV{POSBRIDGE_ROLE}").is_some_and(|p| p.op == "="))
        .collect();
    assert!(
        models.len() >= 3,
        "the reference reader, display and FTDI reader"
    );
    let mut roles = BTreeSet::new();
    for (n, r) in &models {
        let vendor = find(r, "ATTRS{idVendor}").unwrap_or_else(|| panic!("line {n}: no vendor"));
        let product = find(r, "ATTRS{idProduct}").unwrap_or_else(|| panic!("line {n}: no product"));
        for id in [vendor, product] {
            assert!(
                id.value.len() == 4 && id.value.chars().all(|c| c.is_ascii_hexdigit()),
                "line {n}: a USB id is four hex digits, no wildcard: {id:?}"
            );
            assert_eq!(id.op, "==", "line {n}");
        }
        assert_eq!(find(r, "SUBSYSTEMS").map(|p| p.value.as_str()), Some("usb"));
        let role = &find(r, "ENV{POSBRIDGE_ROLE}").unwrap().value;
        assert!(
            matches!(role.as_str(), "card-reader" | "dqr-display"),
            "line {n}: role {role} is not one `posbridge pair --role` takes"
        );
        roles.insert(role.clone());
        // A stock bridge chip's ids are shared by every adapter made with it: such a model must
        // be pinned down further by its descriptor strings or serial number.
        let stock = [
            ("0403", "6001"),
            ("0403", "6015"),
            ("10c4", "ea60"),
            ("1a86", "7523"),
        ];
        if stock.contains(&(vendor.value.as_str(), product.value.as_str())) {
            assert!(
                ["ATTRS{product}", "ATTRS{manufacturer}", "ATTRS{serial}"]
                    .iter()
                    .any(|k| find(r, k).is_some()),
                "line {n}: a stock bridge-chip id needs product/manufacturer/serial too"
            );
        }
    }
    assert_eq!(roles.len(), 2, "{roles:?}");
}

#[test]
fn ports_get_the_group_mode_name_and_tags_operations_rely_on() {
    let all: Vec<Pair> = rules().into_iter().flat_map(|(_, r)| r).collect();
    let has = |key: &str, op: &str, value: &str| {
        all.iter()
            .any(|p| p.key == key && p.op == op && p.value == value)
    };
    assert!(has("GROUP", "=", "posbridge"));
    assert!(has("MODE", "=", "0660"));
    assert!(has("TAG", "+=", "systemd"));
    assert!(has("ENV{ID_MM_DEVICE_IGNORE}", "=", "1"));
    assert!(has("OPTIONS", "+=", "last_rule"), "the brltty exclusion");
    assert!(has(
        "SYMLINK",
        "+=",
        "posbridge/$env{POSBRIDGE_ROLE}-$env{ID_SERIAL_SHORT}"
    ));
    assert!(has("ACTION", "==", "remove"));
    // last_rule must never be reached by a tty event (it would stop 99-systemd.rules there).
    let text: Vec<&str> = RULES.lines().collect();
    let last = text.iter().position(|l| l.contains("last_rule")).unwrap();
    assert!(
        text[..last]
            .iter()
            .rev()
            .take(8)
            .any(|l| l.starts_with(r#"SUBSYSTEM=="tty", GOTO="posbridge_tty""#)),
        "tty events must branch off before last_rule"
    );
}
