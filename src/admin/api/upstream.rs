//! /admin/api/upstream — sign-in providers (upstream identity providers): list, create, read,
//! change, delete (unlinking every identity linked through the provider). The client secret
//! goes in and never comes out (`has_client_secret` says whether one is stored). And
//! /admin/api/users/{id}/identities — a user's linked identities, and unlinking one with the
//! account page's rule: never the user's last way to sign in.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiJson, ApiKey, ApiQuery, created, no_content, nullable, ok};
use crate::crypto::secret::Secret;
use crate::ops::OpError;
use crate::ops::upstream_providers::{self, Preset, ProviderInput, ProviderPatch};
use crate::state::AppState;
use crate::store;
use crate::store::upstream::{Kind, Policy, Provider};
use crate::upstream::accounts::{self, UnlinkRefused};
use crate::web::State;

/// `upstream_providers::to_json` (never the secret) with how many identities are linked through it.
fn provider_json(state: &AppState, p: &Provider, linked: i64) -> Value {
    let mut v = upstream_providers::to_json(p, &state.config.public_url);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("linked_identities".into(), json!(linked));
    }
    v
}

fn parse_policy(s: &str) -> Result<Policy, ApiError> {
    Policy::parse(s).ok_or_else(|| {
        ApiError::invalid(
            "policy",
            "Use existing_only, link_verified_email or create.",
        )
    })
}

/// GET /admin/api/upstream — every provider, by name.
pub async fn list(state: State, _key: ApiKey) -> Result<HttpResponse, ApiError> {
    let (list, counts) = state
        .db
        .read(|c| {
            Ok((
                store::upstream::list(c, false)?,
                store::upstream::link_counts(c)?,
            ))
        })
        .await?;
    let rows: Vec<Value> = list
        .iter()
        .map(|p| provider_json(&state, p, counts.get(&p.id).copied().unwrap_or(0)))
        .collect();
    Ok(ok(json!({"providers": rows, "total": rows.len()})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    slug: String,
    client_id: String,
    /// `google` or `github`: fills kind, issuer and name.
    preset: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    icon: Option<String>,
    issuer: Option<String>,
    client_secret: Option<String>,
    scopes: Option<String>,
    enabled: Option<bool>,
    policy: Option<String>,
    default_groups: Option<Vec<String>>,
    group_mapping: Option<BTreeMap<String, String>>,
}

impl CreateBody {
    fn input(self) -> Result<ProviderInput, ApiError> {
        let preset = match self.preset.as_deref() {
            None => None,
            Some(s) => Some(
                Preset::parse(s)
                    .ok_or_else(|| ApiError::invalid("preset", "Use google or github."))?,
            ),
        };
        let kind = match self.kind.as_deref() {
            None => None,
            Some(s) => Some(
                Kind::parse(s).ok_or_else(|| ApiError::invalid("kind", "Use oidc or github."))?,
            ),
        };
        let kind = match (preset, kind) {
            (Some(Preset::Github), None | Some(Kind::Github)) => Kind::Github,
            (Some(Preset::Google), None | Some(Kind::Oidc)) => Kind::Oidc,
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "kind",
                    "This kind does not match the preset; leave it out.",
                ));
            }
            (None, k) => k.unwrap_or(Kind::Oidc),
        };
        let mut input = ProviderInput::new(
            &self.slug,
            kind,
            self.name.as_deref().unwrap_or(""),
            &self.client_id,
        );
        input.issuer = self.issuer;
        // GitHub is always the GitHub preset (its endpoints are fixed).
        match (preset, kind) {
            (Some(p), _) => p.apply(&mut input),
            (None, Kind::Github) => Preset::Github.apply(&mut input),
            (None, Kind::Oidc) => {}
        }
        input.icon = self.icon;
        input.client_secret = self.client_secret.map(Secret::new);
        input.scopes = self.scopes;
        input.enabled = self.enabled.unwrap_or(true);
        if let Some(p) = self.policy {
            input.policy = parse_policy(&p)?;
        }
        input.default_groups = self.default_groups.unwrap_or_default();
        input.group_mapping = self.group_mapping.unwrap_or_default();
        Ok(input)
    }
}

/// POST /admin/api/upstream — 201 with the provider (without its secret).
pub async fn create(
    state: State,
    key: ApiKey,
    body: ApiJson<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let input = body.0.input()?;
    let (master, actor, now) = (
        state.master_key.clone(),
        key.actor().audit_id(),
        state.now(),
    );
    let p = state
        .db
        .try_write(move |c| upstream_providers::create(c, &master, input, Some(&actor), now))
        .await
        .map_err(ApiError::from)?;
    Ok(created(provider_json(&state, &p, 0)))
}

/// GET /admin/api/upstream/{slug}
pub async fn get(
    state: State,
    _key: ApiKey,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let slug = path.into_inner();
    let found = state
        .db
        .read(move |c| {
            let Some(p) = store::upstream::by_slug(c, &slug)? else {
                return Ok(None);
            };
            let n = store::upstream::count_links_for_provider(c, &p.id)?;
            Ok(Some((p, n)))
        })
        .await?;
    let (p, n) = found.ok_or_else(|| ApiError::not_found("provider"))?;
    Ok(ok(provider_json(&state, &p, n)))
}

/// Every setting, optional: absent keeps the current value; `null` clears what can be cleared
/// (icon, issuer of a GitHub provider, the secret) or restores the default (scopes).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    slug: Option<String>,
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    icon: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    issuer: Option<Option<String>>,
    client_id: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    client_secret: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    scopes: Option<Option<String>>,
    enabled: Option<bool>,
    policy: Option<String>,
    default_groups: Option<Vec<String>>,
    group_mapping: Option<BTreeMap<String, String>>,
}

impl PatchBody {
    fn patch(self) -> Result<ProviderPatch, ApiError> {
        let client_secret = match self.client_secret {
            None => None,
            // `upstream_providers::edit` removes the secret when given an empty one.
            Some(None) => Some(Secret::new(String::new())),
            Some(Some(s)) if s.is_empty() => {
                return Err(ApiError::invalid(
                    "client_secret",
                    "Send the new secret, or null to remove the stored one.",
                ));
            }
            Some(Some(s)) => Some(Secret::new(s)),
        };
        Ok(ProviderPatch {
            slug: self.slug,
            display_name: self.name,
            icon: self.icon,
            issuer: self.issuer.map(Option::unwrap_or_default),
            client_id: self.client_id,
            client_secret,
            scopes: self.scopes.map(Option::unwrap_or_default),
            enabled: self.enabled,
            policy: self.policy.as_deref().map(parse_policy).transpose()?,
            default_groups: self.default_groups,
            group_mapping: self.group_mapping,
        })
    }
}

/// PATCH /admin/api/upstream/{slug}
pub async fn update(
    state: State,
    key: ApiKey,
    path: web::Path<String>,
    body: ApiJson<PatchBody>,
) -> Result<HttpResponse, ApiError> {
    let patch = body.0.patch()?;
    let (master, actor, now, slug) = (
        state.master_key.clone(),
        key.actor().audit_id(),
        state.now(),
        path.into_inner(),
    );
    let edited = state
        .db
        .try_write(move |c| {
            let Some(p) = upstream_providers::edit(c, &master, &slug, patch, Some(&actor), now)?
            else {
                return Ok(None);
            };
            let n = store::upstream::count_links_for_provider(c, &p.id)?;
            Ok::<_, OpError>(Some((p, n)))
        })
        .await
        .map_err(ApiError::from)?;
    let (p, n) = edited.ok_or_else(|| ApiError::not_found("provider"))?;
    Ok(ok(provider_json(&state, &p, n)))
}

/// DELETE /admin/api/upstream/{slug} — says how many linked identities went with it.
pub async fn delete(
    state: State,
    key: ApiKey,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (actor, now, slug) = (key.actor().audit_id(), state.now(), path.into_inner());
    let s2 = slug.clone();
    let unlinked = state
        .db
        .write(move |c| upstream_providers::delete(c, &s2, Some(&actor), now))
        .await?
        .ok_or_else(|| ApiError::not_found("provider"))?;
    Ok(ok(
        json!({"slug": slug, "deleted": true, "unlinked_identities": unlinked}),
    ))
}

// ---- a user's linked identities ------------------------------------------------------------

fn identity_json(l: &store::upstream::LinkedWithProvider) -> Value {
    json!({
        "provider": l.slug,
        "provider_name": l.display_name,
        "subject": l.link.subject,
        "email": l.link.email,
        "linked_at": l.link.linked_at,
        "last_used_at": l.link.last_used_at,
    })
}

/// GET /admin/api/users/{id}/identities
pub async fn identities(
    state: State,
    _key: ApiKey,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let found = state
        .db
        .read(move |c| {
            if store::users::by_id(c, &id)?.is_none() {
                return Ok(None);
            }
            Ok(Some(store::upstream::links_for_user(c, &id)?))
        })
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let rows: Vec<Value> = found.iter().map(identity_json).collect();
    Ok(ok(json!({"identities": rows})))
}

#[derive(Deserialize)]
pub struct UnlinkQuery {
    subject: Option<String>,
}

/// DELETE /admin/api/users/{id}/identities/{provider}[?subject=] — `provider` is the slug;
/// `subject` is needed only when the user has several identities at that provider.
pub async fn unlink(
    state: State,
    key: ApiKey,
    path: web::Path<(String, String)>,
    q: ApiQuery<UnlinkQuery>,
) -> Result<HttpResponse, ApiError> {
    let (user_id, slug) = path.into_inner();
    let subject = q.0.subject;
    let (actor, now) = (key.actor().audit_id(), state.now());
    state
        .db
        .try_write(move |c| -> Result<(), ApiError> {
            if store::users::by_id(c, &user_id)?.is_none() {
                return Err(ApiError::not_found("user"));
            }
            let p = store::upstream::by_slug(c, &slug)?
                .ok_or_else(|| ApiError::not_found("provider"))?;
            let mut links: Vec<_> = store::upstream::links_for_user(c, &user_id)?
                .into_iter()
                .filter(|l| l.link.provider_id == p.id)
                .filter(|l| subject.as_ref().is_none_or(|s| &l.link.subject == s))
                .collect();
            if links.len() > 1 {
                return Err(ApiError::invalid(
                    "subject",
                    "The user has several identities at this provider; name one with ?subject=.",
                ));
            }
            let l = links
                .pop()
                .ok_or_else(|| ApiError::not_found("linked identity"))?;
            match accounts::unlink(c, &user_id, &p.id, &l.link.subject, &actor, now)? {
                Ok(()) => Ok(()),
                Err(UnlinkRefused::NotFound) => Err(ApiError::not_found("linked identity")),
                Err(UnlinkRefused::LastSignInMethod) => Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "last_sign_in_method",
                    "This is the user's only way to sign in, so it cannot be unlinked; give them a password or a passkey first.",
                )),
            }
        })
        .await?;
    Ok(no_content())
}
