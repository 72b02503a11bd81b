//! The Lifepay accounts the emulated card reader accepts (`--account LOGIN:PASSWORD_FILE`,
//! repeatable), so a test can prove that the login and password posbridge is configured with
//! (or a LIFE POS request carries) are the ones that reach the reader. A real Lifepay QPOS
//! signs in to Lifepay with the login and password of each operation and does nothing with a
//! card when they are refused; the emulator does the same: a START_* whose credentials match
//! no account is stored and answered as an error ("refused, nothing was charged"). With no
//! `--account` at all it accepts anything (the README's demo), and says so when it starts.
//! It owns parsing the flag and comparing; it must never log or store a password.

use std::path::Path;

use anyhow::{bail, Result};

use crate::device::link::Credentials;
use crate::secret::Secret;

/// What the reader tells the cashier when Lifepay refuses the sign-in (no card was read).
pub const REFUSED: &str = "Lifepay refused the login or password; nothing was charged";
/// A start without credentials, when accounts are configured.
pub const MISSING: &str =
    "No Lifepay login and password came with the operation; nothing was charged";

/// The accounts given with `--account`; empty means "accept any login and password".
/// Debug shows the logins only ([`Secret`] prints `<redacted>`).
#[derive(Debug, Default)]
pub struct Accounts(Vec<(String, Secret)>);

impl Accounts {
    /// Parses `LOGIN:PASSWORD_FILE` specs. The password is read from the file by the daemon's
    /// own rule for `password_file` (one trailing newline dropped), so handing both the same
    /// file compares exactly what the daemon sends. A password on the command line would be
    /// visible to every user in `ps`: hence a file.
    pub fn parse(specs: &[String]) -> Result<Accounts> {
        let mut accounts = Vec::new();
        for spec in specs {
            let Some((login, file)) = spec.split_once(':') else {
                bail!("--account {spec:?}: expected LOGIN:PASSWORD_FILE");
            };
            if login.is_empty() || file.is_empty() {
                bail!("--account {spec:?}: both LOGIN and PASSWORD_FILE must be given");
            }
            let password = crate::secret::resolve(
                &format!("--account {login}"),
                "password",
                None,
                Some(Path::new(file)),
            )?;
            accounts.push((login.to_owned(), password));
        }
        Ok(Accounts(accounts))
    }

    /// No account configured: every login and password is accepted (demo mode).
    pub fn is_open(&self) -> bool {
        self.0.is_empty()
    }

    /// The logins it accepts, for the startup line (never the passwords).
    pub fn logins(&self) -> Vec<&str> {
        self.0.iter().map(|(login, _)| login.as_str()).collect()
    }

    /// `Ok` when the operation may go ahead, else the cashier's message of the refusal.
    pub fn check(&self, credentials: Option<&Credentials>) -> Result<(), &'static str> {
        if self.is_open() {
            return Ok(());
        }
        let Some(c) = credentials else {
            return Err(MISSING);
        };
        let known = self
            .0
            .iter()
            .any(|(login, password)| *login == c.login && password.expose() == c.password);
        if known {
            Ok(())
        } else {
            Err(REFUSED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(login: &str, password: &str) -> Credentials {
        Credentials {
            login: login.into(),
            password: password.into(),
        }
    }

    #[test]
    fn only_a_known_login_with_its_own_password_passes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let other = dir.path().join("pw2");
        std::fs::write(&other, "other").unwrap();
        let accounts = Accounts::parse(&[
            format!("shop-17:{}", file.display()),
            format!("cashier-5:{}", other.display()),
        ])
        .unwrap();
        assert!(!accounts.is_open());
        assert_eq!(accounts.logins(), ["shop-17", "cashier-5"]);
        assert_eq!(accounts.check(Some(&creds("shop-17", "s3cret"))), Ok(()));
        assert_eq!(accounts.check(Some(&creds("cashier-5", "other"))), Ok(()));
        assert_eq!(
            accounts.check(Some(&creds("shop-17", "other"))),
            Err(REFUSED)
        );
        assert_eq!(
            accounts.check(Some(&creds("shop-17", "s3cret\n"))),
            Err(REFUSED)
        );
        assert_eq!(
            accounts.check(Some(&creds("nobody", "s3cret"))),
            Err(REFUSED)
        );
        assert_eq!(accounts.check(None), Err(MISSING));
    }

    #[test]
    fn without_accounts_anything_passes_and_bad_specs_are_named() {
        let open = Accounts::parse(&[]).unwrap();
        assert!(open.is_open());
        assert_eq!(open.check(None), Ok(()));
        assert_eq!(open.check(Some(&creds("x", "y"))), Ok(()));
        let err = Accounts::parse(&["shop-17".into()]).unwrap_err();
        assert!(err.to_string().contains("LOGIN:PASSWORD_FILE"), "{err}");
        let err = Accounts::parse(&["shop-17:/nonexistent/pw".into()]).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/pw"), "{err:#}");
    }
}
