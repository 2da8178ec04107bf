//! portcullis configuration: the TOML schema, its defaults and validation, and atomic load/save.
//!
//! The schema lands with the authentication engine; this crate holds its place in the
//! workspace so that the dependency direction (`portcullis` -> `portcullis-config`) is fixed
//! from the start.
