//! THE ROUTE TABLE: every URL and the handler that serves it, one line per URL. Grep a URL
//! here to find its file. Imported only by `server` (which serves it).
//!
//! Each `at!` line registers one route per method (`cfg.route(path, web::get().to(h))`), so a
//! request whose method no route takes falls through to the next match (the CORS preflight,
//! the 404 page) as before, never to a 405.

use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::web;

use crate::admin::api;
use crate::ops::upstream_providers::CALLBACK_PATH as UPSTREAM_CALLBACK;
use crate::web::{assets, health};
use crate::{account, admin, login, oidc, upstream};

/// `at!(cfg, "/path", get => handler, post => handler)`: the routes of one URL.
macro_rules! at {
    ($cfg:ident, $path:expr, $($method:ident => $handler:expr),+ $(,)?) => {
        $( $cfg.route($path, web::$method().to($handler)); )+
    };
}

/// The route table.
pub fn routes(cfg: &mut web::ServiceConfig) {
    // The admin API answers every /admin/api/… path itself: the key is checked first (its
    // middleware), unknown paths are JSON errors. Its paths are those of openapi.json.
    cfg.service(
        web::scope("/admin/api")
            .wrap(from_fn(api::authenticate))
            .configure(admin_api)
            .default_service(web::to(api::unknown_endpoint)),
    );
    // Appliance
    at!(cfg, "/health", get => health::get);
    at!(cfg, "/static/{path:.*}", get => assets::serve);
    at!(cfg, "/setup", get => login::setup::get, post => login::setup::post);
    at!(cfg, "/", get => account::home);
    // OpenID Connect provider (oidc/)
    at!(cfg, "/.well-known/openid-configuration", get => oidc::discovery::openid_configuration);
    at!(cfg, "/.well-known/oauth-authorization-server", get => oidc::discovery::oauth_authorization_server);
    at!(cfg, "/.well-known/change-password", get => account::change_password_url);
    at!(cfg, "/jwks", get => oidc::jwks::get);
    at!(cfg, "/authorize", get => oidc::authorize::get, post => oidc::authorize::post);
    at!(cfg, "/authorize/resume", get => oidc::authorize::resume);
    at!(cfg, "/token", post => oidc::token::post);
    at!(cfg, "/device_authorization", post => oidc::device_authorization::post);
    at!(cfg, "/userinfo", get => oidc::userinfo::get, post => oidc::userinfo::post);
    at!(cfg, "/revoke", post => oidc::revocation::post);
    at!(cfg, "/introspect", post => oidc::introspection::post);
    at!(cfg, "/logout", get => oidc::end_session::get, post => oidc::end_session::post);
    // Sign-in journey (login/), and upstream sign-in (upstream/: "Sign in with …")
    at!(cfg, "/login", get => login::password::get, post => login::password::post);
    at!(cfg, "/consent", get => login::consent::get, post => login::consent::post);
    at!(cfg, "/device", get => login::device::get, post => login::device::post);
    at!(cfg, "/device/decide", post => login::device::decide);
    at!(cfg, "/reset", get => login::reset::get, post => login::reset::post);
    at!(cfg, "/signout", post => login::sign_out::sign_out);
    at!(cfg, "/login/passkey/start", post => login::passkey::start);
    at!(cfg, "/login/passkey/finish", post => login::passkey::finish);
    at!(cfg, "/login/second-factor", get => login::second_factor::get);
    at!(cfg, "/login/second-factor/start", post => login::second_factor::start);
    at!(cfg, "/login/second-factor/finish", post => login::second_factor::finish);
    at!(cfg, "/invite", get => login::invite::get);
    at!(cfg, "/invite/passkey/start", post => login::invite::passkey_start);
    at!(cfg, "/invite/passkey/finish", post => login::invite::passkey_finish);
    at!(cfg, "/invite/password", post => login::invite::password);
    at!(cfg, UPSTREAM_CALLBACK, get => upstream::login::callback);
    at!(cfg, "/login/upstream/{slug}", get => upstream::login::start);
    // Self-service account (account/)
    at!(cfg, "/account", get => account::get);
    at!(cfg, "/account/password", post => account::change_password);
    at!(cfg, "/account/sessions/end", post => account::end_session);
    at!(cfg, "/account/apps/revoke", post => account::revoke_app);
    at!(cfg, "/account/upstream/link", post => account::linked::link);
    at!(cfg, "/account/upstream/unlink", post => account::linked::unlink);
    at!(cfg, "/account/passkeys/register/start", post => account::passkeys::register_start);
    at!(cfg, "/account/passkeys/register/finish", post => account::passkeys::register_finish);
    at!(cfg, "/account/passkeys/rename", post => account::passkeys::rename);
    at!(cfg, "/account/passkeys/delete", post => account::passkeys::delete);
    at!(cfg, "/account/passkeys/require", post => account::passkeys::require);
    // Admin console (admin/)
    at!(cfg, "/admin", get => admin::overview::get);
    at!(cfg, "/admin/users", get => admin::users::list, post => admin::users::create);
    at!(cfg, "/admin/users/new", get => admin::users::new);
    at!(cfg, "/admin/users/{id}", get => admin::users::show, post => admin::users::save);
    at!(cfg, "/admin/users/{id}/disable", post => admin::users::disable);
    at!(cfg, "/admin/users/{id}/enable", post => admin::users::enable);
    at!(cfg, "/admin/users/{id}/delete", get => admin::users::confirm_delete, post => admin::users::delete);
    at!(cfg, "/admin/users/{id}/reset-link", post => admin::users::reset_link);
    at!(cfg, "/admin/users/{id}/invite-link", post => admin::users::invite_link);
    at!(cfg, "/admin/users/{id}/consents/revoke", post => admin::users::revoke_consent);
    at!(cfg, "/admin/users/{id}/identities/unlink", post => admin::users::unlink_identity);
    at!(cfg, "/admin/groups", get => admin::groups::list, post => admin::groups::create);
    at!(cfg, "/admin/groups/{id}", get => admin::groups::show, post => admin::groups::save);
    at!(cfg, "/admin/groups/{id}/members", post => admin::groups::add_member);
    at!(cfg, "/admin/groups/{id}/members/remove", post => admin::groups::remove_member);
    at!(cfg, "/admin/groups/{id}/delete", get => admin::groups::confirm_delete, post => admin::groups::delete);
    at!(cfg, "/admin/apps", get => admin::apps::list, post => admin::apps::create);
    at!(cfg, "/admin/apps/new", get => admin::apps::new);
    at!(cfg, "/admin/apps/{id}", get => admin::apps::show);
    at!(cfg, "/admin/apps/{id}/edit", get => admin::apps::edit, post => admin::apps::save);
    at!(cfg, "/admin/apps/{id}/secret", get => admin::apps::confirm_secret, post => admin::apps::regenerate_secret);
    at!(cfg, "/admin/apps/{id}/delete", get => admin::apps::confirm_delete, post => admin::apps::delete);
    at!(cfg, "/admin/apps/{id}/roles", get => admin::app_roles::get, post => admin::app_roles::add);
    at!(cfg, "/admin/apps/{id}/roles/{role}/grant", post => admin::app_roles::grant);
    at!(cfg, "/admin/apps/{id}/roles/{role}/revoke", post => admin::app_roles::revoke);
    at!(cfg, "/admin/apps/{id}/roles/{role}/delete", get => admin::app_roles::confirm_delete, post => admin::app_roles::delete);
    at!(cfg, "/admin/upstream", get => admin::upstream::list, post => admin::upstream::create);
    at!(cfg, "/admin/upstream/new", get => admin::upstream::new);
    at!(cfg, "/admin/upstream/{slug}", get => admin::upstream::show, post => admin::upstream::save);
    at!(cfg, "/admin/upstream/{slug}/enable", post => admin::upstream::enable);
    at!(cfg, "/admin/upstream/{slug}/disable", post => admin::upstream::disable);
    at!(cfg, "/admin/upstream/{slug}/delete", get => admin::upstream::confirm_delete, post => admin::upstream::delete);
    at!(cfg, "/admin/keys", get => admin::signing_keys::list);
    at!(cfg, "/admin/keys/rotate", get => admin::signing_keys::confirm_rotate, post => admin::signing_keys::rotate);
    at!(cfg, "/admin/sessions", get => admin::sessions::list);
    at!(cfg, "/admin/sessions/end", post => admin::sessions::end);
    at!(cfg, "/admin/audit", get => admin::audit::list);
    at!(cfg, "/admin/api-keys", get => admin::api_keys::list, post => admin::api_keys::create);
    at!(cfg, "/admin/api-keys/{id}/revoke", post => admin::api_keys::revoke);
    // CORS preflight for the endpoints browsers call directly
    cfg.route(
        "/{tail:.*}",
        web::method(Method::OPTIONS).to(oidc::cors::preflight),
    );
}

/// /admin/api/… (admin/api/): JSON for automation, with bearer API keys.
fn admin_api(api: &mut web::ServiceConfig) {
    at!(api, "/openapi.json", get => api::openapi);
    at!(api, "/users", get => api::users::list, post => api::users::create);
    at!(api, "/users/{id}", get => api::users::get, patch => api::users::update, delete => api::users::delete);
    at!(api, "/users/{id}/disable", post => api::users::disable);
    at!(api, "/users/{id}/enable", post => api::users::enable);
    at!(api, "/users/{id}/reset-link", post => api::users::reset_link);
    at!(api, "/users/{id}/invite-link", post => api::users::invite_link);
    at!(api, "/users/{id}/sessions", get => api::users::sessions);
    at!(api, "/users/{id}/roles", get => api::roles::of_user);
    at!(api, "/users/{id}/identities", get => api::upstream::identities);
    at!(api, "/users/{id}/identities/{provider}", delete => api::upstream::unlink);
    at!(api, "/groups", get => api::groups::list, post => api::groups::create);
    at!(api, "/groups/{id}", get => api::groups::get, patch => api::groups::update, delete => api::groups::delete);
    at!(api, "/groups/{id}/members", get => api::groups::members);
    at!(api, "/groups/{id}/members/{user}", put => api::groups::add_member, delete => api::groups::remove_member);
    at!(api, "/claim-scopes", get => api::groups::claim_scopes, put => api::groups::set_claim_scopes);
    at!(api, "/clients", get => api::clients::list, post => api::clients::create);
    at!(api, "/clients/{id}", get => api::clients::get, patch => api::clients::update, delete => api::clients::delete);
    at!(api, "/clients/{id}/secret", post => api::clients::regenerate_secret);
    at!(api, "/clients/{id}/roles", get => api::roles::list, post => api::roles::create);
    at!(api, "/clients/{id}/roles/{role}", get => api::roles::get, patch => api::roles::update, delete => api::roles::delete);
    at!(api, "/clients/{id}/roles/{role}/users/{user}", put => api::roles::grant_user, delete => api::roles::revoke_user);
    at!(api, "/clients/{id}/roles/{role}/groups/{group}", put => api::roles::grant_group, delete => api::roles::revoke_group);
    at!(api, "/upstream", get => api::upstream::list, post => api::upstream::create);
    at!(api, "/upstream/{slug}", get => api::upstream::get, patch => api::upstream::update, delete => api::upstream::delete);
    at!(api, "/keys", get => api::signing_keys::list);
    at!(api, "/keys/rotate", post => api::signing_keys::rotate);
    at!(api, "/sessions", get => api::sessions::list);
    at!(api, "/sessions/{sid}", delete => api::sessions::delete);
    at!(api, "/audit", get => api::audit::list);
}
