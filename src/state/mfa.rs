//! The second-factor data as the state keeps it: paired TOTP devices and their last accepted
//! step, the per-user failure counts of the gateway's second factor, and the MFA service
//! (its hashing key, applications, users, outstanding codes, send history).
//!
//! Every rule about these rows (lockout lengths, replay, code hashing, limits, versions) lives
//! in `crate::mfa`; this module only reads and writes them, one statement per call of
//! [`MfaTx`], inside a transaction [`MfaState::mfa_transaction`] opens. A second backend
//! implements these two traits and nothing of `crate::mfa`.

use portcullis_config::UserKey;
use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::{StateDb, StateError};

/// A paired device as stored, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// `mobile-sha256-...`.
    pub id: String,
    /// Whose device it is.
    pub user: String,
    /// The name the user gave it.
    pub name: String,
    /// Its operating system, as the user said.
    pub os: String,
    /// When it was paired (Unix time).
    pub created: i64,
    /// When it last changed.
    pub updated: i64,
    /// When its first code was accepted; `None` while pending.
    pub activated: Option<i64>,
    /// When a code from it was last accepted.
    pub last_used: Option<i64>,
}

/// A device's sealed secret and where its codes stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSecret {
    /// The device.
    pub id: String,
    /// The secret, sealed under the daemon's key.
    pub sealed: Vec<u8>,
    /// When it was activated; `None` while pending.
    pub activated: Option<i64>,
    /// The TOTP step of the last accepted code.
    pub last_step: Option<i64>,
}

/// The second-factor failures of one user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failures {
    /// Wrong codes in a row since the last lockout or success.
    pub failures: i64,
    /// Lockouts since the last success.
    pub lockouts: i64,
    /// Locked until this Unix time (0: not locked).
    pub locked_until: i64,
}

/// An MFA service application as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    /// Server-chosen id (32 hex digits).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Characters of a code, without the prefix.
    pub auth_code_length: i64,
    /// NUMERIC, ALPHANUMERIC, ALPHA or COMPLEX.
    pub auth_token_type: String,
    /// Seconds a code stays valid.
    pub auth_token_validity_duration: i64,
    /// Put in front of every code.
    pub auth_token_prefix: String,
    /// SMS or EMAIL.
    pub auth_token_delivery_methods: String,
    /// Template of association messages (empty: the default).
    pub associate_template: String,
    /// `$display_name` of the templates.
    pub display_name: String,
    /// Template of login messages (empty: the default).
    pub login_template: String,
    /// SMS sender id / e-mail sender name.
    pub message_from: String,
    /// Unix time of creation.
    pub created: i64,
    /// Unix time of the last change.
    pub updated: i64,
    /// 1 at creation, +1 per change.
    pub version_number: i64,
}

/// An MFA service user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The application.
    pub application_id: String,
    /// Customer-supplied id.
    pub id: String,
    /// Phone number or e-mail address; empty when INITIAL.
    pub user_address: String,
    /// INITIAL, VALIDATION PENDING or VALIDATED.
    pub status: String,
    /// Unix time of creation.
    pub created: i64,
    /// Unix time of the last change.
    pub updated: i64,
    /// 1 at creation, +1 per change.
    pub version_number: i64,
    /// Wrong codes in a row.
    pub failures: i64,
    /// Locked until this Unix time (0: never locked).
    pub locked_until: i64,
}

/// A user's outstanding one-time code, hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCode {
    /// What it was sent for (`associate`, `login`).
    pub purpose: String,
    /// Where it was sent.
    pub address: String,
    /// Its HMAC under the service's key.
    pub hash: Vec<u8>,
    /// When it expires (Unix time).
    pub expires: i64,
}

/// What a write that may collide did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Written.
    Done,
    /// Another row holds the unique name.
    Duplicate,
    /// No row of that id and version (changed or deleted meanwhile).
    Missed,
}

/// The statements of one transaction over the second-factor data. Each call is one
/// statement; the transaction ([`MfaState::mfa_transaction`]) makes a sequence of them atomic.
pub trait MfaTx {
    /// Removes pending devices paired before `created_before`.
    fn forget_pending_devices(&mut self, created_before: i64) -> Result<(), StateError>;
    /// How many devices (pending ones included) `user` has.
    fn count_devices(&mut self, user: &UserKey) -> Result<i64, StateError>;
    /// Stores a new device with its sealed secret.
    fn insert_device(&mut self, device: &Device, sealed: &[u8]) -> Result<(), StateError>;
    /// `user`'s devices, oldest first; pending ones only when `pending` is set.
    fn devices(&mut self, user: &UserKey, pending: bool) -> Result<Vec<Device>, StateError>;
    /// Whether `user` has an activated device.
    fn has_active_device(&mut self, user: &UserKey) -> Result<bool, StateError>;
    /// Removes `user`'s device `id`; whether there was one.
    fn delete_device(&mut self, user: &UserKey, id: &str) -> Result<bool, StateError>;
    /// `user`'s device `id` with its sealed secret.
    fn device_secret(
        &mut self,
        user: &UserKey,
        id: &str,
    ) -> Result<Option<DeviceSecret>, StateError>;
    /// The sealed secrets of `user`'s activated devices.
    fn active_secrets(&mut self, user: &UserKey) -> Result<Vec<DeviceSecret>, StateError>;
    /// Marks `user`'s device `id` activated at `now` with its first accepted `step`; the
    /// device as it is then.
    fn activate_device(
        &mut self,
        user: &UserKey,
        id: &str,
        now: i64,
        step: i64,
    ) -> Result<Option<Device>, StateError>;
    /// Records that device `id` accepted a code of `step` at `now`, only if `step` is after
    /// its last accepted one (so one code counts once, even twice at the same moment);
    /// whether it was recorded.
    fn advance_step(&mut self, id: &str, step: i64, now: i64) -> Result<bool, StateError>;

    /// `user`'s second-factor failures.
    fn failures(&mut self, user: &UserKey) -> Result<Option<Failures>, StateError>;
    /// Stores `user`'s second-factor failures.
    fn set_failures(&mut self, user: &UserKey, failures: &Failures) -> Result<(), StateError>;
    /// Forgets `user`'s second-factor failures.
    fn clear_failures(&mut self, user: &UserKey) -> Result<(), StateError>;

    /// The MFA service's code-hashing key, if one was made.
    fn hash_key(&mut self) -> Result<Option<Vec<u8>>, StateError>;
    /// Keeps `fresh` as the code-hashing key unless one exists; the key kept.
    fn keep_hash_key(&mut self, fresh: &[u8]) -> Result<Vec<u8>, StateError>;

    /// The application with this id.
    fn application(&mut self, id: &str) -> Result<Option<Application>, StateError>;
    /// The application with this name.
    fn application_by_name(&mut self, name: &str) -> Result<Option<Application>, StateError>;
    /// Every application, in creation order.
    fn applications(&mut self) -> Result<Vec<Application>, StateError>;
    /// Stores a new application ([`Written::Duplicate`] when its name is taken).
    fn insert_application(&mut self, app: &Application) -> Result<Written, StateError>;
    /// Replaces the application of `app.id` if its version is still `version`.
    fn update_application(
        &mut self,
        app: &Application,
        version: i64,
    ) -> Result<Written, StateError>;
    /// Removes an application with its users, their codes and its send history; whether
    /// there was one.
    fn delete_application(&mut self, id: &str) -> Result<bool, StateError>;

    /// User `id` of `application`.
    fn user(&mut self, application: &str, id: &str) -> Result<Option<User>, StateError>;
    /// The id of a user of `application` who is the canonical user `key`, if any.
    fn user_id_of(
        &mut self,
        application: &str,
        key: &UserKey,
    ) -> Result<Option<String>, StateError>;
    /// The first (by id) user of `application` who is the canonical user `key` with `status`.
    fn user_of(
        &mut self,
        application: &str,
        key: &UserKey,
        status: &str,
    ) -> Result<Option<User>, StateError>;
    /// The users of `application`, in creation order.
    fn users(&mut self, application: &str) -> Result<Vec<User>, StateError>;
    /// Stores a new user.
    fn insert_user(&mut self, user: &User) -> Result<(), StateError>;
    /// Sets a user's address, status, version and time of change.
    fn set_address(&mut self, user: &User) -> Result<(), StateError>;
    /// Sets a user's failure count and, when given, the end of their lockout.
    fn set_user_failures(
        &mut self,
        application: &str,
        id: &str,
        failures: i64,
        locked_until: Option<i64>,
    ) -> Result<(), StateError>;
    /// Marks a user's address validated at `now` (failures cleared, version up by one).
    fn validate_user(
        &mut self,
        application: &str,
        id: &str,
        status: &str,
        now: i64,
    ) -> Result<(), StateError>;
    /// Removes a user with their code and send history; whether there was one.
    fn delete_user(&mut self, application: &str, id: &str) -> Result<bool, StateError>;

    /// Forgets the sends made at or before `before`.
    fn forget_sends(&mut self, before: i64) -> Result<(), StateError>;
    /// How many sends to a user are remembered.
    fn count_sends(&mut self, application: &str, id: &str) -> Result<i64, StateError>;
    /// Remembers a send to a user at `at`.
    fn record_send(&mut self, application: &str, id: &str, at: i64) -> Result<(), StateError>;

    /// A user's outstanding code.
    fn code(&mut self, application: &str, id: &str) -> Result<Option<StoredCode>, StateError>;
    /// Makes `code` the user's outstanding code (replacing any).
    fn put_code(
        &mut self,
        application: &str,
        id: &str,
        code: &StoredCode,
    ) -> Result<(), StateError>;
    /// Drops a user's outstanding code.
    fn delete_code(&mut self, application: &str, id: &str) -> Result<(), StateError>;
}

/// Where the second-factor data lives.
pub trait MfaState {
    /// Runs `work` in one transaction: committed when it returns true, rolled back when it
    /// returns false. It blocks.
    fn mfa_transaction(
        &self,
        work: &mut dyn FnMut(&mut dyn MfaTx) -> bool,
    ) -> Result<(), StateError>;
}

/// Runs `work` in one transaction of `state`: committed when it succeeds, rolled back when
/// it fails. It blocks.
pub fn transaction<T, E: From<StateError>>(
    state: &dyn MfaState,
    work: impl FnOnce(&mut dyn MfaTx) -> Result<T, E>,
) -> Result<T, E> {
    let mut work = Some(work);
    let mut result = None;
    state.mfa_transaction(&mut |tx| {
        let Some(work) = work.take() else {
            return false;
        };
        let done = work(tx);
        let ok = done.is_ok();
        result = Some(done);
        ok
    })?;
    result.unwrap_or_else(|| Err(StateError::Task("transaction did not run".into()).into()))
}

impl StateDb {
    /// Runs `work` in one second-factor transaction on tokio's blocking pool.
    pub async fn mfa<T, E>(
        &self,
        work: impl FnOnce(&mut dyn MfaTx) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StateError> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || transaction(&db, work))
            .await
            .map_err(|e| StateError::Task(e.to_string()))?
    }
}

impl MfaState for StateDb {
    fn mfa_transaction(
        &self,
        work: &mut dyn FnMut(&mut dyn MfaTx) -> bool,
    ) -> Result<(), StateError> {
        if let Some(pg) = self.postgres() {
            return pg.mfa_transaction(work);
        }
        self.with(|conn| {
            let tx = conn.transaction()?;
            let mut sqlite = Sqlite(&tx);
            if work(&mut sqlite) {
                tx.commit()?;
            }
            Ok(())
        })
    }
}

/// [`MfaTx`] on a SQLite transaction.
struct Sqlite<'a>(&'a Transaction<'a>);

const DEVICE_COLUMNS: &str = "id, user, name, os, created, updated, activated, last_used";

fn device(row: &Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        id: row.get(0)?,
        user: row.get(1)?,
        name: row.get(2)?,
        os: row.get(3)?,
        created: row.get(4)?,
        updated: row.get(5)?,
        activated: row.get(6)?,
        last_used: row.get(7)?,
    })
}

const APPLICATION_COLUMNS: &str = "id, name, description, auth_code_length, auth_token_type, \
     auth_token_validity_duration, auth_token_prefix, auth_token_delivery_methods, \
     associate_template, display_name, login_template, message_from, created, updated, \
     version_number";

fn application(row: &Row<'_>) -> rusqlite::Result<Application> {
    Ok(Application {
        id: row.get(0)?,
        name: row.get(1)?,
        description: row.get(2)?,
        auth_code_length: row.get(3)?,
        auth_token_type: row.get(4)?,
        auth_token_validity_duration: row.get(5)?,
        auth_token_prefix: row.get(6)?,
        auth_token_delivery_methods: row.get(7)?,
        associate_template: row.get(8)?,
        display_name: row.get(9)?,
        login_template: row.get(10)?,
        message_from: row.get(11)?,
        created: row.get(12)?,
        updated: row.get(13)?,
        version_number: row.get(14)?,
    })
}

const USER_COLUMNS: &str = "application_id, id, user_address, status, created, updated, \
     version_number, failures, locked_until";

fn user(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        application_id: row.get(0)?,
        id: row.get(1)?,
        user_address: row.get(2)?,
        status: row.get(3)?,
        created: row.get(4)?,
        updated: row.get(5)?,
        version_number: row.get(6)?,
        failures: row.get(7)?,
        locked_until: row.get(8)?,
    })
}

/// Whether SQLite refused a write for a taken unique key.
fn unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

impl MfaTx for Sqlite<'_> {
    fn forget_pending_devices(&mut self, created_before: i64) -> Result<(), StateError> {
        self.0.execute(
            "DELETE FROM mfa_devices WHERE activated IS NULL AND created < ?1",
            params![created_before],
        )?;
        Ok(())
    }

    fn count_devices(&mut self, user: &UserKey) -> Result<i64, StateError> {
        Ok(self.0.query_row(
            "SELECT count(*) FROM mfa_devices WHERE user = ?1",
            params![user.as_str()],
            |r| r.get(0),
        )?)
    }

    fn insert_device(&mut self, device: &Device, sealed: &[u8]) -> Result<(), StateError> {
        self.0.execute(
            "INSERT INTO mfa_devices (id, user, name, os, secret, created, updated, activated) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                device.id,
                device.user,
                device.name,
                device.os,
                sealed,
                device.created,
                device.updated,
                device.activated
            ],
        )?;
        Ok(())
    }

    fn devices(&mut self, user: &UserKey, pending: bool) -> Result<Vec<Device>, StateError> {
        let mut statement = self.0.prepare(&format!(
            "SELECT {DEVICE_COLUMNS} FROM mfa_devices WHERE user = ?1 \
             AND (?2 OR activated IS NOT NULL) ORDER BY created, id"
        ))?;
        let devices = statement
            .query_map(params![user.as_str(), pending], device)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(devices)
    }

    fn has_active_device(&mut self, user: &UserKey) -> Result<bool, StateError> {
        Ok(self
            .0
            .query_row(
                "SELECT 1 FROM mfa_devices WHERE user = ?1 AND activated IS NOT NULL LIMIT 1",
                params![user.as_str()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn delete_device(&mut self, user: &UserKey, id: &str) -> Result<bool, StateError> {
        Ok(self.0.execute(
            "DELETE FROM mfa_devices WHERE user = ?1 AND id = ?2",
            params![user.as_str(), id],
        )? > 0)
    }

    fn device_secret(
        &mut self,
        user: &UserKey,
        id: &str,
    ) -> Result<Option<DeviceSecret>, StateError> {
        Ok(self
            .0
            .query_row(
                "SELECT id, secret, activated, last_step FROM mfa_devices \
                 WHERE user = ?1 AND id = ?2",
                params![user.as_str(), id],
                |r| {
                    Ok(DeviceSecret {
                        id: r.get(0)?,
                        sealed: r.get(1)?,
                        activated: r.get(2)?,
                        last_step: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    fn active_secrets(&mut self, user: &UserKey) -> Result<Vec<DeviceSecret>, StateError> {
        let mut statement = self.0.prepare(
            "SELECT id, secret, activated, last_step FROM mfa_devices \
             WHERE user = ?1 AND activated IS NOT NULL",
        )?;
        let secrets = statement
            .query_map(params![user.as_str()], |r| {
                Ok(DeviceSecret {
                    id: r.get(0)?,
                    sealed: r.get(1)?,
                    activated: r.get(2)?,
                    last_step: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(secrets)
    }

    fn activate_device(
        &mut self,
        user: &UserKey,
        id: &str,
        now: i64,
        step: i64,
    ) -> Result<Option<Device>, StateError> {
        self.0.execute(
            "UPDATE mfa_devices SET activated = ?3, updated = ?3, last_step = ?4 \
             WHERE user = ?1 AND id = ?2",
            params![user.as_str(), id, now, step],
        )?;
        Ok(self
            .0
            .query_row(
                &format!("SELECT {DEVICE_COLUMNS} FROM mfa_devices WHERE user = ?1 AND id = ?2"),
                params![user.as_str(), id],
                device,
            )
            .optional()?)
    }

    fn advance_step(&mut self, id: &str, step: i64, now: i64) -> Result<bool, StateError> {
        Ok(self.0.execute(
            "UPDATE mfa_devices SET last_step = ?2, last_used = ?3 \
             WHERE id = ?1 AND (last_step IS NULL OR last_step < ?2)",
            params![id, step, now],
        )? > 0)
    }

    fn failures(&mut self, user: &UserKey) -> Result<Option<Failures>, StateError> {
        Ok(self
            .0
            .query_row(
                "SELECT failures, lockouts, locked_until FROM mfa_failures WHERE user = ?1",
                params![user.as_str()],
                |r| {
                    Ok(Failures {
                        failures: r.get(0)?,
                        lockouts: r.get(1)?,
                        locked_until: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    fn set_failures(&mut self, user: &UserKey, failures: &Failures) -> Result<(), StateError> {
        self.0.execute(
            "INSERT INTO mfa_failures (user, failures, lockouts, locked_until) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (user) DO UPDATE SET failures = ?2, \
             lockouts = ?3, locked_until = ?4",
            params![
                user.as_str(),
                failures.failures,
                failures.lockouts,
                failures.locked_until
            ],
        )?;
        Ok(())
    }

    fn clear_failures(&mut self, user: &UserKey) -> Result<(), StateError> {
        self.0.execute(
            "DELETE FROM mfa_failures WHERE user = ?1",
            params![user.as_str()],
        )?;
        Ok(())
    }

    fn hash_key(&mut self) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self
            .0
            .query_row("SELECT key FROM mfa_key WHERE id = 1", [], |r| r.get(0))
            .optional()?)
    }

    fn keep_hash_key(&mut self, fresh: &[u8]) -> Result<Vec<u8>, StateError> {
        self.0.execute(
            "INSERT OR IGNORE INTO mfa_key (id, key) VALUES (1, ?1)",
            [fresh],
        )?;
        Ok(self
            .0
            .query_row("SELECT key FROM mfa_key WHERE id = 1", [], |r| r.get(0))?)
    }

    fn application(&mut self, id: &str) -> Result<Option<Application>, StateError> {
        Ok(self
            .0
            .query_row(
                &format!("SELECT {APPLICATION_COLUMNS} FROM mfa_applications WHERE id = ?1"),
                [id],
                application,
            )
            .optional()?)
    }

    fn application_by_name(&mut self, name: &str) -> Result<Option<Application>, StateError> {
        Ok(self
            .0
            .query_row(
                &format!("SELECT {APPLICATION_COLUMNS} FROM mfa_applications WHERE name = ?1"),
                [name],
                application,
            )
            .optional()?)
    }

    fn applications(&mut self) -> Result<Vec<Application>, StateError> {
        let mut statement = self.0.prepare(&format!(
            "SELECT {APPLICATION_COLUMNS} FROM mfa_applications ORDER BY created, rowid"
        ))?;
        let apps = statement
            .query_map([], application)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(apps)
    }

    fn insert_application(&mut self, app: &Application) -> Result<Written, StateError> {
        let inserted = self.0.execute(
            &format!(
                "INSERT INTO mfa_applications ({APPLICATION_COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
            ),
            params![
                app.id,
                app.name,
                app.description,
                app.auth_code_length,
                app.auth_token_type,
                app.auth_token_validity_duration,
                app.auth_token_prefix,
                app.auth_token_delivery_methods,
                app.associate_template,
                app.display_name,
                app.login_template,
                app.message_from,
                app.created,
                app.updated,
                app.version_number
            ],
        );
        match inserted {
            Ok(_) => Ok(Written::Done),
            Err(e) if unique_violation(&e) => Ok(Written::Duplicate),
            Err(e) => Err(e.into()),
        }
    }

    fn update_application(
        &mut self,
        app: &Application,
        version: i64,
    ) -> Result<Written, StateError> {
        let updated = self.0.execute(
            "UPDATE mfa_applications SET name = ?2, description = ?3, auth_code_length = ?4, \
             auth_token_type = ?5, auth_token_validity_duration = ?6, auth_token_prefix = ?7, \
             auth_token_delivery_methods = ?8, associate_template = ?9, display_name = ?10, \
             login_template = ?11, message_from = ?12, updated = ?13, version_number = ?14 \
             WHERE id = ?1 AND version_number = ?15",
            params![
                app.id,
                app.name,
                app.description,
                app.auth_code_length,
                app.auth_token_type,
                app.auth_token_validity_duration,
                app.auth_token_prefix,
                app.auth_token_delivery_methods,
                app.associate_template,
                app.display_name,
                app.login_template,
                app.message_from,
                app.updated,
                app.version_number,
                version
            ],
        );
        match updated {
            Ok(1) => Ok(Written::Done),
            Ok(_) => Ok(Written::Missed),
            Err(e) if unique_violation(&e) => Ok(Written::Duplicate),
            Err(e) => Err(e.into()),
        }
    }

    fn delete_application(&mut self, id: &str) -> Result<bool, StateError> {
        // Users and their codes go with it (ON DELETE CASCADE).
        if self
            .0
            .execute("DELETE FROM mfa_applications WHERE id = ?1", [id])?
            == 0
        {
            return Ok(false);
        }
        self.0
            .execute("DELETE FROM mfa_sends WHERE application_id = ?1", [id])?;
        Ok(true)
    }

    fn user(&mut self, application: &str, id: &str) -> Result<Option<User>, StateError> {
        Ok(self
            .0
            .query_row(
                &format!(
                    "SELECT {USER_COLUMNS} FROM mfa_users WHERE application_id = ?1 AND id = ?2"
                ),
                [application, id],
                user,
            )
            .optional()?)
    }

    fn user_id_of(
        &mut self,
        application: &str,
        key: &UserKey,
    ) -> Result<Option<String>, StateError> {
        Ok(self
            .0
            .query_row(
                "SELECT id FROM mfa_users WHERE application_id = ?1 AND user_key = ?2 LIMIT 1",
                params![application, key.as_str()],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn user_of(
        &mut self,
        application: &str,
        key: &UserKey,
        status: &str,
    ) -> Result<Option<User>, StateError> {
        Ok(self
            .0
            .query_row(
                &format!(
                    "SELECT {USER_COLUMNS} FROM mfa_users WHERE application_id = ?1 \
                     AND user_key = ?2 AND status = ?3 ORDER BY id LIMIT 1"
                ),
                params![application, key.as_str(), status],
                user,
            )
            .optional()?)
    }

    fn users(&mut self, application: &str) -> Result<Vec<User>, StateError> {
        let mut statement = self.0.prepare(&format!(
            "SELECT {USER_COLUMNS} FROM mfa_users WHERE application_id = ?1 \
             ORDER BY created, rowid"
        ))?;
        let users = statement
            .query_map([application], user)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(users)
    }

    fn insert_user(&mut self, new: &User) -> Result<(), StateError> {
        self.0.execute(
            &format!(
                "INSERT INTO mfa_users ({USER_COLUMNS}, user_key) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            ),
            params![
                new.application_id,
                new.id,
                new.user_address,
                new.status,
                new.created,
                new.updated,
                new.version_number,
                new.failures,
                new.locked_until,
                UserKey::of(&new.id).as_str(),
            ],
        )?;
        Ok(())
    }

    fn set_address(&mut self, changed: &User) -> Result<(), StateError> {
        self.0.execute(
            "UPDATE mfa_users SET user_address = ?3, status = ?4, updated = ?5, \
             version_number = ?6 WHERE application_id = ?1 AND id = ?2",
            params![
                changed.application_id,
                changed.id,
                changed.user_address,
                changed.status,
                changed.updated,
                changed.version_number
            ],
        )?;
        Ok(())
    }

    fn set_user_failures(
        &mut self,
        application: &str,
        id: &str,
        failures: i64,
        locked_until: Option<i64>,
    ) -> Result<(), StateError> {
        match locked_until {
            Some(until) => self.0.execute(
                "UPDATE mfa_users SET failures = ?3, locked_until = ?4 \
                 WHERE application_id = ?1 AND id = ?2",
                params![application, id, failures, until],
            )?,
            None => self.0.execute(
                "UPDATE mfa_users SET failures = ?3 WHERE application_id = ?1 AND id = ?2",
                params![application, id, failures],
            )?,
        };
        Ok(())
    }

    fn validate_user(
        &mut self,
        application: &str,
        id: &str,
        status: &str,
        now: i64,
    ) -> Result<(), StateError> {
        self.0.execute(
            "UPDATE mfa_users SET status = ?3, failures = 0, updated = ?4, \
             version_number = version_number + 1 WHERE application_id = ?1 AND id = ?2",
            params![application, id, status, now],
        )?;
        Ok(())
    }

    fn delete_user(&mut self, application: &str, id: &str) -> Result<bool, StateError> {
        if self.0.execute(
            "DELETE FROM mfa_users WHERE application_id = ?1 AND id = ?2",
            [application, id],
        )? == 0
        {
            return Ok(false);
        }
        self.0.execute(
            "DELETE FROM mfa_sends WHERE application_id = ?1 AND user_id = ?2",
            [application, id],
        )?;
        Ok(true)
    }

    fn forget_sends(&mut self, before: i64) -> Result<(), StateError> {
        self.0
            .execute("DELETE FROM mfa_sends WHERE at <= ?1", [before])?;
        Ok(())
    }

    fn count_sends(&mut self, application: &str, id: &str) -> Result<i64, StateError> {
        Ok(self.0.query_row(
            "SELECT count(*) FROM mfa_sends WHERE application_id = ?1 AND user_id = ?2",
            [application, id],
            |r| r.get(0),
        )?)
    }

    fn record_send(&mut self, application: &str, id: &str, at: i64) -> Result<(), StateError> {
        self.0.execute(
            "INSERT INTO mfa_sends (application_id, user_id, at) VALUES (?1, ?2, ?3)",
            params![application, id, at],
        )?;
        Ok(())
    }

    fn code(&mut self, application: &str, id: &str) -> Result<Option<StoredCode>, StateError> {
        Ok(self
            .0
            .query_row(
                "SELECT purpose, address, hash, expires FROM mfa_codes \
                 WHERE application_id = ?1 AND user_id = ?2",
                [application, id],
                |r| {
                    Ok(StoredCode {
                        purpose: r.get(0)?,
                        address: r.get(1)?,
                        hash: r.get(2)?,
                        expires: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    fn put_code(
        &mut self,
        application: &str,
        id: &str,
        code: &StoredCode,
    ) -> Result<(), StateError> {
        self.0.execute(
            "INSERT OR REPLACE INTO mfa_codes (application_id, user_id, purpose, address, \
             hash, expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                application,
                id,
                code.purpose,
                code.address,
                code.hash,
                code.expires
            ],
        )?;
        Ok(())
    }

    fn delete_code(&mut self, application: &str, id: &str) -> Result<(), StateError> {
        self.0.execute(
            "DELETE FROM mfa_codes WHERE application_id = ?1 AND user_id = ?2",
            [application, id],
        )?;
        Ok(())
    }
}
