//! The library's SigV4 signer and endpoints against rusty-s3, an independent implementation: the
//! same part URL, signed at the same time, must carry the same signature on every kind of
//! endpoint (AWS virtual-hosted, path-style, dual-stack, Transfer Acceleration, custom).

use rusty_s3::{Bucket, Credentials as RustyCredentials, S3Action, UrlStyle};
use s3_direct_upload::endpoint::{AddressingStyle, Endpoint, EndpointOptions};
use s3_direct_upload::sigv4::{Credentials, Request, Scope, presign};
use std::time::Duration;

fn signature(url: &str) -> &str {
    url.split("X-Amz-Signature=").nth(1).expect("a signed URL")
}

#[test]
fn part_urls_are_signed_as_rusty_s3_signs_them_on_every_endpoint() {
    let options = EndpointOptions { bucket: "photos", region: "eu-west-1", ..EndpointOptions::default() };
    let cases = [
        (EndpointOptions { ..options.clone() }, "https://s3.eu-west-1.amazonaws.com"),
        (EndpointOptions { force_path_style: true, ..options.clone() }, "https://s3.eu-west-1.amazonaws.com"),
        (EndpointOptions { dualstack: true, ..options.clone() }, "https://s3.dualstack.eu-west-1.amazonaws.com"),
        (EndpointOptions { accelerate: true, ..options.clone() }, "https://s3-accelerate.amazonaws.com"),
        (
            EndpointOptions { endpoint: Some("http://127.0.0.1:9000"), force_path_style: true, ..options.clone() },
            "http://127.0.0.1:9000",
        ),
    ];
    let time: jiff::Timestamp = "2026-11-21T12:00:00Z".parse().unwrap();
    let now_ms = time.as_millisecond() as f64;
    let ours = Credentials {
        access_key_id: "ASIAEXAMPLE".into(),
        secret_access_key: "secret/key+example".into(),
        session_token: Some("token".into()),
    };
    let theirs = RustyCredentials::new_with_token("ASIAEXAMPLE", "secret/key+example", "token");
    for (options, base) in cases {
        let endpoint = Endpoint::new(&options).unwrap();
        let key = "uploads/alice/a photo (1).jpg";
        let url = format!("{}?partNumber=3&uploadId=abc%2Bdef", endpoint.object_url(key));
        let headers = [("x-amz-checksum-crc32c".to_owned(), "AAAAAA==".to_owned())];
        let request = Request { method: "PUT", url: &url, headers: &headers };
        let signed = presign(&request, &ours, Scope { region: "eu-west-1", service: "s3" }, now_ms, 900).unwrap();

        let style = match endpoint.style {
            AddressingStyle::VirtualHosted => UrlStyle::VirtualHost,
            AddressingStyle::Path => UrlStyle::Path,
        };
        let bucket = Bucket::new(base.parse().unwrap(), style, "photos", "eu-west-1").unwrap();
        let mut action = bucket.upload_part(Some(&theirs), key, 3, "abc+def");
        action.headers_mut().insert("x-amz-checksum-crc32c", "AAAAAA==");
        let reference = action.sign_with_time(Duration::from_secs(900), &time);
        assert_eq!(signed.split('?').next(), reference.as_str().split('?').next(), "{base}: the object URL");
        assert_eq!(signature(&signed), signature(reference.as_str()), "{base}: the signature");
    }
}
