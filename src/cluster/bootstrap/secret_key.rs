//! The node's iroh secret key, kept in its data dir so that a restarted node has the same
//! endpoint id. Apart because it is the one file bootstrap writes into the data dir itself.

use std::path::Path;

use iroh::SecretKey;

use super::BootstrapError;
use crate::cluster::config::parse_secret_key;

/// The file in the data dir that keeps the node's iroh secret key.
const SECRET_KEY_FILE: &str = "iroh-secret-key";

/// Reads the node's secret key from the data dir, or makes one and keeps it there, so that a
/// restarted node has the same endpoint id.
pub(super) fn persistent_secret_key(data_dir: &Path) -> Result<SecretKey, BootstrapError> {
    let path = data_dir.join(SECRET_KEY_FILE);
    let data_dir_error =
        |e: std::io::Error| BootstrapError::DataDir { reason: format!("{}: {e}", path.display()) };
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_secret_key(text.trim()).map_err(|reason| BootstrapError::DataDir {
            reason: format!("{}: {reason}", path.display()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            std::fs::create_dir_all(data_dir).map_err(data_dir_error)?;
            std::fs::write(&path, hex::encode(key.to_bytes())).map_err(data_dir_error)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .map_err(data_dir_error)?;
            }
            Ok(key)
        }
        Err(e) => Err(data_dir_error(e)),
    }
}
