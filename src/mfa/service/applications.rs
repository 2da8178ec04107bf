//! MFA service applications: create, read, list with filters, update, delete.

#[allow(clippy::wildcard_imports)]
use super::*;

// ---------------------------------------------------------------------------------------------
// Applications

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
    tx: &mut dyn MfaTx,
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
    match tx.insert_application(&app)? {
        Written::Done => Ok(app),
        _ => Err(duplicate_name(&app.name)),
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
pub fn get_application(tx: &mut dyn MfaTx, id: &str) -> Result<Application, MfaError> {
    check_id("Application_ID", id)?;
    tx.application(id)?.ok_or_else(|| no_application(id))
}

/// Applications matching every filter (`name=value` pairs of the documented filters), in
/// creation order.
pub fn list_applications(
    tx: &mut dyn MfaTx,
    filters: &[(String, String)],
) -> Result<Vec<Application>, MfaError> {
    let filter = ApplicationFilter::parse(filters)?;
    let mut apps = tx.applications()?;
    apps.retain(|app| filter.matches(app));
    Ok(apps)
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
    tx: &mut dyn MfaTx,
    id: &str,
    fields: ApplicationFields,
    version: i64,
    now: i64,
) -> Result<Application, MfaError> {
    let mut app = get_application(tx, id)?;
    if app.version_number != version {
        return Err(MfaError::Stale {
            current: app.version_number,
        });
    }
    merge(&mut app, fields);
    check_application(&app)?;
    app.version_number += 1;
    app.updated = now;
    match tx.update_application(&app, version)? {
        Written::Done => Ok(app),
        Written::Missed => Err(MfaError::Stale {
            current: app.version_number,
        }),
        Written::Duplicate => Err(duplicate_name(&app.name)),
    }
}

/// Deletes an application with its users and their codes.
pub fn delete_application(tx: &mut dyn MfaTx, id: &str) -> Result<(), MfaError> {
    check_id("Application_ID", id)?;
    if !tx.delete_application(id)? {
        return Err(no_application(id));
    }
    Ok(())
}
