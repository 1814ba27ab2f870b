//! The Authenticode signature: a PKCS#7 SignedData whose content is an `SpcIndirectDataContent`
//! carrying the image hash, as sbsign (sbsigntool's `idc.c`) and signtool write it.
//!
//! The signed attributes are contentType, messageDigest and an empty SpcSpOpusInfo, as sbsign
//! writes them, and never signingTime (which would make two signatures of one image differ).
//! The content is PKCS#7's `[0] EXPLICIT SpcIndirectDataContent`, not CMS's OCTET STRING, and
//! messageDigest covers the content's value without its SEQUENCE header: that is what EDK2's
//! `AuthenticodeVerify` and sbverify check.
//!
//! The `SpcIndirectDataContent` is encoded by hand (a dozen fixed lines): none of the RustCrypto
//! crates defines Microsoft's types. The envelope uses `cms`'s types, whose SET OF encoding
//! sorts the signed attributes as DER requires (verifiers re-encode them to check the
//! signature).

use crate::key::{KeyError, KeyPair, SigningKey};
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{ObjectIdentifier as Oid, OctetString, SetOfVec};
use der::{Any, Decode, Encode};
use sha2::{Digest, Sha256};
use x509_cert::attr::Attribute;
use x509_cert::spki::AlgorithmIdentifierOwned;

const ID_SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
const ID_CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
const ID_SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
/// `SPC_INDIRECT_DATA_OBJID`: the content type of an Authenticode signature.
const SPC_INDIRECT_DATA: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.2.1.4");
/// `SPC_PE_IMAGE_DATAOBJ`: what the indirect data describes, a PE image.
const SPC_PE_IMAGE_DATA: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.2.1.15");
/// `SPC_SP_OPUS_INFO_OBJID`: program name and URL, both absent here.
const SPC_SP_OPUS_INFO: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.2.1.12");

#[derive(Debug, thiserror::Error)]
pub enum Pkcs7Error {
    #[error("encoding the PKCS#7 signature")]
    Encode(#[source] der::Error),
    #[error("signing the Authenticode attributes")]
    Sign(#[source] KeyError),
}

/// One DER TLV with a short tag and a definite length.
fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    // Both casts are bounded: a short length is < 0x80, a long one has at most 8 bytes.
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(value);
    out
}

fn oid_der(oid: &Oid) -> Vec<u8> {
    tlv(0x06, oid.as_bytes())
}

/// The value (no outer SEQUENCE header) of the `SpcIndirectDataContent` for `image_digest`:
///
/// ```text
/// SpcIndirectDataContent ::= SEQUENCE {
///     data          SEQUENCE { type SPC_PE_IMAGE_DATAOBJ, value SpcPeImageData },
///     messageDigest DigestInfo (SHA-256, image hash) }
/// SpcPeImageData ::= SEQUENCE { flags BIT STRING {}, file [0] SpcLink }
/// SpcLink ::= [2] SpcString ::= [0] IMPLICIT BMPString "<<<Obsolete>>>"
/// ```
fn indirect_data_value(image_digest: &[u8; 32]) -> Vec<u8> {
    let obsolete: Vec<u8> = "<<<Obsolete>>>".encode_utf16().flat_map(u16::to_be_bytes).collect();
    let file = tlv(0xa0, &tlv(0xa2, &tlv(0x80, &obsolete)));
    let flags = tlv(0x03, &[0x00]);
    let pe_image_data = tlv(0x30, &[flags, file].concat());
    let data = tlv(0x30, &[oid_der(&SPC_PE_IMAGE_DATA), pe_image_data].concat());
    let sha256 = tlv(0x30, &[oid_der(&ID_SHA256), tlv(0x05, &[])].concat());
    let digest_info = tlv(0x30, &[sha256, tlv(0x04, image_digest)].concat());
    [data, digest_info].concat()
}

fn algorithm(oid: Oid, null_params: bool) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid, parameters: null_params.then(|| Any::from(der::asn1::Null)) }
}

fn attribute(oid: Oid, value: Any) -> Result<Attribute, der::Error> {
    Ok(Attribute { oid, values: SetOfVec::try_from(vec![value])? })
}

/// The DER `ContentInfo` (SignedData) that signs a PE image of hash `image_digest`.
pub fn signed_data(pair: &KeyPair, image_digest: &[u8; 32]) -> Result<Vec<u8>, Pkcs7Error> {
    let enc = Pkcs7Error::Encode;
    let value = indirect_data_value(image_digest);
    let content_digest: [u8; 32] = Sha256::digest(&value).into();
    let content = Any::from_der(&tlv(0x30, &value)).map_err(enc)?;

    let attrs = SetOfVec::try_from(vec![
        attribute(ID_CONTENT_TYPE, Any::from(&SPC_INDIRECT_DATA)).map_err(enc)?,
        attribute(ID_MESSAGE_DIGEST, Any::new(der::Tag::OctetString, content_digest).map_err(enc)?)
            .map_err(enc)?,
        attribute(SPC_SP_OPUS_INFO, Any::new(der::Tag::Sequence, Vec::<u8>::new()).map_err(enc)?)
            .map_err(enc)?,
    ])
    .map_err(enc)?;
    // The signature covers the attributes as a SET OF (tag 0x31), not as the [0] they are
    // stored under.
    let signature = pair.key.sign(&attrs.to_der().map_err(enc)?).map_err(Pkcs7Error::Sign)?;
    let signature_algorithm = match pair.key {
        SigningKey::Rsa(_) => algorithm(RSA_ENCRYPTION, true),
        SigningKey::P256(_) => algorithm(ECDSA_WITH_SHA256, false),
    };
    let tbs = &pair.cert.tbs_certificate;
    let signer = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer.clone(),
            serial_number: tbs.serial_number.clone(),
        }),
        digest_alg: algorithm(ID_SHA256, true),
        signed_attrs: Some(attrs),
        signature_algorithm,
        signature: OctetString::new(signature).map_err(enc)?,
        unsigned_attrs: None,
    };
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![algorithm(ID_SHA256, true)]).map_err(enc)?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: SPC_INDIRECT_DATA,
            econtent: Some(content),
        },
        certificates: Some(
            CertificateSet::try_from(vec![cms::cert::CertificateChoices::Certificate(
                pair.cert.clone(),
            )])
            .map_err(enc)?,
        ),
        crls: None,
        signer_infos: SignerInfos::try_from(vec![signer]).map_err(enc)?,
    };
    let info = ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::from_der(&signed.to_der().map_err(enc)?).map_err(enc)?,
    };
    info.to_der().map_err(enc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lengths_use_the_fewest_bytes() {
        assert_eq!(tlv(0x04, &[0; 3])[..2], [0x04, 3]);
        assert_eq!(tlv(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(tlv(0x04, &[0; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn the_indirect_data_is_the_well_known_authenticode_encoding() {
        // As every signtool/sbsign signature of a PE image has it: SpcPeImageData with no flags
        // and the "<<<Obsolete>>>" file link, then a SHA-256 DigestInfo.
        let want = [
            hex_bytes(
                "3033060a2b06010401823702010f3025030100a020a21e801c\
                 003c003c003c004f00620073006f006c006500740065003e003e003e\
                 3031300d060960864801650304020105000420",
            ),
            vec![0xab; 32],
        ]
        .concat();
        assert_eq!(indirect_data_value(&[0xab; 32]), want);
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
    }
}
