//! POST /signout — ends this browser's session — and the signed-out page (also shown by
//! RP-initiated logout), with the front-channel logout frames of the apps it signed out of.

use actix_web::{HttpRequest, HttpResponse};

use crate::domain::session::end_sessions;
use crate::state::AppState;
use crate::store;
use crate::store::sessions::Session;
use crate::web::State;
use crate::web::session::{COOKIE, current};
use crate::web::ui::{self, CsrfForm, PageError};

#[derive(serde::Deserialize)]
pub struct SignOutForm {}

/// POST /signout — ends this browser's session.
pub async fn sign_out(
    state: State,
    req: HttpRequest,
    _form: CsrfForm<SignOutForm>,
) -> Result<HttpResponse, PageError> {
    let mut ended = Vec::new();
    if let Some((s, u)) = current(&state, &req).await? {
        let now = state.now();
        let sid = s.sid.clone();
        let uid = u.id.clone();
        ended = state
            .db
            .write(move |c| end_sessions(c, &[sid], Some(&uid), "sign_out", now))
            .await?;
        state.kick_logout_delivery();
    }
    let mut resp = signed_out_page(&state, &req, &ended).await?;
    let _ = resp.add_removal_cookie(&ui::removal_cookie(&state, COOKIE));
    Ok(resp)
}

#[derive(askama::Template)]
#[template(path = "oidc/signed_out.html")]
struct SignedOutPage {
    page: ui::Page,
    /// Front-channel logout URIs (with `iss` and `sid`) to load in hidden iframes.
    frames: Vec<String>,
}

/// The signed-out page. For the ended sessions' clients that registered a
/// `frontchannel_logout_uri` (OpenID Connect Front-Channel Logout 1.0), it loads each in a
/// hidden iframe with `iss` and `sid`; the page's CSP allows framing exactly those origins.
pub async fn signed_out_page(
    state: &AppState,
    req: &HttpRequest,
    ended: &[(Session, Vec<String>)],
) -> Result<HttpResponse, PageError> {
    let pairs: Vec<(String, String)> = ended
        .iter()
        .flat_map(|(s, clients)| clients.iter().map(|c| (s.sid.clone(), c.clone())))
        .collect();
    let uris = if pairs.is_empty() {
        Vec::new()
    } else {
        state
            .db
            .read(move |c| {
                let mut out = Vec::new();
                for (sid, cid) in &pairs {
                    if let Some(client) = store::clients::by_id(c, cid)?
                        && let Some(uri) = client.frontchannel_logout_uri
                    {
                        out.push((sid.clone(), uri));
                    }
                }
                Ok(out)
            })
            .await?
    };
    let issuer = state.config.issuer().to_string();
    let mut frames = Vec::new();
    let mut origins: Vec<String> = Vec::new();
    for (sid, uri) in uris {
        let Ok(mut u) = url::Url::parse(&uri) else {
            continue;
        };
        u.query_pairs_mut()
            .append_pair("iss", &issuer)
            .append_pair("sid", &sid);
        origins.push(u.origin().ascii_serialization());
        frames.push(u.to_string());
    }
    let mut resp = ui::ok(&SignedOutPage {
        page: ui::Page::new(state, req, "Signed out"),
        frames,
    });
    if !origins.is_empty() {
        origins.sort();
        origins.dedup();
        let csp = format!(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; frame-src {}; \
             frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
            origins.join(" ")
        );
        if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&csp) {
            resp.headers_mut()
                .insert(actix_web::http::header::CONTENT_SECURITY_POLICY, v);
        }
    }
    Ok(resp)
}
