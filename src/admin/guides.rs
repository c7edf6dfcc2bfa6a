//! What the "Connect your app" guides on an application's page derive from its settings.
//! Pure functions, so what the console tells people to paste is tested on its own.

/// Grafana's roles, best first, as `role_attribute_path` must name them.
const GRAFANA_ROLES: [&str; 4] = ["GrafanaAdmin", "Admin", "Editor", "Viewer"];

/// The lines of Grafana's `[auth.generic_oauth]` that depend on the app's roles.
#[derive(Debug, PartialEq, Eq)]
pub struct GrafanaRoles {
    /// `scopes = …`
    pub scopes: String,
    /// `role_attribute_path = …` (a JMESPath expression over the userinfo answer).
    pub role_attribute_path: String,
    /// `role_attribute_strict = true`: a person whose roles name no Grafana role is refused
    /// instead of silently made a Viewer.
    pub strict: bool,
    /// `allow_assign_grafana_admin = true`, needed for the GrafanaAdmin role to take effect.
    pub grafana_admin: bool,
    /// People holding none of the mapped roles become Viewers (else they are refused).
    pub viewer_fallback: bool,
}

/// Maps the application's roles named like Grafana's (any case) to Grafana's roles, best
/// first. Without such roles, the groups-based mapping Grafana users know (`admins` →
/// Admin, `editors` → Editor, everyone else Viewer).
pub fn grafana(role_names: &[String], require_role: bool) -> GrafanaRoles {
    let mut arms = Vec::new();
    let mut has_viewer = false;
    let mut grafana_admin = false;
    for g in GRAFANA_ROLES {
        if let Some(name) = role_names.iter().find(|n| n.eq_ignore_ascii_case(g)) {
            // Role names never hold quotes (ops::roles::validate_name allows no whitespace,
            // commas or control characters; a quote is escaped for JMESPath's raw string).
            let name = name.replace('\\', "\\\\").replace('\'', "\\'");
            arms.push(format!("contains(roles[*], '{name}') && '{g}'"));
            has_viewer |= g == "Viewer";
            grafana_admin |= g == "GrafanaAdmin";
        }
    }
    if arms.is_empty() {
        return GrafanaRoles {
            scopes: "openid email profile groups offline_access".into(),
            role_attribute_path: "contains(groups[*], 'admins') && 'Admin' || contains(groups[*], 'editors') && 'Editor' || 'Viewer'".into(),
            strict: false,
            grafana_admin: false,
            viewer_fallback: true,
        };
    }
    // Everyone may sign in and no role says Viewer: whoever holds none of these is a Viewer,
    // as in Grafana's own default. With "require a role", holding none means no entry.
    let viewer_fallback = !has_viewer && !require_role;
    if viewer_fallback {
        arms.push("'Viewer'".into());
    }
    GrafanaRoles {
        scopes: "openid email profile groups roles offline_access".into(),
        role_attribute_path: arms.join(" || "),
        strict: true,
        grafana_admin,
        viewer_fallback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn without_grafana_roles_the_groups_mapping_stays() {
        let g = grafana(&names(&["deploy"]), false);
        assert!(
            g.role_attribute_path
                .starts_with("contains(groups[*], 'admins')")
        );
        assert!(!g.scopes.contains("roles"));
        assert!(!g.strict);
    }

    #[test]
    fn roles_named_like_grafanas_map_best_first_in_any_case() {
        let g = grafana(&names(&["viewer", "Admin", "EDITOR"]), false);
        assert_eq!(
            g.role_attribute_path,
            "contains(roles[*], 'Admin') && 'Admin' || contains(roles[*], 'EDITOR') && 'Editor' || contains(roles[*], 'viewer') && 'Viewer'"
        );
        assert!(g.scopes.contains(" roles "));
        assert!(g.strict);
        assert!(!g.grafana_admin);
    }

    #[test]
    fn viewer_is_the_fallback_only_when_no_role_says_it_and_none_is_required() {
        let open = grafana(&names(&["Editor"]), false);
        assert!(open.role_attribute_path.ends_with(" || 'Viewer'"));
        assert!(open.viewer_fallback);
        assert!(!grafana(&names(&["Editor", "Viewer"]), false).viewer_fallback);
        let required = grafana(&names(&["Editor"]), true);
        assert_eq!(
            required.role_attribute_path,
            "contains(roles[*], 'Editor') && 'Editor'"
        );
    }

    #[test]
    fn grafana_admin_needs_its_own_setting() {
        let g = grafana(&names(&["GrafanaAdmin", "Viewer"]), false);
        assert!(g.grafana_admin);
        assert!(
            g.role_attribute_path
                .starts_with("contains(roles[*], 'GrafanaAdmin') && 'GrafanaAdmin' || ")
        );
    }
}
