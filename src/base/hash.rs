//! Digests as weir shows them: lowercase hex of sha256 (file and cache
//! fingerprints) and of md5 (dbt's `local_md5`, generic test names).

use md5::Md5;
use sha2::{Digest, Sha256};

/// The sha256 of `text`, in hex.
pub fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// The md5 of `text`, in hex, as dbt's `local_md5` gives it.
pub fn md5_hex(text: &str) -> String {
    hex(&Md5::digest(text.as_bytes()))
}

/// The sha1 of `text`, in hex (package-lock.yml's `sha1_hash`, as dbt
/// computes it: not for security).
pub fn sha1_hex(text: &str) -> String {
    use sha1::Sha1;
    hex(&Sha1::digest(text.as_bytes()))
}

/// Lowercase hex digits of `bytes`: how digests are shown.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn digests_are_lowercase_hex() {
        assert_eq!(super::hex(&[0x00, 0xab, 0x0f]), "00ab0f");
        assert_eq!(super::md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            super::sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
