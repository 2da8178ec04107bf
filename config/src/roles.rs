//! Role names: the default set and the checks that references name a defined role.

use std::collections::HashMap;

use crate::error::Report;

/// The default roles: the eleven roles and permissions the management API's RADIUS role
/// mapping lists, then `Traffic Filter`, which its TACACS+ role mapping adds.
pub const DEFAULT_ROLES: [&str; 12] = [
    "Developer",
    "Administrator",
    "Operator",
    "Monitor",
    "Event Viewer",
    "Dashboard Viewer",
    "Restricted",
    "Allow to view active directory user information",
    "Allow to edit Dashboards",
    "Allow to view packet details",
    "Limit Data Resolution to only \"automatic\"",
    "Traffic Filter",
];

/// The role that may change the configuration through the management API.
pub const ADMINISTRATOR: &str = "Administrator";

/// [`DEFAULT_ROLES`] as owned strings, the form `Config::roles` holds.
pub fn default_roles() -> Vec<String> {
    DEFAULT_ROLES
        .iter()
        .map(|role| (*role).to_owned())
        .collect()
}

/// Records an error at `path` unless `role` is one of `roles`.
pub(crate) fn check_role(report: &mut Report, path: &str, role: &str, roles: &[String]) {
    if !roles.iter().any(|defined| defined == role) {
        report.error(
            path,
            format!("{role:?} is not a defined role (add it to `roles` first)"),
        );
    }
}

/// Validates the `roles` list itself: names non-empty, without surrounding whitespace or
/// control characters, and unique.
pub(crate) fn check_roles_list(report: &mut Report, roles: &[String]) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (index, role) in roles.iter().enumerate() {
        let path = format!("roles[{index}]");
        if role.trim().is_empty() {
            report.error(path, "must not be empty");
            continue;
        }
        if role.trim() != role {
            report.error(
                &path,
                format!("{role:?} has leading or trailing whitespace"),
            );
        }
        if role.chars().any(char::is_control) {
            report.error(&path, format!("{role:?} contains a control character"));
        }
        if let Some(first) = seen.get(role.as_str()) {
            report.error(
                path,
                format!("{role:?} is already listed as roles[{first}]"),
            );
        } else {
            seen.insert(role, index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_roles_are_the_reference_list_plus_traffic_filter() {
        let roles = default_roles();
        assert_eq!(roles.len(), 12);
        assert_eq!(roles[0], "Developer");
        assert_eq!(roles[1], ADMINISTRATOR);
        assert_eq!(roles[10], "Limit Data Resolution to only \"automatic\"");
        assert_eq!(roles[11], "Traffic Filter");
        let mut report = Report::default();
        check_roles_list(&mut report, &roles);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
    }

    #[test]
    fn bad_role_names_are_reported() {
        let roles: Vec<String> = ["Operator", "", " Monitor", "Operator", "a\tb"]
            .iter()
            .map(|r| (*r).to_owned())
            .collect();
        let mut report = Report::default();
        check_roles_list(&mut report, &roles);
        let messages: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "roles[1]: must not be empty",
                "roles[2]: \" Monitor\" has leading or trailing whitespace",
                "roles[3]: \"Operator\" is already listed as roles[0]",
                "roles[4]: \"a\\tb\" contains a control character",
            ]
        );
    }

    #[test]
    fn check_role_is_exact_and_case_sensitive() {
        let roles = default_roles();
        let mut report = Report::default();
        check_role(&mut report, "x", "Administrator", &roles);
        check_role(&mut report, "y", "administrator", &roles);
        assert_eq!(report.errors.len(), 1);
        assert_eq!(report.errors[0].path, "y");
    }
}
