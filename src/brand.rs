//! The brand name shown on pages, kept for the places that have no state at hand (error pages
//! rendered outside a request, messages of the operations). Set once at start from
//! `brand_name`; "Portcullis" until then.

use std::sync::OnceLock;

static BRAND: OnceLock<String> = OnceLock::new();

pub fn set(name: &str) {
    let _ = BRAND.set(name.to_string());
}

pub fn name() -> String {
    BRAND.get().cloned().unwrap_or_else(|| "Portcullis".into())
}
