//! Addresses in logs. Envelope addresses are personal data: by default a log shows the
//! domain and a short hash of the local part (`3f9a1c2b@partner.example`), enough to
//! follow one sender across records without naming them. `log_addresses = true` in the
//! config shows them whole.

use sha2::{Digest, Sha256};

/// An address as logs show it.
pub fn address(addr: &str, full: bool) -> String {
    if full {
        return addr.to_string();
    }
    match addr.rsplit_once('@') {
        Some((local, domain)) => format!("{}@{}", hash8(local), domain.to_ascii_lowercase()),
        None => hash8(addr),
    }
}

/// The first 8 hex digits of the SHA-256 of the lowercased local part.
fn hash8(local: &str) -> String {
    let digest = Sha256::digest(local.to_ascii_lowercase().as_bytes());
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// A list of addresses as logs show them.
pub fn addresses(addrs: &[String], full: bool) -> String {
    addrs
        .iter()
        .map(|a| address(a, full))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_default_only_the_domain_and_a_hash_of_the_local_part_show() {
        let shown = address("Alice.Smith@Partner.Example", false);
        assert!(shown.ends_with("@partner.example"), "{shown}");
        assert!(!shown.to_lowercase().contains("alice"));
        assert_eq!(shown.len(), 8 + "@partner.example".len());
    }

    #[test]
    fn the_same_local_part_hashes_the_same_whatever_its_case() {
        assert_eq!(
            address("bob@x.example", false),
            address("BOB@x.example", false)
        );
        assert_ne!(
            address("bob@x.example", false),
            address("rob@x.example", false)
        );
    }

    #[test]
    fn log_addresses_shows_them_whole() {
        assert_eq!(address("bob@x.example", true), "bob@x.example");
        assert_eq!(
            addresses(&["a@x.example".into(), "b@y.example".into()], true),
            "a@x.example,b@y.example"
        );
    }
}
