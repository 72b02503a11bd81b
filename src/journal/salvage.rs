//! `posbridge journal check` and `posbridge journal salvage`: a damaged journal, offline.
//!
//! The daemon refuses to start on a journal that is torn, has flipped bits, or is not a posbridge
//! journal at all: starting empty would forget outcomes still unknown. These commands (run with the
//! daemon stopped; they take the journal's lock, as the daemon does) say what is wrong, and salvage
//! moves the damaged files aside under a timestamped name, copies every row that can still be read
//! into a fresh journal, unknown and in-flight outcomes first, and says what it kept and what it
//! could not read. The daemon then starts on the fresh journal and reconciles the kept unknown
//! outcomes. This module never decides an outcome and never deletes a file, and it never rewrites
//! a journal written by a newer posbridge (its layout is not this binary's).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags};

/// A SQLite error that means the file itself is damaged (not a passing fault).
pub fn damage(e: &rusqlite::Error) -> Option<String> {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::NotADatabase) => Some(format!("it is not a SQLite database ({e})")),
        Some(C::DatabaseCorrupt) => Some(format!("its pages are malformed ({e})")),
        _ => None,
    }
}

/// Integrity (`quick_check`, or the full `integrity_check`) and shape: a database that has
/// tables but no `operations` table is some other program's file, not an empty journal.
pub fn check_connection(conn: &Connection, quick: bool) -> Result<(), String> {
    let pragma = if quick {
        "PRAGMA quick_check(20)"
    } else {
        "PRAGMA integrity_check(20)"
    };
    let problems: Vec<String> = conn
        .prepare(pragma)
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(|e| damage(&e).unwrap_or_else(|| e.to_string()))?;
    if problems != ["ok"] {
        return Err(format!(
            "its integrity check failed: {}",
            problems.join("; ")
        ));
    }
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(|e| damage(&e).unwrap_or_else(|| e.to_string()))?;
    if !tables.is_empty() && !tables.iter().any(|t| t == "operations") {
        return Err(format!(
            "it is a SQLite database but not a posbridge journal (tables: {})",
            tables.join(", ")
        ));
    }
    Ok(())
}

/// What `journal check` found.
pub struct Checked {
    pub path: PathBuf,
    /// `Err(what is wrong)` when the journal is damaged.
    pub verdict: Result<(usize, usize, usize), String>,
}

/// Checks `state_dir`'s journal read-only: full integrity check, shape, and its counts
/// (entries, unknown, in flight).
pub fn check(state_dir: &Path) -> anyhow::Result<Checked> {
    let path = super::place::path(state_dir);
    anyhow::ensure!(path.exists(), "{} does not exist", path.display());
    let verdict = (|| {
        torn(&path)?;
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| damage(&e).unwrap_or_else(|| e.to_string()))?;
        check_connection(&conn, false)?;
        conn.query_row(
            "SELECT count(*), coalesce(sum(state = 'unknown'), 0),
                    coalesce(sum(state = 'in_flight'), 0) FROM operations",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)? as usize,
                    r.get::<_, i64>(1)? as usize,
                    r.get::<_, i64>(2)? as usize,
                ))
            },
        )
        .map_err(|e| damage(&e).unwrap_or_else(|| e.to_string()))
    })();
    Ok(Checked { path, verdict })
}

/// A file shorter than its header says, or not a whole number of pages: cut mid-write.
/// Only judged with no WAL frames pending: a checkpoint cut short by a crash is redone from
/// the WAL, so a short file with a WAL is not (yet) damage.
pub(crate) fn torn(path: &Path) -> Result<(), String> {
    use std::io::Read;
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) || !path.exists() {
        return Ok(());
    }
    let mut header = [0u8; 100];
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    if len < 100 || f.read_exact(&mut header).is_err() || !header.starts_with(b"SQLite format 3\0")
    {
        return Ok(()); // not SQLite at all: SQLite's own error says so
    }
    let page = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536,
        n => n as u64,
    };
    let pages = u32::from_be_bytes([header[28], header[29], header[30], header[31]]) as u64;
    if page == 0 || len % page != 0 || (pages > 0 && len < pages * page) {
        return Err(format!(
            "it was cut short: {len} bytes, but its header says {pages} pages of {page} bytes \
             ({} bytes)",
            pages * page
        ));
    }
    Ok(())
}

/// One row of the operations table, as stored.
struct Row {
    seq: i64,
    request_id: String,
    values: [rusqlite::types::Value; 9],
    state: String,
}

const COLUMNS: &str = "seq, request_id, action, provider, state, operation, response, \
                       final_order, created_at, updated_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let v = |i| r.get::<_, rusqlite::types::Value>(i);
    Ok(Row {
        seq: r.get(0)?,
        request_id: r.get(1)?,
        state: r.get(4)?,
        values: [
            v(1)?,
            v(2)?,
            v(3)?,
            v(4)?,
            v(5)?,
            v(6)?,
            v(7)?,
            v(8)?,
            v(9)?,
        ],
    })
}

/// Every row that can be read, unresolved ones first; and what stopped each pass, if anything.
fn read_rows(path: &Path) -> (Vec<Row>, Vec<String>) {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let conn = match Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY) {
        Ok(c) => c,
        Err(e) => return (rows, vec![e.to_string()]),
    };
    // A file cut short is refused as corrupt unless the schema is "writable": then SQLite
    // reads the pages that are there (nothing is written: the connection is read-only).
    let _ = conn.pragma_update(None, "writable_schema", "ON");
    let mut seen = HashSet::new();
    let pass =
        |sql: &str, args: &[&dyn rusqlite::ToSql], rows: &mut Vec<Row>, seen: &mut HashSet<i64>| {
            let result = conn.prepare(sql).and_then(|mut s| {
                let mut it = s.query(args)?;
                while let Some(r) = it.next()? {
                    // A row whose cells read back wrong (NULL where none can be) is not kept.
                    if let Ok(r) = row(r) {
                        if seen.insert(r.seq) {
                            rows.push(r);
                        }
                    }
                }
                Ok(())
            });
            result.err().map(|e| e.to_string())
        };
    // 1. Unknown and in-flight outcomes, through their own index (other pages may be gone).
    let unresolved = format!("SELECT {COLUMNS} FROM operations WHERE state != 'final'");
    errors.extend(pass(&unresolved, &[], &mut rows, &mut seen));
    // 2. Everything, in table order, until a damaged page stops the scan.
    let all = format!("SELECT {COLUMNS} FROM operations NOT INDEXED ORDER BY seq");
    errors.extend(pass(&all, &[], &mut rows, &mut seen));
    // 3. Past a damaged page: each remaining seq on its own, from the root down.
    // The highest seq ever used, from whichever page still says it; then some way past it,
    // since the page that knew the highest may be the one that is gone.
    let known = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap_or(0);
    let top = known("SELECT seq FROM sqlite_sequence WHERE name = 'operations'")
        .max(known("SELECT max(seq) FROM operations"))
        .max(rows.iter().map(|r| r.seq).max().unwrap_or(0));
    let one = format!("SELECT {COLUMNS} FROM operations WHERE seq = ?1");
    let low = top.saturating_sub(100_000).max(1);
    for seq in low..=top + 10_000 {
        if !seen.contains(&seq) {
            let _ = pass(&one, &[&seq], &mut rows, &mut seen);
        }
    }
    errors.dedup();
    (rows, errors)
}

/// What `journal salvage` did.
pub struct Salvaged {
    pub moved: Vec<PathBuf>,
    pub kept_unresolved: usize,
    /// The request_ids of the kept unknown and in-flight outcomes.
    pub unresolved_ids: Vec<String>,
    pub kept_final: usize,
    /// Seq numbers inside the kept range with no readable row: lost, or evicted earlier.
    pub missing: usize,
    pub errors: Vec<String>,
}

/// Moves `state_dir`'s journal aside (with its -wal/-shm) and writes a fresh journal holding
/// every readable row. The daemon must be stopped: takes its lock.
pub fn salvage(state_dir: &Path) -> anyhow::Result<Salvaged> {
    use anyhow::Context;
    let _lock = super::place::lock(state_dir)?;
    let path = super::place::path(state_dir);
    anyhow::ensure!(path.exists(), "{} does not exist", path.display());
    // A newer posbridge's journal is not rewritten in this binary's layout (a version that
    // cannot be read is damage: salvage goes on).
    if let Ok(Err(newer)) = super::schema::refuse_newer(&path) {
        anyhow::bail!(newer);
    }
    let (mut rows, errors) = read_rows(&path);
    rows.sort_by_key(|r| (r.state == "final", r.seq));

    let stamp: String = crate::clock::now_rfc3339()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(15)
        .collect();
    let mut moved = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", path.display()));
        if from.exists() {
            let to = state_dir.join(format!("journal.damaged-{stamp}.sqlite{suffix}"));
            std::fs::rename(&from, &to)
                .with_context(|| format!("cannot move {} aside", from.display()))?;
            moved.push(to);
        }
    }

    let mut conn = Connection::open(&path)
        .with_context(|| format!("cannot create a fresh journal {}", path.display()))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    if let Err(newer) = super::schema::bring_up(&mut conn, &path)? {
        anyhow::bail!(newer); // cannot be: the file was just created
    }
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(&format!(
            "INSERT OR IGNORE INTO operations ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, \
             ?8, ?9, ?10)"
        ))?;
        for r in &rows {
            let v = &r.values;
            insert.execute(params![
                r.seq, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]
            ])?;
        }
    }
    tx.commit()?;
    drop(conn);

    let kept_final = rows.iter().filter(|r| r.state == "final").count();
    let missing = match (
        rows.iter().map(|r| r.seq).min(),
        rows.iter().map(|r| r.seq).max(),
    ) {
        (Some(lo), Some(hi)) => (hi - lo + 1) as usize - rows.len(),
        _ => 0,
    };
    log::info!(
        "salvaged {} rows of {}",
        rows.len(),
        moved
            .first()
            .map_or(String::new(), |p| p.display().to_string())
    );
    Ok(Salvaged {
        unresolved_ids: rows
            .iter()
            .filter(|r| r.state != "final")
            .map(|r| r.request_id.clone())
            .collect(),
        moved,
        kept_unresolved: rows.len() - kept_final,
        kept_final,
        missing,
        errors,
    })
}

/// `posbridge journal check`: prints the verdict; exit 0 intact, 1 damaged.
pub fn check_command(state_dir: &Path) -> anyhow::Result<i32> {
    let c = check(state_dir)?;
    match c.verdict {
        Ok((entries, unknown, in_flight)) => {
            println!(
                "{}: intact, {entries} entries, {unknown} unknown outcomes, {in_flight} in flight",
                c.path.display()
            );
            Ok(0)
        }
        Err(what) => {
            println!("{}: damaged: {what}", c.path.display());
            println!(
                "With posbridge stopped (`systemctl stop posbridge`), run `posbridge journal \
                 salvage --state-dir {}`: it moves the file aside and keeps every readable row.",
                state_dir.display()
            );
            Ok(1)
        }
    }
}

/// `posbridge journal salvage`: prints what was kept and what was lost.
pub fn salvage_command(state_dir: &Path) -> anyhow::Result<i32> {
    let lock = super::place::lock(state_dir)?;
    if let Ok((entries, ..)) = check(state_dir)?.verdict {
        println!(
            "{}: intact ({entries} entries); nothing to salvage, nothing moved",
            super::place::path(state_dir).display()
        );
        return Ok(0);
    }
    drop(lock);
    let s = salvage(state_dir)?;
    for p in &s.moved {
        println!("moved aside: {}", p.display());
    }
    println!(
        "kept {} unknown or in-flight outcomes{}{}",
        s.kept_unresolved,
        if s.unresolved_ids.is_empty() {
            ""
        } else {
            ": "
        },
        s.unresolved_ids.join(", ")
    );
    println!("kept {} final results", s.kept_final);
    if s.missing > 0 {
        println!(
            "not readable: {} rows between the kept ones (lost to the damage, or evicted earlier)",
            s.missing
        );
    }
    for e in &s.errors {
        println!("read error: {e}");
    }
    println!(
        "fresh journal: {}; start posbridge: it reconciles the kept unknown outcomes. Check \
         sales made around the damage in the backends' portals.",
        super::place::path(state_dir).display()
    );
    Ok(0)
}
