//! PostgreSQL: the second-factor data (paired devices, failure counts, the MFA service's key,
//! applications, users, codes and send history), shared by every node. The same statements
//! as the SQLite ones in [`crate::state::mfa`], one per call of [`MfaTx`], inside the
//! transaction [`Pg::transaction`] opens, holding the lock of each person a call names
//! ([`Tx::hold`]).
//!
//! A failed statement aborts a PostgreSQL transaction, so nothing here is left to fail where
//! SQLite's would fail and go on: a taken key is `ON CONFLICT DO NOTHING` (no row inserted),
//! a rename onto a taken name is checked inside the `UPDATE`, and a key holding NUL (which
//! TEXT cannot hold, so no row has it) finds nothing without asking the server. Text is
//! ordered with `COLLATE "C"`, byte for byte as SQLite orders it.

use portcullis_config::UserKey;
use tokio_postgres::Row;

use super::{Param, Pg, Tx, params};
use crate::state::StateError;
use crate::state::mfa::{
    Application, Device, DeviceSecret, Failures, MfaState, MfaTx, StoredCode, User, Written,
};

impl MfaState for Pg {
    fn mfa_transaction(
        &self,
        work: &mut dyn FnMut(&mut dyn MfaTx) -> bool,
    ) -> Result<(), StateError> {
        self.transaction(&mut |tx| work(tx))
    }
}

/// The columns [`device`] reads, as a literal for `concat!`.
macro_rules! device_columns {
    () => {
        "id, username, name, os, created, updated, activated, last_used"
    };
}

fn device(row: &Row) -> Result<Device, StateError> {
    Ok(Device {
        id: row.try_get(0)?,
        user: row.try_get(1)?,
        name: row.try_get(2)?,
        os: row.try_get(3)?,
        created: row.try_get(4)?,
        updated: row.try_get(5)?,
        activated: row.try_get(6)?,
        last_used: row.try_get(7)?,
    })
}

/// Reads `id, secret, activated, last_step`.
fn secret(row: &Row) -> Result<DeviceSecret, StateError> {
    Ok(DeviceSecret {
        id: row.try_get(0)?,
        sealed: row.try_get(1)?,
        activated: row.try_get(2)?,
        last_step: row.try_get(3)?,
    })
}

/// The columns [`application`] reads, as a literal for `concat!`.
macro_rules! application_columns {
    () => {
        "id, name, description, auth_code_length, auth_token_type, \
         auth_token_validity_duration, auth_token_prefix, auth_token_delivery_methods, \
         associate_template, display_name, login_template, message_from, created, updated, \
         version_number"
    };
}

fn application(row: &Row) -> Result<Application, StateError> {
    Ok(Application {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        description: row.try_get(2)?,
        auth_code_length: row.try_get(3)?,
        auth_token_type: row.try_get(4)?,
        auth_token_validity_duration: row.try_get(5)?,
        auth_token_prefix: row.try_get(6)?,
        auth_token_delivery_methods: row.try_get(7)?,
        associate_template: row.try_get(8)?,
        display_name: row.try_get(9)?,
        login_template: row.try_get(10)?,
        message_from: row.try_get(11)?,
        created: row.try_get(12)?,
        updated: row.try_get(13)?,
        version_number: row.try_get(14)?,
    })
}

/// The columns [`user`] reads, as a literal for `concat!`.
macro_rules! user_columns {
    () => {
        "application_id, id, user_address, status, created, updated, version_number, \
         failures, locked_until"
    };
}

/// `$1`..`$12` of an application's statements: its id and the fields a caller sets.
fn application_fields(app: &Application) -> Vec<Param> {
    params![
        app.id.clone(),
        app.name.clone(),
        app.description.clone(),
        app.auth_code_length,
        app.auth_token_type.clone(),
        app.auth_token_validity_duration,
        app.auth_token_prefix.clone(),
        app.auth_token_delivery_methods.clone(),
        app.associate_template.clone(),
        app.display_name.clone(),
        app.login_template.clone(),
        app.message_from.clone()
    ]
}

fn user(row: &Row) -> Result<User, StateError> {
    Ok(User {
        application_id: row.try_get(0)?,
        id: row.try_get(1)?,
        user_address: row.try_get(2)?,
        status: row.try_get(3)?,
        created: row.try_get(4)?,
        updated: row.try_get(5)?,
        version_number: row.try_get(6)?,
        failures: row.try_get(7)?,
        locked_until: row.try_get(8)?,
    })
}

/// The first row read by `read`, if there is one.
fn first<T>(
    rows: &[Row],
    read: impl Fn(&Row) -> Result<T, StateError>,
) -> Result<Option<T>, StateError> {
    rows.first().map(read).transpose()
}

/// Every row read by `read`.
fn all<T>(
    rows: &[Row],
    read: impl Fn(&Row) -> Result<T, StateError>,
) -> Result<Vec<T>, StateError> {
    rows.iter().map(read).collect()
}

/// The first column of the first row (a `count(*)`, a key).
fn single<T: for<'a> tokio_postgres::types::FromSql<'a>>(rows: &[Row]) -> Result<T, StateError> {
    let row = rows
        .first()
        .ok_or_else(|| StateError::Postgres("the statement returned no row".into()))?;
    Ok(row.try_get(0)?)
}

/// Whether one of `keys` holds NUL: TEXT cannot, so no row has such a key, and a statement
/// given one would fail (and abort the transaction) where SQLite's finds nothing.
fn unstorable(keys: &[&str]) -> bool {
    keys.iter().any(|key| key.contains('\0'))
}

/// The lock scope of one person: every rule about a user (paired devices, the lockout, the
/// MFA service's user of any application) holds it for its whole transaction, so one
/// person's reads and writes are serial across nodes while other users' run side by side.
fn person(key: &str) -> String {
    format!("user:{key}")
}

/// [`person`] of the MFA service's user `id` (its canonical key, as `user_key` stores it).
fn person_of_id(id: &str) -> String {
    person(UserKey::of(id).as_str())
}

/// The lock scope of writes to the applications (names are unique across them).
const APPLICATIONS: &str = "applications";

impl MfaTx for Tx<'_> {
    fn forget_pending_devices(&mut self, created_before: i64) -> Result<(), StateError> {
        self.execute(
            "DELETE FROM mfa_devices WHERE activated IS NULL AND created < $1",
            params![created_before],
        )?;
        Ok(())
    }

    fn count_devices(&mut self, user: &UserKey) -> Result<i64, StateError> {
        self.hold(&person(user.as_str()))?;
        if unstorable(&[user.as_str()]) {
            return Ok(0);
        }
        let rows = self.query(
            "SELECT count(*) FROM mfa_devices WHERE username = $1",
            params![user.as_str().to_owned()],
        )?;
        single(&rows)
    }

    fn insert_device(&mut self, device: &Device, sealed: &[u8]) -> Result<(), StateError> {
        self.hold(&person(&device.user))?;
        self.execute(
            "INSERT INTO mfa_devices (id, username, name, os, secret, created, updated, \
             activated) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            params![
                device.id.clone(),
                device.user.clone(),
                device.name.clone(),
                device.os.clone(),
                sealed.to_vec(),
                device.created,
                device.updated,
                device.activated
            ],
        )?;
        Ok(())
    }

    fn devices(&mut self, user: &UserKey, pending: bool) -> Result<Vec<Device>, StateError> {
        self.hold(&person(user.as_str()))?;
        if unstorable(&[user.as_str()]) {
            return Ok(Vec::new());
        }
        let rows = self.query(
            concat!(
                "SELECT ",
                device_columns!(),
                " FROM mfa_devices WHERE username = $1 \
                 AND ($2 OR activated IS NOT NULL) ORDER BY created, id COLLATE \"C\""
            ),
            params![user.as_str().to_owned(), pending],
        )?;
        all(&rows, device)
    }

    fn has_active_device(&mut self, user: &UserKey) -> Result<bool, StateError> {
        self.hold(&person(user.as_str()))?;
        if unstorable(&[user.as_str()]) {
            return Ok(false);
        }
        let rows = self.query(
            "SELECT 1 FROM mfa_devices WHERE username = $1 AND activated IS NOT NULL LIMIT 1",
            params![user.as_str().to_owned()],
        )?;
        Ok(!rows.is_empty())
    }

    fn delete_device(&mut self, user: &UserKey, id: &str) -> Result<bool, StateError> {
        self.hold(&person(user.as_str()))?;
        if unstorable(&[user.as_str(), id]) {
            return Ok(false);
        }
        Ok(self.execute(
            "DELETE FROM mfa_devices WHERE username = $1 AND id = $2",
            params![user.as_str().to_owned(), id.to_owned()],
        )? > 0)
    }

    fn device_secret(
        &mut self,
        user: &UserKey,
        id: &str,
    ) -> Result<Option<DeviceSecret>, StateError> {
        self.hold(&person(user.as_str()))?;
        if unstorable(&[user.as_str(), id]) {
            return Ok(None);
        }
        let rows = self.query(
            "SELECT id, secret, activated, last_step FROM mfa_devices \
             WHERE username = $1 AND id = $2",
            params![user.as_str().to_owned(), id.to_owned()],
        )?;
        first(&rows, secret)
    }

    fn active_secrets(&mut self, user: &UserKey) -> Result<Vec<DeviceSecret>, StateError> {
        self.hold(&person(user.as_str()))?;
        if unstorable(&[user.as_str()]) {
            return Ok(Vec::new());
        }
        let rows = self.query(
            "SELECT id, secret, activated, last_step FROM mfa_devices \
             WHERE username = $1 AND activated IS NOT NULL",
            params![user.as_str().to_owned()],
        )?;
        all(&rows, secret)
    }

    fn activate_device(
        &mut self,
        user: &UserKey,
        id: &str,
        now: i64,
        step: i64,
    ) -> Result<Option<Device>, StateError> {
        self.hold(&person(user.as_str()))?;
        if unstorable(&[user.as_str(), id]) {
            return Ok(None);
        }
        // The row as the UPDATE left it: what SQLite's UPDATE then SELECT return.
        let rows = self.query(
            concat!(
                "UPDATE mfa_devices SET activated = $3, updated = $3, last_step = $4 \
                 WHERE username = $1 AND id = $2 RETURNING ",
                device_columns!()
            ),
            params![user.as_str().to_owned(), id.to_owned(), now, step],
        )?;
        first(&rows, device)
    }

    fn advance_step(&mut self, id: &str, step: i64, now: i64) -> Result<bool, StateError> {
        if unstorable(&[id]) {
            return Ok(false);
        }
        Ok(self.execute(
            "UPDATE mfa_devices SET last_step = $2, last_used = $3 \
             WHERE id = $1 AND (last_step IS NULL OR last_step < $2)",
            params![id.to_owned(), step, now],
        )? > 0)
    }

    fn failures(&mut self, user: &UserKey) -> Result<Option<Failures>, StateError> {
        self.hold(&person(user.as_str()))?;
        if unstorable(&[user.as_str()]) {
            return Ok(None);
        }
        let rows = self.query(
            "SELECT failures, lockouts, locked_until FROM mfa_failures WHERE username = $1",
            params![user.as_str().to_owned()],
        )?;
        first(&rows, |row| {
            Ok(Failures {
                failures: row.try_get(0)?,
                lockouts: row.try_get(1)?,
                locked_until: row.try_get(2)?,
            })
        })
    }

    fn set_failures(&mut self, user: &UserKey, failures: &Failures) -> Result<(), StateError> {
        self.hold(&person(user.as_str()))?;
        self.execute(
            "INSERT INTO mfa_failures (username, failures, lockouts, locked_until) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (username) DO UPDATE SET \
             failures = excluded.failures, lockouts = excluded.lockouts, \
             locked_until = excluded.locked_until",
            params![
                user.as_str().to_owned(),
                failures.failures,
                failures.lockouts,
                failures.locked_until
            ],
        )?;
        Ok(())
    }

    fn clear_failures(&mut self, user: &UserKey) -> Result<(), StateError> {
        self.hold(&person(user.as_str()))?;
        if unstorable(&[user.as_str()]) {
            return Ok(());
        }
        self.execute(
            "DELETE FROM mfa_failures WHERE username = $1",
            params![user.as_str().to_owned()],
        )?;
        Ok(())
    }

    fn hash_key(&mut self) -> Result<Option<Vec<u8>>, StateError> {
        let rows = self.query("SELECT key FROM mfa_key WHERE id = 1", params![])?;
        first(&rows, |row| Ok(row.try_get(0)?))
    }

    fn keep_hash_key(&mut self, fresh: &[u8]) -> Result<Vec<u8>, StateError> {
        self.execute(
            "INSERT INTO mfa_key (id, key) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
            params![fresh.to_vec()],
        )?;
        let rows = self.query("SELECT key FROM mfa_key WHERE id = 1", params![])?;
        single(&rows)
    }

    fn application(&mut self, id: &str) -> Result<Option<Application>, StateError> {
        if unstorable(&[id]) {
            return Ok(None);
        }
        let rows = self.query(
            concat!(
                "SELECT ",
                application_columns!(),
                " FROM mfa_applications WHERE id = $1"
            ),
            params![id.to_owned()],
        )?;
        first(&rows, application)
    }

    fn application_by_name(&mut self, name: &str) -> Result<Option<Application>, StateError> {
        if unstorable(&[name]) {
            return Ok(None);
        }
        let rows = self.query(
            concat!(
                "SELECT ",
                application_columns!(),
                " FROM mfa_applications WHERE name = $1"
            ),
            params![name.to_owned()],
        )?;
        first(&rows, application)
    }

    fn applications(&mut self) -> Result<Vec<Application>, StateError> {
        // SQLite breaks ties of `created` by rowid (insertion order); the table has no such
        // column here, so ties go by id.
        let rows = self.query(
            concat!(
                "SELECT ",
                application_columns!(),
                " FROM mfa_applications ORDER BY created, id COLLATE \"C\""
            ),
            params![],
        )?;
        all(&rows, application)
    }

    fn insert_application(&mut self, app: &Application) -> Result<Written, StateError> {
        self.hold(APPLICATIONS)?;
        // No conflict target: a taken id (primary key) or a taken name (UNIQUE) both insert
        // nothing, as both are a unique violation in SQLite.
        let inserted = self.execute(
            concat!(
                "INSERT INTO mfa_applications (",
                application_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
                 ON CONFLICT DO NOTHING"
            ),
            {
                let mut values = application_fields(app);
                values.extend(params![app.created, app.updated, app.version_number]);
                values
            },
        )?;
        Ok(if inserted == 0 {
            Written::Duplicate
        } else {
            Written::Done
        })
    }

    fn update_application(
        &mut self,
        app: &Application,
        version: i64,
    ) -> Result<Written, StateError> {
        self.hold(APPLICATIONS)?;
        if unstorable(&[&app.id]) {
            return Ok(Written::Missed);
        }
        // A name another application holds is checked here rather than left to the UNIQUE
        // constraint, whose violation would abort the transaction. The applications' lock
        // keeps another transaction from taking the name in between.
        let updated = self.execute(
            "UPDATE mfa_applications SET name = $2, description = $3, auth_code_length = $4, \
             auth_token_type = $5, auth_token_validity_duration = $6, auth_token_prefix = $7, \
             auth_token_delivery_methods = $8, associate_template = $9, display_name = $10, \
             login_template = $11, message_from = $12, updated = $13, version_number = $14 \
             WHERE id = $1 AND version_number = $15 AND NOT EXISTS \
             (SELECT 1 FROM mfa_applications other WHERE other.name = $2 AND other.id <> $1)",
            {
                let mut values = application_fields(app);
                values.extend(params![app.updated, app.version_number, version]);
                values
            },
        )?;
        if updated == 1 {
            return Ok(Written::Done);
        }
        // Nothing changed: a duplicate when the row of that id and version is there (SQLite's
        // UPDATE would have hit the name), else a miss.
        let rows = self.query(
            "SELECT 1 FROM mfa_applications WHERE id = $1 AND version_number = $2",
            params![app.id.clone(), version],
        )?;
        Ok(if rows.is_empty() {
            Written::Missed
        } else {
            Written::Duplicate
        })
    }

    fn delete_application(&mut self, id: &str) -> Result<bool, StateError> {
        self.hold(APPLICATIONS)?;
        if unstorable(&[id]) {
            return Ok(false);
        }
        // Users and their codes go with it (ON DELETE CASCADE).
        if self.execute(
            "DELETE FROM mfa_applications WHERE id = $1",
            params![id.to_owned()],
        )? == 0
        {
            return Ok(false);
        }
        self.execute(
            "DELETE FROM mfa_sends WHERE application_id = $1",
            params![id.to_owned()],
        )?;
        Ok(true)
    }

    fn user(&mut self, application: &str, id: &str) -> Result<Option<User>, StateError> {
        self.hold(&person_of_id(id))?;
        if unstorable(&[application, id]) {
            return Ok(None);
        }
        let rows = self.query(
            concat!(
                "SELECT ",
                user_columns!(),
                " FROM mfa_users WHERE application_id = $1 AND id = $2"
            ),
            params![application.to_owned(), id.to_owned()],
        )?;
        first(&rows, user)
    }

    fn user_id_of(
        &mut self,
        application: &str,
        key: &UserKey,
    ) -> Result<Option<String>, StateError> {
        self.hold(&person(key.as_str()))?;
        if unstorable(&[application, key.as_str()]) {
            return Ok(None);
        }
        let rows = self.query(
            "SELECT id FROM mfa_users WHERE application_id = $1 AND user_key = $2 LIMIT 1",
            params![application.to_owned(), key.as_str().to_owned()],
        )?;
        first(&rows, |row| Ok(row.try_get(0)?))
    }

    fn user_of(
        &mut self,
        application: &str,
        key: &UserKey,
        status: &str,
    ) -> Result<Option<User>, StateError> {
        self.hold(&person(key.as_str()))?;
        if unstorable(&[application, key.as_str(), status]) {
            return Ok(None);
        }
        let rows = self.query(
            concat!(
                "SELECT ",
                user_columns!(),
                " FROM mfa_users WHERE application_id = $1 AND user_key = $2 \
                 AND status = $3 ORDER BY id COLLATE \"C\" LIMIT 1"
            ),
            params![
                application.to_owned(),
                key.as_str().to_owned(),
                status.to_owned()
            ],
        )?;
        first(&rows, user)
    }

    fn users(&mut self, application: &str) -> Result<Vec<User>, StateError> {
        if unstorable(&[application]) {
            return Ok(Vec::new());
        }
        // Ties of `created` by id, as in `applications`.
        let rows = self.query(
            concat!(
                "SELECT ",
                user_columns!(),
                " FROM mfa_users WHERE application_id = $1 ORDER BY created, id COLLATE \"C\""
            ),
            params![application.to_owned()],
        )?;
        all(&rows, user)
    }

    fn insert_user(&mut self, new: &User) -> Result<(), StateError> {
        self.hold(&person_of_id(&new.id))?;
        self.execute(
            concat!(
                "INSERT INTO mfa_users (",
                user_columns!(),
                ", user_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ),
            params![
                new.application_id.clone(),
                new.id.clone(),
                new.user_address.clone(),
                new.status.clone(),
                new.created,
                new.updated,
                new.version_number,
                new.failures,
                new.locked_until,
                UserKey::of(&new.id).as_str().to_owned()
            ],
        )?;
        Ok(())
    }

    fn set_address(&mut self, changed: &User) -> Result<(), StateError> {
        self.hold(&person_of_id(&changed.id))?;
        if unstorable(&[&changed.application_id, &changed.id]) {
            return Ok(());
        }
        self.execute(
            "UPDATE mfa_users SET user_address = $3, status = $4, updated = $5, \
             version_number = $6 WHERE application_id = $1 AND id = $2",
            params![
                changed.application_id.clone(),
                changed.id.clone(),
                changed.user_address.clone(),
                changed.status.clone(),
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
        self.hold(&person_of_id(id))?;
        if unstorable(&[application, id]) {
            return Ok(());
        }
        // No lockout given: `locked_until` keeps its value.
        self.execute(
            "UPDATE mfa_users SET failures = $3, locked_until = coalesce($4, locked_until) \
             WHERE application_id = $1 AND id = $2",
            params![
                application.to_owned(),
                id.to_owned(),
                failures,
                locked_until
            ],
        )?;
        Ok(())
    }

    fn validate_user(
        &mut self,
        application: &str,
        id: &str,
        status: &str,
        now: i64,
    ) -> Result<(), StateError> {
        self.hold(&person_of_id(id))?;
        if unstorable(&[application, id]) {
            return Ok(());
        }
        self.execute(
            "UPDATE mfa_users SET status = $3, failures = 0, updated = $4, \
             version_number = version_number + 1 WHERE application_id = $1 AND id = $2",
            params![
                application.to_owned(),
                id.to_owned(),
                status.to_owned(),
                now
            ],
        )?;
        Ok(())
    }

    fn delete_user(&mut self, application: &str, id: &str) -> Result<bool, StateError> {
        self.hold(&person_of_id(id))?;
        if unstorable(&[application, id]) {
            return Ok(false);
        }
        // The code goes with the user (ON DELETE CASCADE).
        if self.execute(
            "DELETE FROM mfa_users WHERE application_id = $1 AND id = $2",
            params![application.to_owned(), id.to_owned()],
        )? == 0
        {
            return Ok(false);
        }
        self.execute(
            "DELETE FROM mfa_sends WHERE application_id = $1 AND user_id = $2",
            params![application.to_owned(), id.to_owned()],
        )?;
        Ok(true)
    }

    fn forget_sends(&mut self, before: i64) -> Result<(), StateError> {
        self.execute("DELETE FROM mfa_sends WHERE at <= $1", params![before])?;
        Ok(())
    }

    fn count_sends(&mut self, application: &str, id: &str) -> Result<i64, StateError> {
        self.hold(&person_of_id(id))?;
        if unstorable(&[application, id]) {
            return Ok(0);
        }
        let rows = self.query(
            "SELECT count(*) FROM mfa_sends WHERE application_id = $1 AND user_id = $2",
            params![application.to_owned(), id.to_owned()],
        )?;
        single(&rows)
    }

    fn record_send(&mut self, application: &str, id: &str, at: i64) -> Result<(), StateError> {
        self.hold(&person_of_id(id))?;
        self.execute(
            "INSERT INTO mfa_sends (application_id, user_id, at) VALUES ($1, $2, $3)",
            params![application.to_owned(), id.to_owned(), at],
        )?;
        Ok(())
    }

    fn code(&mut self, application: &str, id: &str) -> Result<Option<StoredCode>, StateError> {
        self.hold(&person_of_id(id))?;
        if unstorable(&[application, id]) {
            return Ok(None);
        }
        let rows = self.query(
            "SELECT purpose, address, hash, expires FROM mfa_codes \
             WHERE application_id = $1 AND user_id = $2",
            params![application.to_owned(), id.to_owned()],
        )?;
        first(&rows, |row| {
            Ok(StoredCode {
                purpose: row.try_get(0)?,
                address: row.try_get(1)?,
                hash: row.try_get(2)?,
                expires: row.try_get(3)?,
            })
        })
    }

    fn put_code(
        &mut self,
        application: &str,
        id: &str,
        code: &StoredCode,
    ) -> Result<(), StateError> {
        self.hold(&person_of_id(id))?;
        self.execute(
            "INSERT INTO mfa_codes (application_id, user_id, purpose, address, hash, expires) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (application_id, user_id) DO UPDATE \
             SET purpose = excluded.purpose, address = excluded.address, \
             hash = excluded.hash, expires = excluded.expires",
            params![
                application.to_owned(),
                id.to_owned(),
                code.purpose.clone(),
                code.address.clone(),
                code.hash.clone(),
                code.expires
            ],
        )?;
        Ok(())
    }

    fn delete_code(&mut self, application: &str, id: &str) -> Result<(), StateError> {
        self.hold(&person_of_id(id))?;
        if unstorable(&[application, id]) {
            return Ok(());
        }
        self.execute(
            "DELETE FROM mfa_codes WHERE application_id = $1 AND user_id = $2",
            params![application.to_owned(), id.to_owned()],
        )?;
        Ok(())
    }
}
