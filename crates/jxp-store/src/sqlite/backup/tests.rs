//! Backups and restores of real stores: taken while the store is open, refused where they
//! would lose or corrupt data.

use serde_json::json;

use super::*;
use crate::spec::{TableSpec, WriteOp, WriteTx};
use crate::{Document, SqliteOptions, SqliteStore, Store};

fn doc(i: u32) -> Document {
    json!({"_id": format!("{i:024x}"), "n": i, "_deleted": false, "__v": 0,
           "createdAt": "2020-01-01T00:00:00.000Z", "updatedAt": "2020-01-01T00:00:00.000Z"})
    .as_object()
    .cloned()
    .unwrap_or_default()
}

async fn open(db: &Path) -> SqliteStore {
    let store = SqliteStore::open(SqliteOptions::new(db)).unwrap();
    store
        .migrate(&[TableSpec {
            model: "t".into(),
            fields: vec!["n".into()],
            ..TableSpec::default()
        }])
        .await
        .unwrap();
    store
}

async fn insert(store: &SqliteStore, range: std::ops::RangeInclusive<u32>) {
    for i in range {
        store
            .write(WriteTx {
                ops: vec![WriteOp::Insert {
                    model: "t".into(),
                    doc: doc(i),
                }],
                ..WriteTx::default()
            })
            .await
            .unwrap();
    }
}

/// A closed store `jxp.db` in `dir` with `copy.db`, its backup after one write, and `later`
/// writes made after the backup.
async fn backed_up(dir: &Path, later: u32) -> (PathBuf, PathBuf) {
    let (db, copy) = (dir.join("jxp.db"), dir.join("copy.db"));
    let store = open(&db).await;
    insert(&store, 1..=1).await;
    backup(&db, &copy, false).unwrap();
    insert(&store, 2..=1 + later).await;
    (db, copy)
}

async fn holds(store: &SqliteStore, i: u32) -> bool {
    store
        .get("t", &format!("{i:024x}"))
        .await
        .unwrap()
        .is_some()
}

fn models(summary: &Summary) -> Vec<(String, u64, u64)> {
    summary
        .models
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| (m.model.clone(), m.documents, m.last_seq))
        .collect()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_backup_of_an_open_store_restores_to_every_write_committed_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jxp.db");
    let store = open(&db).await;
    insert(&store, 1..=3).await;

    let copy = dir.path().join("copy.db");
    let summary = backup(&db, &copy, false).unwrap();
    assert_eq!(summary.path, copy);
    assert_eq!(models(&summary), [("t".to_owned(), 3, 3)]);
    assert!(summary.to_string().contains("3 documents"), "{summary}");
    insert(&store, 4..=4).await;

    let restored_db = dir.path().join("restored").join("jxp.db");
    let restored = restore(&copy, &restored_db, false).unwrap();
    assert!(restored.replaced.is_none());
    assert_eq!(models(&restored.from), [("t".to_owned(), 3, 3)]);
    let again = open(&restored_db).await;
    for i in 1..=3 {
        assert!(holds(&again, i).await);
    }
    assert!(!holds(&again, 4).await);
    // Writes go on from the backup's seq.
    insert(&again, 5..=5).await;
    assert_eq!(again.last_seq("t").await.unwrap(), 4);
}

#[tokio::test]
async fn a_backup_never_replaces_a_file_unless_asked_and_never_the_store_itself() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jxp.db");
    let store = open(&db).await;
    insert(&store, 1..=2).await;
    let copy = dir.path().join("copy.db");
    std::fs::write(&copy, "precious").unwrap();

    let err = backup(&db, &copy, false).unwrap_err();
    assert!(
        matches!(&err, BackupError::Exists(p) if *p == copy),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), "precious");

    let err = backup(&db, &db, true).unwrap_err();
    assert!(matches!(err, BackupError::SameFile(_)), "{err}");

    backup(&db, &copy, true).unwrap();
    assert_eq!(
        models(&inspect(&copy, true).unwrap()),
        [("t".to_owned(), 2, 2)]
    );
    assert!(
        !files_in(dir.path()).iter().any(|n| n.contains("partial")),
        "{:?}",
        files_in(dir.path())
    );

    let err = backup(&dir.path().join("none.db"), &dir.path().join("x.db"), false).unwrap_err();
    assert!(matches!(err, BackupError::Missing(_)), "{err}");
    assert!(!dir.path().join("none.db").exists());
}

#[tokio::test]
async fn a_restore_is_refused_while_the_store_is_open_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (db, copy) = backed_up(dir.path(), 0).await;
    let store = open(&db).await;
    insert(&store, 2..=3).await;

    let err = restore(&copy, &db, true).unwrap_err();
    assert!(
        matches!(&err, BackupError::Store(StoreError::InUse { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("in use"), "{err}");
    assert_eq!(store.last_seq("t").await.unwrap(), 3);
    assert!(holds(&store, 3).await);
}

#[tokio::test]
async fn a_restore_over_a_store_needs_replace_and_leaves_no_stale_log() {
    let dir = tempfile::tempdir().unwrap();
    let (db, copy) = backed_up(dir.path(), 4).await;
    // As a killed server leaves it: the lock is free, the write-ahead log still there.
    let writer = Connection::open(&db).unwrap();
    writer.execute_batch("PRAGMA journal_mode = WAL").unwrap();
    writer
        .execute("INSERT INTO jxp_meta (key, value) VALUES ('late', 'x')", [])
        .unwrap();
    std::mem::forget(writer);

    let err = restore(&copy, &db, false).unwrap_err();
    let BackupError::StoreExists(current) = &err else {
        panic!("{err}")
    };
    assert_eq!(models(current), [("t".to_owned(), 5, 5)]);

    let restored = restore(&copy, &db, true).unwrap();
    assert_eq!(
        models(&restored.replaced.unwrap()),
        [("t".to_owned(), 5, 5)]
    );
    assert_eq!(
        files_in(dir.path()),
        ["copy.db", "jxp.db", "jxp.db.lock"],
        "no temporary file, no old -wal or -shm"
    );
    let store = open(&db).await;
    assert_eq!(store.last_seq("t").await.unwrap(), 1);
    assert!(!holds(&store, 2).await);
}

#[tokio::test]
async fn only_a_sound_jxp_store_is_restored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jxp.db");
    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "not a database at all, but long enough to look like one ".repeat(20),
    )
    .unwrap();
    let other = dir.path().join("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();

    for file in [&text, &other] {
        let err = restore(file, &db, true).unwrap_err();
        assert!(matches!(err, BackupError::NotAStore { .. }), "{err}");
    }
    let err = restore(&dir.path().join("none.db"), &db, true).unwrap_err();
    assert!(matches!(err, BackupError::Missing(_)), "{err}");
    assert!(!db.exists());
}

#[test]
fn sizes_read_as_a_person_writes_them() {
    assert_eq!(human_size(999), "999 bytes");
    assert_eq!(human_size(1_500), "1.5 kB");
    assert_eq!(human_size(12_345_678), "12.3 MB");
}
