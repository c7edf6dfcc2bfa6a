//! Password rules per NIST SP 800-63B §5.1.1.2: a minimum length, at least 64 characters
//! allowed, no composition rules, and no password from a list of commonly used ones.

use std::collections::HashSet;
use std::sync::LazyLock;

/// The longest password accepted, in characters (NIST: allow at least 64).
pub const MAX_LENGTH: usize = 256;

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common_passwords.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect()
});

/// Why a password is refused, in words for the person choosing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejected {
    #[error("Use at least {0} characters.")]
    TooShort(usize),
    #[error("Use at most {MAX_LENGTH} characters.")]
    TooLong,
    #[error("This password is too common and easy to guess. Choose another.")]
    Common,
}

pub fn check(password: &str, min_length: usize) -> Result<(), PasswordRejected> {
    let length = password.chars().count();
    // "Verifiers SHALL require subscriber-chosen memorized secrets to be at least 8 characters".
    if length < min_length {
        return Err(PasswordRejected::TooShort(min_length));
    }
    // "Verifiers SHOULD permit subscriber-chosen memorized secrets at least 64 characters".
    if length > MAX_LENGTH {
        return Err(PasswordRejected::TooLong);
    }
    // "…compare the prospective secrets against a list that contains values known to be
    // commonly-used, expected, or compromised."
    if COMMON.contains(password.to_lowercase().as_str()) {
        return Err(PasswordRejected::Common);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_length_is_enforced() {
        assert_eq!(check("short", 8), Err(PasswordRejected::TooShort(8)));
    }

    #[test]
    fn sixty_four_characters_are_allowed() {
        assert!(check(&"a-long-unusual-passphrase!".repeat(3)[..64], 8).is_ok());
    }

    #[test]
    fn common_passwords_are_refused_whatever_the_case() {
        assert_eq!(check("password123", 8), Err(PasswordRejected::Common));
        assert_eq!(check("PassWord123", 8), Err(PasswordRejected::Common));
        assert_eq!(check("qwertyuiop", 8), Err(PasswordRejected::Common));
    }

    #[test]
    fn no_composition_rules() {
        assert!(check("all lower case words here", 8).is_ok());
    }
}
