//! THE ROUTE TABLE: every URL and the handler that serves it. Grep a URL here to find its
//! file. Imported only by `server` (which serves it).

use actix_web::web;

use crate::{account, admin, login, oidc, upstream, web as pages};

/// The route table.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg
        // Appliance
        .route("/health", web::get().to(pages::health::get))
        .route("/static/{path:.*}", web::get().to(pages::assets::serve))
        .route("/setup", web::get().to(login::setup::get))
        .route("/setup", web::post().to(login::setup::post))
        .route("/", web::get().to(account::home))
        // OpenID Connect provider
        .route(
            "/.well-known/openid-configuration",
            web::get().to(oidc::discovery::openid_configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            web::get().to(oidc::discovery::oauth_authorization_server),
        )
        .route("/jwks", web::get().to(oidc::jwks::get))
        .route("/authorize", web::get().to(oidc::authorize::get))
        .route("/authorize", web::post().to(oidc::authorize::post))
        .route("/authorize/resume", web::get().to(oidc::authorize::resume))
        .route("/token", web::post().to(oidc::token::post))
        .route("/userinfo", web::get().to(oidc::userinfo::get))
        .route("/userinfo", web::post().to(oidc::userinfo::post))
        .route("/revoke", web::post().to(oidc::revocation::post))
        .route("/introspect", web::post().to(oidc::introspection::post))
        .route("/logout", web::get().to(oidc::end_session::get))
        .route("/logout", web::post().to(oidc::end_session::post))
        // Sign-in journey
        .route("/login", web::get().to(login::password::get))
        .route("/login", web::post().to(login::password::post))
        .route("/consent", web::get().to(login::consent::get))
        .route("/consent", web::post().to(login::consent::post))
        .route("/reset", web::get().to(login::reset::get))
        .route("/reset", web::post().to(login::reset::post))
        .route("/signout", web::post().to(login::sign_out::sign_out))
        .route(
            "/login/passkey/start",
            web::post().to(login::passkey::start),
        )
        .route(
            "/login/passkey/finish",
            web::post().to(login::passkey::finish),
        )
        .route(
            "/login/second-factor",
            web::get().to(login::second_factor::get),
        )
        .route(
            "/login/second-factor/start",
            web::post().to(login::second_factor::start),
        )
        .route(
            "/login/second-factor/finish",
            web::post().to(login::second_factor::finish),
        )
        .route("/invite", web::get().to(login::invite::get))
        .route(
            "/invite/passkey/start",
            web::post().to(login::invite::passkey_start),
        )
        .route(
            "/invite/passkey/finish",
            web::post().to(login::invite::passkey_finish),
        )
        .route("/invite/password", web::post().to(login::invite::password))
        // Self-service account
        .route("/account", web::get().to(account::get))
        .route(
            "/account/password",
            web::post().to(account::change_password),
        )
        .route(
            "/account/sessions/end",
            web::post().to(account::end_session),
        )
        .route("/account/apps/revoke", web::post().to(account::revoke_app))
        .route(
            "/account/upstream/link",
            web::post().to(account::linked::link),
        )
        .route(
            "/account/upstream/unlink",
            web::post().to(account::linked::unlink),
        )
        .route(
            "/account/passkeys/register/start",
            web::post().to(account::passkeys::register_start),
        )
        .route(
            "/account/passkeys/register/finish",
            web::post().to(account::passkeys::register_finish),
        )
        .route(
            "/account/passkeys/rename",
            web::post().to(account::passkeys::rename),
        )
        .route(
            "/account/passkeys/delete",
            web::post().to(account::passkeys::delete),
        )
        .route(
            "/account/passkeys/require",
            web::post().to(account::passkeys::require),
        )
        // Admin console and API: routes in admin/mod.rs
        .configure(admin::routes)
        // Upstream sign-in: routes in upstream/mod.rs
        .configure(upstream::routes)
        // CORS preflight for the endpoints browsers call directly
        .route(
            "/{tail:.*}",
            web::method(actix_web::http::Method::OPTIONS).to(oidc::cors::preflight),
        );
}
