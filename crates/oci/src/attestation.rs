//! BuildKit's layout of attestations in an image index, one set of names for the crates that
//! write it (`baleen-pkg`), fetch it (`pull`) and read it (`baleen-build`'s SBOM merge).
//!
//! An attestation manifest is an index entry with platform `unknown/unknown`, annotated
//! [`REFERENCE_TYPE`]` = `[`ATTESTATION_MANIFEST`] and [`REFERENCE_DIGEST`]` = ` the platform
//! manifest it attests; each of its layers is an in-toto statement ([`IN_TOTO_MEDIA_TYPE`])
//! annotated with its [`PREDICATE_TYPE`], [`SPDX_PREDICATE`] for an SBOM.

pub const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
pub const ATTESTATION_MANIFEST: &str = "attestation-manifest";
pub const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
pub const PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
pub const SPDX_PREDICATE: &str = "https://spdx.dev/Document";
pub const IN_TOTO_MEDIA_TYPE: &str = "application/vnd.in-toto+json";
