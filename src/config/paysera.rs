//! The `[providers.paysera]` keys that need more than a type: `spot_id` as Paysera shows ids
//! (an integer, or a string of one), and the optional `spot_code` for a spot whose place info
//! carries no `location_id` (the Paysera document's shape `PAYSERA*<location>:<identifier>`).
//! It only parses and checks; it never contacts Paysera.

use serde::{Deserialize, Deserializer};

/// `spot_id = 7` or `spot_id = "7"`: kept as the decimal text that goes into the URL.
pub fn spot_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Number(u64),
        Text(String),
    }
    Ok(match Id::deserialize(d)? {
        Id::Number(n) => n.to_string(),
        Id::Text(s) => s,
    })
}

/// A spot id is a positive integer (the document shows them so: `"id": 1`, `/spot/1`).
pub fn check_spot_id(id: &str) -> Result<(), String> {
    if !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!(
            "{id:?} is not a Paysera spot id (an integer such as 7, as Paysera shows it)"
        ))
    }
}

/// `PAYSERA*<location id>:<spot identifier>`: the prefix, a location id of digits, a colon and
/// a non-empty identifier without control characters.
pub fn check_spot_code(code: &str) -> Result<(), String> {
    let shape = "must have the shape PAYSERA*<location id>:<identifier>, e.g. \"PAYSERA*3:TABLE1\"";
    let Some(rest) = code.strip_prefix("PAYSERA*") else {
        return Err(format!("{code:?} {shape}"));
    };
    let Some((location, identifier)) = rest.split_once(':') else {
        return Err(format!("{code:?} {shape}"));
    };
    if location.is_empty() || !location.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{code:?}: the location id {location:?} must be digits; {shape}"
        ));
    }
    if identifier.is_empty() || identifier.chars().any(char::is_control) {
        return Err(format!(
            "{code:?}: the spot identifier must be non-empty text; {shape}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spot_codes_of_the_documented_shape_pass_and_others_name_the_shape() {
        check_spot_code("PAYSERA*3:TABLE1").unwrap();
        check_spot_code("PAYSERA*1001:spot 7").unwrap();
        for bad in [
            "",
            "3:TABLE1",
            "PAYSERA*3",
            "PAYSERA*:TABLE1",
            "PAYSERA*x3:TABLE1",
            "PAYSERA*3:",
            "paysera*3:TABLE1",
        ] {
            let e = check_spot_code(bad).unwrap_err();
            assert!(
                e.contains("PAYSERA*<location id>:<identifier>"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn spot_ids_are_integers() {
        check_spot_id("7").unwrap();
        assert!(check_spot_id("").is_err());
        assert!(check_spot_id("7/../1").is_err());
        assert!(check_spot_id("-1").is_err());
    }
}

#[cfg(test)]
mod config_tests {
    use std::path::Path;

    use crate::config::Config;

    fn section(extra: &str) -> String {
        format!(
            "[providers.paysera]\nbase_url = \"https://wallet.paysera.com\"\nclient_id = \"c\"\n\
             mac_key_file = \"/m\"\ncurrency = \"EUR\"\n{extra}"
        )
    }

    #[test]
    fn spot_id_is_an_integer_or_a_string_and_spot_code_is_checked() {
        let parse = |t: &str| Config::parse(t, Path::new("t.toml"));
        let c = parse(&section("spot_id = 7\n")).unwrap();
        let p = c.providers.paysera.unwrap();
        assert_eq!((p.spot_id.as_str(), p.spot_code), ("7", None));
        let c = parse(&section(
            "spot_id = \"7\"\nspot_code = \"PAYSERA*3:TABLE1\"\n",
        ))
        .unwrap();
        let p = c.providers.paysera.unwrap();
        assert_eq!(p.spot_id, "7");
        assert_eq!(p.spot_code.as_deref(), Some("PAYSERA*3:TABLE1"));
        let e = parse(&section("spot_id = 7\nspot_code = \"TABLE1\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("providers.paysera.spot_code"), "{e}");
        let e = parse(&section("spot_id = \"seven\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("providers.paysera.spot_id"), "{e}");
    }
}
