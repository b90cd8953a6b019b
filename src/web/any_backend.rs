//! The backend an `Uploader` was configured with: the contract (over HTTP or callbacks), or the
//! page signing with temporary credentials, as one [`Backend`].

use super::backend::{ContractBackend, Op};
use super::credentials::CredentialsBackend;
use crate::checksum::ObjectChecksum;
use crate::error::UploadError;
use crate::upload::{
    Backend, CompletedObject, CompletedPart, FileInfo, ListedPart, MultipartSession, SignReason, SignedPart,
    SignedPost, SignedPut, SignedWhole,
};

/// The backend an `Uploader` was configured with.
pub(crate) enum AnyBackend {
    Contract(ContractBackend),
    Credentials(CredentialsBackend),
}

impl Backend for AnyBackend {
    async fn create_multipart(&self, file: &FileInfo) -> Result<MultipartSession, UploadError> {
        match self {
            AnyBackend::Contract(b) => b.create_multipart(file).await,
            AnyBackend::Credentials(b) => b.create_multipart(file).await,
        }
    }

    async fn sign_parts(
        &self,
        session: &MultipartSession,
        numbers: &[u32],
        checksums: Option<&[String]>,
        reason: SignReason,
    ) -> Result<Vec<SignedPart>, UploadError> {
        match self {
            AnyBackend::Contract(b) => b.sign_parts(session, numbers, checksums, reason).await,
            AnyBackend::Credentials(b) => b.sign_parts(session, numbers, checksums, reason).await,
        }
    }

    async fn complete_multipart(
        &self,
        session: &MultipartSession,
        parts: &[CompletedPart],
        checksum: Option<&ObjectChecksum>,
    ) -> Result<CompletedObject, UploadError> {
        match self {
            AnyBackend::Contract(b) => b.complete_multipart(session, parts, checksum).await,
            AnyBackend::Credentials(b) => b.complete_multipart(session, parts, checksum).await,
        }
    }

    async fn abort_multipart(&self, session: &MultipartSession) -> Result<(), UploadError> {
        match self {
            AnyBackend::Contract(b) => b.abort_multipart(session).await,
            AnyBackend::Credentials(b) => b.abort_multipart(session).await,
        }
    }

    async fn list_parts(&self, session: &MultipartSession) -> Result<Vec<ListedPart>, UploadError> {
        match self {
            AnyBackend::Contract(b) => b.list_parts(session).await,
            AnyBackend::Credentials(b) => b.list_parts(session).await,
        }
    }

    async fn sign_put(&self, file: &FileInfo, reason: SignReason) -> Result<SignedPut, UploadError> {
        match self {
            AnyBackend::Contract(b) => b.sign_put(file, reason).await,
            AnyBackend::Credentials(b) => b.sign_put(file, reason).await,
        }
    }

    async fn sign_post(&self, file: &FileInfo, reason: SignReason) -> Result<SignedPost, UploadError> {
        match self {
            AnyBackend::Contract(b) => b.sign_post(file, reason).await,
            AnyBackend::Credentials(b) => b.sign_post(file, reason).await,
        }
    }

    async fn sign_whole(&self, file: &FileInfo, reason: SignReason) -> Result<SignedWhole, UploadError> {
        match self {
            AnyBackend::Contract(b) => b.sign_whole(file, reason).await,
            AnyBackend::Credentials(b) => b.sign_whole(file, reason).await,
        }
    }
}

impl AnyBackend {
    /// Whether uploads can be resumed: the backend can list the parts a store holds.
    pub(crate) fn can_list_parts(&self) -> bool {
        match self {
            AnyBackend::Contract(b) => b.offers(Op::ListParts),
            AnyBackend::Credentials(_) => true,
        }
    }

    /// Names the backend in resume fingerprints, so that one backend's records never steer
    /// another's uploads.
    pub(crate) fn identity(&self) -> String {
        match self {
            AnyBackend::Contract(b) => b.identity(),
            AnyBackend::Credentials(b) => b.identity(),
        }
    }
}
