//! What console pages share: the admin chrome (nav, notice), form fields, the field problem
//! shown beside an input, pagination and dates in words.

use crate::clock::UnixTime;
use crate::ops::FieldError;

/// Rows per page on every console list.
pub const PER_PAGE: u32 = 50;

/// The console's navigation state and a one-line notice after a change (POST-redirect-GET).
pub struct Chrome {
    pub nav: &'static str,
    pub notice: Option<String>,
}

impl Chrome {
    pub fn new(nav: &'static str) -> Self {
        Self { nav, notice: None }
    }

    pub fn with_notice(mut self, notice: Option<&str>) -> Self {
        self.notice = notice.map(str::to_string);
        self
    }
}

/// A submitted form as its pairs, for repeated names (checkboxes) and dynamic names.
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The first value of `name`, trimmed ("" when absent).
    pub fn get(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    }

    /// The first value of `name`, untrimmed (passwords).
    pub fn raw(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// `None` when empty.
    pub fn opt(&self, name: &str) -> Option<String> {
        Some(self.get(name)).filter(|s| !s.is_empty())
    }

    /// Every non-empty value of `name` (checkboxes), in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    /// A checked checkbox.
    pub fn on(&self, name: &str) -> bool {
        self.0.iter().any(|(k, v)| k == name && !v.is_empty())
    }

    /// The non-empty lines of a textarea.
    pub fn lines(&self, name: &str) -> Vec<String> {
        self.raw(name)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Pairs whose name starts with `prefix`, with the prefix removed.
    pub fn prefixed(&self, prefix: &str) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(prefix)
                    .map(|rest| (rest.to_string(), v.trim().to_string()))
            })
            .collect()
    }
}

/// The problem with a submitted form, shown beside its input.
#[derive(Debug, Default)]
pub struct Problem(pub Option<FieldError>);

impl Problem {
    pub fn none() -> Self {
        Self(None)
    }

    /// The confirmation box of a destructive form was not ticked; `what` ends "… want to …".
    pub fn unconfirmed(what: &str) -> Self {
        let message = if what.is_empty() {
            "Tick the box to confirm.".to_string()
        } else {
            format!("Tick the box to confirm that you want to {what}.")
        };
        Self(Some(FieldError {
            field: "confirm",
            message,
        }))
    }

    /// Whether the problem is with the input `field`.
    pub fn on(&self, field: &str) -> bool {
        self.0.as_ref().is_some_and(|e| e.field == field)
    }

    /// The message, when the problem is with `field`.
    pub fn msg(&self, field: &str) -> &str {
        match &self.0 {
            Some(e) if e.field == field => &e.message,
            _ => "",
        }
    }

    /// The message for the alert at the top of the form.
    pub fn text(&self) -> Option<&str> {
        self.0.as_ref().map(|e| e.message.as_str())
    }
}

/// Pagination by page number (1-based).
pub struct Pager {
    pub page: u32,
    pub total: i64,
    /// Query string kept on the links (e.g. `q=al&`), ending in `&` when not empty.
    pub keep: String,
    pub base: String,
}

impl Pager {
    pub fn new(base: &str, page: Option<u32>, total: i64, keep: String) -> Self {
        let last = Self::last_page(total);
        Self {
            page: page.unwrap_or(1).clamp(1, last),
            total,
            keep,
            base: base.to_string(),
        }
    }

    fn last_page(total: i64) -> u32 {
        let pages = (total.max(0) as u64).div_ceil(u64::from(PER_PAGE)).max(1);
        u32::try_from(pages).unwrap_or(u32::MAX)
    }

    pub fn offset(&self) -> u32 {
        (self.page - 1).saturating_mul(PER_PAGE)
    }

    pub fn first(&self) -> i64 {
        if self.total == 0 {
            0
        } else {
            i64::from(self.offset()) + 1
        }
    }

    pub fn last(&self) -> i64 {
        (i64::from(self.offset()) + i64::from(PER_PAGE)).min(self.total)
    }

    pub fn prev(&self) -> Option<String> {
        (self.page > 1).then(|| format!("{}?{}page={}", self.base, self.keep, self.page - 1))
    }

    pub fn next(&self) -> Option<String> {
        (self.page < Self::last_page(self.total))
            .then(|| format!("{}?{}page={}", self.base, self.keep, self.page + 1))
    }

    /// Whether there is more than one page.
    pub fn many(&self) -> bool {
        Self::last_page(self.total) > 1
    }
}

/// `2026-11-23 13:55 UTC`.
pub fn when(t: UnixTime) -> String {
    let Ok(secs) = u64::try_from(t) else {
        return "-".into();
    };
    let st = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    let s = humantime::format_rfc3339_seconds(st).to_string();
    // 2026-11-23T13:55:07Z
    match (s.get(0..10), s.get(11..16)) {
        (Some(d), Some(hm)) => format!("{d} {hm} UTC"),
        _ => s,
    }
}

/// `2026-11-23` (for date inputs).
pub fn day(t: UnixTime) -> String {
    when(t).get(0..10).unwrap_or("").to_string()
}

/// Parses `YYYY-MM-DD` (a date input) as the start of that day, UTC.
pub fn parse_day(s: &str) -> Option<UnixTime> {
    let s = s.trim();
    if s.len() != 10 {
        return None;
    }
    let t = humantime::parse_rfc3339_weak(&format!("{s} 00:00:00")).ok()?;
    let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
}

/// "3 min ago" style.
pub fn ago(now: UnixTime, then: UnixTime) -> String {
    crate::account::ago(now, then)
}

pub use crate::web::ui::enc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_as_people_write_them() {
        assert_eq!(when(1_800_000_000), "2027-01-15 08:00 UTC");
        assert_eq!(parse_day("2027-01-15"), Some(1_800_000_000 - 8 * 3600));
        assert_eq!(parse_day("yesterday"), None);
        assert_eq!(day(1_800_000_000), "2027-01-15");
    }

    #[test]
    fn pages_of_fifty() {
        let p = Pager::new("/admin/users", Some(3), 120, "q=a&".into());
        assert_eq!((p.first(), p.last()), (101, 120));
        assert_eq!(p.prev().as_deref(), Some("/admin/users?q=a&page=2"));
        assert_eq!(p.next(), None);
        let p = Pager::new("/x", Some(99), 0, String::new());
        assert_eq!((p.page, p.first(), p.last(), p.many()), (1, 0, 0, false));
    }

    #[test]
    fn form_fields() {
        let f = Fields(vec![
            ("group".into(), "a".into()),
            ("group".into(), "b".into()),
            ("scope.x".into(), " s ".into()),
            ("uris".into(), "https://a\n\n https://b \n".into()),
        ]);
        assert_eq!(f.all("group"), vec!["a", "b"]);
        assert_eq!(f.prefixed("scope."), vec![("x".into(), "s".into())]);
        assert_eq!(f.lines("uris"), vec!["https://a", "https://b"]);
        assert!(!f.on("nothing"));
    }
}
