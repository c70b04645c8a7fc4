//! Durable state: the [`Model`] kept in an embedded SQLite database in the
//! state directory, so that a change the API acknowledged survives `kill -9`
//! and power loss, and the appliance restarts with the policy it had.
//!
//! Design: a journal of operations on top of an optional snapshot.
//! - `journal(seq, op, ids)`: every accepted [`Op`], serialized, with the
//!   fresh ids it drew. The model is deterministic given the op and its ids,
//!   so replaying the journal rebuilds exactly the same model. One row per
//!   op makes "every operation is one transaction" literal, and a write
//!   costs one small insert however large the model is (2,500 groups).
//! - `snapshot(seq, model)`: the whole model as of `seq`. The config seed is
//!   written as the snapshot at seq 0 (it has ids of its own, not ops);
//!   [`Store::compact`] writes a newer one and drops the journal it covers,
//!   bounding start-up replay.
//!
//! SQLite runs in WAL mode with `synchronous=FULL`: a commit returns only
//! after the WAL is fsynced, which is the durability point [`Store::apply`]
//! returns at. The schema is versioned by `schema_version`; migration `n`
//! runs exactly once, in its own transaction, in order.
//!
//! Text format: TOML through serde, because the crate already depends on
//! it for the config and the rows are small; it is only read back by this
//! module.

#[cfg(test)]
pub(crate) mod tests;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::model::{ApiError, IdSource, Model, ObjectKind, Op, Outcome, Quotas, RandomIds};

/// The database file inside the state directory.
pub const DATABASE_FILE: &str = "palisade.sqlite3";

/// Schema migrations, in order; `schema_version` counts how many ran.
const MIGRATIONS: &[&str] = &["CREATE TABLE journal (
        seq INTEGER PRIMARY KEY,
        op TEXT NOT NULL,
        ids TEXT NOT NULL
     );
     CREATE TABLE snapshot (
        seq INTEGER PRIMARY KEY,
        model TEXT NOT NULL
     );"];

/// Why the store could not open, load or write.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The model refused the change; nothing was written.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The state directory could not be created.
    #[error("cannot create state directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// SQLite failed (disk full, I/O error, corrupt file, locked).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer palisade.
    #[error("database schema version {found} is newer than this build's {supported}")]
    SchemaTooNew {
        /// Version in the file.
        found: usize,
        /// Latest version this build knows.
        supported: usize,
    },
    /// A row could not be encoded.
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The serializer's complaint.
        source: toml::ser::Error,
    },
    /// A row could not be decoded: the file was damaged or hand-edited.
    #[error("cannot decode {what} at seq {seq}: {source}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// The row.
        seq: i64,
        /// The parser's complaint.
        source: toml::de::Error,
    },
    /// A journaled op no longer applies as it did: the journal is damaged
    /// or the model's rules changed incompatibly.
    #[error("journal entry {seq} does not replay: {reason}")]
    Replay {
        /// The row.
        seq: i64,
        /// What went wrong.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
struct JournalEntry {
    op: Op,
}

/// Records the ids an op draws so the journal can replay them.
struct RecordingIds<'a> {
    inner: &'a mut dyn IdSource,
    drawn: Vec<String>,
}

impl IdSource for RecordingIds<'_> {
    fn fresh_id(&mut self, kind: ObjectKind) -> String {
        let id = self.inner.fresh_id(kind);
        self.drawn.push(id.clone());
        id
    }
}

/// Hands back the ids a journaled op drew, in order.
struct ReplayIds<'a> {
    ids: std::str::SplitWhitespace<'a>,
    short: bool,
}

impl IdSource for ReplayIds<'_> {
    fn fresh_id(&mut self, _kind: ObjectKind) -> String {
        if let Some(id) = self.ids.next() {
            id.to_owned()
        } else {
            self.short = true;
            String::new()
        }
    }
}

/// The model and the database that makes it durable.
pub struct Store {
    connection: Connection,
    model: Model,
    ids: Box<dyn IdSource + Send>,
    path: PathBuf,
}

impl core::fmt::Debug for Store {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, migrates its schema
    /// and loads the model, with default quotas and random ids.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Self::open_with(dir, Quotas::default(), Box::new(RandomIds::default()))
    }

    /// [`Store::open`] with the quotas to enforce and the id source (tests
    /// pass a deterministic one).
    pub fn open_with(
        dir: &Path,
        quotas: Quotas,
        ids: Box<dyn IdSource + Send>,
    ) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(DATABASE_FILE);
        let mut connection = Connection::open(&path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        migrate(&mut connection)?;
        let mut model = load(&connection)?;
        model.quotas = quotas;
        Ok(Store {
            connection,
            model,
            ids,
            path,
        })
    }

    /// The current state; what the data plane's spec is built from.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Applies `op` to the model and journals it in one transaction. When
    /// this returns `Ok` the change is on disk; on any error the model and
    /// the database are as before.
    pub fn apply(&mut self, op: &Op) -> Result<Outcome, StoreError> {
        let mut recording = RecordingIds {
            inner: self.ids.as_mut(),
            drawn: Vec::new(),
        };
        // `Model::apply` changes nothing when it refuses, so no copy is kept
        // for that case. When the write fails (disk full, I/O error) the
        // in-memory model is ahead of the disk: rebuild it from the disk
        // rather than paying for a clone of 2,500 groups on every change.
        let outcome = self.model.apply(op, &mut recording)?;
        let drawn = recording.drawn.join(" ");
        if let Err(error) = self.journal(op, &drawn) {
            let quotas = self.model.quotas;
            self.model = load(&self.connection)?;
            self.model.quotas = quotas;
            return Err(error);
        }
        Ok(outcome)
    }

    fn journal(&mut self, op: &Op, ids: &str) -> Result<(), StoreError> {
        let text = toml::to_string(&JournalEntry { op: op.clone() }).map_err(|source| {
            StoreError::Encode {
                what: "operation",
                source,
            }
        })?;
        let transaction = self.connection.transaction()?;
        // Sequence numbers continue past the latest snapshot: after a
        // compaction empties the journal, SQLite's default rowid would start
        // again at 1, below the snapshot, and the entry would never replay.
        transaction.execute(
            "INSERT INTO journal (seq, op, ids) VALUES ((SELECT MAX(m) + 1 FROM (
                 SELECT COALESCE(MAX(seq), 0) AS m FROM journal
                 UNION ALL SELECT COALESCE(MAX(seq), 0) FROM snapshot)), ?1, ?2)",
            params![text, ids],
        )?;
        transaction.commit()?;
        Ok(())
    }

    /// Seeds an empty store (no snapshot, no journal) with the objects of
    /// `config`, keeping the config's ids. Returns whether it seeded; a
    /// store that has any state is left alone, so edits made through the
    /// API are never overwritten by the file.
    pub fn seed_if_empty(&mut self, config: &Config) -> Result<bool, StoreError> {
        let transaction = self.connection.transaction()?;
        let journaled: i64 =
            transaction.query_row("SELECT COUNT(*) FROM journal", [], |r| r.get(0))?;
        let snapshots: i64 =
            transaction.query_row("SELECT COUNT(*) FROM snapshot", [], |r| r.get(0))?;
        if journaled + snapshots > 0 {
            return Ok(false);
        }
        let mut model = Model::from_config(config);
        model.quotas = self.model.quotas;
        transaction.execute(
            "INSERT INTO snapshot (seq, model) VALUES (0, ?1)",
            params![encode_model(&model)?],
        )?;
        transaction.commit()?;
        self.model = model;
        Ok(true)
    }

    /// Replaces the seed with the objects of `config` if nothing has been
    /// changed since the store was seeded (no journal entry, only the seed
    /// snapshot), so that editing the file and reloading keeps working
    /// until the first API change. Returns whether it replaced; once the
    /// API has changed anything the store owns the objects and the file
    /// is left alone.
    pub fn reseed_if_unchanged(&mut self, config: &Config) -> Result<bool, StoreError> {
        let transaction = self.connection.transaction()?;
        let journaled: i64 =
            transaction.query_row("SELECT COUNT(*) FROM journal", [], |r| r.get(0))?;
        let later_snapshots: i64 =
            transaction.query_row("SELECT COUNT(*) FROM snapshot WHERE seq <> 0", [], |r| {
                r.get(0)
            })?;
        if journaled + later_snapshots > 0 {
            return Ok(false);
        }
        let mut model = Model::from_config(config);
        model.quotas = self.model.quotas;
        transaction.execute(
            "INSERT OR REPLACE INTO snapshot (seq, model) VALUES (0, ?1)",
            params![encode_model(&model)?],
        )?;
        transaction.commit()?;
        self.model = model;
        Ok(true)
    }

    /// Writes the current model as a snapshot and drops the journal it
    /// covers, in one transaction, so the next start replays nothing.
    pub fn compact(&mut self) -> Result<(), StoreError> {
        let text = encode_model(&self.model)?;
        let transaction = self.connection.transaction()?;
        let seq: i64 = transaction.query_row(
            "SELECT MAX(m) FROM (SELECT COALESCE(MAX(seq), 0) AS m FROM journal
                                 UNION ALL SELECT COALESCE(MAX(seq), 0) FROM snapshot)",
            [],
            |r| r.get(0),
        )?;
        transaction.execute(
            "INSERT OR REPLACE INTO snapshot (seq, model) VALUES (?1, ?2)",
            params![seq, text],
        )?;
        transaction.execute("DELETE FROM snapshot WHERE seq < ?1", params![seq])?;
        transaction.execute("DELETE FROM journal WHERE seq <= ?1", params![seq])?;
        transaction.commit()?;
        Ok(())
    }
}

fn encode_model(model: &Model) -> Result<String, StoreError> {
    toml::to_string(model).map_err(|source| StoreError::Encode {
        what: "model snapshot",
        source,
    })
}

fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    connection
        .execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let version: Option<i64> = connection
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .optional()?;
    let mut version = version.unwrap_or(0) as usize;
    if version > MIGRATIONS.len() {
        return Err(StoreError::SchemaTooNew {
            found: version,
            supported: MIGRATIONS.len(),
        });
    }
    while version < MIGRATIONS.len() {
        let transaction = connection.transaction()?;
        transaction.execute_batch(MIGRATIONS[version])?;
        transaction.execute("DELETE FROM schema_version", [])?;
        transaction.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            params![(version + 1) as i64],
        )?;
        transaction.commit()?;
        version += 1;
    }
    Ok(())
}

fn load(connection: &Connection) -> Result<Model, StoreError> {
    let snapshot: Option<(i64, String)> = connection
        .query_row(
            "SELECT seq, model FROM snapshot ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (from, mut model) = match snapshot {
        None => (0, Model::default()),
        Some((seq, text)) => (
            seq,
            toml::from_str(&text).map_err(|source| StoreError::Decode {
                what: "model snapshot",
                seq,
                source,
            })?,
        ),
    };
    let mut statement =
        connection.prepare("SELECT seq, op, ids FROM journal WHERE seq > ?1 ORDER BY seq")?;
    let mut rows = statement.query(params![from])?;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let text: String = row.get(1)?;
        let ids: String = row.get(2)?;
        let entry: JournalEntry = toml::from_str(&text).map_err(|source| StoreError::Decode {
            what: "operation",
            seq,
            source,
        })?;
        let mut replay = ReplayIds {
            ids: ids.split_whitespace(),
            short: false,
        };
        // Replay with unlimited quotas: an op accepted under the quotas in
        // force when it was made stays accepted if they were lowered since.
        model.quotas = unlimited_quotas();
        model
            .apply(&entry.op, &mut replay)
            .map_err(|error| StoreError::Replay {
                seq,
                reason: error.to_string(),
            })?;
        if replay.short || replay.ids.next().is_some() {
            return Err(StoreError::Replay {
                seq,
                reason: "the op drew a different number of ids than were recorded".to_owned(),
            });
        }
    }
    Ok(model)
}

fn unlimited_quotas() -> Quotas {
    Quotas {
        rules_per_group: usize::MAX,
        groups_per_eni: usize::MAX,
        rules_per_eni: usize::MAX,
        groups_per_vpc: usize::MAX,
        network_acls_per_vpc: usize::MAX,
        rules_per_network_acl: usize::MAX,
    }
}
