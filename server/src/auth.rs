//! Passwords (argon2id, PHC strings) and device tokens (32 random bytes,
//! stored only as their BLAKE3 hash, expiring, revocable with the device).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// How long a device token lives: a month, so an inspector who logged in
/// once keeps syncing through weeks in the field.
pub const TOKEN_TTL_MS: i64 = 30 * 24 * 3600 * 1000;
/// Shortest accepted password, characters.
pub const PASSWORD_CHARS_MIN: usize = 8;

/// Hashes a password for storage.
pub fn hash_password(password: &str) -> Result<String, String> {
    if password.chars().count() < PASSWORD_CHARS_MIN {
        return Err(format!(
            "password must have at least {PASSWORD_CHARS_MIN} characters"
        ));
    }
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).map_err(|e| format!("no randomness: {e}"))?;
    let salt = SaltString::encode_b64(&raw).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches a stored hash. A malformed hash never matches.
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A new random token (hex) and the hash to store.
pub fn new_token() -> Result<(String, String), String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let hash = token_hash(&token);
    Ok((token, hash))
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_tokens() {
        assert!(hash_password("short").is_err());
        let h = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse!", &h));
        assert!(!verify_password("correct horse", "not-a-phc-string"));
        let (t1, h1) = new_token().unwrap();
        let (t2, _) = new_token().unwrap();
        assert_ne!(t1, t2);
        assert_eq!(t1.len(), 64);
        assert_eq!(token_hash(&t1), h1);
        assert!(!h1.contains(&t1));
    }
}
