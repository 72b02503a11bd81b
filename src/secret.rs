//! Secrets (salt keys, merchant keys, MAC keys, passwords): where they come from, and a type
//! that never shows them.
//!
//! A secret is taken from the config file itself, from a file named by the `*_file` key, or
//! from a systemd credential of the same name (`$CREDENTIALS_DIRECTORY/<name>`), in that order.
//! [`Secret`] prints as `<redacted>` in Debug and Display, so a logged config or error can never
//! carry one. Only the signing code calls [`Secret::expose`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for signing. Never log or format the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "{key} is not set: give `{name}`, `{name}_file`, or a systemd credential named `{name}`"
    )]
    Missing { key: String, name: String },
    #[error("{key}: cannot read {path}: {source}")]
    Read {
        key: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{key}: {path} is empty")]
    Empty { key: String, path: PathBuf },
}

/// Finds the secret `name` of config section `section` (e.g. `providers.phonepe`, `salt_key`).
pub fn resolve(
    section: &str,
    name: &str,
    inline: Option<&Secret>,
    file: Option<&Path>,
) -> Result<Secret, SecretError> {
    let key = format!("{section}.{name}");
    if let Some(s) = inline {
        return Ok(s.clone());
    }
    let credential = std::env::var_os("CREDENTIALS_DIRECTORY")
        .filter(|d| !d.is_empty())
        .map(|d| PathBuf::from(d).join(name))
        .filter(|p| p.exists());
    let Some(path) = file.map(Path::to_path_buf).or(credential) else {
        return Err(SecretError::Missing {
            key,
            name: name.to_owned(),
        });
    };
    let text = std::fs::read_to_string(&path).map_err(|source| SecretError::Read {
        key: key.clone(),
        path: path.clone(),
        source,
    })?;
    // Files written by editors and `echo` end in a newline that is not part of the secret.
    let value = text.trim_end_matches(['\n', '\r']);
    if value.is_empty() {
        return Err(SecretError::Empty { key, path });
    }
    Ok(Secret(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn inline_then_file_and_trailing_newline_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k");
        std::fs::write(&f, "s3cret\n").unwrap();
        let inline = Secret::new("a");
        assert_eq!(
            resolve("p", "key", Some(&inline), Some(&f))
                .unwrap()
                .expose(),
            "a"
        );
        assert_eq!(
            resolve("p", "key", None, Some(&f)).unwrap().expose(),
            "s3cret"
        );
        std::fs::write(&f, "\n").unwrap();
        assert!(matches!(
            resolve("p", "key", None, Some(&f)),
            Err(SecretError::Empty { .. })
        ));
    }

    #[test]
    fn missing_names_every_way_to_give_it() {
        let err = resolve("providers.iotpay", "key-that-no-credential-has", None, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("providers.iotpay.key-that-no-credential-has"),
            "{err}"
        );
        assert!(err.contains("_file"), "{err}");
    }
}
