//! GET|POST /authorize and GET /authorize/resume — the authorization endpoint
//! (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2).
//!
//! Phase A never redirects: the client must exist and the redirect URI match exactly, giving a
//! `ValidatedRedirect`; otherwise an error page. Phase B errors go back to the client with
//! `error`, `error_description`, `state` and `iss` (RFC 9207). Without a usable session the
//! request is stored (bound to this browser) and the user goes to /login; without consent to
//! /consent; both come back to /authorize/resume, which re-checks and issues the code.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::crypto::secret::{hash_token, random_token};
use crate::domain::{claims, scope};
use crate::oidc::error::ErrorCode;
use crate::oidc::pkce;
use crate::oidc::redirect_uri::ValidatedRedirect;
use crate::state::AppState;
use crate::store::audit::NewEvent;
use crate::store::clients::Client;
use crate::store::codes::CodeGrant;
use crate::store::sessions::Session;
use crate::store::users::User;
use crate::store::{self, StoreError};
use crate::web::State;
use crate::web::session;
use crate::web::ui::{self, PageError};

/// How long a pending request waits for sign-in and consent.
const PENDING_TTL: i64 = 30 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseMode {
    Query,
    FormPost,
}

/// A request that passed every check, as stored while the user signs in or consents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect: ValidatedRedirect,
    /// Whether `redirect_uri` was a parameter (RFC 6749 §4.1.3: then /token needs it too).
    #[serde(default = "sent")]
    pub redirect_uri_sent: bool,
    pub response_mode: ResponseMode,
    /// Granted scopes (requested ∩ known ∩ allowed for the client).
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Vec<String>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The `claims` parameter (OIDC Core §5.5), as validated JSON text.
    pub claims: Option<String>,
    pub created_at: UnixTime,
    /// Set by the consent page once the user allowed this request.
    #[serde(default)]
    pub consented: bool,
    /// Set by the sign-in page once the user signed in for this request (prompt=login).
    #[serde(default)]
    pub signed_in: bool,
    /// `kc_idp_hint`: the slug of the upstream provider to send the user straight to.
    #[serde(default)]
    pub idp_hint: Option<String>,
    /// The subject of a verified `id_token_hint`: the only user this request may sign in.
    #[serde(default)]
    pub hint_sub: Option<String>,
}

/// Requests stored before `redirect_uri_sent` existed: the stricter reading.
fn sent() -> bool {
    true
}

impl AuthorizationRequest {
    fn prompts(&self, p: &str) -> bool {
        self.prompt.iter().any(|x| x == p)
    }

    /// Whether `id_token_hint` named someone other than `user`.
    fn hints_other(&self, user: &User) -> bool {
        self.hint_sub.as_deref().is_some_and(|sub| sub != user.id)
    }
}

/// The outcome of a failed authorization: a page, or a redirect back to the client.
pub enum AuthorizeError {
    Page(StatusCode, &'static str, String),
    /// Our own failure (a store error): the shared page, 503 when busy, else 500.
    Failed(PageError),
    Redirect {
        redirect: ValidatedRedirect,
        mode: ResponseMode,
        code: ErrorCode,
        description: String,
        state: Option<String>,
    },
}

impl AuthorizeError {
    fn redirect(
        ar_redirect: &ValidatedRedirect,
        mode: ResponseMode,
        state: Option<String>,
        code: ErrorCode,
        d: &str,
    ) -> Self {
        AuthorizeError::Redirect {
            redirect: ar_redirect.clone(),
            mode,
            code,
            description: d.to_string(),
            state,
        }
    }

    fn of(ar: &AuthorizationRequest, code: ErrorCode, d: &str) -> Self {
        Self::redirect(&ar.redirect, ar.response_mode, ar.state.clone(), code, d)
    }

    fn respond(self, state: &AppState) -> HttpResponse {
        match self {
            AuthorizeError::Page(status, heading, message) => {
                ui::error_page(status, heading, &message, None)
            }
            AuthorizeError::Failed(e) => e.error_response_html(),
            AuthorizeError::Redirect {
                redirect,
                mode,
                code,
                description,
                state: st,
            } => {
                let description: String = description
                    .chars()
                    .filter(|c| matches!(*c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
                    .collect();
                let mut params = vec![
                    ("error", code.as_str().to_string()),
                    ("error_description", description),
                ];
                if let Some(s) = st {
                    params.push(("state", s));
                }
                params.push(("iss", state.config.issuer().to_string()));
                respond_to_client(&redirect, mode, &params)
            }
        }
    }
}

impl From<StoreError> for AuthorizeError {
    fn from(e: StoreError) -> Self {
        AuthorizeError::Failed(PageError::from(e))
    }
}

// ---- parsing -------------------------------------------------------------------------------

/// Raw parameters; OAuth forbids repeating one (RFC 6749 §3.1).
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: &[u8]) -> Result<Self, String> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(raw)
            .map_err(|_| "the parameters could not be read".to_string())?;
        for (i, (k, _)) in pairs.iter().enumerate() {
            if pairs.iter().skip(i + 1).any(|(k2, _)| k2 == k) {
                return Err(format!("the parameter {k} is repeated"));
            }
        }
        Ok(Self(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Present and non-empty (OAuth treats empty parameters as omitted, RFC 6749 §3.1).
    fn value(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty()).map(str::to_string)
    }
}

/// Phase A: find the client and the exact redirect URI. Errors here are pages.
async fn phase_a(
    state: &AppState,
    p: &Params,
) -> Result<(Client, ValidatedRedirect), AuthorizeError> {
    let Some(client_id) = p.value("client_id") else {
        return Err(AuthorizeError::Page(
            StatusCode::BAD_REQUEST,
            "This sign-in link is incomplete",
            "The app that sent you here did not say who it is (client_id is missing). Go back to the app and try again."
                .into(),
        ));
    };
    let id = client_id.clone();
    let client = state
        .db
        .read(move |c| store::clients::by_id(c, &id))
        .await?;
    let Some(client) = client else {
        return Err(AuthorizeError::Page(
            StatusCode::BAD_REQUEST,
            "Unknown application",
            "The app that sent you here is not registered with this sign-in service. Ask your administrator to add it."
                .into(),
        ));
    };
    let Some(redirect) = ValidatedRedirect::for_client(&client, p.value("redirect_uri").as_deref())
    else {
        let detail = match p.value("redirect_uri") {
            Some(_) => "The app asked to return to an address that is not registered for it",
            None => {
                "The app did not say where to return to, and several addresses are registered for it"
            }
        };
        return Err(AuthorizeError::Page(
            StatusCode::BAD_REQUEST,
            "This sign-in request cannot be completed",
            format!(
                "{detail}. For your safety you were not sent anywhere. Ask your administrator to check the redirect URIs of {}.",
                client.name
            ),
        ));
    };
    Ok((client, redirect))
}

/// Where a phase-B error goes: back to the client's redirect URI, in the request's response
/// mode, with its `state`.
struct Bounce<'a> {
    redirect: &'a ValidatedRedirect,
    mode: ResponseMode,
    state: &'a Option<String>,
}

impl Bounce<'_> {
    /// The redirect carrying `code` and the description `d` to the client.
    fn fail(&self, code: ErrorCode, d: &str) -> AuthorizeError {
        AuthorizeError::redirect(self.redirect, self.mode, self.state.clone(), code, d)
    }
}

/// Phase B: every other parameter; errors redirect to the client.
async fn phase_b(
    state: &AppState,
    p: &Params,
    client: &Client,
    redirect: ValidatedRedirect,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let st = p.get("state").map(str::to_string); // returned byte-exact, even if empty
    let mode = response_mode(p, &redirect, &st)?;
    let to = Bounce {
        redirect: &redirect,
        mode,
        state: &st,
    };
    refuse_request_objects(p, &to)?;
    check_response_type(p, &to)?;
    let scopes = granted_scopes(state, p, client, &to).await?;
    let challenge = pkce_challenge(p, client, &to)?;
    let prompt = prompt_values(p, &to)?;
    let max_age = max_age(p, &to)?;
    let hint_sub = id_token_hint_subject(state, p, &to)?;
    let claims = claims_request(p, &to)?;
    Ok(AuthorizationRequest {
        client_id: client.id.clone(),
        redirect,
        redirect_uri_sent: p.value("redirect_uri").is_some(),
        response_mode: mode,
        scopes,
        state: st,
        nonce: p.value("nonce"),
        code_challenge: challenge,
        prompt,
        max_age,
        login_hint: p.value("login_hint"),
        claims,
        created_at: state.now(),
        consented: false,
        signed_in: false,
        idp_hint: p.value("kc_idp_hint"),
        hint_sub,
    })
}

/// `response_mode`: query (the default) or form_post; an unknown one is refused by a query
/// redirect, since the requested mode cannot be used.
fn response_mode(
    p: &Params,
    redirect: &ValidatedRedirect,
    st: &Option<String>,
) -> Result<ResponseMode, AuthorizeError> {
    match p.value("response_mode").as_deref() {
        None | Some("query") => Ok(ResponseMode::Query),
        Some("form_post") => Ok(ResponseMode::FormPost),
        Some(_) => Err(AuthorizeError::redirect(
            redirect,
            ResponseMode::Query,
            st.clone(),
            ErrorCode::InvalidRequest,
            "unsupported response_mode",
        )),
    }
}

/// Refuses `request` and `request_uri`, which this server does not support.
fn refuse_request_objects(p: &Params, to: &Bounce<'_>) -> Result<(), AuthorizeError> {
    // OIDC Core §6: request objects are not supported; say so with the spec's codes.
    if p.value("request").is_some() {
        return Err(to.fail(
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if p.value("request_uri").is_some() {
        return Err(to.fail(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    Ok(())
}

/// `response_type` must be present and be `code`.
fn check_response_type(p: &Params, to: &Bounce<'_>) -> Result<(), AuthorizeError> {
    match p.value("response_type").as_deref() {
        None => Err(to.fail(ErrorCode::InvalidRequest, "response_type is required")),
        Some("code") => Ok(()),
        Some(_) => Err(to.fail(
            ErrorCode::UnsupportedResponseType,
            "only response_type=code is supported",
        )),
    }
}

/// The scopes to grant: requested ∩ known (incl. custom claim scopes) ∩ allowed for the client.
async fn granted_scopes(
    state: &AppState,
    p: &Params,
    client: &Client,
    to: &Bounce<'_>,
) -> Result<Vec<String>, AuthorizeError> {
    let Some(requested) = scope::parse(p.get("scope").unwrap_or("")) else {
        return Err(to.fail(ErrorCode::InvalidScope, "scope contains invalid characters"));
    };
    let custom =
        crate::domain::claims::custom_scopes(&state.db.read(store::users::claim_scopes).await?);
    Ok(crate::oidc::grants::user_scopes(
        client, &requested, &custom,
    ))
}

/// The PKCE `code_challenge`, checked with its method and against the client's requirement.
fn pkce_challenge(
    p: &Params,
    client: &Client,
    to: &Bounce<'_>,
) -> Result<Option<String>, AuthorizeError> {
    // RFC 7636 §4.4.1 and the Security BCP: S256 only; PKCE required for public clients and
    // by default for every client.
    let method = p.value("code_challenge_method");
    let challenge = p.value("code_challenge");
    match (&challenge, method.as_deref()) {
        (Some(_), None | Some("S256")) | (None, None) => {}
        (_, Some("plain")) => {
            return Err(to.fail(
                ErrorCode::InvalidRequest,
                "code_challenge_method plain is not allowed, use S256",
            ));
        }
        (_, Some(_)) => {
            return Err(to.fail(
                ErrorCode::InvalidRequest,
                "unsupported code_challenge_method, use S256",
            ));
        }
    }
    if challenge.is_none() && method.is_some() {
        return Err(to.fail(
            ErrorCode::InvalidRequest,
            "code_challenge is required with code_challenge_method",
        ));
    }
    if challenge.is_some() && method.is_none() {
        // RFC 7636 defaults to plain when the method is omitted, which we refuse.
        return Err(to.fail(
            ErrorCode::InvalidRequest,
            "code_challenge_method=S256 is required",
        ));
    }
    if let Some(c) = &challenge
        && !pkce::is_valid_challenge(c)
    {
        return Err(to.fail(
            ErrorCode::InvalidRequest,
            "code_challenge is not a valid S256 challenge",
        ));
    }
    if challenge.is_none() && (client.public || client.require_pkce) {
        return Err(to.fail(
            ErrorCode::InvalidRequest,
            "PKCE is required: send code_challenge with code_challenge_method=S256",
        ));
    }
    Ok(challenge)
}

/// The space-separated `prompt` values, each known, and `none` only on its own.
fn prompt_values(p: &Params, to: &Bounce<'_>) -> Result<Vec<String>, AuthorizeError> {
    let prompt: Vec<String> = p
        .get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    for v in &prompt {
        if !matches!(v.as_str(), "none" | "login" | "consent" | "select_account") {
            return Err(to.fail(ErrorCode::InvalidRequest, "unknown prompt value"));
        }
    }
    // OIDC Core §3.1.2.1: "If this parameter contains none with any other value, an error is returned."
    if prompt.iter().any(|v| v == "none") && prompt.len() > 1 {
        return Err(to.fail(
            ErrorCode::InvalidRequest,
            "prompt=none cannot be combined with other values",
        ));
    }
    Ok(prompt)
}

/// `max_age`: a non-negative number of seconds, if given.
fn max_age(p: &Params, to: &Bounce<'_>) -> Result<Option<i64>, AuthorizeError> {
    match p.value("max_age") {
        None => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(Some(n)),
            _ => Err(to.fail(
                ErrorCode::InvalidRequest,
                "max_age must be a non-negative number of seconds",
            )),
        },
    }
}

/// The subject named by `id_token_hint`, if one was sent.
fn id_token_hint_subject(
    state: &AppState,
    p: &Params,
    to: &Bounce<'_>,
) -> Result<Option<String>, AuthorizeError> {
    // OIDC Core §3.1.2.1 id_token_hint: an ID token we issued (expired is fine) naming the
    // user the client expects; one whose signature does not verify is refused.
    match p.value("id_token_hint") {
        None => Ok(None),
        Some(h) => match crate::oidc::tokens::verify_id_token_hint(state, &h) {
            Some(hint) => Ok(Some(hint.sub)),
            None => Err(to.fail(
                ErrorCode::InvalidRequest,
                "id_token_hint is not a valid ID token issued by this server",
            )),
        },
    }
}

/// The `claims` parameter (OIDC Core §5.5) as JSON text, if given; it must be an object.
fn claims_request(p: &Params, to: &Bounce<'_>) -> Result<Option<String>, AuthorizeError> {
    match p.value("claims") {
        None => Ok(None),
        Some(text) => match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) if v.is_object() => Ok(Some(v.to_string())),
            _ => Err(to.fail(ErrorCode::InvalidRequest, "claims must be a JSON object")),
        },
    }
}

// ---- handlers ------------------------------------------------------------------------------

pub async fn get(state: State, req: HttpRequest) -> HttpResponse {
    start(&state, &req, req.query_string().as_bytes()).await
}

/// POST with form-encoded parameters (OIDC Core §3.1.2.1).
pub async fn post(state: State, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    start(&state, &req, &body).await
}

async fn start(state: &AppState, req: &HttpRequest, raw: &[u8]) -> HttpResponse {
    let params = match Params::parse(raw) {
        Ok(p) => p,
        Err(e) => {
            // A repeated client_id or redirect_uri cannot be trusted: a page, not a redirect.
            return ui::error_page(
                StatusCode::BAD_REQUEST,
                "This sign-in request is malformed",
                &format!("{e}. Go back to the app and try again."),
                None,
            );
        }
    };
    let result = async {
        let (client, redirect) = phase_a(state, &params).await?;
        let ar = phase_b(state, &params, &client, redirect).await?;
        proceed(state, req, ar, client, None).await
    }
    .await;
    result.unwrap_or_else(|e| e.respond(state))
}

#[derive(Deserialize)]
pub struct ResumeQuery {
    req: String,
}

/// GET /authorize/resume?req=… — back from sign-in or consent.
pub async fn resume(state: State, req: HttpRequest, q: web::Query<ResumeQuery>) -> HttpResponse {
    let Some((ar, _)) = load_pending(&state, &req, &q.req).await.ok().flatten() else {
        return ui::error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in request has expired",
            "It took too long, or it was started in another browser. Go back to the app and sign in again.",
            None,
        );
    };
    let id = ar.client_id.clone();
    let client = match state.db.read(move |c| store::clients::by_id(c, &id)).await {
        Ok(Some(c)) => c,
        _ => return PageError::NotFound.error_response_html(),
    };
    proceed(&state, &req, ar, client, Some(q.req.clone()))
        .await
        .unwrap_or_else(|e| e.respond(&state))
}

/// Loads a pending request bound to this browser.
pub async fn load_pending(
    state: &AppState,
    req: &HttpRequest,
    id: &str,
) -> Result<Option<(AuthorizationRequest, Client)>, StoreError> {
    let hash = hash_token(id);
    let browser = ui::browser_hash(req);
    let now = state.now();
    state
        .db
        .read(move |c| {
            let Some(text) = store::auth_requests::get(c, &hash, &browser, now)? else {
                return Ok(None);
            };
            let ar: AuthorizationRequest = store::json_col(&text)?;
            let Some(client) = store::clients::by_id(c, &ar.client_id)? else {
                return Ok(None);
            };
            Ok(Some((ar, client)))
        })
        .await
}

/// Decides what happens next: sign-in, consent, a refusal, or the code.
async fn proceed(
    state: &AppState,
    req: &HttpRequest,
    ar: AuthorizationRequest,
    client: Client,
    pending: Option<String>,
) -> Result<HttpResponse, AuthorizeError> {
    let now = state.now();
    let current = session::current(state, req).await?;
    if needs_login(&ar, current.as_ref(), now) {
        if ar.prompts("none") {
            return Err(AuthorizeError::of(
                &ar,
                ErrorCode::LoginRequired,
                "the user is not signed in",
            ));
        }
        let id = store_pending(state, req, &ar, pending).await?;
        return Ok(ui::see_other(&format!("/login?req={id}")));
    }
    let Some((session, user)) = current else {
        return Err(AuthorizeError::of(
            &ar,
            ErrorCode::LoginRequired,
            "the user is not signed in",
        ));
    };
    // OIDC Core §3.1.2.1: "If the End-User identified by the ID Token is logged in or is
    // logged in by the request, then the Authorization Server returns a positive response;
    // otherwise, it SHOULD return an error, such as login_required."
    if ar.hints_other(&user) {
        return Err(AuthorizeError::of(
            &ar,
            ErrorCode::LoginRequired,
            "the signed-in user is not the one named by id_token_hint",
        ));
    }
    if let Some(denial) = denial(state, &client, &user).await? {
        record_denial(state, denial, &user, &client, pending.as_deref(), now).await?;
        return Err(no_access_page(denial, &user, &client));
    }
    if consent_needed(state, &ar, &client, &user).await? {
        if ar.prompts("none") {
            return Err(AuthorizeError::of(
                &ar,
                ErrorCode::ConsentRequired,
                "the user has not consented to this app",
            ));
        }
        let id = store_pending(state, req, &ar, pending).await?;
        return Ok(ui::see_other(&format!("/consent?req={id}")));
    }
    issue_code(state, ar, &session, &user, pending).await
}

/// Whether the user must (again) sign in for this request.
fn needs_login(
    ar: &AuthorizationRequest,
    current: Option<&(Session, User)>,
    now: UnixTime,
) -> bool {
    match current {
        None => true,
        Some((s, user)) => {
            // prompt=login/select_account: the user must sign in for this very request.
            ((ar.prompts("login") || ar.prompts("select_account")) && !ar.signed_in)
                // max_age: OIDC Core §3.1.2.1, re-authenticate when the last sign-in is older.
                || ar.max_age.is_some_and(|m| now - s.auth_time > m)
                // id_token_hint names someone else: they may sign in as the hinted user.
                || (ar.hints_other(user) && !ar.signed_in)
        }
    }
}

/// Why a signed-in person may not use the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Denial {
    /// Not in any of the client's allowed groups.
    Group,
    /// The client lets in only people with one of its roles, and they hold none.
    Role,
}

/// Audits a user the client does not let in and drops the pending request, if any.
async fn record_denial(
    state: &AppState,
    denial: Denial,
    user: &User,
    client: &Client,
    pending: Option<&str>,
    now: UnixTime,
) -> Result<(), StoreError> {
    let kind = match denial {
        Denial::Group => "authorize.denied_group",
        Denial::Role => "authorize.denied_role",
    };
    audit(state, kind, user, client, now).await?;
    if let Some(id) = pending {
        let h = hash_token(id);
        state
            .db
            .write(move |c| store::auth_requests::delete(c, &h))
            .await?;
    }
    Ok(())
}

/// The 403 page when `client` does not let `user` in (groups, roles), audited like a refused
/// authorization request (`authorize.denied_group` / `authorize.denied_role`); `None` when
/// the person may go on. The device verification page (`login::device`) asks it too.
pub async fn refuse_if_not_allowed(
    state: &AppState,
    client: &Client,
    user: &User,
) -> Result<Option<HttpResponse>, StoreError> {
    let Some(d) = denial(state, client, user).await? else {
        return Ok(None);
    };
    record_denial(state, d, user, client, None, state.now()).await?;
    Ok(Some(no_access_page(d, user, client).respond(state)))
}

/// The 403 page for a user the client does not let in (the same for groups and roles).
fn no_access_page(denial: Denial, user: &User, client: &Client) -> AuthorizeError {
    let fix = match denial {
        Denial::Group => "add you to the right group".to_string(),
        Denial::Role => format!("give you a role in {}", client.name),
    };
    AuthorizeError::Page(
        StatusCode::FORBIDDEN,
        "No access to this app",
        format!(
            "Your account ({}) is not allowed to use {}. If you think it should be, ask your administrator to {fix}.",
            user.username, client.name
        ),
    )
}

/// Whether the consent page must be shown: asked for, or a described scope not yet granted.
async fn consent_needed(
    state: &AppState,
    ar: &AuthorizationRequest,
    client: &Client,
    user: &User,
) -> Result<bool, StoreError> {
    if client.skip_consent || ar.consented {
        return Ok(false);
    }
    if ar.prompts("consent") {
        return Ok(true);
    }
    let (uid, cid) = (user.id.clone(), client.id.clone());
    let granted = state
        .db
        .read(move |c| store::consents::scopes(c, &uid, &cid))
        .await?
        .unwrap_or_default();
    Ok(ar
        .scopes
        .iter()
        .filter(|s| scope::describe(s).is_some())
        .any(|s| !granted.contains(s))
        || granted.is_empty())
}

/// Whether the client lets the person in: the same rules as `grants::user_may_use`.
async fn denial(
    state: &AppState,
    client: &Client,
    user: &User,
) -> Result<Option<Denial>, StoreError> {
    if client.allowed_groups.is_empty() && !client.require_role {
        return Ok(None);
    }
    let (uid, cid, need_role) = (user.id.clone(), client.id.clone(), client.require_role);
    let (groups, roles) = state
        .db
        .read(move |c| {
            let groups = store::users::group_names(c, &uid)?;
            let roles = if need_role {
                claims::roles_in(c, &cid, &uid)?
            } else {
                None
            };
            Ok((groups, roles))
        })
        .await?;
    if !client.allowed_groups.is_empty()
        && !client
            .allowed_groups
            .iter()
            .any(|g| groups.iter().any(|x| x.eq_ignore_ascii_case(g)))
    {
        return Ok(Some(Denial::Group));
    }
    if client.require_role && roles.is_none_or(|r| r.is_empty()) {
        return Ok(Some(Denial::Role));
    }
    Ok(None)
}

async fn audit(
    state: &AppState,
    kind: &'static str,
    user: &User,
    client: &Client,
    now: UnixTime,
) -> Result<(), StoreError> {
    let (uid, cid) = (user.id.clone(), client.id.clone());
    state
        .db
        .write(move |c| {
            store::audit::record(
                c,
                &NewEvent {
                    kind,
                    user_id: Some(&uid),
                    actor_id: Some(&uid),
                    client_id: Some(&cid),
                    ..Default::default()
                },
                now,
            )
        })
        .await
}

/// Stores (or refreshes) the pending request; returns its id.
async fn store_pending(
    state: &AppState,
    req: &HttpRequest,
    ar: &AuthorizationRequest,
    existing: Option<String>,
) -> Result<String, StoreError> {
    let id = existing.unwrap_or_else(random_token);
    let hash = hash_token(&id);
    let browser = ui::browser_hash(req);
    let now = state.now();
    let json = serde_json::to_string(ar).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let cid = ar.client_id.clone();
    state
        .db
        .write(move |c| {
            store::auth_requests::delete(c, &hash)?;
            store::auth_requests::insert(c, &hash, &cid, &browser, &json, now, now + PENDING_TTL)
        })
        .await?;
    Ok(id)
}

/// Saves a changed pending request (consent given).
pub async fn update_pending(
    state: &AppState,
    id: &str,
    ar: &AuthorizationRequest,
) -> Result<(), StoreError> {
    update_pending_for(state, id, ar, None).await
}

/// [`update_pending`], also binding the request to the browser's new id (`browser`, the
/// hash) when a sign-in renewed it.
pub async fn update_pending_for(
    state: &AppState,
    id: &str,
    ar: &AuthorizationRequest,
    browser: Option<String>,
) -> Result<(), StoreError> {
    let hash = hash_token(id);
    let json = serde_json::to_string(ar).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    state
        .db
        .write(move |c| {
            store::auth_requests::update_params(c, &hash, &json)?;
            if let Some(b) = &browser {
                store::auth_requests::rebind(c, &hash, b)?;
            }
            Ok(())
        })
        .await
}

/// Ends a pending request by sending `error` back to the client (consent denied).
pub async fn refuse_pending(
    state: &AppState,
    id: &str,
    ar: &AuthorizationRequest,
    code: ErrorCode,
    d: &str,
) -> HttpResponse {
    let hash = hash_token(id);
    let _ = state
        .db
        .write(move |c| store::auth_requests::delete(c, &hash))
        .await;
    AuthorizeError::of(ar, code, d).respond(state)
}

async fn issue_code(
    state: &AppState,
    ar: AuthorizationRequest,
    session: &Session,
    user: &User,
    pending: Option<String>,
) -> Result<HttpResponse, AuthorizeError> {
    let now = state.now();
    let code = random_token(); // 256 bits
    let grant = CodeGrant {
        client_id: ar.client_id.clone(),
        user_id: user.id.clone(),
        sid: Some(session.sid.clone()),
        redirect_uri: ar.redirect.as_str().to_string(),
        redirect_uri_sent: ar.redirect_uri_sent,
        scope: scope::join(&ar.scopes),
        nonce: ar.nonce.clone(),
        code_challenge: ar.code_challenge.clone(),
        claims: ar.claims.clone(),
        auth_time: session.auth_time,
        amr: session.amr.clone(),
        acr: session.acr.clone(),
    };
    let hash = hash_token(&code);
    let ttl = state.config.authorization_code_ttl.as_secs() as i64;
    let pending_hash = pending.map(|p| hash_token(&p));
    state
        .db
        .write(move |c| {
            store::codes::insert(c, &hash, &grant, now, now + ttl)?;
            if let Some(p) = pending_hash {
                store::auth_requests::delete(c, &p)?;
            }
            Ok(())
        })
        .await?;
    let mut params = vec![("code", code)];
    if let Some(s) = &ar.state {
        params.push(("state", s.clone()));
    }
    params.push(("iss", state.config.issuer().to_string()));
    Ok(respond_to_client(&ar.redirect, ar.response_mode, &params))
}

#[derive(Template)]
#[template(path = "oidc/form_post.html")]
struct FormPost<'a> {
    action: &'a str,
    fields: Vec<(&'a str, &'a str)>,
}

/// Sends parameters to the client: a 303 with a query, or an auto-submitting form
/// (OAuth 2.0 Form Post Response Mode) that also works with JavaScript off.
fn respond_to_client(
    redirect: &ValidatedRedirect,
    mode: ResponseMode,
    params: &[(&str, String)],
) -> HttpResponse {
    match mode {
        ResponseMode::Query => {
            let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            ui::see_other(&redirect.with_query(&pairs))
        }
        ResponseMode::FormPost => {
            let page = FormPost {
                action: redirect.as_str(),
                fields: params.iter().map(|(k, v)| (*k, v.as_str())).collect(),
            };
            let mut resp = ui::ok(&page);
            // The form posts to the client's origin: allow exactly that target.
            let csp = "default-src 'none'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'";
            if let Ok(v) = actix_web::http::header::HeaderValue::from_str(csp) {
                resp.headers_mut()
                    .insert(actix_web::http::header::CONTENT_SECURITY_POLICY, v);
            }
            resp
        }
    }
}

impl PageError {
    /// The HTML page for this error (for handlers that return `HttpResponse`).
    pub fn error_response_html(&self) -> HttpResponse {
        actix_web::ResponseError::error_response(self)
    }
}
