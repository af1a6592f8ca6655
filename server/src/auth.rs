//! Passwords (argon2id, PHC strings) and device tokens (32 random bytes,
//! stored only as their BLAKE3 hash, expiring, revocable with the device).

use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::Mutex;

/// How long a device token lives: a month, so an inspector who logged in
/// once keeps syncing through weeks in the field.
pub const TOKEN_TTL_MS: i64 = 30 * 24 * 3600 * 1000;
/// Shortest accepted password, characters.
pub const PASSWORD_CHARS_MIN: usize = 8;

/// Argon2 working memories (19 MiB each with the default parameters) kept
/// for the next check instead of freed. glibc serves a block this large
/// with mmap, and freeing it raises malloc's mmap threshold to 19 MiB and
/// its trim threshold to 38 MiB for the rest of the process: from then on
/// every arena keeps tens of MiB of freed heap. Measured with
/// `bench/sync.sh 200 50`: 390–590 MB peak RSS with freed memories, 150 MB
/// with kept ones, while the live heap (heaptrack) never exceeds about
/// 50 MB. Logins are throttled to two at a time, so two suffice.
static MEMORIES: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());
const MEMORIES_KEPT: usize = 2;

/// Runs `f` on `blocks` Argon2 blocks, reusing a kept memory when the
/// size is the default one.
fn with_memory<R>(blocks: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
    let pool = || MEMORIES.lock().unwrap_or_else(|p| p.into_inner());
    let default = Params::default().block_count();
    if blocks != default {
        return f(&mut vec![Block::default(); blocks]);
    }
    let mut memory = pool().pop().unwrap_or_default();
    // Argon2 overwrites every block before reading it, so a used memory
    // needs no clearing.
    memory.resize(blocks, Block::default());
    let r = f(&mut memory);
    let mut kept = pool();
    if kept.len() < MEMORIES_KEPT {
        kept.push(memory);
    }
    r
}

/// The PHC hash of `password` with `argon2` and `salt`.
fn hash_with<'a>(
    argon2: &Argon2<'_>,
    algorithm: Algorithm,
    version: Version,
    password: &[u8],
    salt: Salt<'a>,
) -> argon2::password_hash::Result<PasswordHash<'a>> {
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf)?;
    let params = argon2.params();
    let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = Output::init_with(len, |out| {
        with_memory(params.block_count(), |m| {
            argon2.hash_password_into_with_memory(password, salt_bytes, out, m)
        })
        .map_err(Into::into)
    })?;
    Ok(PasswordHash {
        algorithm: algorithm.ident(),
        version: Some(version.into()),
        params: ParamsString::try_from(params)?,
        salt: Some(salt),
        hash: Some(output),
    })
}

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
    let (algorithm, version) = (Algorithm::default(), Version::default());
    let argon2 = Argon2::new(algorithm, version, Params::default());
    hash_with(
        &argon2,
        algorithm,
        version,
        password.as_bytes(),
        salt.as_salt(),
    )
    .map(|h| h.to_string())
    .map_err(|e| e.to_string())
}

/// Whether `password` matches a stored hash. A malformed hash never matches.
pub fn verify_password(password: &str, stored: &str) -> bool {
    let check = || -> Option<bool> {
        let h = PasswordHash::new(stored).ok()?;
        let (salt, expected) = (h.salt?, h.hash?);
        let algorithm = Algorithm::try_from(h.algorithm).ok()?;
        let version = match h.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::default(),
        };
        let params = Params::try_from(&h).ok()?;
        let argon2 = Argon2::new(algorithm, version, params);
        let computed = hash_with(&argon2, algorithm, version, password.as_bytes(), salt).ok()?;
        // `Output` compares in constant time.
        Some(computed.hash? == expected)
    };
    check().unwrap_or(false)
}

/// A valid hash of no one's password, to check unknown users against: the
/// answer then takes as long as for a known user.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut raw = [0u8; 24];
        let _ = getrandom::fill(&mut raw);
        let password: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        hash_password(&password).unwrap_or_default()
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
        // Interchangeable with the argon2 crate's own hasher and verifier.
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let salt = SaltString::encode_b64(&[7; 16]).unwrap();
        let theirs = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("correct horse", &theirs));
        assert!(!verify_password("correct horsf", &theirs));
        let ours = PasswordHash::new(&h).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &ours)
                .is_ok()
        );
        let (t1, h1) = new_token().unwrap();
        let (t2, _) = new_token().unwrap();
        assert_ne!(t1, t2);
        assert_eq!(t1.len(), 64);
        assert_eq!(token_hash(&t1), h1);
        assert!(!h1.contains(&t1));
    }
}
