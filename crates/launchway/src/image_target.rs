//! Container images as targets of `sbom` and `scan`: `oci-archive:FILE`,
//! `docker-archive:FILE`, `oci-dir:DIR`, `registry:REF`,
//! `containers-storage:REF`. Registry mirrors come from
//! `.launchway/registries.yaml` in the current directory, credentials
//! from the usual auth files.

use launchway_oci::mirrors::Registries;
use launchway_scan::image::{self, ImageInfo};
use launchway_scan::sbom::Inventory;

/// The image's inventory, or `None` when `target` names no image (a path).
pub fn inventory(
    target: &str,
    platform: Option<&str>,
) -> Result<Option<(Inventory, ImageInfo)>, String> {
    let registries = if launchway_oci::Target::parse(target).is_some() {
        Registries::load(std::path::Path::new(".")).map_err(|e| e.to_string())?
    } else {
        Registries::default()
    };
    image::open_target(target, platform, &registries).map_err(|e| format!("{target}: {e}"))
}
