//! MFA service users of an application: list, read, delete, dissociate.

#[allow(clippy::wildcard_imports)]
use super::*;

// ---------------------------------------------------------------------------------------------
// Users

pub(super) fn no_user(application: &str, user: &str) -> MfaError {
    MfaError::NotFound(format!("No user {user:?} in application {application:?}."))
}

/// 409/1011 when `application` has a user whose id differs from `user_id` only in case or
/// compatibility forms: both would be one gateway user ([`UserKey`]), and which address its
/// codes went to would depend on how the name was typed.
pub(super) fn refuse_namesake(
    tx: &mut dyn MfaTx,
    application: &str,
    user_id: &str,
) -> Result<(), MfaError> {
    match tx.user_id_of(application, &UserKey::of(user_id))? {
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
    tx: &mut dyn MfaTx,
    application: &str,
    filters: &[(String, String)],
) -> Result<Vec<User>, MfaError> {
    let filter = UserFilter::parse(filters)?;
    get_application(tx, application)?;
    let mut users = tx.users(application)?;
    users.retain(|user| filter.matches(user));
    Ok(users)
}

/// One user of an application.
pub fn get_user(tx: &mut dyn MfaTx, application: &str, user: &str) -> Result<User, MfaError> {
    check_id("User_ID", user)?;
    get_application(tx, application)?;
    tx.user(application, user)?
        .ok_or_else(|| no_user(application, user))
}

/// Deletes a user, their code and their send history.
pub fn delete_user(tx: &mut dyn MfaTx, application: &str, user: &str) -> Result<(), MfaError> {
    check_id("User_ID", user)?;
    get_application(tx, application)?;
    if !tx.delete_user(application, user)? {
        return Err(no_user(application, user));
    }
    Ok(())
}

/// Removes a user's address: status INITIAL, no outstanding code.
pub fn dissociate(
    tx: &mut dyn MfaTx,
    application: &str,
    user: &str,
    now: i64,
) -> Result<User, MfaError> {
    check_id("User_ID", user)?;
    get_application(tx, application)?;
    let mut found = tx
        .user(application, user)?
        .ok_or_else(|| no_user(application, user))?;
    found.user_address.clear();
    found.status = Status::Initial.as_str().into();
    found.version_number += 1;
    found.updated = now;
    tx.set_address(&found)?;
    tx.delete_code(application, user)?;
    Ok(found)
}
