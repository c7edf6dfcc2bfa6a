//! GET|POST /consent — the consent screen: the app's name, the requested scopes in plain
//! words, Allow and Deny. Consent is remembered per user, client and scope set.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::domain::scope;
use crate::oidc::authorize;
use crate::oidc::error::ErrorCode;
use crate::store;
use crate::store::audit::NewEvent;
use crate::web::State;
use crate::web::session::SignedIn;
use crate::web::ui::{self, CsrfForm, Page, PageError};

#[derive(Template)]
#[template(path = "login/consent.html")]
struct ConsentPage {
    page: Page,
    client_name: String,
    username: String,
    scopes: Vec<String>,
    req: String,
}

#[derive(Deserialize)]
pub struct ConsentQuery {
    req: String,
}

fn expired() -> HttpResponse {
    ui::error_page(
        StatusCode::BAD_REQUEST,
        "This sign-in request has expired",
        "It took too long, or it was started in another browser. Go back to the app and sign in again.",
        None,
    )
}

pub async fn get(
    state: State,
    req: HttpRequest,
    me: SignedIn,
    q: web::Query<ConsentQuery>,
) -> Result<HttpResponse, PageError> {
    let Some((ar, client)) = authorize::load_pending(&state, &req, &q.req).await? else {
        return Ok(expired());
    };
    Ok(ui::ok(&ConsentPage {
        page: me.page(&state, &req, &format!("Allow {}?", client.name)),
        client_name: client.name,
        username: me.user.username.clone(),
        scopes: ar
            .scopes
            .iter()
            .filter_map(|s| scope::describe(s))
            .collect(),
        req: q.req.clone(),
    }))
}

#[derive(Deserialize)]
pub struct ConsentForm {
    req: String,
    decision: String,
}

pub async fn post(
    state: State,
    req: HttpRequest,
    me: SignedIn,
    form: CsrfForm<ConsentForm>,
) -> Result<HttpResponse, PageError> {
    let f = form.0;
    let Some((mut ar, client)) = authorize::load_pending(&state, &req, &f.req).await? else {
        return Ok(expired());
    };
    let now = state.now();
    let (uid, cid, scopes) = (me.user.id.clone(), client.id.clone(), ar.scopes.clone());
    if f.decision == "allow" {
        state
            .db
            .write(move |c| {
                store::consents::grant(c, &uid, &cid, &scopes, now)?;
                store::audit::record(
                    c,
                    &NewEvent {
                        kind: "consent.granted",
                        actor_id: Some(&uid),
                        user_id: Some(&uid),
                        client_id: Some(&cid),
                        detail: Some(serde_json::json!({"scopes": scopes})),
                        ..Default::default()
                    },
                    now,
                )
            })
            .await?;
        ar.consented = true;
        authorize::update_pending(&state, &f.req, &ar).await?;
        let id = crate::web::ui::enc(&f.req);
        return Ok(ui::see_other(&format!("/authorize/resume?req={id}")));
    }
    state
        .db
        .write(move |c| {
            store::audit::record(
                c,
                &NewEvent {
                    kind: "consent.denied",
                    actor_id: Some(&uid),
                    user_id: Some(&uid),
                    client_id: Some(&cid),
                    ..Default::default()
                },
                now,
            )
        })
        .await?;
    Ok(authorize::refuse_pending(
        &state,
        &f.req,
        &ar,
        ErrorCode::AccessDenied,
        "the user denied the request",
    )
    .await)
}
