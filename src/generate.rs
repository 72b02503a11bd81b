//! `posbridge generate`: the man pages and shell completions, made from the clap definitions in
//! `cli.rs` so they can never drift from the real command line. Packaging runs it
//! (packaging/build-deb); nothing here is used at run time.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::Cli;

/// Writes `posbridge.1` and `posbridge-<subcommand>.1` for every visible subcommand into `dir`.
pub fn man(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let cmd = Cli::command();
    let version = cmd.get_version().unwrap_or_default().to_owned();
    let mut written = Vec::new();
    let mut write = |name: String, page: clap::Command| -> Result<()> {
        let path = dir.join(format!("{name}.1"));
        let mut out = Vec::new();
        clap_mangen::Man::new(page).render(&mut out)?;
        std::fs::write(&path, out).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
        Ok(())
    };
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("posbridge-{}", sub.get_name());
        // The page's own name, so its NAME and SYNOPSIS read `posbridge-pay`, as man expects.
        write(
            name.clone(),
            sub.clone().name(name).version(version.clone()),
        )?;
    }
    write("posbridge".into(), cmd)?;
    Ok(written)
}

/// Prints the completion script for `shell` to `out`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) {
    clap_complete::generate(shell, &mut Cli::command(), "posbridge", out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_pages_name_every_visible_subcommand_and_hide_generate() {
        let dir = tempfile::tempdir().unwrap();
        let pages = man(dir.path()).unwrap();
        let main = std::fs::read_to_string(dir.path().join("posbridge.1")).unwrap();
        for sub in ["daemon", "pay", "doctor", "config"] {
            assert!(main.contains(sub), "posbridge.1 lacks {sub}");
            assert!(dir.path().join(format!("posbridge-{sub}.1")).exists());
        }
        assert!(!pages
            .iter()
            .any(|p| p.to_string_lossy().contains("generate")));
        let pay = std::fs::read_to_string(dir.path().join("posbridge-pay.1")).unwrap();
        assert!(pay.contains("amount"), "{pay}");
    }

    #[test]
    fn completions_know_the_subcommands() {
        let mut out = Vec::new();
        completions(clap_complete::Shell::Bash, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("doctor") && text.contains("get-result"));
    }
}
