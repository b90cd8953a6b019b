//! What S3 checks and s3s-fs 0.17 does not, filled in around it so that the embedded store
//! refuses and answers what S3 does: `Content-MD5` on UploadPart, composite checksums (S3's only
//! kind for SHA-1 and SHA-256 multipart uploads, where s3s-fs computes a full-object one), the
//! `<Location>` of a completed upload, and `<ServerTime>` in `RequestTimeTooSkewed`.

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use s3_direct_upload::checksum::{ChecksumAlgorithm, ChecksumType, base64, digest};
use s3_direct_upload::s3_xml::{escape, xml_text, xml_texts};
use s3_direct_upload::sigv4;
use s3s::service::S3Service;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// A store answer.
pub type StoreResponse = Response<s3s::Body>;

/// Multipart uploads created with a composite checksum, by upload id.
#[derive(Default)]
pub struct S3Gaps {
    composite: Mutex<HashMap<String, ChecksumAlgorithm>>,
}

impl S3Gaps {
    /// Serves `req` through `s3`, filling the gaps. `is_part` says it is an UploadPart;
    /// `corrupt` flips a byte of its body on its way in (fault injection).
    pub async fn call(
        &self,
        s3: &S3Service,
        req: Request<Incoming>,
        is_part: bool,
        corrupt: bool,
    ) -> Result<StoreResponse, s3s::HttpError> {
        let query = req.uri().query().unwrap_or_default().to_owned();
        if is_part && (corrupt || req.headers().contains_key("content-md5")) {
            return upload_part(s3, req, corrupt).await;
        }
        if req.method() == Method::POST && query.split('&').any(|p| p.split('=').next() == Some("uploads")) {
            let algorithm = req.headers().get("x-amz-checksum-algorithm").and_then(|v| v.to_str().ok());
            let composite = algorithm.and_then(ChecksumAlgorithm::parse).filter(|a| {
                a.object_type() == ChecksumType::Composite && !req.headers().contains_key("x-amz-checksum-type")
            });
            if let Some(algorithm) = composite {
                let (response, body) = collected(s3.call(req.map(s3s::Body::from)).await?).await?;
                if let Some(id) = xml_text(&body, "UploadId") {
                    self.composite.lock().expect("lock").insert(id.to_owned(), algorithm);
                }
                return Ok(response);
            }
        }
        match query.split('&').find_map(|p| p.strip_prefix("uploadId=")) {
            Some(id) if req.method() == Method::POST => {
                let composite = self.composite.lock().expect("lock").get(id).copied();
                complete(s3, req, composite).await
            }
            _ => with_server_time(s3.call(req.map(s3s::Body::from)).await?).await,
        }
    }
}

/// An UploadPart, read whole first: to flip a byte of it when `corrupt`, and to check its
/// `Content-MD5`. (S3 checks the signature first; a request failing both checks gets
/// `BadDigest` here instead of a 403.)
async fn upload_part(s3: &S3Service, req: Request<Incoming>, corrupt: bool) -> Result<StoreResponse, s3s::HttpError> {
    let (head, body) = req.into_parts();
    let mut bytes = body.collect().await.map_err(|e| s3s::HttpError::from_std_error(e.into()))?.to_bytes().to_vec();
    let middle = bytes.len() / 2;
    if corrupt && let Some(byte) = bytes.get_mut(middle) {
        *byte ^= 0xff;
    }
    let md5 = head.headers.get("content-md5").map(HeaderValue::as_bytes);
    if md5.is_some_and(|md5| md5 != base64(&digest(ChecksumAlgorithm::Md5, &bytes)).as_bytes()) {
        return Ok(s3_error(
            StatusCode::BAD_REQUEST,
            "<Error><Code>BadDigest</Code><Message>The Content-MD5 you specified did not match what we received.</Message></Error>",
        ));
    }
    s3.call(Request::from_parts(head, s3s::Body::from(Bytes::from(bytes)))).await
}

/// CompleteMultipartUpload, with what S3's answer has and s3s-fs's lacks: the object's
/// `<Location>`, and for a composite-checksum upload the composite checksum,
/// `base64(hash(part digests))-N`, in place of s3s-fs's full-object one (every part must then name
/// its checksum, which s3s-fs checks against the stored part).
async fn complete(
    s3: &S3Service,
    req: Request<Incoming>,
    composite: Option<ChecksumAlgorithm>,
) -> Result<StoreResponse, s3s::HttpError> {
    let (head, body) = req.into_parts();
    let body = body.collect().await.map_err(|e| s3s::HttpError::from_std_error(e.into()))?.to_bytes();
    let location = head
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|host| format!("http://{host}{}", head.uri.path()));
    let digests = match composite {
        Some(algorithm) => {
            let text = String::from_utf8_lossy(&body).into_owned();
            let digests: Vec<Vec<u8>> = xml_texts(&text, &format!("Checksum{}", algorithm.as_str()))
                .into_iter()
                .filter_map(|value| base64_simd::STANDARD.decode_to_vec(value).ok())
                .filter(|d| d.len() == algorithm.digest_len())
                .collect();
            if digests.len() != text.matches("<Part>").count() {
                return Ok(s3_error(
                    StatusCode::BAD_REQUEST,
                    "<Error><Code>InvalidRequest</Code><Message>The upload was created using a checksum algorithm. The complete request must include the checksum for each part.</Message></Error>",
                ));
            }
            Some((algorithm, digests))
        }
        None => None,
    };
    let (response, mut answer) = collected(s3.call(Request::from_parts(head, s3s::Body::from(body))).await?).await?;
    let Some(opening) =
        answer.find("<CompleteMultipartUploadResult").and_then(|at| answer[at..].find('>').map(|end| at + end + 1))
    else {
        return Ok(response);
    };
    if let Some(location) = location.filter(|_| !answer.contains("<Location>")) {
        answer.insert_str(opening, &format!("<Location>{}</Location>", escape(&location)));
    }
    if let Some((algorithm, digests)) = digests {
        let element = format!("Checksum{}", algorithm.as_str());
        if let Some(full_object) = xml_text(&answer, &element).map(str::to_owned) {
            let composite = format!("{}-{}", base64(&digest(algorithm, &digests.concat())), digests.len());
            answer = answer
                .replacen(
                    &format!("<{element}>{full_object}</{element}>"),
                    &format!("<{element}>{composite}</{element}>"),
                    1,
                )
                .replacen("<ChecksumType>FULL_OBJECT</ChecksumType>", "<ChecksumType>COMPOSITE</ChecksumType>", 1);
        }
    }
    let (mut head, _) = response.into_parts();
    head.headers.remove(header::CONTENT_LENGTH);
    Ok(Response::from_parts(head, s3s::Body::from(answer)))
}

/// S3 tells a client whose clock is off what time it is (`<ServerTime>` in its
/// `RequestTimeTooSkewed` error), so the client can sign again with a corrected clock; s3s-fs
/// does not, so it is added here.
async fn with_server_time(response: StoreResponse) -> Result<StoreResponse, s3s::HttpError> {
    if !response.status().is_client_error() {
        return Ok(response);
    }
    let (response, body) = collected(response).await?;
    if !body.contains("<Code>RequestTimeTooSkewed</Code>") || body.contains("<ServerTime>") {
        return Ok(response);
    }
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_millis() as f64);
    let server_time = sigv4::iso_8601(now_ms).replace(".000Z", "Z");
    let body = body.replacen("</Error>", &format!("<ServerTime>{server_time}</ServerTime></Error>"), 1);
    let (mut head, _) = response.into_parts();
    head.headers.remove(header::CONTENT_LENGTH);
    Ok(Response::from_parts(head, s3s::Body::from(body)))
}

/// A response with its body read (as text), and the same response rebuilt around that text.
async fn collected(response: StoreResponse) -> Result<(StoreResponse, String), s3s::HttpError> {
    let (head, body) = response.into_parts();
    let bytes = body.collect().await.map_err(s3s::HttpError::from_std_error)?.to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Ok((Response::from_parts(head, s3s::Body::from(bytes)), text))
}

/// An S3 XML error answer.
pub fn s3_error(status: StatusCode, xml: &'static str) -> StoreResponse {
    let mut response = Response::new(s3s::Body::from(Bytes::from_static(xml.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    response
}
