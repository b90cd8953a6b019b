//! Where a bucket's objects are: AWS regional, dual-stack and Transfer Acceleration endpoints,
//! or a custom one (MinIO, R2, s3s), addressed virtual-hosted or path-style (pure).

use crate::error::quoted;
use crate::sigv4::uri_encode;

/// How the bucket appears in URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressingStyle {
    /// `https://bucket.host/key`: AWS's default.
    VirtualHosted,
    /// `https://host/bucket/key`: MinIO's and most self-hosted stores' default.
    Path,
}

/// A bucket on an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `scheme://host[:port]` of the service, without the bucket.
    origin: String,
    /// Bucket name.
    bucket: String,
    /// Region of the signatures.
    pub region: String,
    /// Virtual-hosted or path-style.
    pub style: AddressingStyle,
}

/// What to build an endpoint from; mirrors the credentials answer of the contract.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointOptions<'a> {
    /// Bucket name.
    pub bucket: &'a str,
    /// Region, e.g. `eu-west-1`.
    pub region: &'a str,
    /// A custom endpoint URL (`http(s)://host[:port]`); AWS's when absent.
    pub endpoint: Option<&'a str>,
    /// Path-style addressing (custom endpoints usually need it).
    pub force_path_style: bool,
    /// S3 Transfer Acceleration (`bucket.s3-accelerate.amazonaws.com`).
    pub accelerate: bool,
    /// IPv6-capable dual-stack endpoints.
    pub dualstack: bool,
}

impl Endpoint {
    /// The endpoint `options` describe, or a message saying what is wrong with them.
    pub fn new(options: &EndpointOptions<'_>) -> Result<Endpoint, String> {
        let bucket = options.bucket;
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !valid_bucket {
            return Err(format!(
                "{} is not a bucket name (3 to 63 lower-case letters, digits, '-' or '.')",
                quoted(bucket)
            ));
        }
        if options.region.is_empty() || !options.region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(format!("{} is not a region", quoted(options.region)));
        }
        let region = options.region.to_owned();
        let (origin, style) = match options.endpoint {
            Some(url) => {
                if options.accelerate {
                    return Err("Transfer Acceleration is an AWS endpoint; leave out `endpoint` to use it".into());
                }
                let style =
                    if options.force_path_style { AddressingStyle::Path } else { AddressingStyle::VirtualHosted };
                (checked_origin(url)?, style)
            }
            None if options.accelerate => {
                if bucket.contains('.') {
                    return Err(format!(
                        "Transfer Acceleration needs a bucket name without dots, not {}",
                        quoted(bucket)
                    ));
                }
                let host = if options.dualstack { "s3-accelerate.dualstack" } else { "s3-accelerate" };
                (format!("https://{host}.amazonaws.com"), AddressingStyle::VirtualHosted)
            }
            None => {
                let host = if options.dualstack { format!("s3.dualstack.{region}") } else { format!("s3.{region}") };
                // Dots in a virtual-hosted bucket name break the TLS wildcard certificate.
                let style = if options.force_path_style || bucket.contains('.') {
                    AddressingStyle::Path
                } else {
                    AddressingStyle::VirtualHosted
                };
                (format!("https://{host}.amazonaws.com"), style)
            }
        };
        Ok(Endpoint { origin, bucket: bucket.to_owned(), region, style })
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The bucket's URL, ending in `/`.
    pub fn bucket_url(&self) -> String {
        match self.style {
            AddressingStyle::VirtualHosted => {
                let (scheme, host) = self.origin.split_once("://").expect("checked origin");
                format!("{scheme}://{}.{host}/", self.bucket)
            }
            AddressingStyle::Path => format!("{}/{}/", self.origin, self.bucket),
        }
    }

    /// The URL of the object `key` (encoded as SigV4 expects; `/` kept).
    pub fn object_url(&self, key: &str) -> String {
        object_url_in(&self.bucket_url(), key)
    }
}

/// The URL of the object `key` in the bucket at `bucket_url`, however the URL was given: with
/// or without its trailing `/` (boto3's path-style POST URLs have none), with or without a query.
pub fn object_url_in(bucket_url: &str, key: &str) -> String {
    let bucket_url = bucket_url.split(['?', '#']).next().unwrap_or_default().trim_end_matches('/');
    format!("{bucket_url}/{}", uri_encode(key, false))
}

/// `url` as `scheme://host[:port]`, or why it is not one.
fn checked_origin(url: &str) -> Result<String, String> {
    let url = url.trim_end_matches('/');
    let not_a_url = || format!("the endpoint {} is not an http(s)://host[:port] URL", quoted(url));
    let (scheme, authority) = url.split_once("://").ok_or_else(not_a_url)?;
    let host_ok = !authority.is_empty()
        && authority.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !matches!(scheme, "http" | "https") || !host_ok {
        return Err(not_a_url());
    }
    Ok(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_urls_join_the_bucket_url_and_the_key_with_one_slash() {
        for bucket_url in
            ["http://127.0.0.1:9000/bucket", "http://127.0.0.1:9000/bucket/", "http://127.0.0.1:9000/bucket/?x=1"]
        {
            assert_eq!(object_url_in(bucket_url, "uploads/a b.png"), "http://127.0.0.1:9000/bucket/uploads/a%20b.png");
        }
        for bucket_url in ["https://bucket.s3.amazonaws.com", "https://bucket.s3.amazonaws.com/"] {
            assert_eq!(object_url_in(bucket_url, "k"), "https://bucket.s3.amazonaws.com/k");
        }
    }

    fn url_of(options: EndpointOptions<'_>, key: &str) -> String {
        Endpoint::new(&options).unwrap().object_url(key)
    }

    const AWS: EndpointOptions<'static> = EndpointOptions {
        bucket: "photos",
        region: "eu-west-1",
        endpoint: None,
        force_path_style: false,
        accelerate: false,
        dualstack: false,
    };

    #[test]
    fn aws_endpoints_in_each_style() {
        assert_eq!(url_of(AWS, "a b/ü.jpg"), "https://photos.s3.eu-west-1.amazonaws.com/a%20b/%C3%BC.jpg");
        let path = EndpointOptions { force_path_style: true, ..AWS };
        assert_eq!(url_of(path, "k"), "https://s3.eu-west-1.amazonaws.com/photos/k");
        let dualstack = EndpointOptions { dualstack: true, ..AWS };
        assert_eq!(url_of(dualstack, "k"), "https://photos.s3.dualstack.eu-west-1.amazonaws.com/k");
        let dotted = EndpointOptions { bucket: "my.photos", ..AWS };
        assert_eq!(url_of(dotted, "k"), "https://s3.eu-west-1.amazonaws.com/my.photos/k", "dots force path-style");
    }

    #[test]
    fn transfer_acceleration_endpoints() {
        let accelerated = EndpointOptions { accelerate: true, ..AWS };
        assert_eq!(url_of(accelerated.clone(), "k"), "https://photos.s3-accelerate.amazonaws.com/k");
        let both = EndpointOptions { dualstack: true, ..accelerated.clone() };
        assert_eq!(url_of(both, "k"), "https://photos.s3-accelerate.dualstack.amazonaws.com/k");
        let dotted = EndpointOptions { bucket: "my.photos", ..accelerated.clone() };
        assert!(Endpoint::new(&dotted).unwrap_err().contains("without dots"));
        let custom = EndpointOptions { endpoint: Some("https://minio.local"), ..accelerated };
        assert!(Endpoint::new(&custom).is_err());
    }

    #[test]
    fn custom_endpoints_minio_r2_and_s3s() {
        let minio = EndpointOptions {
            endpoint: Some("http://127.0.0.1:9000/"),
            force_path_style: true,
            region: "us-east-1",
            ..AWS
        };
        assert_eq!(url_of(minio, "uploads/a"), "http://127.0.0.1:9000/photos/uploads/a");
        let r2 = EndpointOptions { endpoint: Some("https://acc0unt.r2.cloudflarestorage.com"), region: "auto", ..AWS };
        assert_eq!(url_of(r2, "k"), "https://photos.acc0unt.r2.cloudflarestorage.com/k");
    }

    #[test]
    fn bad_endpoints_buckets_and_regions_are_refused_with_a_reason() {
        for endpoint in ["ftp://x", "localhost:9000", "https://", "https://host/path", "https://h?x=1", "not a url"] {
            let options = EndpointOptions { endpoint: Some(endpoint), ..AWS };
            assert!(Endpoint::new(&options).unwrap_err().contains("is not an http(s)://host[:port] URL"), "{endpoint}");
        }
        for bucket in ["", "ab", "Photos", "-photos", "photos.", "pho_tos"] {
            assert!(Endpoint::new(&EndpointOptions { bucket, ..AWS }).unwrap_err().contains("bucket name"), "{bucket}");
        }
        assert!(Endpoint::new(&EndpointOptions { region: "eu west", ..AWS }).unwrap_err().contains("region"));
    }
}
