//! CycloneDX 1.6 / 1.5 JSON.
