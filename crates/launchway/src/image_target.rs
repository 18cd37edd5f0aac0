//! Container images as targets of `sbom` and `scan`: `oci-archive:FILE`,
//! `docker-archive:FILE`, `oci-dir:DIR`, `registry:REF`,
//! `containers-storage:REF`. Registry mirrors and credentials come from
//! `.launchway/registries.yaml` in the current directory and the usual
//! auth files.

use launchway_oci::{Platform, Target, mirrors::Registries, source};
use launchway_scan::image::{self, ImageInfo};
use launchway_scan::sbom::Inventory;

/// The image's inventory, or `None` when `target` names no image (a path).
pub fn inventory(
    target: &str,
    platform: Option<&str>,
) -> Result<Option<(Inventory, ImageInfo)>, String> {
    let Some(parsed) = Target::parse(target) else {
        if platform.is_some() {
            return Err(format!(
                "--platform applies to an image target (oci-archive:, docker-archive:, oci-dir:, registry:, containers-storage:), not to the path '{target}'"
            ));
        }
        return Ok(None);
    };
    let t = parsed.map_err(|e| e.to_string())?;
    let opts = source::Options {
        platform: platform
            .map(Platform::parse)
            .transpose()
            .map_err(|e| e.to_string())?,
        registries: Registries::load(std::path::Path::new(".")).map_err(|e| e.to_string())?,
    };
    let img = source::open(&t, &opts).map_err(|e| e.to_string())?;
    image::inventory(&img)
        .map(Some)
        .map_err(|e| format!("{t}: {e}"))
}
