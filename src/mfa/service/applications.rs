//! MFA service applications: create, read, list with filters, update, delete.

#[allow(clippy::wildcard_imports)]
use super::*;

// ---------------------------------------------------------------------------------------------
// Applications

pub(super) fn unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

pub(super) fn duplicate_name(name: &str) -> MfaError {
    MfaError::Duplicate(format!(
        "Unique key constraint violated: an application named {name:?} exists already."
    ))
}

pub(super) fn no_application(id: &str) -> MfaError {
    MfaError::NotFound(format!("No application with id {id:?}."))
}

pub(super) fn check_id(field: &str, id: &str) -> Result<(), MfaError> {
    check_length(field, id, MAX_ID)
}

/// Creates an application; `name` is required, the rest defaults.
pub fn create_application(
    c: &mut Connection,
    fields: ApplicationFields,
    now: i64,
) -> Result<Application, MfaError> {
    let Some(name) = fields.name.clone() else {
        return Err(MfaError::BadRequest("name is required.".into()));
    };
    let mut app = Application {
        id: codes::random_hex(16)?,
        display_name: name.clone(),
        name,
        description: String::new(),
        auth_code_length: 6,
        auth_token_type: TokenType::Numeric.as_str().into(),
        auth_token_validity_duration: 300,
        auth_token_prefix: String::new(),
        auth_token_delivery_methods: Channel::Sms.as_str().into(),
        associate_template: String::new(),
        login_template: String::new(),
        message_from: String::new(),
        created: now,
        updated: now,
        version_number: 1,
    };
    merge(&mut app, fields);
    check_application(&app)?;
    let inserted = c.execute(
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
        Ok(_) => Ok(app),
        Err(e) if unique_violation(&e) => Err(duplicate_name(&app.name)),
        Err(e) => Err(e.into()),
    }
}

pub(super) fn merge(app: &mut Application, fields: ApplicationFields) {
    let ApplicationFields {
        name,
        description,
        auth_code_length,
        auth_token_type,
        auth_token_validity_duration,
        auth_token_prefix,
        auth_token_delivery_methods,
        associate_template,
        display_name,
        login_template,
        message_from,
    } = fields;
    let set = |slot: &mut String, value: Option<String>| {
        if let Some(value) = value {
            *slot = value;
        }
    };
    set(&mut app.name, name);
    set(&mut app.description, description);
    set(&mut app.auth_token_type, auth_token_type);
    set(&mut app.auth_token_prefix, auth_token_prefix);
    set(
        &mut app.auth_token_delivery_methods,
        auth_token_delivery_methods,
    );
    set(&mut app.associate_template, associate_template);
    set(&mut app.display_name, display_name);
    set(&mut app.login_template, login_template);
    set(&mut app.message_from, message_from);
    if let Some(n) = auth_code_length {
        app.auth_code_length = n;
    }
    if let Some(n) = auth_token_validity_duration {
        app.auth_token_validity_duration = n;
    }
}

/// The application with this id.
pub fn get_application(c: &Connection, id: &str) -> Result<Application, MfaError> {
    check_id("Application_ID", id)?;
    find_application(c, id)?.ok_or_else(|| no_application(id))
}

pub(super) fn find_application(c: &Connection, id: &str) -> Result<Option<Application>, MfaError> {
    Ok(c.query_row(
        &format!("SELECT {APPLICATION_COLUMNS} FROM mfa_applications WHERE id = ?1"),
        [id],
        Application::from_row,
    )
    .optional()?)
}

pub(super) fn find_application_by_name(
    c: &Connection,
    name: &str,
) -> Result<Option<Application>, MfaError> {
    Ok(c.query_row(
        &format!("SELECT {APPLICATION_COLUMNS} FROM mfa_applications WHERE name = ?1"),
        [name],
        Application::from_row,
    )
    .optional()?)
}

/// Applications matching every filter (`name=value` pairs of the documented filters), in
/// creation order.
pub fn list_applications(
    c: &Connection,
    filters: &[(String, String)],
) -> Result<Vec<Application>, MfaError> {
    let filter = ApplicationFilter::parse(filters)?;
    let mut statement = c.prepare(&format!(
        "SELECT {APPLICATION_COLUMNS} FROM mfa_applications ORDER BY created, rowid"
    ))?;
    let rows = statement.query_map([], Application::from_row)?;
    let mut out = Vec::new();
    for row in rows {
        let app = row?;
        if filter.matches(&app) {
            out.push(app);
        }
    }
    Ok(out)
}

/// The documented filters of the application list (and, quirk of the reference, of the GET of
/// one application).
#[derive(Debug, Default)]
pub struct ApplicationFilter {
    texts: Vec<(&'static str, String)>,
    numbers: Vec<(&'static str, i64)>,
    dates: Vec<(&'static str, String)>,
}

/// 400 for a filter the reference does not document.
pub(super) fn unknown_filter(name: &str, known: &[&str]) -> MfaError {
    MfaError::BadRequest(format!(
        "Unknown query parameter {name:?}; the filters are {}.",
        known.join(", ")
    ))
}

impl ApplicationFilter {
    const TEXTS: [(&'static str, usize); 5] = [
        ("id", MAX_ID),
        ("name", MAX_NAME),
        ("auth_token_type", 16),
        ("auth_token_prefix", MAX_PREFIX),
        ("message_from", MAX_NAME),
    ];
    const NUMBERS: [&'static str; 2] = ["auth_code_length", "auth_token_validity_duration"];
    const DATES: [&'static str; 2] = ["created_date", "last_updated_date"];
    const METHODS: &'static str = "auth_token_delivery_methods";

    /// Parses query pairs: unknown names are 400, over-long values 1023, numbers and dates
    /// that do not parse 400.
    pub fn parse(filters: &[(String, String)]) -> Result<ApplicationFilter, MfaError> {
        let mut filter = ApplicationFilter::default();
        for (name, value) in filters {
            if let Some((field, max)) = Self::TEXTS.iter().find(|(f, _)| f == name) {
                check_length(name, value, *max)?;
                if *field == "auth_token_type" && TokenType::parse(value).is_none() {
                    return Err(MfaError::BadRequest(format!(
                        "auth_token_type filter {value:?} is not NUMERIC, ALPHANUMERIC, ALPHA \
                         or COMPLEX."
                    )));
                }
                filter.texts.push((field, value.clone()));
            } else if name == Self::METHODS {
                check_length(name, value, 16)?;
                if Channel::parse(value).is_none() {
                    return Err(MfaError::BadRequest(format!(
                        "{name} filter {value:?} is not SMS or EMAIL."
                    )));
                }
                filter.texts.push((Self::METHODS, value.clone()));
            } else if let Some(field) = Self::NUMBERS.iter().find(|f| *f == name) {
                check_length(name, value, 20)?;
                let n = value.parse().map_err(|_| {
                    MfaError::BadRequest(format!("{name} filter {value:?} is not an integer."))
                })?;
                filter.numbers.push((field, n));
            } else if let Some(field) = Self::DATES.iter().find(|f| *f == name) {
                check_length(name, value, 32)?;
                if time::matches(value, 0).is_none() {
                    return Err(MfaError::BadRequest(format!(
                        "{name} filter {value:?} is not a date (YYYY-MM-DD) or an RFC 3339 UTC \
                         time (YYYY-MM-DDTHH:MM:SSZ)."
                    )));
                }
                filter.dates.push((field, value.clone()));
            } else {
                let mut known: Vec<&str> = Self::TEXTS.iter().map(|(f, _)| *f).collect();
                known.push(Self::METHODS);
                known.extend(Self::NUMBERS);
                known.extend(Self::DATES);
                return Err(unknown_filter(name, &known));
            }
        }
        Ok(filter)
    }

    /// Whether `app` passes every filter.
    pub fn matches(&self, app: &Application) -> bool {
        self.texts.iter().all(|(field, value)| {
            let actual = match *field {
                "id" => &app.id,
                "name" => &app.name,
                "auth_token_type" => &app.auth_token_type,
                "auth_token_prefix" => &app.auth_token_prefix,
                "message_from" => &app.message_from,
                _ => &app.auth_token_delivery_methods,
            };
            actual == value
        }) && self.numbers.iter().all(|(field, value)| {
            let actual = if *field == "auth_code_length" {
                app.auth_code_length
            } else {
                app.auth_token_validity_duration
            };
            actual == *value
        }) && self.dates.iter().all(|(field, value)| {
            let actual = if *field == "created_date" {
                app.created
            } else {
                app.updated
            };
            time::matches(value, actual) == Some(true)
        })
    }
}

/// Changes the fields given when `version` is the current version; the version goes up by one.
pub fn update_application(
    c: &mut Connection,
    id: &str,
    fields: ApplicationFields,
    version: i64,
    now: i64,
) -> Result<Application, MfaError> {
    let tx = c.transaction()?;
    let mut app = get_application(&tx, id)?;
    if app.version_number != version {
        return Err(MfaError::Stale {
            current: app.version_number,
        });
    }
    merge(&mut app, fields);
    check_application(&app)?;
    app.version_number += 1;
    app.updated = now;
    let updated = tx.execute(
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
        Ok(1) => {}
        Ok(_) => {
            return Err(MfaError::Stale {
                current: app.version_number,
            });
        }
        Err(e) if unique_violation(&e) => return Err(duplicate_name(&app.name)),
        Err(e) => return Err(e.into()),
    }
    tx.commit()?;
    Ok(app)
}

/// Deletes an application with its users and their codes.
pub fn delete_application(c: &mut Connection, id: &str) -> Result<(), MfaError> {
    check_id("Application_ID", id)?;
    let tx = c.transaction()?;
    let deleted = tx.execute("DELETE FROM mfa_applications WHERE id = ?1", [id])?;
    if deleted == 0 {
        return Err(no_application(id));
    }
    tx.execute("DELETE FROM mfa_sends WHERE application_id = ?1", [id])?;
    tx.commit()?;
    Ok(())
}
