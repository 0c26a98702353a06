//! Connection, request and message ids shaped like API Gateway's.
//!
//! Why: API Gateway's WebSocket ids are 16 characters of base64 ending in `=` (11 random
//! bytes, e.g. `L0SM9cOFvHcCIhw=`); functions store them (DynamoDB keys, logs) and clients see
//! them in error frames, so the local ones have the same shape. The URL-safe alphabet keeps an
//! id usable as it is in `@connections/{id}` paths built by hand.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use ring::rand::{SecureRandom as _, SystemRandom};

/// Random bytes in an id.
pub const ID_BYTES: usize = 11;
/// Characters in an id.
pub const ID_LEN: usize = 16;

/// The id for these bytes.
pub fn id_from_bytes(bytes: [u8; ID_BYTES]) -> String {
    URL_SAFE.encode(bytes)
}

/// A new random id (connection id, request id, message id).
pub fn new_id() -> String {
    let mut bytes = [0u8; ID_BYTES];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        // The OS generator failed (it does not on Linux); uuid's generator is the fallback.
        let uuid = uuid::Uuid::new_v4();
        bytes.copy_from_slice(&uuid.as_bytes()[..ID_BYTES]);
    }
    id_from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_look_like_api_gateway_connection_ids() {
        assert_eq!(id_from_bytes([0; ID_BYTES]), "AAAAAAAAAAAAAAA=");
        assert_eq!(id_from_bytes([0xff; ID_BYTES]), "______________8=");
        let ids: HashSet<String> = (0..1000).map(|_| new_id()).collect();
        assert_eq!(ids.len(), 1000, "ids repeat");
        for id in &ids {
            assert_eq!(id.len(), ID_LEN, "{id}");
            assert!(id.ends_with('='), "{id}");
            assert!(
                id[..ID_LEN - 1]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{id}"
            );
        }
    }
}
