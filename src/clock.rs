//! Wall-clock timestamps as they appear on the wire and in the journal (RFC 3339, UTC).

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .expect("RFC 3339 formatting of the current time cannot fail")
}

/// How long ago `rfc3339` was (zero if it is in the future); `None` if it does not parse.
pub fn since(rfc3339: &str) -> Option<std::time::Duration> {
    let then = OffsetDateTime::parse(rfc3339, &Rfc3339).ok()?;
    let age = OffsetDateTime::now_utc() - then;
    Some(age.try_into().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_measures_age() {
        let past = (OffsetDateTime::now_utc() - time::Duration::seconds(90))
            .format(&Rfc3339)
            .unwrap();
        let age = since(&past).unwrap();
        assert!(
            age >= std::time::Duration::from_secs(90) && age < std::time::Duration::from_secs(120)
        );
        let future = (OffsetDateTime::now_utc() + time::Duration::hours(1))
            .format(&Rfc3339)
            .unwrap();
        assert_eq!(since(&future), Some(std::time::Duration::ZERO));
        assert_eq!(since("yesterday"), None);
    }
}
