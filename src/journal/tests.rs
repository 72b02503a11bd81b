//! Journal semantics without the daemon: intent, settle, duplicates, eviction, reopening.

use super::*;

/// An answer told apart from others by its reason.
fn ans(tag: &str) -> Answer {
    Answer::refused(None, Default::default(), ErrorKind::DefaultError, tag, "")
}

/// The reason of the answer stored for `e`.
fn tag(e: Entry) -> Option<String> {
    e.response.and_then(|a| a.reason().map(str::to_owned))
}

fn intent(id: &str) -> Intent {
    Intent {
        request_id: id.into(),
        action: "pay".into(),
        provider: "sim".into(),
        operation: format!("{{\"request_id\":\"{id}\"}}"),
        created_at: crate::clock::now_rfc3339(),
    }
}

fn open(dir: &tempfile::TempDir, capacity: usize) -> Journal {
    Journal::open(
        &dir.path().join("journal.sqlite"),
        capacity,
        Batching::default(),
    )
    .unwrap()
}

#[tokio::test]
async fn intent_then_outcome_then_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir, 10);
    assert_eq!(j.begin(intent("a")).await.unwrap(), Begin::Started);
    let e = j.get("a").unwrap().unwrap();
    assert_eq!(e.state, State::InFlight);
    assert!(e.response.is_none());
    assert_eq!(j.begin(intent("a")).await.unwrap(), Begin::Duplicate);
    assert!(j.settle("a", State::Final, &ans("done")).await.unwrap());
    let e = j.get("a").unwrap().unwrap();
    assert_eq!(e.state, State::Final);
    assert_eq!(tag(e).as_deref(), Some("done"));
    assert!(j.get("b").unwrap().is_none());
}

#[tokio::test]
async fn a_final_answer_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir, 10);
    j.begin(intent("a")).await.unwrap();
    assert!(j.settle("a", State::Unknown, &ans("u")).await.unwrap());
    assert!(j.settle("a", State::Final, &ans("f1")).await.unwrap());
    assert!(!j.settle("a", State::Final, &ans("f2")).await.unwrap());
    assert!(!j.settle("a", State::Unknown, &ans("u2")).await.unwrap());
    assert_eq!(tag(j.get("a").unwrap().unwrap()).as_deref(), Some("f1"));
}

#[tokio::test]
async fn eviction_keeps_the_newest_finals_and_every_unresolved_entry() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir, 5);
    j.begin(intent("stuck")).await.unwrap();
    j.begin(intent("unknown")).await.unwrap();
    j.settle("unknown", State::Unknown, &ans("u"))
        .await
        .unwrap();
    for i in 0..10 {
        let id = format!("p{i}");
        j.begin(intent(&id)).await.unwrap();
        j.settle(&id, State::Final, &ans("f")).await.unwrap();
    }
    let c = j.counts().unwrap();
    assert_eq!(
        c,
        Counts {
            total: 5,
            in_flight: 1,
            unknown: 1
        }
    );
    assert!(j.get("stuck").unwrap().is_some());
    assert!(j.get("unknown").unwrap().is_some());
    for i in 0..7 {
        assert!(
            j.get(&format!("p{i}")).unwrap().is_none(),
            "p{i} should be evicted"
        );
    }
    for i in 7..10 {
        assert!(
            j.get(&format!("p{i}")).unwrap().is_some(),
            "p{i} should be kept"
        );
    }
}

/// The writer keeps the ring's size itself between transactions: duplicates, settles that
/// change nothing and a reopen over capacity must leave it at exactly the file's count.
#[tokio::test]
async fn the_ring_holds_exactly_its_capacity_through_duplicates_and_a_smaller_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let j = open(&dir, 8);
        for i in 0..8 {
            let id = format!("a{i}");
            assert_eq!(j.begin(intent(&id)).await.unwrap(), Begin::Started);
            assert_eq!(j.begin(intent(&id)).await.unwrap(), Begin::Duplicate);
            assert!(j.settle(&id, State::Final, &ans("f")).await.unwrap());
            assert!(!j.settle(&id, State::Final, &ans("again")).await.unwrap());
        }
        assert_eq!(j.counts().unwrap().total, 8);
        j.close();
    }
    // Reopened with room for 3: the first final brings it back to 3, and there it stays.
    let j = open(&dir, 3);
    for i in 0..6 {
        let id = format!("b{i}");
        j.begin(intent(&id)).await.unwrap();
        j.begin(intent(&id)).await.unwrap();
        j.settle(&id, State::Final, &ans("f")).await.unwrap();
        assert_eq!(j.counts().unwrap().total, 3, "after b{i}");
    }
    assert!(j.get("b5").unwrap().is_some() && j.get("b3").unwrap().is_some());
    assert!(j.get("b2").unwrap().is_none());
}

#[tokio::test]
async fn eviction_follows_completion_order_not_start_order() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir, 2);
    j.begin(intent("slow")).await.unwrap();
    j.begin(intent("fast")).await.unwrap();
    j.settle("fast", State::Final, &ans("f")).await.unwrap();
    j.settle("slow", State::Final, &ans("s")).await.unwrap();
    j.begin(intent("next")).await.unwrap();
    j.settle("next", State::Final, &ans("n")).await.unwrap();
    assert!(j.get("fast").unwrap().is_none());
    assert!(j.get("slow").unwrap().is_some());
}

#[tokio::test]
async fn everything_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let j = open(&dir, 10);
        j.begin(intent("a")).await.unwrap();
        j.begin(intent("b")).await.unwrap();
        j.settle("b", State::Final, &ans("fb")).await.unwrap();
        // No close(): as after a crash, only what was committed counts.
    }
    let j = open(&dir, 10);
    assert_eq!(j.in_state(State::InFlight).unwrap()[0].request_id, "a");
    assert_eq!(tag(j.get("b").unwrap().unwrap()).as_deref(), Some("fb"));
    assert_eq!(
        j.recent(10)
            .unwrap()
            .iter()
            .map(|e| e.request_id.as_str())
            .collect::<Vec<_>>(),
        ["b", "a"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_all_land_once() {
    let dir = tempfile::tempdir().unwrap();
    let j = std::sync::Arc::new(open(&dir, 1000));
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let j = j.clone();
            tokio::spawn(async move {
                // Every id is begun twice at once: exactly one wins.
                let id = format!("c{}", i % 32);
                j.begin(intent(&id)).await.unwrap()
            })
        })
        .collect();
    let mut started = 0;
    for t in tasks {
        if t.await.unwrap() == Begin::Started {
            started += 1;
        }
    }
    assert_eq!(started, 32);
    assert_eq!(j.counts().unwrap().in_flight, 32);
    j.ping().await.unwrap();
    j.close();
    assert!(matches!(j.ping().await, Err(JournalError::Closed)));
}

#[test]
fn a_corrupt_file_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    std::fs::write(&path, vec![0x42; 8192]).unwrap();
    let err = Journal::open(&path, 10, Batching::default())
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("journal.sqlite"), "{err}");
}

#[tokio::test]
async fn an_unsettled_operation_can_be_amended_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let j = open(&dir, 10);
        j.begin(intent("a")).await.unwrap();
        assert!(j.amend("a", "{\"note\":1}".into()).await.unwrap());
        assert!(!j.amend("missing", "{}".into()).await.unwrap());
        j.close();
    }
    let j = open(&dir, 10);
    let e = j.get("a").unwrap().unwrap();
    assert_eq!(
        (e.state, e.operation.as_str()),
        (State::InFlight, "{\"note\":1}")
    );
    assert!(j.settle("a", State::Final, &ans("f")).await.unwrap());
    assert!(
        !j.amend("a", "{\"note\":2}".into()).await.unwrap(),
        "a final entry keeps its operation"
    );
    assert_eq!(j.get("a").unwrap().unwrap().operation, "{\"note\":1}");
}

/// A journal of `capacity` whose file may grow by two pages only (`max_page_count`), and a
/// connection to it for a writer the test runs itself.
fn room_for_two_more_pages(
    dir: &tempfile::TempDir,
    capacity: usize,
) -> (std::path::PathBuf, Connection) {
    let path = dir.path().join("journal.sqlite");
    drop(open(dir, capacity)); // creates the schema
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    conn.pragma_update(None, "max_page_count", pages + 2)
        .unwrap();
    (path, conn)
}

/// A writer over `conn` with no writer thread: each write is committed on the test's thread.
fn desk_only(
    conn: Connection,
    path: std::path::PathBuf,
    capacity: usize,
    health: Arc<Health>,
    commits: Arc<super::CommitStats>,
) -> Arc<writer::Writer> {
    let (w, _bell) =
        writer::Writer::new(conn, capacity, Batching::default(), path, health, commits);
    w
}

/// The command for an intent, and its answer.
fn begin_command(
    intent: Intent,
) -> (
    writer::Command,
    oneshot::Receiver<Result<Begin, JournalError>>,
) {
    let (reply, answer) = oneshot::channel();
    (writer::Command::Begin { intent, reply }, answer)
}

/// An intent written through `w`; its answer.
fn send_begin(w: &writer::Writer, intent: Intent) -> Result<Begin, JournalError> {
    let (cmd, mut answer) = begin_command(intent);
    w.write(cmd);
    answer.try_recv().expect("committed on this thread")
}

/// A transaction that fails for want of space (SQLITE_FULL, here from `max_page_count`) is
/// rolled back, reported as a full disk, and the next commit works: no restart needed.
#[test]
fn the_writer_recovers_after_a_full_disk_rolls_a_transaction_back() {
    let dir = tempfile::tempdir().unwrap();
    let (path, conn) = room_for_two_more_pages(&dir, 10);
    let health = Arc::new(Health::default());
    let commits = Arc::new(super::CommitStats::default());
    let w = desk_only(conn, path, 10, health.clone(), commits.clone());
    let mut big = intent("big");
    big.operation = "x".repeat(64 * 1024);
    let err = send_begin(&w, big).unwrap_err().to_string();
    assert!(err.contains("disk is full"), "{err}");
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
    assert!(health.failing() && health.stopped().is_none());
    assert_eq!(health.to_json()["last_error"]["kind"], "disk_full");

    assert_eq!(send_begin(&w, intent("small")).unwrap(), Begin::Started);
    assert!(!health.failing(), "a commit after the failure clears it");
    assert_eq!(
        commits.failures.get(),
        1,
        "the metrics count the failed commit"
    );
    assert_eq!(
        commits.latency.snapshot().2,
        2,
        "both transactions are timed"
    );
    w.close();
    drop(w);
    let j = open(&dir, 10);
    assert!(
        j.get("big").unwrap().is_none(),
        "nothing of the failed transaction counts"
    );
    assert!(j.get("small").unwrap().is_some());
}

/// A transaction rolled back by a full disk after one of its intents was written: the writer
/// reads the ring's size again, so the evictions after it keep exactly the capacity.
#[test]
fn a_rolled_back_intent_is_not_counted_in_the_ring() {
    let dir = tempfile::tempdir().unwrap();
    let (path, conn) = room_for_two_more_pages(&dir, 2);
    let w = desk_only(conn, path, 2, Arc::default(), Arc::default());
    let settle = |id: &str| {
        let (reply, mut answer) = oneshot::channel();
        w.write(writer::Command::Settle {
            request_id: id.into(),
            state: State::Final,
            response: "{}".into(),
            reply,
        });
        answer.try_recv().unwrap()
    };
    // One transaction of both: the small one queued, the big one written (and filling it up).
    let mut big = intent("big");
    big.operation = "x".repeat(64 * 1024);
    let (lost, mut small) = begin_command(intent("lost"));
    w.queue(lost);
    assert!(send_begin(&w, big).is_err());
    assert!(
        small.try_recv().unwrap().is_err(),
        "the whole transaction rolled back"
    );
    for id in ["p1", "p2", "p3"] {
        assert_eq!(send_begin(&w, intent(id)).unwrap(), Begin::Started);
        assert!(settle(id).unwrap());
    }
    w.close();
    drop(w);
    let j = open(&dir, 2);
    assert_eq!(j.counts().unwrap().total, 2, "exactly the capacity");
    assert!(j.get("p2").unwrap().is_some() && j.get("p3").unwrap().is_some());
}

/// The answer to a write, or a failure if none comes within 10 s.
fn within_10s(mut answer: oneshot::Receiver<Result<Begin, JournalError>>) -> Begin {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match answer.try_recv() {
            Ok(r) => return r.unwrap(),
            Err(oneshot::error::TryRecvError::Empty) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Err(e) => panic!("no answer within 10 s: {e}"),
        }
    }
}

/// Writes that find the desk taken are queued, and the writer thread commits them once the
/// one at the desk leaves it: here a caller's commit waits on SQLite's write lock, held by
/// another connection, while two more writes arrive.
#[test]
fn writes_queued_behind_a_busy_desk_are_committed_by_the_writer_thread() {
    queued_behind_a_busy_desk(true);
}

/// The same with no writer thread listening (it ends only at close, or by a panic): the one
/// leaving the desk commits what is queued itself, so no write waits for a later one.
#[test]
fn with_no_writer_thread_the_one_leaving_the_desk_commits_what_is_queued() {
    queued_behind_a_busy_desk(false);
}

fn queued_behind_a_busy_desk(writer_thread: bool) {
    let dir = tempfile::tempdir().unwrap();
    drop(open(&dir, 10));
    let path = dir.path().join("journal.sqlite");
    let conn = Connection::open(&path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(20))
        .unwrap();
    let commits = Arc::new(super::CommitStats::default());
    let (w, bell) = writer::Writer::new(
        conn,
        10,
        Batching::default(),
        path.clone(),
        Arc::default(),
        commits.clone(),
    );
    let standing = Arc::downgrade(&w);
    let thread = match writer_thread {
        true => Some(std::thread::spawn(move || writer::stand_by(standing, bell))),
        false => {
            drop(bell);
            None
        }
    };

    let blocker = Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (first, first_answer) = begin_command(intent("first"));
    let at_desk = {
        let w = w.clone();
        std::thread::spawn(move || w.write(first))
    };
    // The first caller is at the desk, waiting for the write lock; these two find it taken.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !w.desk_taken() {
        assert!(
            std::time::Instant::now() < deadline,
            "nobody sat at the desk"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let (a, mut a_answer) = begin_command(intent("a"));
    let (b, b_answer) = begin_command(intent("b"));
    w.write(a);
    w.write(b);
    assert!(
        matches!(
            a_answer.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        ),
        "queued, not committed, while the desk is taken"
    );
    blocker.execute_batch("ROLLBACK").unwrap();
    at_desk.join().unwrap();
    assert_eq!(within_10s(first_answer), Begin::Started);
    // The one at the desk commits one transaction and leaves: the writer thread, or with none
    // the one leaving, takes the rest.
    assert_eq!(within_10s(a_answer), Begin::Started);
    assert_eq!(within_10s(b_answer), Begin::Started);
    assert_eq!(
        commits.latency.snapshot().2,
        2,
        "the first write alone, then the two queued in one transaction"
    );
    w.close();
    if let Some(thread) = thread {
        thread.join().unwrap();
    }
    let (late, late_answer) = begin_command(intent("late"));
    w.write(late);
    assert!(
        late_answer.blocking_recv().is_err(),
        "a closed writer refuses"
    );
}

#[tokio::test]
async fn a_file_cut_short_is_refused_naming_the_salvage_command() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir, 10);
    for n in 0..20 {
        let mut i = intent(&format!("r{n}"));
        i.operation = "y".repeat(2000);
        j.begin(i).await.unwrap();
    }
    j.close();
    drop(j);
    let path = dir.path().join("journal.sqlite");
    let c = Connection::open(&path).unwrap();
    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(c);
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 1000)
        .unwrap();
    let err = Journal::open(&path, 10, Batching::default())
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("cut short"), "{err}");
    assert!(
        err.contains("posbridge journal salvage --state-dir"),
        "{err}"
    );
}

#[tokio::test]
async fn a_stored_answer_that_cannot_be_read_reads_as_an_unknown_outcome_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir, 10);
    j.begin(intent("a")).await.unwrap();
    j.settle("a", State::Final, &ans("f")).await.unwrap();
    // Damaged by hand, behind the journal's back.
    let raw = Connection::open(dir.path().join("journal.sqlite")).unwrap();
    raw.execute(
        "UPDATE operations SET response = '{not json' WHERE request_id = 'a'",
        [],
    )
    .unwrap();
    let answer = j.get("a").unwrap().unwrap().response.unwrap();
    assert_eq!(answer.kind(), Some(ErrorKind::UnknownResultError));
    assert_eq!(answer.reason(), Some("answer_unreadable"));
    assert_eq!(answer.request_id.as_deref(), Some("a"));
    // The other readers go on: the listing still has it.
    assert_eq!(j.recent(10).unwrap().len(), 1);
}

#[test]
fn the_reader_keeps_a_bounded_page_cache() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir, 10);
    let reader = j.reader.lock().unwrap();
    let size: i64 = reader
        .query_row("PRAGMA cache_size", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        size,
        -i64::from(memory::READER_CACHE_KIB),
        "KiB, as a negative cache_size"
    );
    let temp: i64 = reader
        .query_row("PRAGMA temp.cache_size", [], |r| r.get(0))
        .unwrap();
    assert_eq!(temp, -i64::from(memory::TEMP_CACHE_KIB));
}
