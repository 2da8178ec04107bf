//! Reading the bodies of the remote-authentication routes: the input types shared by
//! several bodies, and field errors named as the request spells them.

#[allow(clippy::wildcard_imports)]
use super::*;

// ---------------------------------------------------------------------------------------------
// Input types shared by several bodies.

/// `enabled` as a request carries it: `true`/`false`, or `1`/`0` as the server lists show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Flag, D::Error> {
        /// Booleans, and the integers 1 and 0.
        struct FlagVisitor;

        impl Visitor<'_> for FlagVisitor {
            type Value = Flag;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false, 1 or 0")
            }

            fn visit_bool<E: de::Error>(self, value: bool) -> Result<Flag, E> {
                Ok(Flag(value))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Flag, E> {
                match value {
                    0 => Ok(Flag(false)),
                    1 => Ok(Flag(true)),
                    _ => Err(E::invalid_value(Unexpected::Unsigned(value), &self)),
                }
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Flag, E> {
                match value {
                    0 => Ok(Flag(false)),
                    1 => Ok(Flag(true)),
                    _ => Err(E::invalid_value(Unexpected::Signed(value), &self)),
                }
            }
        }

        deserializer.deserialize_any(FlagVisitor)
    }
}

impl PartialSchema for Flag {
    fn schema() -> RefOr<Schema> {
        Schema::OneOf(
            OneOfBuilder::new()
                .item(ObjectBuilder::new().schema_type(Type::Boolean))
                .item(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .enum_values(Some([0, 1])),
                )
                .description(Some(
                    "true or false; 1 and 0 (as the server lists show it) are accepted too",
                ))
                .build(),
        )
        .into()
    }
}

impl ToSchema for Flag {}

/// A text field that the reference sends as a number in some examples and as a string in
/// others (TACACS+ `client_port` and role mapping `attribute`): a string, or a non-negative
/// integer kept as its decimal text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringOrNumber(pub String);

impl<'de> Deserialize<'de> for StringOrNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<StringOrNumber, D::Error> {
        /// Strings, and non-negative integers.
        struct TextVisitor;

        impl Visitor<'_> for TextVisitor {
            type Value = StringOrNumber;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a non-negative integer")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<StringOrNumber, E> {
                Ok(StringOrNumber(value.to_owned()))
            }

            fn visit_string<E: de::Error>(self, value: String) -> Result<StringOrNumber, E> {
                Ok(StringOrNumber(value))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<StringOrNumber, E> {
                Ok(StringOrNumber(value.to_string()))
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<StringOrNumber, E> {
                if value < 0 {
                    Err(E::invalid_value(Unexpected::Signed(value), &self))
                } else {
                    Ok(StringOrNumber(value.to_string()))
                }
            }
        }

        deserializer.deserialize_any(TextVisitor)
    }
}

impl PartialSchema for StringOrNumber {
    fn schema() -> RefOr<Schema> {
        Schema::OneOf(
            OneOfBuilder::new()
                .item(ObjectBuilder::new().schema_type(Type::String))
                .item(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(0)),
                )
                .description(Some(
                    "a string, or a non-negative integer (stored and listed as its decimal text)",
                ))
                .build(),
        )
        .into()
    }
}

impl ToSchema for StringOrNumber {}

/// A string schema that allows exactly `values`.
pub(super) fn string_enum(values: &[&str]) -> RefOr<Schema> {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(values.iter().copied()))
            .build(),
    )
    .into()
}

/// Declares a schema-only type for the OpenAPI document: a string that is one of `values`.
macro_rules! string_enum_schema {
    ($(#[$doc:meta])* $name:ident, [$($value:literal),+]) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                string_enum(&[$($value),+])
            }
        }

        impl ToSchema for $name {}
    };
}

string_enum_schema!(
    /// A RADIUS server's authentication protocol.
    RadiusProtocolName,
    ["PAP", "CHAP"]
);
string_enum_schema!(
    /// A TACACS+ server's authentication protocol.
    TacacsProtocolName,
    ["PAP", "ASCII"]
);
string_enum_schema!(
    /// How a RADIUS server is reached (an extension of the reference).
    RadiusTransportName,
    ["udp", "tls"]
);
string_enum_schema!(
    /// How a TACACS+ server is reached (an extension of the reference).
    TacacsTransportName,
    ["tcp", "tls"]
);
string_enum_schema!(
    /// `nas_id_type` as a request may spell it (`dyanmic` as the reference does once).
    NasIdTypeInput,
    ["custom", "dynamic", "dyanmic"]
);
string_enum_schema!(
    /// `nas_id_type` as `GET radius/settings` shows it.
    NasIdTypeName,
    ["custom", "dynamic"]
);

// ---------------------------------------------------------------------------------------------
// Reading request bodies: every failing field is named as the request spells it.

/// `(field, reason)` pairs for `error_info.fields`.
pub(super) type FieldErrors = Vec<(String, String)>;

/// 400 naming the fields in `errors`.
pub(super) fn invalid(errors: FieldErrors) -> ApiError {
    ApiError::invalid_fields("Invalid argument.", errors)
}

/// `name` inside `path`: `port`, `[1].port`, `authentication.use_nas_id`.
pub(super) fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// The body as JSON; 400 with serde's message when it is not.
pub(super) fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("JSON error: {e}")))
}

/// Reads `value` (found at `path`) as a `T` whose fields are all optional. On failure each
/// offending member is tried on its own, so every bad field is named with serde's reason.
pub(super) fn from_object<T: DeserializeOwned>(
    value: &Value,
    path: &str,
    errors: &mut FieldErrors,
) -> Option<T> {
    let Some(members) = value.as_object() else {
        let at = if path.is_empty() { "body" } else { path };
        errors.push((at.to_owned(), "must be a JSON object".to_owned()));
        return None;
    };
    match T::deserialize(value) {
        Ok(parsed) => Some(parsed),
        Err(whole) => {
            let before = errors.len();
            for (name, member) in members {
                let alone = Value::Object(Map::from_iter([(name.clone(), member.clone())]));
                if let Err(e) = T::deserialize(&alone) {
                    errors.push((join(path, name), e.to_string()));
                }
            }
            if errors.len() == before {
                let at = if path.is_empty() { "body" } else { path };
                errors.push((at.to_owned(), whole.to_string()));
            }
            None
        }
    }
}

/// A body that must be one JSON object.
pub(super) fn parse_object<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let value = parse_json(body)?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "JSON error: the body must be a JSON object",
        ));
    }
    let mut errors = Vec::new();
    from_object(&value, "", &mut errors).ok_or_else(|| invalid(errors))
}

/// A body that must be a JSON array of objects; entries are named `[0]`, `[1]`, ...
pub(super) fn parse_array<T: DeserializeOwned>(body: &[u8]) -> Result<Vec<T>, ApiError> {
    let value = parse_json(body)?;
    let Some(items) = value.as_array() else {
        return Err(ApiError::bad_request(
            "JSON error: the body must be a JSON array",
        ));
    };
    let mut errors = Vec::new();
    let parsed: Vec<Option<T>> = items
        .iter()
        .enumerate()
        .map(|(index, item)| from_object(item, &format!("[{index}]"), &mut errors))
        .collect();
    if errors.is_empty() {
        Ok(parsed.into_iter().flatten().collect())
    } else {
        Err(invalid(errors))
    }
}

/// 400 naming each required field that is missing.
pub(super) fn missing(fields: &[(&str, bool)]) -> ApiError {
    invalid(
        fields
            .iter()
            .filter(|(_, absent)| *absent)
            .map(|(name, _)| ((*name).to_owned(), "is required".to_owned()))
            .collect(),
    )
}

/// Validates a changed configuration inside an update, renaming the configuration's field
/// paths (`radius.servers[2].port`) to the request's (`port`) with `rename`; paths it does not
/// know stay as they are.
pub(super) fn validated(
    config: &Config,
    rename: impl Fn(&str) -> Option<String>,
) -> Result<(), ApiError> {
    match config.validate() {
        Ok(_) => Ok(()),
        Err(ConfigError::Invalid(errors)) => Err(invalid(
            errors
                .into_iter()
                .map(|e| (rename(&e.path).unwrap_or(e.path), e.message))
                .collect(),
        )),
        Err(e) => Err(ApiError::internal("validate", e)),
    }
}

/// Splits `list[7].port` into `(7, ".port")` and `list[7]` into `(7, "")`.
pub(super) fn list_entry<'a>(field: &'a str, list: &str) -> Option<(usize, &'a str)> {
    let rest = field.strip_prefix(list)?.strip_prefix('[')?;
    let (index, rest) = rest.split_once(']')?;
    let index = index.parse().ok()?;
    (rest.is_empty() || rest.starts_with('.')).then_some((index, rest))
}

/// The request's name for a field of the server at `index` of `list`: `port` for
/// `radius.servers[index].port`; a whole-server error (a duplicate) names `address`.
pub(super) fn server_field(field: &str, list: &str, index: usize) -> Option<String> {
    match list_entry(field, list)? {
        (at, "") if at == index => Some("address".to_owned()),
        (at, rest) if at == index => Some(rest.trim_start_matches('.').to_owned()),
        _ => None,
    }
}

/// The request's name for a field of an entry of a list sent whole: `[i].port` for
/// `radius.servers[i].port`.
pub(super) fn entry_field(field: &str, list: &str) -> Option<String> {
    list_entry(field, list).map(|(index, rest)| format!("[{index}]{rest}"))
}

/// The `{id}` of a server URL; anything that is not a configured id is 404, a segment that
/// does not even decode to UTF-8 included.
pub(super) fn server_id(
    id: Result<Path<String>, PathRejection>,
    method: &str,
) -> Result<u32, ApiError> {
    let Path(id) = id.map_err(|e| {
        ApiError::not_found(format!(
            "No {method} server with that server_id ({}).",
            e.body_text()
        ))
    })?;
    id.parse()
        .map_err(|_| ApiError::not_found(format!("No {method} server with server_id {id:?}.")))
}

/// 404 for a server id that is not configured.
pub(super) fn no_server(method: &str, id: u32) -> ApiError {
    ApiError::not_found(format!("No {method} server with server_id {id}."))
}

/// `1`/`0` for `enabled` in lists.
pub(super) fn flag(enabled: bool) -> u8 {
    u8::from(enabled)
}

/// What the RADIUS and TACACS+ server lists have in common.
pub(super) trait Listed {
    fn id(&self) -> u32;
    fn order(&self) -> u32;
    fn set_order(&mut self, order: u32);
}

impl Listed for RadiusServer {
    fn id(&self) -> u32 {
        self.id
    }
    fn order(&self) -> u32 {
        self.order
    }
    fn set_order(&mut self, order: u32) {
        self.order = order;
    }
}

impl Listed for TacacsServer {
    fn id(&self) -> u32 {
        self.id
    }
    fn order(&self) -> u32 {
        self.order
    }
    fn set_order(&mut self, order: u32) {
        self.order = order;
    }
}

/// Sorts the servers by `order` and renumbers them 0, 1, 2, ...: `order` is the index in the
/// try order, as the reference describes it.
pub(super) fn renumber<S: Listed>(servers: &mut [S]) {
    servers.sort_by_key(Listed::order);
    for (index, server) in servers.iter_mut().enumerate() {
        server.set_order(u32::try_from(index).unwrap_or(u32::MAX));
    }
}

/// The id for a new server: one more than the largest in use (1 for the first).
pub(super) fn next_id<S: Listed>(servers: &[S]) -> Result<u32, ApiError> {
    match servers.iter().map(Listed::id).max() {
        None => Ok(1),
        Some(max) => max
            .checked_add(1)
            .ok_or_else(|| ApiError::bad_request("No server id is left above the largest one.")),
    }
}

/// Servers sorted by `order`, as lists show them.
pub(super) fn in_order<S: Listed>(servers: &[S]) -> Vec<&S> {
    let mut sorted: Vec<&S> = servers.iter().collect();
    sorted.sort_by_key(|server| server.order());
    sorted
}
