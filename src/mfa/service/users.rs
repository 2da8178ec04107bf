//! MFA service users of an application: list, read, delete, dissociate.

#[allow(clippy::wildcard_imports)]
use super::*;

// ---------------------------------------------------------------------------------------------
// Users

pub(super) fn no_user(application: &str, user: &str) -> MfaError {
    MfaError::NotFound(format!("No user {user:?} in application {application:?}."))
}

pub(super) fn find_user(
    c: &Connection,
    application: &str,
    user: &str,
) -> Result<Option<User>, MfaError> {
    Ok(c.query_row(
        &format!("SELECT {USER_COLUMNS} FROM mfa_users WHERE application_id = ?1 AND id = ?2"),
        [application, user],
        User::from_row,
    )
    .optional()?)
}

/// 409/1011 when `application` has a user whose id differs from `user_id` only in case or
/// compatibility forms: both would be one gateway user ([`UserKey`]), and which address its
/// codes went to would depend on how the name was typed.
pub(super) fn refuse_namesake(
    c: &Connection,
    application: &str,
    user_id: &str,
) -> Result<(), MfaError> {
    let key = UserKey::of(user_id);
    let taken: Option<String> = c
        .query_row(
            "SELECT id FROM mfa_users WHERE application_id = ?1 AND user_key = ?2 LIMIT 1",
            params![application, key.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    match taken {
        Some(other) => Err(MfaError::Duplicate(format!(
            "User {other:?} exists already: user ids are compared ignoring case."
        ))),
        None => Ok(()),
    }
}

/// The documented filters of the user list (and of the GET of one user).
#[derive(Debug, Default)]
pub struct UserFilter {
    id: Option<String>,
    status: Option<String>,
    dates: Vec<(bool, String)>,
}

impl UserFilter {
    /// Parses query pairs like [`ApplicationFilter::parse`].
    pub fn parse(filters: &[(String, String)]) -> Result<UserFilter, MfaError> {
        let mut filter = UserFilter::default();
        for (name, value) in filters {
            match name.as_str() {
                "id" => {
                    check_length(name, value, MAX_ID)?;
                    filter.id = Some(value.clone());
                }
                "status" => {
                    check_length(name, value, 32)?;
                    if Status::parse(value).is_none() {
                        return Err(MfaError::BadRequest(format!(
                            "status filter {value:?} is not INITIAL, VALIDATION PENDING or \
                             VALIDATED."
                        )));
                    }
                    filter.status = Some(value.clone());
                }
                "created_date" | "last_updated_date" => {
                    check_length(name, value, 32)?;
                    if time::matches(value, 0).is_none() {
                        return Err(MfaError::BadRequest(format!(
                            "{name} filter {value:?} is not a date (YYYY-MM-DD) or an RFC 3339 \
                             UTC time."
                        )));
                    }
                    filter.dates.push((name == "created_date", value.clone()));
                }
                _ => {
                    return Err(unknown_filter(
                        name,
                        &["id", "status", "created_date", "last_updated_date"],
                    ));
                }
            }
        }
        Ok(filter)
    }

    /// Whether `user` passes every filter.
    pub fn matches(&self, user: &User) -> bool {
        self.id.as_ref().is_none_or(|id| *id == user.id)
            && self.status.as_ref().is_none_or(|s| *s == user.status)
            && self.dates.iter().all(|(created, value)| {
                let at = if *created { user.created } else { user.updated };
                time::matches(value, at) == Some(true)
            })
    }
}

/// The users of an application matching the filters, in creation order.
pub fn list_users(
    c: &Connection,
    application: &str,
    filters: &[(String, String)],
) -> Result<Vec<User>, MfaError> {
    let filter = UserFilter::parse(filters)?;
    get_application(c, application)?;
    let mut statement = c.prepare(&format!(
        "SELECT {USER_COLUMNS} FROM mfa_users WHERE application_id = ?1 ORDER BY created, rowid"
    ))?;
    let rows = statement.query_map([application], User::from_row)?;
    let mut out = Vec::new();
    for row in rows {
        let user = row?;
        if filter.matches(&user) {
            out.push(user);
        }
    }
    Ok(out)
}

/// One user of an application.
pub fn get_user(c: &Connection, application: &str, user: &str) -> Result<User, MfaError> {
    check_id("User_ID", user)?;
    get_application(c, application)?;
    find_user(c, application, user)?.ok_or_else(|| no_user(application, user))
}

/// Deletes a user, their code and their send history.
pub fn delete_user(c: &mut Connection, application: &str, user: &str) -> Result<(), MfaError> {
    check_id("User_ID", user)?;
    let tx = c.transaction()?;
    get_application(&tx, application)?;
    if tx.execute(
        "DELETE FROM mfa_users WHERE application_id = ?1 AND id = ?2",
        [application, user],
    )? == 0
    {
        return Err(no_user(application, user));
    }
    tx.execute(
        "DELETE FROM mfa_sends WHERE application_id = ?1 AND user_id = ?2",
        [application, user],
    )?;
    tx.commit()?;
    Ok(())
}

/// Removes a user's address: status INITIAL, no outstanding code.
pub fn dissociate(
    c: &mut Connection,
    application: &str,
    user: &str,
    now: i64,
) -> Result<User, MfaError> {
    check_id("User_ID", user)?;
    let tx = c.transaction()?;
    get_application(&tx, application)?;
    let mut found = find_user(&tx, application, user)?.ok_or_else(|| no_user(application, user))?;
    found.user_address.clear();
    found.status = Status::Initial.as_str().into();
    found.version_number += 1;
    found.updated = now;
    tx.execute(
        "UPDATE mfa_users SET user_address = '', status = ?3, version_number = ?4, \
         updated = ?5 WHERE application_id = ?1 AND id = ?2",
        params![application, user, found.status, found.version_number, now],
    )?;
    tx.execute(
        "DELETE FROM mfa_codes WHERE application_id = ?1 AND user_id = ?2",
        [application, user],
    )?;
    tx.commit()?;
    Ok(found)
}
